"""Media of events: device uploads and user downloads.

An upload is checked by size and magic bytes while it is received, then by content
(:mod:`server.media_checks`: images decoded within a pixel limit read from their header,
clips probed as H.264); evidence photos (JPEG, PNG, HEIC) are stored as upright JPEGs,
converted on the server (:data:`CONVERTED_KINDS`). A device upload whose content is bad
keeps its event: the media row records the problem (and no bytes), and the device gets
a 422 saying what is wrong.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from typing import BinaryIO, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sitewatch.server.db.models import (
    DEVICE_MEDIA_KINDS,
    Device,
    EventRecord,
    Media,
    MediaKind,
    User,
)
from sitewatch.server.db.types import utcnow
from sitewatch.server.faults import require_free_space
from sitewatch.server.media import (
    HEIF,
    JPEG,
    MP4,
    PNG,
    ContentKind,
    MediaStore,
    ReceivedFile,
    receive_upload,
)
from sitewatch.server.media_checks import (
    MediaLimits,
    MediaProblem,
    check_clip,
    check_image,
    check_photo,
)
from sitewatch.server.services.errors import Forbidden, NotFound, ServiceError
from sitewatch.server.services.events import get_event
from sitewatch.server.settings import Settings

logger = logging.getLogger(__name__)

#: Content accepted per kind, checked by magic bytes.
ALLOWED_CONTENT: dict[MediaKind, tuple[ContentKind, ...]] = {
    MediaKind.SNAPSHOT: (JPEG,),
    MediaKind.SNAPSHOT_CLEAN: (JPEG,),
    MediaKind.FACE: (JPEG,),
    MediaKind.CLIP: (MP4,),
    # phones' photos; PNG and HEIC are stored converted to JPEG (:func:`receive_media`)
    MediaKind.EVIDENCE: (JPEG, PNG, HEIF),
}
#: Kinds whose photos are stored as upright JPEGs without EXIF (a JPEG only when its
#: EXIF orientation turns it; otherwise it is kept byte for byte).
CONVERTED_KINDS = frozenset({MediaKind.EVIDENCE})
#: Pillow's name of each image kind (the content check decodes with it).
_IMAGE_FORMATS: dict[ContentKind, str] = {JPEG: "JPEG", PNG: "PNG", HEIF: "HEIF"}


class MediaRefused(ServiceError):
    """Media whose content is not what it claims (422) or declares too large a picture
    (413); the message says what is wrong."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def media_limits(settings: Settings | None = None) -> MediaLimits:
    """The content limits of ``settings`` (of the default settings when None)."""
    values = settings if settings is not None else Settings.model_construct()
    return MediaLimits(
        max_pixels=values.max_image_pixels,
        max_side=values.max_image_side,
        max_clip_seconds=values.max_clip_seconds,
    )


def check_received(received: ReceivedFile, limits: MediaLimits, what: str) -> MediaProblem | None:
    """What is wrong with the content of ``received`` (None when nothing is)."""
    try:
        if received.kind == MP4:
            check_clip(received.path, limits=limits, what=what)
        else:
            formats = (_IMAGE_FORMATS[received.kind],)
            check_image(received.path, limits=limits, formats=formats, what=what)
    except MediaProblem as problem:
        return problem
    return None


def max_upload_bytes(settings: Settings, kind: MediaKind) -> int:
    """The size limit of one upload of ``kind`` (from the settings)."""
    return {
        MediaKind.CLIP: settings.max_clip_bytes,
        MediaKind.FACE: settings.max_face_bytes,
        MediaKind.EVIDENCE: settings.max_evidence_bytes,
    }.get(kind, settings.max_snapshot_bytes)


