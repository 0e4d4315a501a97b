"""Read-only queries of the review pages: the filtered, paged event list, its CSV rows,
the cameras to filter on and the per-site, per-day dashboard.

Every query takes the user and limits itself to the sites that user may see
(``server.services.access.site_filter``). Days are local days of the zone ``tz`` (the
server's ``timezone`` setting): a day runs from local midnight to the next local midnight.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from sitewatch.contract.events import RuleKind, Severity
from sitewatch.server.db.models import EventRecord, Hazard, HazardStatus, ReviewStatus, Site, User
from sitewatch.server.localtime import day_range, day_start, local_day
from sitewatch.server.services.access import site_filter
from sitewatch.server.services.cameras import camera_names
from sitewatch.server.services.events import EventFilter, filtered_query
from sitewatch.server.services.hazards import OPEN_STATES

PAGE_SIZE = 25
MAX_CSV_ROWS = 50_000
OPEN_HAZARD = OPEN_STATES
PARTY_MEMBER_ROLE = "party_member"

#: The status filter: review states, hazard states, and "overdue".
REVIEW_FILTERS = {s.value: s for s in ReviewStatus}
HAZARD_FILTERS = {s.value: s for s in HazardStatus}
STATUS_FILTERS = (*REVIEW_FILTERS, *HAZARD_FILTERS, "overdue")
#: The severity filter's levels, lowest first (the filter keeps this level and above).
SEVERITIES = tuple(s.value for s in sorted(Severity, key=lambda s: s.rank))


class FilterError(ValueError):
    """A filter value from the query string that cannot be used; names the field."""


@dataclass(frozen=True)
class EventFilters:
    site: str | None = None
    camera: str | None = None
    rule: str | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    #: The events' zone name (issue 18).
    zone: str | None = None
    #: Severity "at least" this level (issue 18): ``high`` keeps high and critical.
    severity: str | None = None

    def query_items(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (for paging and CSV links)."""
        items = [
            ("site", self.site),
            ("camera", self.camera),
            ("rule", self.rule),
            ("status", self.status),
            ("date_from", self.date_from.isoformat() if self.date_from else None),
            ("date_to", self.date_to.isoformat() if self.date_to else None),
            ("zone", self.zone),
            ("severity", self.severity),
        ]
        return [(key, value) for key, value in items if value]


