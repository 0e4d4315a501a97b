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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from sitewatch.server.db.models import (
    AlertChannel,
    EventRecord,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from sitewatch.server.db.session import Database
from sitewatch.server.notify import routing

#: How long a claimed row is left to its worker before another may take it (by default;
#: the ``alert_claim_s`` setting): longer than a send can take.
CLAIM_S = 120.0
RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class AlertPolicy:
    """The settings that shape what is queued (from :class:`Settings`)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    #: More than this many alerts of one site and rule to one channel within
    #: ``digest_window`` and the next ones wait for one digest; 0 never digests.
    digest_after: int = 5
    digest_window: timedelta = timedelta(minutes=10)
    #: A hazard's responsible person is reminded this long before its deadline (at most
    #: half the time it was given).
    remind_before: timedelta = timedelta(hours=2)


def _recent_alerts(db: Session, channel_id: int, event: EventRecord, since: datetime) -> int:
    query = (
        select(func.count())
        .select_from(Notification)
        .join(EventRecord, EventRecord.event_id == Notification.event_id)
        .where(
            Notification.channel_id == channel_id,
            Notification.kind == NotificationKind.EVENT,
            Notification.created_at > since,
            EventRecord.site_id == event.site_id,
            EventRecord.rule == event.rule,
        )
    )
    return db.scalar(query) or 0


def _digest_prefix(event: EventRecord) -> str:
    return f"digest:{event.site_id}:{event.rule}:"


def _open_digest(
    db: Session, channel_id: int, event: EventRecord, now: datetime, window: timedelta
) -> Notification:
    """The channel's digest of this site and rule still collecting, or a new one that goes
    out when the window after its first alert closes."""
    prefix = _digest_prefix(event)
    digest = db.scalar(
        select(Notification)
        .where(
            Notification.channel_id == channel_id,
            Notification.kind == NotificationKind.DIGEST,
            Notification.status == NotificationStatus.PENDING,
            Notification.attempts == 0,
            Notification.dedupe_key.startswith(prefix, autoescape=True),
        )
        .order_by(Notification.id)
        .limit(1)
    )
    if digest is not None:
        return digest
    digest = Notification(
        kind=NotificationKind.DIGEST,
        channel_id=channel_id,
        status=NotificationStatus.PENDING,
        attempts=0,
        next_attempt_at=now + window,
        created_at=now,
        dedupe_key=f"{prefix}{now.isoformat()}",
        payload={
            "site_id": event.site_id,
            "rule": event.rule,
            "camera_id": event.camera_id,
            "window_s": window.total_seconds(),
        },
    )
    db.add(digest)
    db.flush()
    return digest


def enqueue(db: Session, event: EventRecord, now: datetime, policy: AlertPolicy) -> int:
    """Add an alert per matching channel to ``db`` (the caller commits it with the new
    event, in one transaction); in a storm the alert joins the channel's digest."""
    channels = routing.event_channels(db, event, policy.zone)
    for channel_id in channels:
        row = Notification(
            kind=NotificationKind.EVENT,
            event_id=event.event_id,
            channel_id=channel_id,
            status=NotificationStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        since = now - policy.digest_window
        if policy.digest_after and _recent_alerts(db, channel_id, event, since) >= (
            policy.digest_after
        ):
            digest = _open_digest(db, channel_id, event, now, policy.digest_window)
            row.status, row.digest_id = NotificationStatus.DIGESTED, digest.id
        db.add(row)
    return len(channels)


def enqueue_loop(
    db: Session,
    *,
    kind: NotificationKind,
    event: routing.Subject,
    hazard_id: int | None,
    at: datetime,
    now: datetime,
    policy: AlertPolicy,
    key: str,
    payload: dict[str, object],
) -> int:
    """Queue a hazard-loop (or camera) message due at ``at`` (later in a rule's quiet
    hours) to each matching channel, once per ``key``; the caller commits."""
    escalate = kind == NotificationKind.HAZARD_OVERDUE
    due = routing.loop_channels(db, event, policy.zone, at, escalation=escalate)
    added = 0
    for channel_id, when in due.items():
        exists = db.scalar(
            select(Notification.id).where(
                Notification.channel_id == channel_id, Notification.dedupe_key == key
            )
        )
        if exists is not None:
            continue
        db.add(
            Notification(
                kind=kind,
                hazard_id=hazard_id,
                channel_id=channel_id,
                status=NotificationStatus.PENDING,
                attempts=0,
                next_attempt_at=when,
                created_at=now,
                dedupe_key=key,
                payload=payload,
            )
        )
        added += 1
    return added


@dataclass(frozen=True)
class Claim:
    id: int
    event_id: uuid.UUID | None
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


def _claim_values(now: datetime, claim_s: float) -> dict[str, object]:
    return {
        "attempts": Notification.attempts + 1,
        "last_attempt_at": now,
        "next_attempt_at": now + timedelta(seconds=claim_s),
    }


def claim_due(
    database: Database,
    *,
    now: datetime,
    rate_per_minute: int,
    limit: int,
    claim_s: float = CLAIM_S,
) -> list[Claim]:
    """Claim up to ``limit`` due rows, at most ``rate_per_minute`` attempts per channel in
    any minute, each for ``claim_s``; the claims are committed before this returns."""
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
                db, channel_id, now=now, rate=rate_per_minute, room=room, claim_s=claim_s
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


def _claim_pg(
    db: Session, channel_id: int, *, now: datetime, rate: int, room: int, claim_s: float
) -> list[Claim]:
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
        .values(**_claim_values(now, claim_s))
        .execution_options(synchronize_session=False)
    )
    return [Claim(r.id, r.event_id, channel_id, r.attempts + 1) for r in rows]


def _claim_sqlite(
    db: Session, channel_id: int, *, now: datetime, rate: int, room: int, claim_s: float
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
            .values(**_claim_values(now, claim_s))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claims.append(Claim(row.id, row.event_id, channel_id, row.attempts + 1))
        db.commit()
    return claims


def _held(claim: Claim) -> list[ColumnElement[bool]]:
    """The row is still pending under this claim (no other worker took it since)."""
    return [
        Notification.id == claim.id,
        Notification.attempts == claim.attempt,
        Notification.status == NotificationStatus.PENDING,
    ]


def release(database: Database, claims: list[Claim], *, now: datetime) -> int:
    """Hand unsent claims back: due now, the attempt not counted (still ours only)."""
    released = 0
    with database.session() as db:
        for claim in claims:
            result = db.execute(
                update(Notification)
                .where(*_held(claim))
                .values(attempts=claim.attempt - 1, next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
            released += result.rowcount  # type: ignore[attr-defined]
        db.commit()
    return released


def finish(
    database: Database,
    claim: Claim,
    *,
    now: datetime,
    ok: bool,
    error: str | None,
    cancelled: bool = False,
    max_attempts: int,
    retry_base_s: float,
    retry_max_s: float,
) -> NotificationStatus | None:
    """Record a claim's result: sent, cancelled, a retry after a backoff, or failed. None when the
    claim had run out and another worker took the row meanwhile (nothing written)."""
    if cancelled:
        values: dict[str, object] = {"status": NotificationStatus.CANCELLED, "last_error": error}
    elif ok:
        values = {
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
            .where(*_held(claim))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    status = values.get("status", NotificationStatus.PENDING)
    assert isinstance(status, NotificationStatus)
    return status
