"""Review items (issue 18): the events of one tracked person and one hazard, merged.

Events of the same site, camera, track and rule whose times follow each other within
:data:`GAP_S` seconds (from the latest end so far to the next start) are one review
item. The grouping runs in SQL over the filtered, time-ordered events with window
functions (a running ``MAX`` of the ends before each event, then a running ``SUM`` of
"starts a new item" flags), which SQLite and PostgreSQL both have, so the list is paged
by items, not by events, and only one page of items is loaded. An event without a track
id is an item of its own (nothing says it is the same person).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

from sitewatch.contract.events import Severity
from sitewatch.server.db.models import DismissReason, EventRecord, MediaKind, ReviewStatus, User
from sitewatch.server.services.cameras import camera_names
from sitewatch.server.services.errors import ServiceError
from sitewatch.server.services.events import WITH_DETAILS, get_event, set_verdict
from sitewatch.server.ui import queries, views

logger = logging.getLogger(__name__)

#: Seconds between one event's end (or start, without an end) and the next one's start
#: within which both belong to one item.
GAP_S = 120
PAGE_SIZE = queries.PAGE_SIZE
#: At most this many events change in one bulk post.
MAX_BULK_EVENTS = 2000

_SEVERITY_BY_RANK = {s.rank: s.value for s in Severity}
_KEY = ("site_id", "camera_id", "track_id", "rule")


@dataclass(frozen=True)
class ItemKey:
    """What makes a review item: the events' site, camera, track, rule and the number
    of the burst within them."""

    site_id: str
    camera_id: str
    track_id: int | None
    rule: str
    group: int


@dataclass(frozen=True)
class ReviewItem:
    """One row of the list: the item's events (oldest first) and what the row shows."""

    events: list[views.EventRow]
    #: The event whose snapshot the row shows and the row opens (highest confidence).
    best: views.EventRow
    first_start: datetime
    last_end: datetime
    severity: str
    #: The events' status when they all have the same one, else "mixed".
    status: str
    pending: int
    overdue: bool
    track_id: int | None = None
    zone: str | None = None
    #: The best event has a clip (the queue plays it).
    has_clip: bool = False

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def event_ids(self) -> str:
        """The events' ids, space-separated (the bulk form's value for the item)."""
        return " ".join(str(e.id) for e in self.events)


@dataclass
class ItemPage:
    items: list[ReviewItem]
    #: Items matching the filters (not events).
    total: int
    number: int
    size: int
    #: Events behind ``total``.
    events: int = 0

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


def _seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    """SQL: seconds from ``earlier`` to ``later`` (UTC datetimes) on SQLite or PostgreSQL."""
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _severity_rank(column: Any) -> ColumnElement[int]:
    return case({s.value: s.rank for s in Severity}, value=column, else_=0)


def grouped(
    db: Session,
    *,
    user: User,
    filters: queries.EventFilters,
    now: datetime,
    tz: ZoneInfo,
    gap_s: float = GAP_S,
) -> Subquery:
    """The filtered events, one row each, with the item they belong to (``grp``: the
    number of the item within the events' site, camera, track and rule)."""
    dialect = db.get_bind().dialect.name
    base = queries._filtered(user, filters, now, tz).order_by(None).subquery("ev")
    key = [base.c[name] for name in _KEY]
    end = func.coalesce(base.c.ended_at, base.c.updated_at, base.c.started_at)
    order = [base.c.started_at, base.c.event_id]
    first = select(
        base.c.event_id,
        *key,
        base.c.started_at,
        end.label("end_at"),
        base.c.review_status,
        _severity_rank(base.c.severity).label("sev_rank"),
        func.max(end).over(partition_by=key, order_by=order, rows=(None, -1)).label("prev_end"),
    ).subquery("ev_prev")
    starts_item = case(
        (first.c.track_id.is_(None), 1),
        (first.c.prev_end.is_(None), 1),
        (_seconds(first.c.started_at, first.c.prev_end, dialect) > gap_s, 1),
        else_=0,
    )
    key2 = [first.c[name] for name in _KEY]
    return select(
        first.c.event_id,
        *key2,
        first.c.started_at,
        first.c.end_at,
        first.c.review_status,
        first.c.sev_rank,
        starts_item.label("starts"),
        func.sum(starts_item)
        .over(partition_by=key2, order_by=[first.c.started_at, first.c.event_id])
        .label("grp"),
    ).subquery("ev_items")


