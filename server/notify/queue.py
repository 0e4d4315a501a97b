"""The notification queue: rows written with the event, claimed by delivery workers.

A claim moves ``next_attempt_at`` past now by :data:`CLAIM_S` and counts the attempt in
one committed statement, so two workers (threads or server processes) never send one row
at the same time; a worker that dies mid-send leaves the row to be claimed again when the
claim runs out. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` (the channel row locked
too, so the per-channel rate holds across processes); SQLite, whose writers are
serialised, with one conditional UPDATE per row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from sitewatch.contract.events import Severity
from sitewatch.server.db.models import (
    AlertChannel,
    AlertRule,
    EventRecord,
    Notification,
    NotificationStatus,
)
from sitewatch.server.db.session import Database

#: How long a claimed row is left to its worker before another may take it.
CLAIM_S = 120.0
RATE_WINDOW = timedelta(minutes=1)


def _rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return 0


def matching_channels(db: Session, event: EventRecord) -> list[int]:
    """Ids of the enabled channels whose rules match ``event`` (each once)."""
    query = (
        select(AlertRule.channel_id, AlertRule.min_severity)
        .join(AlertChannel, AlertChannel.id == AlertRule.channel_id)
        .where(
            AlertChannel.enabled.is_(True),
            or_(AlertRule.site_id.is_(None), AlertRule.site_id == event.site_id),
            or_(AlertRule.camera_id.is_(None), AlertRule.camera_id == event.camera_id),
            or_(AlertRule.rule.is_(None), AlertRule.rule == event.rule),
        )
    )
    rank = _rank(event.severity)
    return sorted({cid for cid, minimum in db.execute(query) if _rank(minimum) <= rank})


def enqueue(db: Session, event: EventRecord, now: datetime) -> int:
    """Add a pending notification per matching channel to ``db`` (the caller commits it
    with the new event, in one transaction)."""
    channels = matching_channels(db, event)
    for channel_id in channels:
        db.add(
            Notification(
                event_id=event.event_id,
                channel_id=channel_id,
                status=NotificationStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(channels)


@dataclass(frozen=True)
class Claim:
    id: int
    event_id: uuid.UUID
    channel_id: int
    #: The attempt number this claim made: the result is written only if it still is.
    attempt: int


def fail_disabled(db: Session, now: datetime) -> None:
    """Pending rows of disabled channels fail (they would flood the channel when enabled)."""
    disabled = select(AlertChannel.id).where(AlertChannel.enabled.is_(False))
    db.execute(
        update(Notification)
        .where(
            Notification.status == NotificationStatus.PENDING,
            Notification.channel_id.in_(disabled),
        )
        .values(status=NotificationStatus.FAILED, last_error="channel disabled before delivery")
        .execution_options(synchronize_session=False)
    )
    db.commit()


def _due_channels(db: Session, now: datetime) -> list[int]:
    query = (
        select(Notification.channel_id)
        .where(Notification.status == NotificationStatus.PENDING)
        .where(Notification.next_attempt_at <= now)
        .distinct()
    )
    return sorted(db.scalars(query))


def _recent_attempts(db: Session, channel_id: int, now: datetime) -> int:
    query = select(func.count()).where(
        Notification.channel_id == channel_id,
        Notification.last_attempt_at > now - RATE_WINDOW,
    )
    return db.scalar(query) or 0


def _claim_values(now: datetime) -> dict[str, object]:
    return {
        "attempts": Notification.attempts + 1,
        "last_attempt_at": now,
        "next_attempt_at": now + timedelta(seconds=CLAIM_S),
    }


def claim_due(
    database: Database, *, now: datetime, rate_per_minute: int, limit: int
) -> list[Claim]:
    """Claim up to ``limit`` due rows, at most ``rate_per_minute`` attempts per channel in
    any minute; the claims are committed before this returns."""
    with database.session() as db:
        fail_disabled(db, now)
        channels = _due_channels(db, now)
        db.rollback()
    postgres = database.engine.dialect.name == "postgresql"
    claims: list[Claim] = []
    for channel_id in channels:
        room = limit - len(claims)
        if room <= 0:
            break
        with database.session() as db:
            claimed = (_claim_pg if postgres else _claim_sqlite)(
                db, channel_id, now=now, rate=rate_per_minute, room=room
            )
            db.commit()
        claims += claimed
    return claims


def _due(channel_id: int, now: datetime) -> list[ColumnElement[bool]]:
    return [
        Notification.channel_id == channel_id,
        Notification.status == NotificationStatus.PENDING,
        Notification.next_attempt_at <= now,
    ]


def _claim_pg(db: Session, channel_id: int, *, now: datetime, rate: int, room: int) -> list[Claim]:
    locked = db.scalar(
        select(AlertChannel.id)
        .where(AlertChannel.id == channel_id)
        .with_for_update(skip_locked=True)
    )
    if locked is None:  # another process is claiming for this channel right now
        return []
    room = min(room, rate - _recent_attempts(db, channel_id, now))
    if room <= 0:
        return []
    rows = db.execute(
        select(Notification.id, Notification.event_id, Notification.attempts)
        .where(*_due(channel_id, now))
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(room)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    db.execute(
        update(Notification)
        .where(Notification.id.in_([r.id for r in rows]))
        .values(**_claim_values(now))
        .execution_options(synchronize_session=False)
    )
    return [Claim(r.id, r.event_id, channel_id, r.attempts + 1) for r in rows]


def _claim_sqlite(
    db: Session, channel_id: int, *, now: datetime, rate: int, room: int
) -> list[Claim]:
    candidates = db.execute(
        select(Notification.id, Notification.event_id, Notification.attempts)
        .where(*_due(channel_id, now))
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(room)
    ).all()
    recent = (
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.channel_id == channel_id,
            Notification.last_attempt_at > now - RATE_WINDOW,
        )
        .scalar_subquery()
    )
    claims = []
    for row in candidates:
        # One statement: the row is still due and unclaimed, and the channel has room.
        result = db.execute(
            update(Notification)
            .where(
                and_(
                    Notification.id == row.id,
                    Notification.attempts == row.attempts,
                    *_due(channel_id, now),
                    recent < rate,
                )
            )
            .values(**_claim_values(now))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claims.append(Claim(row.id, row.event_id, channel_id, row.attempts + 1))
        db.commit()
    return claims


def finish(
    database: Database,
    claim: Claim,
    *,
    now: datetime,
    ok: bool,
    error: str | None,
    max_attempts: int,
    retry_base_s: float,
    retry_max_s: float,
) -> NotificationStatus | None:
    """Record a claim's result: sent, a retry after a backoff, or failed. None when the
    claim had run out and another worker took the row meanwhile (nothing written)."""
    if ok:
        values: dict[str, object] = {
            "status": NotificationStatus.SENT,
            "sent_at": now,
            "last_error": None,
        }
    elif claim.attempt >= max_attempts:
        values = {"status": NotificationStatus.FAILED, "last_error": error}
    else:
        delay = min(retry_base_s * 2 ** (claim.attempt - 1), retry_max_s)
        values = {"next_attempt_at": now + timedelta(seconds=delay), "last_error": error}
    with database.session() as db:
        result = db.execute(
            update(Notification)
            .where(
                Notification.id == claim.id,
                Notification.attempts == claim.attempt,
                Notification.status == NotificationStatus.PENDING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    status = values.get("status", NotificationStatus.PENDING)
    assert isinstance(status, NotificationStatus)
    return status
