"""Media of events: device uploads and user downloads."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sitewatch.server.db.models import Device, EventRecord, Media, MediaKind, User
from sitewatch.server.db.types import utcnow
from sitewatch.server.media import JPEG, MP4, ContentKind, MediaStore, ReceivedFile, receive_upload
from sitewatch.server.services.errors import Forbidden, NotFound
from sitewatch.server.services.events import get_event
from sitewatch.server.settings import Settings

logger = logging.getLogger(__name__)

#: Content accepted per kind, checked by magic bytes.
ALLOWED_CONTENT: dict[MediaKind, tuple[ContentKind, ...]] = {
    MediaKind.SNAPSHOT: (JPEG,),
    MediaKind.SNAPSHOT_CLEAN: (JPEG,),
    MediaKind.FACE: (JPEG,),
    MediaKind.CLIP: (MP4,),
    MediaKind.EVIDENCE: (JPEG,),
}


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
    and content by magic bytes (415); raises MediaError naming ``what``."""
    return receive_upload(
        source,
        staging_dir=store.staging_dir(),
        max_bytes=max_upload_bytes(settings, kind),
        allowed=ALLOWED_CONTENT[kind],
        what=what,
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
    """The event a device uploads media for: 404 if unknown, 403 if another site's."""
    event = db.get(EventRecord, event_id)
    if event is None:
        raise NotFound(f"event {event_id} is unknown to the server; send the event first")
    if event.site_id != device.site_id:
        raise Forbidden(f"event {event_id} belongs to another site than device {device.name!r}")
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

    A new version replaces the previous file of the same kind, which is deleted only after
    the database has the new one.
    """
    existing = _current(db, event.event_id, kind)
    if existing is not None and existing.sha256 == received.sha256 and existing.deleted_at is None:
        received.path.unlink(missing_ok=True)
        return StoreResult(media=existing, changed=False)
    key = media_key(event, kind, received)
    store.put(key, received)
    old_key = existing.stored_name if existing is not None else None
    row = existing or Media(event=event, kind=kind)
    row.stored_name = key
    row.content_type = received.kind.content_type
    row.size_bytes = received.size_bytes
    row.sha256 = received.sha256
    row.created_at = utcnow()
    row.deleted_at = None
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


def _current(db: Session, event_id: uuid.UUID, kind: MediaKind) -> Media | None:
    return db.scalar(select(Media).where(Media.event_id == event_id, Media.kind == kind))


def get_media(db: Session, *, user: User, event_id: uuid.UUID, kind: MediaKind) -> Media:
    """A media record ``user`` may download; NotFound if absent or removed by retention."""
    get_event(db, user=user, event_id=event_id)
    media = _current(db, event_id, kind)
    if media is None or media.deleted_at is not None:
        raise NotFound(f"event {event_id} has no {kind.value}")
    return media
