"""The worker register: enrol (with consent), update, remove, and the versioned feed
that edge boxes sync their face register from.

Every change bumps the site's register version and stamps the worker with it, so a
device asking "what changed since version N" gets the workers whose version is > N:
active ones with their embeddings, removed ones as tombstones. Embeddings are computed
here from uploaded photos with the edge's own face code; the photos are not kept.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from sitewatch.server.db.models import Device, Site, User
from sitewatch.server.db.types import as_utc, utcnow
from sitewatch.server.db.workers import RegisterVersion, Worker, WorkerEmbedding
from sitewatch.server.media_checks import MediaLimits, MediaProblem, check_image
from sitewatch.server.services import audit
from sitewatch.server.services.access import (
    require_admin,
    require_reviewer,
    require_site,
    site_filter,
)
from sitewatch.server.services.errors import Conflict, Invalid, NotFound, ServiceError
from sitewatch.server.services.media import MediaRefused, media_limits

if TYPE_CHECKING:  # types only: the models are imported by load_face_models()
    from sitewatch.edge.faces.detection import FaceDetector
    from sitewatch.edge.faces.embedding import FaceEmbedder

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 128


class FaceModelsMissing(ServiceError):
    """The YuNet/SFace model files are not on this server (see MODELS.md)."""

    status = 503


@dataclass(frozen=True)
class Consent:
    given: bool
    method: str
    given_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True)
class WorkerFields:
    name: str
    team: str | None = None
    is_party_member: bool = False


@dataclass
class RegisterFeed:
    version: int
    full: bool
    workers: list[Worker] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def load_face_models() -> tuple[FaceDetector, FaceEmbedder]:
    """YuNet + SFace from the edge's face package: the only edge code the server uses.

    Raises FaceModelsMissing (naming the paths tried) when the model files are absent.
    """
    from sitewatch.edge.faces.detection import FaceModelError
    from sitewatch.edge.faces.models import load_face_models as load_edge_face_models

    try:
        return load_edge_face_models()
    except FaceModelError as exc:
        raise FaceModelsMissing(f"face enrolment is not available on this server: {exc}") from None


class PhotoEmbedder:
    """YuNet + SFace (:func:`load_face_models`) on whole photos; one face per photo or Invalid."""

    def __init__(self) -> None:
        self._detector, self._embedder = load_face_models()
        self._lock = threading.Lock()  # OpenCV nets are not safe across threads

    def embed(self, photo: bytes, *, what: str) -> np.ndarray:
        import cv2

        image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise Invalid(f"{what}: not a JPEG image that can be decoded")
        with self._lock:
            faces = self._detector.detect(image)
            if len(faces) != 1:
                found = "no face" if not faces else f"{len(faces)} faces"
                raise Invalid(f"{what}: {found} found; upload a clear photo of one face only")
            embedding: np.ndarray = self._embedder.embed(image, faces[0])
            return embedding


@lru_cache(maxsize=1)
def photo_embedder() -> PhotoEmbedder:
    """The process's embedder (models loaded once; FaceModelsMissing if they are missing)."""
    return PhotoEmbedder()


def embed_photos(
    photos: list[tuple[str, bytes]], *, limits: MediaLimits | None = None
) -> list[np.ndarray]:
    """One embedding per ``(name, jpeg bytes)``; all or nothing.

    Every photo is checked first (MediaRefused: 413 when its header declares more pixels
    than ``limits`` allow, default the settings' defaults; 422 when it does not decode),
    so a decompression bomb is refused before anything decodes it.
    """
    if not photos:
        raise Invalid("at least one photo is required")
    for name, data in photos:
        try:
            check_image(data, limits=limits or media_limits(), what=f"photo {name!r}")
        except MediaProblem as problem:
            raise MediaRefused(problem.reason, problem.status) from None
    embedder = photo_embedder()
    return [embedder.embed(data, what=f"photo {name!r}") for name, data in photos]