def receive_media(
    source: BinaryIO, *, store: MediaStore, settings: Settings, kind: MediaKind, what: str
) -> ReceivedFile:
    """Park an upload of ``kind`` in the store's staging folder, checked for size (413)
    and content by magic bytes (415), raising MediaError naming ``what``; then check its
    content within the settings' limits: the result travels with the file (``problem``)
    and :func:`store_media` refuses it, recording the problem of a device's upload."""
    # Media may not eat the last of the disk: the reserve keeps events and the database
    # writable (a refused upload is a 507 the box retries later).
    require_free_space(store.staging_dir(), settings.min_free_disk_bytes)
    received = receive_upload(
        source,
        staging_dir=store.staging_dir(),
        max_bytes=max_upload_bytes(settings, kind),
        allowed=ALLOWED_CONTENT[kind],
        what=what,
    )
    try:
        if kind in CONVERTED_KINDS and received.kind != MP4:
            return _as_upright_jpeg(received, media_limits(settings), what)
        problem = check_received(received, media_limits(settings), what)
    except BaseException:
        received.path.unlink(missing_ok=True)
        raise
    return replace(received, checked=True, problem=problem)


def _as_upright_jpeg(received: ReceivedFile, limits: MediaLimits, what: str) -> ReceivedFile:
    """``received`` checked, and converted to an upright JPEG without EXIF unless it is
    a JPEG upright already (:func:`media_checks.check_photo`); the converted file
    replaces the upload (its size, hash and kind are the JPEG's)."""
    target = received.path.with_name(received.path.name.removesuffix(".part") + "-jpg.part")
    try:
        info = check_photo(
            received.path,
            target,
            limits=limits,
            formats=(_IMAGE_FORMATS[received.kind],),
            what=what,
        )
    except MediaProblem as problem:
        target.unlink(missing_ok=True)
        return replace(received, checked=True, problem=problem)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if not info.converted:
        return replace(received, checked=True)
    try:
        digest = hashlib.sha256()
        with target.open("rb") as jpeg:
            while chunk := jpeg.read(1024 * 1024):
                digest.update(chunk)
        size = target.stat().st_size
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    received.path.unlink(missing_ok=True)
    logger.info("%s: %s of %d x %d stored as JPEG", what, info.format, info.width, info.height)
    return replace(
        received,
        path=target,
        size_bytes=size,
        sha256=digest.hexdigest(),
        kind=JPEG,
        checked=True,
        problem=None,
    )


@dataclass(frozen=True)
class StoreResult:
    media: Media
    #: False when the same bytes were already stored (nothing changed).
    changed: bool


def media_key(event: EventRecord, kind: MediaKind, received: ReceivedFile) -> str:
    name = f"{kind.value}-{received.sha256[:16]}.{received.kind.extension}"
    return f"{event.site_id}/{event.event_id}/{name}"


def device_event(db: Session, *, device: Device, event_id: uuid.UUID) -> EventRecord:
    """The event a device uploads media for: 404 if unknown, 403 if another site's or
    another device's (only the device that sent an event adds its media)."""
    event = db.get(EventRecord, event_id)
    if event is None:
        raise NotFound(f"event {event_id} is unknown to the server; send the event first")
    if event.site_id != device.site_id:
        raise Forbidden(f"event {event_id} belongs to another site than device {device.name!r}")
    if event.device_id != device.id:
        raise Forbidden(
            f"event {event_id} was sent by another device; "
            f"device {device.name!r} may not upload its media"
        )
    return event


def store_media(
    db: Session,
    *,
    store: MediaStore,
    event: EventRecord,
    kind: MediaKind,
    received: ReceivedFile,
) -> StoreResult:
    """Move ``received`` into the store and record it; the same bytes again are a no-op.

    Content that is not what it claims (checked here unless :func:`receive_media` did,
    with the default limits then) raises MediaRefused; for a device's media the problem
    is recorded first (the event stays, no bytes are kept). A new version replaces the
    previous file of the same kind, which is deleted only after the database has the new
    one. The staged file never outlives the call: it is moved into the store or removed.
    """
    moved = False
    try:
        problem = received.problem
        if not received.checked:
            problem = check_received(received, media_limits(), f"{kind.value} of {event.event_id}")
        if problem is not None:
            _refuse(db, event=event, kind=kind, received=received, problem=problem)
        existing = _current(db, event.event_id, kind)
        if (
            existing is not None
            and existing.sha256 == received.sha256
            and existing.deleted_at is None
        ):
            return StoreResult(media=existing, changed=False)
        key = media_key(event, kind, received)
        store.put(key, received)
        moved = True
        return _record(
            db, store=store, existing=existing, event=event, kind=kind, received=received, key=key
        )
    finally:
        if not moved:
            received.path.unlink(missing_ok=True)


