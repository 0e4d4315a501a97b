"""The worker register: enrolment by users (photos + consent), the device sync feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from sitewatch.contract.ids import ID_PATTERN
from sitewatch.contract.register import RegisterOut, RegisterWorker
from sitewatch.server.api.deps import CurrentDevice, CurrentUser, DbSession, SettingsDep
from sitewatch.server.db.workers import Worker
from sitewatch.server.services import workers
from sitewatch.server.services.media import media_limits
from sitewatch.server.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["workers"])
ERRORS: dict[int | str, dict[str, object]] = {403: {}, 404: {}, 409: {}, 422: {}}
JPEG_MAGIC = b"\xff\xd8\xff"


class WorkerOut(BaseModel):
    site_id: str
    worker_id: str
    name: str
    team: str | None
    is_party_member: bool
    consent_given_at: datetime
    consent_method: str
    consent_note: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    embedding_count: int = 0


class WorkerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    team: str | None = Field(default=None, max_length=200)
    is_party_member: bool | None = None


def worker_out(worker: Worker) -> WorkerOut:
    names = [n for n in WorkerOut.model_fields if n != "embedding_count"]
    fields = {name: getattr(worker, name) for name in names}
    return WorkerOut(**{**fields, "embedding_count": len(worker.embeddings)})


def _read_photos(photos: list[UploadFile], settings: Settings) -> list[tuple[str, bytes]]:
    limit = settings.max_evidence_bytes
    read = []
    for index, upload in enumerate(photos):
        name = upload.filename or f"#{index + 1}"
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"photo {name!r} is over {limit} bytes"
            )
        if not data.startswith(JPEG_MAGIC):
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"photo {name!r} is not a JPEG"
            )
        read.append((name, data))
    return read


@router.post(
    "/workers/{site_id}",
    response_model=WorkerOut,
    status_code=status.HTTP_201_CREATED,
    responses={**ERRORS, 413: {}, 415: {}},
)
def enrol(
    site_id: str,
    user: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
    worker_id: Annotated[str, Form(min_length=1, max_length=64, pattern=ID_PATTERN)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    photos: Annotated[list[UploadFile], File(description="JPEG photos, one face each")],
    consent_given: Annotated[bool, Form()] = False,
    consent_method: Annotated[str, Form(max_length=64)] = "",
    consent_given_at: Annotated[datetime | None, Form()] = None,
    consent_note: Annotated[str | None, Form(max_length=2000)] = None,
    team: Annotated[str | None, Form(max_length=200)] = None,
    is_party_member: Annotated[bool, Form()] = False,
) -> WorkerOut:
    """Enrol a worker from photos (embeddings computed here, photos not kept); the
    worker's consent is required. Admins and reviewers of the site."""
    consent = workers.Consent(
        given=consent_given, method=consent_method, given_at=consent_given_at, note=consent_note
    )
    workers.check_enrol(db, user=user, site_id=site_id, consent=consent)
    embeddings = workers.embed_photos(_read_photos(photos, settings), limits=media_limits(settings))
    worker = workers.enrol_worker(
        db,
        user=user,
        site_id=site_id,
        worker_id=worker_id,
        fields=workers.WorkerFields(name=name, team=team, is_party_member=is_party_member),
        consent=consent,
        embeddings=embeddings,
    )
    return worker_out(worker)


@router.get("/workers", response_model=list[WorkerOut])
def list_workers(
    user: CurrentUser,
    db: DbSession,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[WorkerOut]:
    return [worker_out(w) for w in workers.list_workers(db, user=user, site_id=site_id)]


@router.patch("/workers/{site_id}/{worker_id}", response_model=WorkerOut, responses=ERRORS)
def update(
    site_id: str, worker_id: str, body: WorkerPatch, user: CurrentUser, db: DbSession
) -> WorkerOut:
    worker = workers.update_worker(
        db, user=user, site_id=site_id, worker_id=worker_id, **body.model_dump()
    )
    return worker_out(worker)


@router.delete("/workers/{site_id}/{worker_id}", response_model=WorkerOut, responses=ERRORS)
def remove(site_id: str, worker_id: str, user: CurrentUser, db: DbSession) -> WorkerOut:
    """Admins: delete the worker's face data now; edge boxes drop it on their next sync."""
    return worker_out(workers.remove_worker(db, user=user, site_id=site_id, worker_id=worker_id))


@router.get("/register", response_model=RegisterOut, responses={401: {}, 403: {}, 422: {}})
def register(
    device: CurrentDevice,
    db: DbSession,
    since_version: Annotated[int, Query(ge=0)] = 0,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
) -> RegisterOut:
    """The device's site register changed since ``since_version`` (0: all of it).

    A device only ever gets its own site's register; naming another site is 403.
    """
    if site_id is not None and site_id != device.site_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"device belongs to site {device.site_id!r}, not {site_id!r}"
        )
    feed = workers.register_feed(db, device=device, since_version=since_version)
    return RegisterOut(
        version=feed.version,
        full=feed.full,
        workers=[
            RegisterWorker(
                worker_id=w.worker_id,
                name=w.name,
                is_party_member=w.is_party_member,
                embeddings=[workers.embedding_values(e) for e in w.embeddings],
            )
            for w in feed.workers
        ],
        removed=feed.removed,
    )