def _bump_version(db: Session, site_id: str) -> int:
    """The site's next register version; the row lock serialises concurrent changes."""
    query = select(RegisterVersion).where(RegisterVersion.site_id == site_id).with_for_update()
    row = db.scalars(query).one_or_none()
    if row is None:
        try:
            with db.begin_nested():  # another transaction may create it at the same time
                db.add(RegisterVersion(site_id=site_id, version=0))
        except IntegrityError:
            pass
        row = db.scalars(query).one()
    row.version += 1
    db.flush()
    return row.version


def current_version(db: Session, site_id: str) -> int:
    row = db.get(RegisterVersion, site_id)
    return row.version if row else 0


def _find(db: Session, site_id: str, worker_id: str) -> Worker | None:
    return db.scalars(
        select(Worker).where(Worker.site_id == site_id, Worker.worker_id == worker_id)
    ).one_or_none()


def _active(db: Session, *, user: User, site_id: str, worker_id: str) -> Worker:
    require_site(user, site_id, "worker")
    worker = _find(db, site_id, worker_id)
    if worker is None or worker.removed_at is not None:
        raise NotFound(f"worker {worker_id!r} not found at site {site_id!r}")
    return worker


def _vectors(embeddings: list[np.ndarray]) -> list[WorkerEmbedding]:
    rows = []
    for vector in embeddings:
        array = np.asarray(vector, "<f4").reshape(-1)
        if array.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(array)):
            raise Invalid(f"embeddings must be {EMBEDDING_DIM} finite values")
        rows.append(WorkerEmbedding(vector=array.tobytes()))
    return rows


def check_enrol(db: Session, *, user: User, site_id: str, consent: Consent) -> None:
    """What :func:`enrol_worker` checks first: role (403), site (404), consent (422).

    The API calls it before computing embeddings, so a refusal costs no face model run.
    """
    require_reviewer(user)
    require_site(user, site_id, "site")
    if db.get(Site, site_id) is None:
        raise NotFound(f"site {site_id!r} not found")
    if not consent.given or not consent.method.strip():
        raise Invalid("the worker's consent is required: consent_given=true and consent_method")


def enrol_worker(
    db: Session,
    *,
    user: User,
    site_id: str,
    worker_id: str,
    fields: WorkerFields,
    consent: Consent,
    embeddings: list[np.ndarray],
) -> Worker:
    """Enrol a worker (or re-enrol a removed one); 422 without consent, 409 if enrolled."""
    check_enrol(db, user=user, site_id=site_id, consent=consent)
    if not embeddings:
        raise Invalid("at least one face embedding is required")
    worker = _find(db, site_id, worker_id)
    if worker is not None and worker.removed_at is None:
        raise Conflict(f"worker {worker_id!r} is already enrolled at site {site_id!r}")
    now = utcnow()
    if worker is None:
        worker = Worker(site_id=site_id, worker_id=worker_id, created_at=now)
        db.add(worker)
    worker.name, worker.team = fields.name, fields.team
    worker.is_party_member = fields.is_party_member
    worker.consent_given_at = as_utc(consent.given_at) if consent.given_at else now
    worker.consent_recorded_by_id = user.id
    worker.consent_method, worker.consent_note = consent.method.strip(), consent.note
    worker.updated_at, worker.removed_at = now, None
    worker.embeddings = _vectors(embeddings)
    worker.version = _bump_version(db, site_id)
    audit.record(
        db,
        actor=user,
        action="worker.enrol",
        object_type="worker",
        object_id=f"{site_id}/{worker_id}",
        site_id=site_id,
        details={
            "embeddings": len(embeddings),
            "consent_method": worker.consent_method,
            "is_party_member": worker.is_party_member,
            "version": worker.version,
        },
    )
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"worker {worker_id!r} was enrolled at the same time; retry") from None
    return worker


