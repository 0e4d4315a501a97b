"""Retention: delete the media of dismissed events after N days, keep the records.

The server runs no background jobs: retention (and face retention) run from
``sitewatch server retention``, e.g. daily from cron or a systemd timer, whatever the
number of worker processes. Runs may overlap: on PostgreSQL each takes the rows it
works on with ``FOR UPDATE SKIP LOCKED``, so two runs split the work instead of doing
it twice; anywhere, a second pass over the same media finds them done (``deleted_at``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sitewatch.server.db.models import EventRecord, Media, MediaKind, ReviewStatus
from sitewatch.server.db.types import as_utc, utcnow
from sitewatch.server.media import MediaStore
from sitewatch.server.services import audit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    events: int
    files_deleted: int
    bytes_freed: int


def apply_retention(
    db: Session, *, store: MediaStore, days: int, now: datetime | None = None
) -> RetentionReport:
    """Remove media files of events dismissed and started more than ``days`` ago."""
    if days < 1:
        raise ValueError(f"retention days must be >= 1, got {days}")
    cutoff = as_utc(now or utcnow()) - timedelta(days=days)
    query = (
        select(Media)
        .join(EventRecord, EventRecord.event_id == Media.event_id)
        .where(
            EventRecord.review_status == ReviewStatus.DISMISSED,
            EventRecord.started_at < cutoff,
            Media.deleted_at.is_(None),
            Media.kind != MediaKind.EVIDENCE,
        )
        .with_for_update(of=Media, skip_locked=True)  # no-op on SQLite
    )
    events: set[object] = set()
    files = freed = 0
    deleted_at = utcnow()
    for media in db.scalars(query):
        if store.delete(media.stored_name):
            files += 1
            freed += media.size_bytes
        media.deleted_at = deleted_at
        events.add(media.event_id)
    report = RetentionReport(
        cutoff=cutoff, events=len(events), files_deleted=files, bytes_freed=freed
    )
    audit.record(
        db,
        actor=None,
        action="retention.run",
        object_type="media",
        object_id="*",
        details={
            "cutoff": cutoff.isoformat(),
            "events": report.events,
            "files_deleted": files,
            "bytes_freed": freed,
        },
    )
    db.commit()
    logger.info("retention: %d file(s) of %d event(s) deleted, %d bytes", files, len(events), freed)
    return report
