"""Events: upsert from devices, list and filter for users, verdicts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from sitewatch.contract.events import Event, EventPhase, RuleKind, Severity
from sitewatch.server.db.models import (
    Device,
    DismissReason,
    EventRecord,
    EventStatus,
    ReviewStatus,
    Role,
    User,
)
from sitewatch.server.db.types import as_utc, utcnow
from sitewatch.server.notify import queue as notify_queue
from sitewatch.server.notify.queue import AlertPolicy
from sitewatch.server.services import audit
from sitewatch.server.services.access import require_reviewer, require_site, site_filter
from sitewatch.server.services.errors import Conflict, Forbidden, Invalid, NotFound
from sitewatch.server.services.validation import (
    TimeWindow,
    check_event,
    check_event_times,
    text,
    utc,
)

T = TypeVar("T")
_PHASE_RANK = {EventPhase.START.value: 0, EventPhase.UPDATE.value: 1, EventPhase.END.value: 2}
MAX_PAGE_SIZE = 200
#: Loader options for lists of events that show media, hazard and reviewer.
WITH_DETAILS = (
    selectinload(EventRecord.media),
    selectinload(EventRecord.hazard),
    selectinload(EventRecord.reviewed_by),
)


class EventFilter(BaseModel):
    """Filters of the event list (query parameters in the API and the UI)."""

    site_id: str | None = Field(default=None, max_length=64)
    camera_id: str | None = Field(default=None, max_length=64)
    rule: RuleKind | None = None
    severity: Severity | None = None
    status: EventStatus | None = None
    review_status: ReviewStatus | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class UpsertResult:
    event: EventRecord
    created: bool
    #: False when the message was older than what is stored (nothing changed).
    applied: bool


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else as_utc(ts)


def _message_key(
    phase: str, started: datetime, updated: datetime | None, ended: datetime | None
) -> tuple[int, datetime]:
    return (_PHASE_RANK[phase], as_utc(ended or updated or started))


def _apply(row: EventRecord, event: Event) -> None:
    row.camera_id = event.camera_id
    row.rule = event.rule.value
    row.severity = event.severity.value
    row.phase = event.phase.value
    row.status = EventStatus.ENDED if event.phase == EventPhase.END else EventStatus.OPEN
    row.track_id = event.track_id
    row.zone = event.zone
    row.helmet_state = event.helmet_state.value if event.helmet_state else None
    row.helmet_colour = event.helmet_colour.value if event.helmet_colour else None
    row.role = event.role
    row.worker_id = event.worker_id
    row.confidence = event.confidence
    row.started_at = as_utc(event.started_at)
    row.updated_at = _aware(event.updated_at)
    row.ended_at = _aware(event.ended_at)
    row.bbox_xyxy = list(event.bbox_xyxy) if event.bbox_xyxy else None
    row.frame_wh = list(event.frame_wh) if event.frame_wh else None
    row.distance = event.distance
    row.distance_unit = event.distance_unit
    row.message = event.message
    row.zones_version = event.zones_version
    if event.track is not None:  # an update without boxes keeps the ones sent before
        row.track_boxes = [list(box) for box in event.track]


def _is_stale(row: EventRecord, event: Event) -> bool:
    stored = _message_key(row.phase, row.started_at, row.updated_at, row.ended_at)
    incoming = _message_key(event.phase.value, event.started_at, event.updated_at, event.ended_at)
    return incoming < stored


def upsert_event(
    db: Session,
    *,
    event: Event,
    device: Device,
    window: TimeWindow | None = None,
    alerts: AlertPolicy | None = None,
) -> UpsertResult:
    """Create or update an event by its id; re-sending a message changes nothing.

    A message older than the stored state (an ``update`` after the ``end``, or an earlier
    timestamp) is accepted but not applied, so retries out of order are harmless. Only
    the device that created an event may update it, and never its identity (rule,
    camera, track, start); a change after a reviewer's verdict is written to the audit
    log. ``window`` bounds the event's times around the server's clock; ``alerts`` says
    how its alerts are routed and gathered in a storm.
    """
    if event.site_id != device.site_id:
        raise Forbidden(
            f"device {device.name!r} belongs to site {device.site_id!r}, "
            f"not to site {event.site_id!r}"
        )
    check_event(event)
    if window is not None:
        check_event_times(event, window, utcnow())
    row = db.get(EventRecord, event.event_id)
    if row is None:
        now = utcnow()
        row = EventRecord(
            event_id=event.event_id,
            site_id=event.site_id,
            device_id=device.id,
            received_at=now,
            last_received_at=now,
            review_status=ReviewStatus.PENDING,
        )
        _apply(row, event)
        db.add(row)
        try:
            policy = alerts or AlertPolicy()
            notify_queue.enqueue(db, row, now, policy)  # alerts commit with the event, or neither
            db.commit()
            return UpsertResult(event=row, created=True, applied=True)
        except IntegrityError:  # the same event created concurrently: update it instead
            db.rollback()
            row = db.get(EventRecord, event.event_id)
            if row is None:
                raise
    return _update_existing(db, row=row, event=event, device=device)


#: What makes an event this event: fixed once created.
_IDENTITY = ("camera_id", "rule", "track_id", "started_at")
#: What a device may change after a verdict without an audit entry (the hazard goes on
#: or ends; the track's box and score move).
_LIFECYCLE = frozenset(
    {"phase", "status", "updated_at", "ended_at", "bbox_xyxy", "confidence", "distance"}
)


def _identity(row: EventRecord) -> tuple[object, ...]:
    return (row.camera_id, row.rule, row.track_id, as_utc(row.started_at))


def _update_existing(
    db: Session, *, row: EventRecord, event: Event, device: Device
) -> UpsertResult:
    if row.site_id != event.site_id:
        raise Forbidden(f"event {event.event_id} belongs to another site")
    if row.device_id != device.id:
        raise Forbidden(
            f"event {event.event_id} was sent by another device of site {row.site_id!r}; "
            f"device {device.name!r} may not change it"
        )
    incoming = (event.camera_id, event.rule.value, event.track_id, as_utc(event.started_at))
    if incoming != _identity(row):
        changed = [n for n, a, b in zip(_IDENTITY, _identity(row), incoming, strict=True) if a != b]
        raise Conflict(
            f"event {event.event_id}: {', '.join(changed)} cannot change after the event "
            "was created (send a new event id)"
        )
    if _is_stale(row, event):
        if event.track is not None and len(event.track) > len(row.track_boxes or []):
            # The clip's boxes come when the clip is done, often after the end: keep them.
            row.track_boxes = [list(box) for box in event.track]
            row.last_received_at = utcnow()
            db.commit()
        return UpsertResult(event=row, created=False, applied=False)
    before = _snapshot(row)
    _apply(row, event)
    row.last_received_at = utcnow()
    if row.review_status != ReviewStatus.PENDING:
        _audit_after_verdict(db, row=row, device=device, before=before)
    db.commit()
    return UpsertResult(event=row, created=False, applied=True)


_AUDITED_COLUMNS = (
    "severity",
    "phase",
    "status",
    "zone",
    "helmet_state",
    "helmet_colour",
    "role",
    "worker_id",
    "message",
    "updated_at",
    "ended_at",
    "bbox_xyxy",
    "confidence",
    "distance",
    "distance_unit",
    "frame_wh",
)


def _snapshot(row: EventRecord) -> dict[str, object]:
    return {name: getattr(row, name) for name in _AUDITED_COLUMNS}


def _audit_after_verdict(
    db: Session, *, row: EventRecord, device: Device, before: dict[str, object]
) -> None:
    """An audit entry for what a device changed on an event a reviewer has judged,
    unless only the lifecycle moved (updates and the end of a confirmed hazard)."""
    after = _snapshot(row)
    changed = {k: (before[k], after[k]) for k in before if _norm(before[k]) != _norm(after[k])}
    if not changed.keys() - _LIFECYCLE:
        return
    audit.record(
        db,
        actor=device,
        action="event.device_update",
        object_type="event",
        object_id=str(row.event_id),
        site_id=row.site_id,
        details={
            "review_status": row.review_status.value,
            "changed": {k: [_json(a), _json(b)] for k, (a, b) in changed.items()},
        },
    )


def _norm(value: object) -> object:
    return as_utc(value) if isinstance(value, datetime) else value


def _json(value: object) -> object:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value.value if isinstance(value, Enum) else value


def filtered_query(user: User, filters: EventFilter) -> Select[EventRecord]:
    """SELECT of the events ``user`` may see matching ``filters``, newest first."""
    query = select(EventRecord).where(site_filter(user, EventRecord.site_id))
    text(filters.site_id, "site_id")
    text(filters.camera_id, "camera_id")
    conditions = {
        EventRecord.site_id: filters.site_id,
        EventRecord.camera_id: filters.camera_id,
        EventRecord.rule: filters.rule.value if filters.rule else None,
        EventRecord.severity: filters.severity.value if filters.severity else None,
        EventRecord.status: filters.status,
        EventRecord.review_status: filters.review_status,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if filters.date_from is not None:
        query = query.where(EventRecord.started_at >= utc(filters.date_from, "date_from"))
    if filters.date_to is not None:
        query = query.where(EventRecord.started_at < utc(filters.date_to, "date_to"))
    query = query.options(*WITH_DETAILS)
    return query.order_by(EventRecord.started_at.desc(), EventRecord.event_id.desc())


def list_events(
    db: Session, *, user: User, filters: EventFilter, page: int = 1, page_size: int = 50
) -> Page[EventRecord]:
    """One page of events (``page`` counts from 1)."""
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise Invalid(f"page must be >= 1 and page_size within 1..{MAX_PAGE_SIZE}")
    query = filtered_query(user, filters)
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(db.scalars(query.limit(page_size).offset((page - 1) * page_size)))
    return Page(items=items, total=total, page=page, page_size=page_size)


def get_event(db: Session, *, user: User, event_id: uuid.UUID) -> EventRecord:
    """The event if ``user`` may see it; NotFound otherwise (also for other sites)."""
    row = db.get(EventRecord, event_id)
    if row is None:
        raise NotFound(f"event {event_id} not found")
    require_site(user, row.site_id, f"event {event_id}")
    return row


def set_verdict(
    db: Session,
    *,
    user: User,
    event_id: uuid.UUID,
    verdict: ReviewStatus,
    reason: DismissReason | None = None,
    note: str | None = None,
    correction: str | None = None,
) -> EventRecord:
    """Confirm an event as a hazard or dismiss it as a false alarm (with a reason).

    A verdict once given is changed only by an admin, with the reason for the
    correction (audit action ``event.verdict_correct``); a correction away from
    "confirmed" ends the event's rectification, which the audit log keeps."""
    row = get_event(db, user=user, event_id=event_id)
    require_reviewer(user)
    if verdict == ReviewStatus.DISMISSED and reason is None:
        raise Invalid("a dismissed event needs a reason")
    if verdict != ReviewStatus.DISMISSED and reason is not None:
        raise Invalid("only a dismissed event takes a reason")
    previous = row.review_status
    correcting = previous != ReviewStatus.PENDING and (
        verdict != previous or reason != row.dismiss_reason
    )
    correction = text(correction, "correction")
    if correcting:
        if user.role != Role.ADMIN:
            raise Forbidden(
                f"event {event_id} is {previous.value} already: only an admin can correct "
                "a verdict, with a reason"
            )
        if not (correction and correction.strip()):
            raise Invalid("a corrected verdict needs the reason for the correction")
    elif correction:
        raise Invalid("a correction reason goes only with a changed verdict")
    if row.hazard is not None and verdict != ReviewStatus.CONFIRMED:
        if not correcting:
            raise Conflict(f"event {event_id} has a rectification under way; it stays confirmed")
        ended = row.hazard
        audit.record(
            db,
            actor=user,
            action="hazard.removed",
            object_type="hazard",
            object_id=str(event_id),
            site_id=row.site_id,
            details={"status": ended.status.value, "why": correction},
        )
        db.delete(ended)
        row.hazard = None
    row.review_status = verdict
    row.dismiss_reason = reason
    row.review_note = text(note, "note")
    row.reviewed_by = user
    row.reviewed_at = utcnow()
    audit.record(
        db,
        actor=user,
        action="event.verdict_correct" if correcting else "event.verdict",
        object_type="event",
        object_id=str(event_id),
        site_id=row.site_id,
        details={
            "from": previous.value,
            "to": verdict.value,
            "reason": reason.value if reason else None,
            "note": note,
            **({"correction": correction} if correcting else {}),
        },
    )
    db.commit()
    return row