def update_worker(
    db: Session,
    *,
    user: User,
    site_id: str,
    worker_id: str,
    name: str | None = None,
    team: str | None = None,
    is_party_member: bool | None = None,
) -> Worker:
    require_reviewer(user)
    worker = _active(db, user=user, site_id=site_id, worker_id=worker_id)
    changes: dict[str, object] = {}
    for key, value in (("name", name), ("team", team), ("is_party_member", is_party_member)):
        if value is not None and getattr(worker, key) != value:
            setattr(worker, key, value)
            changes[key] = value
    if changes:
        worker.updated_at = utcnow()
        worker.version = _bump_version(db, site_id)
        audit.record(
            db,
            actor=user,
            action="worker.update",
            object_type="worker",
            object_id=f"{site_id}/{worker_id}",
            site_id=site_id,
            details={**changes, "version": worker.version},
        )
        db.commit()
    return worker


def _tombstone(db: Session, worker: Worker) -> None:
    worker.embeddings = []
    worker.removed_at = worker.updated_at = utcnow()
    worker.version = _bump_version(db, worker.site_id)


def remove_worker(db: Session, *, user: User, site_id: str, worker_id: str) -> Worker:
    """Admins only: delete the worker's embeddings now and leave a tombstone for the feed."""
    require_admin(user)
    worker = _active(db, user=user, site_id=site_id, worker_id=worker_id)
    _tombstone(db, worker)
    audit.record(
        db,
        actor=user,
        action="worker.remove",
        object_type="worker",
        object_id=f"{site_id}/{worker_id}",
        site_id=site_id,
        details={"version": worker.version},
    )
    db.commit()
    return worker


def list_workers(db: Session, *, user: User, site_id: str | None = None) -> list[Worker]:
    """Active workers the user may see, by site then worker id."""
    query = select(Worker).where(Worker.removed_at.is_(None), site_filter(user, Worker.site_id))
    if site_id is not None:
        query = query.where(Worker.site_id == site_id)
    return list(db.scalars(query.order_by(Worker.site_id, Worker.worker_id)))


def register_feed(db: Session, *, device: Device, since_version: int) -> RegisterFeed:
    """What changed in the device's site register after ``since_version``.

    ``full`` is true for 0 or a version the server never reached (a reset register):
    the device must then replace its register with this answer instead of merging.
    ``removed`` lists the removed workers' ids (tombstones) in a full answer too, so that
    a box that syncs for the first time after a removal still drops that worker from its
    own local register.
    """
    if since_version < 0:
        raise Invalid("since_version must be >= 0")
    version = current_version(db, device.site_id)
    full = since_version == 0 or since_version > version
    since = 0 if full else since_version
    rows = db.scalars(
        select(Worker)
        .where(Worker.site_id == device.site_id, Worker.version > since)
        .options(selectinload(Worker.embeddings))
        .order_by(Worker.worker_id)
    )
    feed = RegisterFeed(version=version, full=full)
    for worker in rows:
        if worker.removed_at is None:
            feed.workers.append(worker)
        else:
            feed.removed.append(worker.worker_id)
    return feed


def embedding_values(row: WorkerEmbedding) -> list[float]:
    return [float(v) for v in np.frombuffer(row.vector, "<f4")]


def purge_face_data(db: Session, *, days: int, now: datetime | None = None) -> int:
    """Remove (tombstone) workers enrolled or updated more than ``days`` ago and delete
    every embedding of a removed worker; returns the number of workers purged."""
    if days < 1:
        raise ValueError(f"face retention days must be >= 1, got {days}")
    cutoff = as_utc(now or utcnow()) - timedelta(days=days)
    expired = list(
        db.scalars(select(Worker).where(Worker.removed_at.is_(None), Worker.updated_at < cutoff))
    )
    for worker in expired:
        _tombstone(db, worker)
    leftovers = db.scalars(
        select(WorkerEmbedding).join(Worker).where(Worker.removed_at.is_not(None))
    )
    for row in leftovers:
        db.delete(row)
    audit.record(
        db,
        actor=None,
        action="worker.face_retention",
        object_type="worker",
        object_id="*",
        details={"cutoff": cutoff.isoformat(), "workers": len(expired)},
    )
    db.commit()
    logger.info("face retention: %d worker(s) past %s removed", len(expired), cutoff)
    return len(expired)
