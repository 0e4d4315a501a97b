"""Plain view models for the templates, built from the core's database rows.

Templates see only these dataclasses, never ORM objects, so a page cannot trigger a
lazy load or change a row by accident, and what a page shows is testable without HTML.
"""

from __future__ import annotations

import math
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
    Role,
    Site,
    User,
)
from sitewatch.server.localtime import format_time, local_day
from sitewatch.server.services.hazards import OPEN_STATES, responsible_candidates
from sitewatch.server.ui.i18n import Translator, label


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
    #: The camera's display name from the server's camera table, else its id.
    camera_name: str = ""


def event_rows(
    events: Iterable[EventRecord],
    site_names: dict[str, str],
    now: datetime,
    camera_names: dict[tuple[str, str], str] | None = None,
) -> list[EventRow]:
    cameras = camera_names or {}
    return [
        EventRow(
            id=e.event_id,
            started_at=e.started_at,
            site_id=e.site_id,
            site_name=site_names.get(e.site_id, e.site_id),
            camera_id=e.camera_id,
            camera_name=cameras.get((e.site_id, e.camera_id), e.camera_id),
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
class Candidate:
    """One of the site's users a rectification can be assigned to (issue 18)."""

    id: int
    name: str
    username: str
    role: str


@dataclass(frozen=True)
class Rectification:
    assignee: str
    deadline: datetime
    status: str
    note: str | None
    evidence: list[Evidence]
    review_note: str | None
    #: The account the hazard is assigned to (None: a name without an account).
    responsible_user_id: int | None = None
    #: Its role ("rectifier", "reviewer", "admin"), shown in words after the name.
    responsible_role: str | None = None
    #: Who uploaded the evidence now waiting (None: none yet).
    evidence_by_id: int | None = None
    #: The site's setting: evidence is accepted by another user than its uploader.
    accept_by_other: bool = True


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    by: str
    action: str
    detail: str
    #: The details one by one, put in words by _audit.html (issue 18).
    items: tuple[AuditItem, ...] = ()


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
    site_id: str = ""
    #: The camera's display name from the server's camera table, else its id.
    camera_name: str = ""
    #: What the page draws over the snapshot and the clip (see :func:`overlay_data`).
    overlay: dict[str, Any] = field(default_factory=dict)
    #: The site's users a rectification can be assigned to, rectifiers first (issue 18).
    candidates: list[Candidate] = field(default_factory=list)
    #: When the page was made (the deadline input's earliest day is today, local).
    now: datetime | None = None

    @property
    def can_judge(self) -> bool:
        return self.pending

    @property
    def decided(self) -> bool:
        return self.verdict is not None

    def can_correct(self, user: User | None) -> bool:
        """A verdict once given is changed only by an admin (with a reason)."""
        return user is not None and user.role == Role.ADMIN and self.decided

    def may_submit_evidence(self, user: User | None) -> bool:
        """The evidence form: an open rectification, and reviewers, admins or the
        rectifier it is assigned to."""
        if user is None or not self.can_submit_evidence or self.rectification is None:
            return False
        if user.role in (Role.ADMIN, Role.REVIEWER):
            return True
        return user.role == Role.RECTIFIER and self.rectification.responsible_user_id == user.id

    def own_evidence(self, user: User | None) -> bool:
        """``user`` uploaded the evidence waiting, and the site wants another to accept."""
        r = self.rectification
        return (
            user is not None
            and r is not None
            and r.accept_by_other
            and r.evidence_by_id is not None
            and r.evidence_by_id == user.id
        )

    def may_accept(self, user: User | None) -> bool:
        """The accept button: reviewers and admins, not the uploader (site setting)."""
        return (
            user is not None
            and user.role in (Role.ADMIN, Role.REVIEWER)
            and self.can_review
            and not self.own_evidence(user)
        )

    def min_deadline(self, tz: ZoneInfo) -> str:
        """Today in ``tz`` (YYYY-MM-DD): a deadline is not in the past."""
        now = self.now or datetime.now(tz)
        return local_day(now, tz).isoformat()

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


def _candidates(db: Session, site_id: str) -> list[Candidate]:
    return [
        Candidate(
            id=u.id, name=u.display_name or u.username, username=u.username, role=u.role.value
        )
        for u in responsible_candidates(db, site_id)
    ]


def _rectification(db: Session, event: EventRecord, names: dict[int, str]) -> Rectification | None:
    hazard: Hazard | None = event.hazard
    if hazard is None:
        return None
    person = db.get(User, hazard.responsible_user_id) if hazard.responsible_user_id else None
    site = db.get(Site, event.site_id)
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
        responsible_user_id=hazard.responsible_user_id,
        responsible_role=person.role.value if person is not None else None,
        evidence_by_id=hazard.evidence_by_id if hazard.status == HazardStatus.RECTIFIED else None,
        accept_by_other=site.accept_by_other if site is not None else True,
    )


def event_detail(
    db: Session,
    event: EventRecord,
    *,
    site_name: str,
    audit: list[AuditLine],
    now: datetime,
    camera_name: str | None = None,
    zones: dict[str, Any] | None = None,
) -> EventDetail:
    hazard = event.hazard
    assignable = event.review_status == ReviewStatus.CONFIRMED and hazard is None
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
        rectification=_rectification(db, event, names),
        audit=audit,
        site_id=event.site_id,
        camera_name=camera_name or event.camera_id,
        overlay=overlay_data(event, zones),
        candidates=_candidates(db, event.site_id) if assignable else [],
        now=now,
    )