def _record(
    db: Session,
    *,
    store: MediaStore,
    existing: Media | None,
    event: EventRecord,
    kind: MediaKind,
    received: ReceivedFile,
    key: str,
) -> StoreResult:
    """Record the file just stored under ``key`` (``existing``: the kind's row before)."""
    old_key = existing.stored_name if existing is not None else None
    row = existing or Media(event=event, kind=kind)
    row.stored_name = key
    row.content_type = received.kind.content_type
    row.size_bytes = received.size_bytes
    row.sha256 = received.sha256
    row.created_at = utcnow()
    row.deleted_at = None
    row.problem = None
    db.add(row)
    try:
        db.commit()
    except IntegrityError:  # a concurrent upload of the same kind won; keep its row
        db.rollback()
        winner = _current(db, event.event_id, kind)
        if winner is None or winner.stored_name != key:
            store.delete(key)
        if winner is None:
            raise
        return StoreResult(media=winner, changed=False)
    if old_key and old_key != key:
        store.delete(old_key)
    return StoreResult(media=row, changed=True)


def _refuse(
    db: Session,
    *,
    event: EventRecord,
    kind: MediaKind,
    received: ReceivedFile,
    problem: MediaProblem,
) -> NoReturn:
    """Raise MediaRefused for ``problem``; for a device's media, first record it on the
    media row (no bytes kept) unless a good file of that kind is already stored."""
    if kind not in DEVICE_MEDIA_KINDS:
        raise MediaRefused(problem.reason, problem.status)
    existing = _current(db, event.event_id, kind)
    if existing is not None and existing.deleted_at is None:
        logger.warning(
            "%s; the %s stored before is kept",
            problem.reason,
            kind.value,
            extra={"event_id": str(event.event_id), "site_id": event.site_id},
        )
        raise MediaRefused(
            f"{problem.reason}; the {kind.value} stored before is kept", problem.status
        )
    row = existing or Media(event=event, kind=kind)
    row.stored_name = media_key(event, kind, received)  # nothing is stored under it
    row.content_type = received.kind.content_type
    row.size_bytes = received.size_bytes
    row.sha256 = received.sha256
    row.created_at = row.deleted_at = utcnow()
    row.problem = problem.reason
    db.add(row)
    try:
        db.commit()
    except IntegrityError:  # a concurrent upload of the same kind got its row in first
        db.rollback()
    logger.warning(
        "%s: refused, recorded as a problem of the event",
        problem.reason,
        extra={"event_id": str(event.event_id), "site_id": event.site_id},
    )
    raise MediaRefused(
        f"{problem.reason}; the event is kept, this {kind.value} is not", problem.status
    )


def _current(db: Session, event_id: uuid.UUID, kind: MediaKind) -> Media | None:
    return db.scalar(select(Media).where(Media.event_id == event_id, Media.kind == kind))


def get_media(db: Session, *, user: User, event_id: uuid.UUID, kind: MediaKind) -> Media:
    """A media record ``user`` may download; NotFound if absent or removed by retention."""
    get_event(db, user=user, event_id=event_id)
    media = _current(db, event_id, kind)
    if media is not None and media.problem is not None:
        raise NotFound(f"event {event_id} has no {kind.value}: it was refused ({media.problem})")
    if media is None or media.deleted_at is not None:
        raise NotFound(f"event {event_id} has no {kind.value}")
    return media