def _parse_date(name: str, raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise FilterError(f"{name}: {raw!r} is not a date (YYYY-MM-DD)") from exc
    if not date.min.year < day.year < date.max.year:  # local midnights must exist in UTC
        raise FilterError(f"{name}: {raw!r} is out of range")
    return day


def parse_filters(
    *,
    site: str | None,
    camera: str | None,
    rule: str | None,
    status: str | None,
    date_from: str | None,
    date_to: str | None,
    rules: Collection[str],
    zone: str | None = None,
    severity: str | None = None,
) -> EventFilters:
    """Filters from the query string; empty values mean "any"."""
    if severity and severity not in SEVERITIES:
        raise FilterError(f"severity: unknown severity {severity!r}")
    if zone and len(zone) > 128:
        raise FilterError("zone: longer than 128 characters")
    if rule and rule not in rules:
        raise FilterError(f"rule: unknown rule {rule!r}")
    if status and status not in STATUS_FILTERS:
        raise FilterError(f"status: unknown status {status!r}")
    for name, value in (("site", site), ("camera", camera)):
        if value and len(value) > 64:
            raise FilterError(f"{name}: longer than 64 characters")
    start, end = _parse_date("date_from", date_from), _parse_date("date_to", date_to)
    if start and end and end < start:
        raise FilterError("date_to is before date_from")
    return EventFilters(
        site or None, camera or None, rule or None, status or None, start, end,
        zone=zone or None, severity=severity or None,
    )  # fmt: skip


def _filtered(user: User, filters: EventFilters, now: datetime, tz: ZoneInfo) -> Select[Any]:
    """The core's filtered event query, plus the hazard states and "overdue"; the days
    ``date_from`` to ``date_to`` (both included) are local days of ``tz``."""
    status = filters.status
    core_filter = EventFilter(
        site_id=filters.site,
        camera_id=filters.camera,
        rule=RuleKind(filters.rule) if filters.rule else None,
        review_status=REVIEW_FILTERS.get(status) if status else None,
        date_from=day_start(filters.date_from, tz) if filters.date_from else None,
        date_to=day_start(filters.date_to + timedelta(days=1), tz) if filters.date_to else None,
    )
    query = cast("Select[Any]", filtered_query(user, core_filter))
    if status in HAZARD_FILTERS:
        query = query.join(Hazard, Hazard.event_id == EventRecord.event_id)
        query = query.where(Hazard.status == HAZARD_FILTERS[status])
    elif status == "overdue":
        query = query.join(Hazard, Hazard.event_id == EventRecord.event_id)
        query = query.where(overdue_clause(now))
    if filters.zone:
        query = query.where(EventRecord.zone == filters.zone)
    if filters.severity:
        query = query.where(EventRecord.severity.in_(severities_at_least(filters.severity)))
    return query


def severities_at_least(level: str) -> list[str]:
    """The severity values ranked ``level`` or above."""
    floor = Severity(level).rank
    return [s.value for s in Severity if s.rank >= floor]


def zone_options(db: Session, user: User) -> list[str]:
    """The zone names of the events of the sites ``user`` may see, for the zone filter."""
    query = (
        select(EventRecord.zone)
        .where(site_filter(user, EventRecord.site_id), EventRecord.zone.is_not(None))
        .distinct()
        .order_by(EventRecord.zone)
    )
    return [z for z in db.scalars(query) if z]


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """SQL condition: the event's hazard is still open and past its deadline."""
    return and_(Hazard.status.in_(OPEN_HAZARD), Hazard.deadline < now)


@dataclass
class EventPage:
    rows: list[EventRecord]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


def list_events(
    db: Session,
    *,
    user: User,
    filters: EventFilters,
    page: int,
    now: datetime,
    tz: ZoneInfo,
    page_size: int = PAGE_SIZE,
) -> EventPage:
    """One page of events, newest first."""
    query = _filtered(user, filters, now, tz)
    total = count_events(db, user=user, filters=filters, now=now, tz=tz)
    number = min(max(page, 1), max(1, math.ceil(total / page_size)))
    rows = db.scalars(query.offset((number - 1) * page_size).limit(page_size))
    return EventPage(list(rows), total, number, page_size)


def count_events(
    db: Session, *, user: User, filters: EventFilters, now: datetime, tz: ZoneInfo
) -> int:
    query = _filtered(user, filters, now, tz).order_by(None).subquery()
    return db.scalar(select(func.count()).select_from(query)) or 0


def iter_events_for_csv(
    db: Session, *, user: User, filters: EventFilters, now: datetime, tz: ZoneInfo
) -> Iterator[EventRecord]:
    """All filtered events (up to :data:`MAX_CSV_ROWS`), newest first, fetched in batches."""
    query = _filtered(user, filters, now, tz).limit(MAX_CSV_ROWS).execution_options(yield_per=500)
    rows: Iterator[EventRecord] = iter(db.scalars(query))
    return rows


def visible_sites(db: Session, user: User) -> list[Site]:
    """The sites ``user`` may see, by name."""
    return list(db.scalars(select(Site).where(site_filter(user, Site.id)).order_by(Site.name)))


def cameras_of(db: Session, user: User) -> list[str]:
    """Camera ids that have sent events for the sites ``user`` may see."""
    query = (
        select(EventRecord.camera_id)
        .where(site_filter(user, EventRecord.site_id))
        .distinct()
        .order_by(EventRecord.camera_id)
    )
    return list(db.scalars(query))


def camera_options(db: Session, user: User) -> list[tuple[str, str]]:
    """(camera id, label) of the cameras that have sent events for the sites ``user`` may
    see, for the camera filter: the display name(s) from the camera table (a camera id
    used on two sites may have two), else the id; by label."""
    ids = cameras_of(db, user)
    sites = {s.id for s in visible_sites(db, user)}
    names: dict[str, set[str]] = {}
    for (_site, camera), name in camera_names(db, sites).items():
        names.setdefault(camera, set()).add(name)
    options = [(c, " / ".join(sorted(names[c])) if c in names else c) for c in ids]
    return sorted(options, key=lambda option: (option[1], option[0]))


def site_and_camera_names(
    db: Session, user: User
) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Display names of the sites ``user`` may see and of their cameras."""
    sites = {s.id: s.name for s in visible_sites(db, user)}
    return sites, camera_names(db, set(sites))


@dataclass
class PartyPresence:
    """Red-helmet (party member) presence of one site on one local day."""

    events: int = 0
    persons: set[str] = field(default_factory=set)


def _person_key(row: Any) -> str:
    """A person is a worker id when face matching named one, else a camera's track."""
    if row.worker_id:
        return f"worker:{row.worker_id}"
    return f"track:{row.camera_id}:{row.track_id}"


def party_presence(
    db: Session, *, user: User, site: str | None, start: date, end: date, tz: ZoneInfo
) -> dict[tuple[str, date], PartyPresence]:
    """Events and distinct persons with role ``party_member`` per (site, local day of
    ``tz``), over the local days ``start`` to ``end`` (both included)."""
    since, until = day_range(start, end, tz)
    query = select(
        EventRecord.site_id,
        EventRecord.started_at,
        EventRecord.worker_id,
        EventRecord.camera_id,
        EventRecord.track_id,
    ).where(
        site_filter(user, EventRecord.site_id),
        EventRecord.role == PARTY_MEMBER_ROLE,
        EventRecord.started_at >= since,
        EventRecord.started_at < until,
    )
    if site:
        query = query.where(EventRecord.site_id == site)
    presence: dict[tuple[str, date], PartyPresence] = {}
    for row in db.execute(query):
        key = (row.site_id, local_day(row.started_at, tz))
        entry = presence.setdefault(key, PartyPresence())
        entry.events += 1
        entry.persons.add(_person_key(row))
    return presence
