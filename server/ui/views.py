"""Plain view models for the templates, built from the core's database rows.

Templates see only these dataclasses, never ORM objects, so a page cannot trigger a
lazy load or change a row by accident, and what a page shows is testable without HTML.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from sitewatch.server.db.models import (
    AuditEntry,
    EventRecord,
    Hazard,
    HazardStatus,
    MediaKind,
    ReviewStatus,
    User,
)
from sitewatch.server.localtime import format_time
from sitewatch.server.services.hazards import OPEN_STATES


def display_status(event: EventRecord) -> str:
    """One status for lists: the hazard's state once there is one, else the verdict."""
    if event.hazard is not None:
        return event.hazard.status.value
    return event.review_status.value


def is_overdue(event: EventRecord, now: datetime) -> bool:
    return event.hazard is not None and event.hazard.is_overdue(now)


@dataclass(frozen=True)
class EventRow:
    id: uuid.UUID
    started_at: datetime
    site_id: str
    site_name: str
    camera_id: str
    rule: str
    severity: str
    status: str
    has_snapshot: bool
    pending: bool
    overdue: bool


def event_rows(
    events: Iterable[EventRecord], site_names: dict[str, str], now: datetime
) -> list[EventRow]:
    return [
        EventRow(
            id=e.event_id,
            started_at=e.started_at,
            site_id=e.site_id,
            site_name=site_names.get(e.site_id, e.site_id),
            camera_id=e.camera_id,
            rule=e.rule,
            severity=e.severity,
            status=display_status(e),
            has_snapshot=e.media_of(MediaKind.SNAPSHOT) is not None,
            pending=e.review_status == ReviewStatus.PENDING,
            overdue=is_overdue(e, now),
        )
        for e in events
    ]


@dataclass(frozen=True)
class Verdict:
    kind: str
    reason: str | None
    note: str | None
    by: str | None
    at: datetime | None


@dataclass(frozen=True)
class Evidence:
    has_photo: bool
    photo_url: str
    note: str | None
    by: str | None
    at: datetime | None


@dataclass(frozen=True)
class Rectification:
    assignee: str
    deadline: datetime
    status: str
    note: str | None
    evidence: list[Evidence]
    review_note: str | None


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    by: str
    action: str
    detail: str


@dataclass(frozen=True)
class EventDetail:
    id: uuid.UUID
    site_name: str
    camera_id: str
    rule: str
    severity: str
    status: str
    pending: bool
    overdue: bool
    started_at: datetime
    ended_at: datetime | None
    track_id: int | None
    helmet_state: str | None
    helmet_colour: str | None
    role: str | None
    worker_id: str | None
    zone: str | None
    confidence: float | None
    distance: float | None
    distance_unit: str | None
    message: str | None
    bbox_xyxy: list[float] | None
    frame_wh: list[int] | None
    has_clip: bool
    has_snapshot: bool
    has_snapshot_clean: bool
    has_face: bool
    verdict: Verdict | None
    rectification: Rectification | None
    audit: list[AuditLine] = field(default_factory=list)

    @property
    def can_judge(self) -> bool:
        return self.pending

    @property
    def can_assign(self) -> bool:
        return self.status == ReviewStatus.CONFIRMED.value and self.rectification is None

    @property
    def can_submit_evidence(self) -> bool:
        return self.rectification is not None and self.status in {s.value for s in OPEN_STATES}

    @property
    def can_review(self) -> bool:
        return self.status == HazardStatus.RECTIFIED.value


def usernames(db: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.execute(select(User.id, User.display_name, User.username).where(User.id.in_(wanted)))
    return {row.id: row.display_name or row.username for row in rows}


def _verdict(event: EventRecord, names: dict[int, str]) -> Verdict | None:
    if event.review_status == ReviewStatus.PENDING:
        return None
    return Verdict(
        kind=event.review_status.value,
        reason=event.dismiss_reason.value if event.dismiss_reason else None,
        note=event.review_note,
        by=names.get(event.reviewed_by_id) if event.reviewed_by_id else None,
        at=event.reviewed_at,
    )


def _rectification(event: EventRecord, names: dict[int, str]) -> Rectification | None:
    hazard: Hazard | None = event.hazard
    if hazard is None:
        return None
    evidence = []
    if hazard.evidence_at is not None:
        evidence.append(
            Evidence(
                has_photo=event.media_of(MediaKind.EVIDENCE) is not None,
                photo_url=f"/ui/events/{event.event_id}/media/evidence",
                note=hazard.evidence_note,
                by=names.get(hazard.evidence_by_id) if hazard.evidence_by_id else None,
                at=hazard.evidence_at,
            )
        )
    return Rectification(
        assignee=hazard.responsible,
        deadline=hazard.deadline,
        status=hazard.status.value,
        note=hazard.note,
        evidence=evidence,
        review_note=hazard.decision_note,
    )


def event_detail(
    db: Session,
    event: EventRecord,
    *,
    site_name: str,
    audit: list[AuditLine],
    now: datetime,
) -> EventDetail:
    hazard = event.hazard
    names = usernames(
        db,
        [
            event.reviewed_by_id,
            hazard.evidence_by_id if hazard else None,
            hazard.decided_by_id if hazard else None,
        ],
    )
    return EventDetail(
        id=event.event_id,
        site_name=site_name,
        camera_id=event.camera_id,
        rule=event.rule,
        severity=event.severity,
        status=display_status(event),
        pending=event.review_status == ReviewStatus.PENDING,
        overdue=is_overdue(event, now),
        started_at=event.started_at,
        ended_at=event.ended_at,
        track_id=event.track_id,
        helmet_state=event.helmet_state,
        helmet_colour=event.helmet_colour,
        role=event.role,
        worker_id=event.worker_id,
        zone=event.zone,
        confidence=event.confidence,
        distance=event.distance,
        distance_unit=event.distance_unit,
        message=event.message,
        bbox_xyxy=event.bbox_xyxy,
        frame_wh=event.frame_wh,
        has_clip=event.media_of(MediaKind.CLIP) is not None,
        has_snapshot=event.media_of(MediaKind.SNAPSHOT) is not None,
        has_snapshot_clean=event.media_of(MediaKind.SNAPSHOT_CLEAN) is not None,
        has_face=event.media_of(MediaKind.FACE) is not None,
        verdict=_verdict(event, names),
        rectification=_rectification(event, names),
        audit=audit,
    )


def _readable(value: object, tz: ZoneInfo) -> str:
    """An ISO timestamp as the pages show times (local, with the offset); anything else
    as it is."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            return format_time(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    return str(value)


def _detail_text(details: dict[str, Any] | None, tz: ZoneInfo) -> str:
    """The audit details as short ``key: value`` text, empty values left out."""
    if not details:
        return ""
    parts = []
    for key, value in details.items():
        if value in (None, "") or key == "sha256":
            continue
        parts.append(f"{key}: {_readable(value, tz)}")
    return "; ".join(parts)


def audit_lines(entries: Iterable[AuditEntry], tz: ZoneInfo) -> list[AuditLine]:
    """Oldest first, for reading the history of one event top to bottom; times in the
    details shown in ``tz``."""
    ordered = sorted(entries, key=lambda e: (e.at, e.id))
    return [
        AuditLine(
            at=e.at,
            by=e.actor.split(":", 1)[-1],
            action=e.action,
            detail=_detail_text(e.details, tz),
        )
        for e in ordered
    ]