# -- the drawing over the snapshot and the clip (issue 17) -------------------------------

#: Seconds of the clip before the event's ``started_at``. The server is not told when a
#: clip starts; the box records from ``started_at - clips.pre_s`` (edge/clips.py), and
#: ``pre_s`` is 5 s by default, so clip time = track time + this.
CLIP_PRE_S = 5.0


def _numbers(values: Any, count: int) -> list[float] | None:
    """``count`` finite numbers from a JSON list, else None."""
    if not isinstance(values, list | tuple) or len(values) != count:
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        out.append(float(v))
    return out


def _points(raw: Any) -> list[list[float]]:
    if not isinstance(raw, list):
        return []
    points = [_numbers(p, 2) for p in raw]
    return [p for p in points if p is not None]


def _shapes(zones: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """The restricted zones, edges and posts of a CameraZones JSON (normalised 0..1)."""
    shapes: dict[str, list[dict[str, Any]]] = {"restricted": [], "edges": [], "posts": []}
    if not isinstance(zones, dict):
        return shapes
    for kind, key in (("restricted", "polygon"), ("posts", "polygon"), ("edges", "polyline")):
        for item in zones.get(kind) or []:
            if not isinstance(item, dict):
                continue
            shape: dict[str, Any] = {
                "name": str(item.get("name", "")),
                "points": _points(item.get(key)),
            }
            if kind == "edges":
                shape["danger_distance"] = item.get("danger_distance")
                shape["danger_distance_m"] = item.get("danger_distance_m")
            shapes[kind].append(shape)
    return shapes


def overlay_data(event: EventRecord, zones: dict[str, Any] | None) -> dict[str, Any]:
    """The event's data the page draws in the browser: the person's box at the snapshot
    and over the clip (pixels of ``frame_wh``), the zones it was judged with (normalised)
    and the name of its own zone."""
    track = [box for box in (_numbers(b, 5) for b in event.track_boxes or []) if box]
    track.sort(key=lambda box: box[0])
    frame = _numbers(event.frame_wh, 2)
    return {
        "frame_wh": [int(v) for v in frame] if frame and min(frame) > 0 else None,
        "bbox": _numbers(event.bbox_xyxy, 4),
        "track": track,
        "clip_offset_s": CLIP_PRE_S,
        "zone": event.zone,
        "zones_version": event.zones_version,
        "zones": _shapes(zones),
        "track_id": event.track_id,
    }


# -- numbers and units (issue 18) ---------------------------------------------------------


def rounded(value: float | None, digits: int = 2) -> str:
    """``value`` to ``digits`` decimals without trailing zeros ("1.2", "0.05", "3"); empty
    for none (or a value that is not finite)."""
    if value is None or not math.isfinite(value):
        return ""
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def distance_text(t: Translator, value: float | None, unit: str | None) -> str:
    """A distance in words of the page's language: metres on a calibrated camera
    ("1.2 米"), else a fraction of the picture ("画面比例 0.05"); empty for none. The
    event page (template global ``distance_text``) and the CSV use it."""
    if value is None:
        return ""
    return t("unit.metres" if unit == "m" else "unit.picture", n=rounded(value))


# -- the audit log of an event, in words (issue 18) ----------------------------------------

#: The label group of the values of an audit detail key (``label(group, value)``).
AUDIT_VALUE_GROUPS = {
    "from": "status",
    "to": "status",
    "status": "status",
    "review_status": "status",
    "reason": "reason",
    "kind": "channel_kind",
    "rule": "rule",
    "min_severity": "severity",
    "role": "user_role",
    "language": "lang_name",
}
#: Details never shown (a file's digest says nothing to a reader).
_HIDDEN = frozenset({"sha256"})


@dataclass(frozen=True)
class AuditItem:
    """One detail of an audit entry: its key (label ``audit.key.<key>``), its value
    (a local time, a list already joined) and how the value is put in words: the label
    group of an enum-like value, or "" for a text shown as it is."""

    key: str
    value: str
    group: str = ""


def _readable(value: object, tz: ZoneInfo) -> str:
    """An ISO timestamp as the pages show times (local, with the offset); a list
    joined; anything else as it is."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            return format_time(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    if isinstance(value, list | tuple):
        return ", ".join(_readable(v, tz) for v in value)
    if isinstance(value, float):
        return rounded(value)
    return str(value)


def _changes(value: dict[str, Any], tz: ZoneInfo) -> str:
    """A device's changes after a verdict, ``{"zone": ["A", "B"]}`` -> "zone: A → B"."""
    parts = []
    for name, pair in value.items():
        if isinstance(pair, list) and len(pair) == 2:
            parts.append(f"{name}: {_readable(pair[0], tz)} → {_readable(pair[1], tz)}")
        else:
            parts.append(f"{name}: {_readable(pair, tz)}")
    return "; ".join(parts)


def _detail_items(details: dict[str, Any] | None, tz: ZoneInfo) -> list[AuditItem]:
    """The audit details as (key, value, label group), empty values left out; a nested
    summary (the zones of a save) as ``zones.restricted``... keys."""
    items: list[AuditItem] = []
    for key, value in (details or {}).items():
        if value in (None, "", [], {}) or key in _HIDDEN:
            continue
        if isinstance(value, dict):
            if key == "changed":
                items.append(AuditItem(key, _changes(value, tz)))
            else:
                items.extend(_detail_items({f"{key}.{k}": v for k, v in value.items()}, tz))
        elif isinstance(value, bool):
            items.append(AuditItem(key, "yes" if value else "no", "bool"))
        else:
            items.append(AuditItem(key, _readable(value, tz), AUDIT_VALUE_GROUPS.get(key, "")))
    return items


def _detail_text(details: dict[str, Any] | None, tz: ZoneInfo, t: Translator | None = None) -> str:
    """The audit details as short ``key: value`` text, empty values left out: in words
    of ``t``'s language ("原状态：待审核；新状态：确认隐患"), or the codes without one."""
    items = _detail_items(details, tz)
    if t is None:
        return "; ".join(f"{i.key}: {i.value}" for i in items)
    return t("audit.sep").join(
        t(
            "audit.pair",
            name=label(t, "audit.key", i.key),
            value=label(t, i.group, i.value) if i.group else i.value,
        )
        for i in items
    )


def audit_lines(
    entries: Iterable[AuditEntry], tz: ZoneInfo, t: Translator | None = None
) -> list[AuditLine]:
    """Oldest first, for reading the history of one event top to bottom; times in the
    details shown in ``tz``; the details' words come from the template (``items``, see
    _audit.html), or from ``t`` in ``detail``."""
    ordered = sorted(entries, key=lambda e: (e.at, e.id))
    return [
        AuditLine(
            at=e.at,
            by=e.actor.split(":", 1)[-1],
            action=e.action,
            detail=_detail_text(e.details, tz, t),
            items=tuple(_detail_items(e.details, tz)),
        )
        for e in ordered
    ]