def _keys(
    db: Session, events: Subquery, *, offset: int, limit: int, oldest_first: bool
) -> tuple[list[ItemKey], int, int]:
    """One page of item keys, and the number of items and of events (one pass over the
    grouped events; a second one only for a page past the end)."""
    cols = [events.c[name] for name in _KEY]
    latest = func.max(events.c.started_at)
    earliest = func.min(events.c.started_at)
    order = [earliest.asc()] if oldest_first else [latest.desc()]
    query = (
        select(
            *cols,
            events.c.grp,
            func.count().over().label("n_items"),
            func.sum(func.count()).over().label("n_events"),
        )
        .group_by(*cols, events.c.grp)
        .order_by(*order, *cols, events.c.grp)
        .offset(offset)
        .limit(limit)
    )
    rows = list(db.execute(query))
    keys = [ItemKey(r.site_id, r.camera_id, r.track_id, r.rule, int(r.grp)) for r in rows]
    if rows:
        return keys, int(rows[0].n_items), int(rows[0].n_events)
    counts = db.execute(
        select(func.coalesce(func.sum(events.c.starts), 0), func.count()).select_from(events)
    ).one()
    return keys, int(counts[0]), int(counts[1])


def _member_ids(
    db: Session, events: Subquery, keys: Sequence[ItemKey]
) -> dict[ItemKey, list[uuid.UUID]]:
    """The event ids of each item in ``keys``, oldest first."""
    if not keys:
        return {}
    c = events.c
    conditions = [
        and_(
            c.site_id == k.site_id,
            c.camera_id == k.camera_id,
            c.track_id.is_(None) if k.track_id is None else c.track_id == k.track_id,
            c.rule == k.rule,
            c.grp == k.group,
        )
        for k in keys
    ]
    query = (
        select(c.event_id, *[c[name] for name in _KEY], c.grp)
        .where(or_(*conditions))
        .order_by(c.started_at, c.event_id)
    )
    members: dict[ItemKey, list[uuid.UUID]] = {k: [] for k in keys}
    for r in db.execute(query):
        key = ItemKey(r.site_id, r.camera_id, r.track_id, r.rule, int(r.grp))
        if key in members:
            members[key].append(r.event_id)
    return members


def _best(events: Sequence[EventRecord]) -> EventRecord:
    """The event to show: the highest confidence among those with a snapshot (the first
    on a tie), else the highest confidence, else the first."""
    pool = [e for e in events if e.media_of(MediaKind.SNAPSHOT) is not None] or list(events)
    return max(
        enumerate(pool),
        key=lambda pair: (pair[1].confidence if pair[1].confidence is not None else -1.0, -pair[0]),
    )[1]


def _end(event: EventRecord) -> datetime:
    return event.ended_at or event.updated_at or event.started_at


def build_items(
    groups: Iterable[Sequence[EventRecord]],
    site_names: dict[str, str],
    now: datetime,
    cameras: dict[tuple[str, str], str],
) -> list[ReviewItem]:
    items = []
    for events in groups:
        if not events:
            continue
        rows = views.event_rows(events, site_names, now, cameras)
        by_id = {r.id: r for r in rows}
        best = _best(events)
        statuses = {r.status for r in rows}
        worst = max(
            Severity(e.severity).rank if e.severity in _SEVERITY_VALUES else 0 for e in events
        )
        items.append(
            ReviewItem(
                events=rows,
                best=by_id[best.event_id],
                first_start=min(e.started_at for e in events),
                last_end=max(_end(e) for e in events),
                severity=_SEVERITY_BY_RANK[worst],
                status=statuses.pop() if len(statuses) == 1 else "mixed",
                pending=sum(1 for r in rows if r.pending),
                overdue=any(r.overdue for r in rows),
                track_id=events[0].track_id,
                zone=best.zone,
                has_clip=best.media_of(MediaKind.CLIP) is not None,
            )
        )
    return items


_SEVERITY_VALUES = {s.value for s in Severity}


def list_items(
    db: Session,
    *,
    user: User,
    filters: queries.EventFilters,
    page: int,
    now: datetime,
    tz: ZoneInfo,
    page_size: int = PAGE_SIZE,
    oldest_first: bool = False,
    clamp: bool = True,
    gap_s: float = GAP_S,
) -> ItemPage:
    """One page of review items (newest first, or oldest first for the queue); with
    ``clamp`` a page past the end shows the last one."""
    events = grouped(db, user=user, filters=filters, now=now, tz=tz, gap_s=gap_s)
    number = max(page, 1)
    keys, total, count = _keys(
        db, events, offset=(number - 1) * page_size, limit=page_size, oldest_first=oldest_first
    )
    last = max(1, math.ceil(total / page_size))
    if clamp and number > last:
        number = last
        keys, total, count = _keys(
            db, events, offset=(number - 1) * page_size, limit=page_size, oldest_first=oldest_first
        )
    members = _member_ids(db, events, keys)
    wanted = [i for ids in members.values() for i in ids]
    loaded: dict[uuid.UUID, EventRecord] = {}
    if wanted:
        query = select(EventRecord).where(EventRecord.event_id.in_(wanted)).options(*WITH_DETAILS)
        loaded = {e.event_id: e for e in db.scalars(query)}
    groups = [[loaded[i] for i in members[k] if i in loaded] for k in keys]
    sites = {s.id: s.name for s in queries.visible_sites(db, user)}
    cameras = camera_names(db, {k.site_id for k in keys})
    items = build_items(groups, sites, now, cameras)
    return ItemPage(items, total, number, page_size, count)


def pending_filters(filters: queries.EventFilters) -> queries.EventFilters:
    """The queue's filters: the given ones, on events still waiting for a verdict."""
    return dataclasses.replace(filters, status=ReviewStatus.PENDING.value)


# -- bulk verdicts --------------------------------------------------------------------


#: The bulk form's actions.
BULK_ACTIONS = {"confirm": ReviewStatus.CONFIRMED, "dismiss": ReviewStatus.DISMISSED}


class BulkError(ValueError):
    """A bulk form that cannot be used (bad ids, too many, no reason)."""


def parse_items(values: Sequence[str]) -> list[list[uuid.UUID]]:
    """The items of a bulk form: each value is an item's event ids, space-separated."""
    items: list[list[uuid.UUID]] = []
    total = 0
    for value in values:
        try:
            ids = [uuid.UUID(part) for part in value.replace(",", " ").split()]
        except ValueError as exc:
            raise BulkError(f"not an event id in {value[:80]!r}") from exc
        total += len(ids)
        if total > MAX_BULK_EVENTS:
            raise BulkError(f"at most {MAX_BULK_EVENTS} events at once")
        if ids:
            items.append(ids)
    if not items:
        raise BulkError("no item selected")
    return items


@dataclass
class BulkResult:
    #: Items of which at least one event got the verdict.
    items: int = 0
    #: Events that got the verdict.
    events: int = 0
    #: Events left as they were: they had a verdict already (not corrected here).
    unchanged: int = 0
    #: Events the services refused (not found, not allowed, a rectification under way).
    refused: list[str] = field(default_factory=list)


def apply_verdict(
    db: Session,
    *,
    user: User,
    items: Sequence[Sequence[uuid.UUID]],
    verdict: ReviewStatus,
    reason: DismissReason | None = None,
) -> BulkResult:
    """``set_verdict`` for every pending event of every item, one call per event; events
    with a verdict already are skipped, refusals collected."""
    result = BulkResult()
    for ids in items:
        changed = 0
        for event_id in ids:
            try:
                row = get_event(db, user=user, event_id=event_id)
            except ServiceError as exc:
                result.refused.append(exc.message)
                continue
            if row.review_status != ReviewStatus.PENDING:
                result.unchanged += 1
                continue
            try:
                set_verdict(db, user=user, event_id=event_id, verdict=verdict, reason=reason)
            except ServiceError as exc:
                db.rollback()
                logger.info(
                    "bulk verdict on %s refused for %s: %s", event_id, user.username, exc.message
                )
                result.refused.append(exc.message)
                continue
            changed += 1
        result.events += changed
        result.items += 1 if changed else 0
    return result


def query_of(filters: queries.EventFilters, **extra: str | int) -> str:
    """The filters as a query string, plus ``extra`` pairs."""
    return urlencode([*filters.query_items(), *((k, str(v)) for k, v in extra.items())])
