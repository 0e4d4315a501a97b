"""Read-only queries of the dashboards (issue 18): hazards per day by rule, rectification
and on-time rates per site, overdue hazards ranked by days overdue, party-member (red
helmet) presence per site and day, and a ranking of the sites.

What counts (the page states the same):

* An event counts on the local day of ``tz`` its ``started_at`` falls on, inside the
  chosen days (both included), for the sites the user may see (and the one site
  chosen): the same rows the event list shows for the same site and dates.
* A *hazard* is an event confirmed by a reviewer (review status ``confirmed``); pending
  events are counted apart, and events dismissed as false alarms never count, in any
  chart. Events of the ``person`` rule are sightings, not hazards.
* A *rectification* is the hazard row of a confirmed event (any state: assigned,
  rectified, accepted, rejected); the rectification rate is accepted / assigned, the
  on-time rate is (accepted no later than the deadline) / accepted.
* *Overdue*: a rectification still open (assigned or rejected) past its deadline now,
  as the list's "overdue" filter; days overdue are whole days since the deadline.
* *Party-member presence*: events not dismissed whose person has the role
  ``party_member`` or wears a red helmet, any rule (sightings included); persons are
  distinct worker ids (face matching) or else camera tracks.

Two queries read everything (events, then rectifications); days are counted in Python,
so SQLite and PostgreSQL count the same local days (see ``server.localtime``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from sitewatch.contract.events import RuleKind
from sitewatch.server.db.models import EventRecord, Hazard, HazardStatus, ReviewStatus, User
from sitewatch.server.localtime import day_range, local_day
from sitewatch.server.services.access import site_filter
from sitewatch.server.services.hazards import OPEN_STATES

PARTY_MEMBER_ROLE = "party_member"
RED = "red"
HAZARD_RULES: tuple[str, ...] = tuple(r.value for r in RuleKind if r.is_hazard)
#: Rows of the overdue list shown on the page (the table and CSV have them all).
OVERDUE_SHOWN = 20


@dataclass
class SiteStats:
    """One site over the chosen days."""

    site_id: str
    name: str
    hazards: int = 0
    pending: int = 0
    dismissed: int = 0
    assigned: int = 0
    accepted: int = 0
    on_time: int = 0
    overdue: int = 0
    party_events: int = 0
    party_persons: set[str] = field(default_factory=set)
    hazards_per_day: float = 0.0
    rank: int = 0

    @property
    def rect_rate(self) -> float | None:
        """Accepted rectifications over all rectifications (None when there are none)."""
        return self.accepted / self.assigned if self.assigned else None

    @property
    def on_time_rate(self) -> float | None:
        """Accepted by the deadline over accepted (None when none was accepted)."""
        return self.on_time / self.accepted if self.accepted else None


@dataclass(frozen=True)
class OverdueHazard:
    event_id: str
    site_id: str
    site_name: str
    rule: str
    responsible: str
    deadline: datetime
    started_at: datetime
    overdue_s: float

    @property
    def days(self) -> int:
        """Whole days since the deadline (0: less than a day)."""
        return math.floor(self.overdue_s / 86400)


@dataclass
class Presence:
    events: int = 0
    persons: set[str] = field(default_factory=set)


@dataclass
class Dashboards:
    start: date
    end: date
    days: list[date]
    rules: tuple[str, ...]
    #: confirmed hazards per (day, rule)
    hazards_by_day: dict[tuple[date, str], int]
    pending_by_day: dict[date, int]
    dismissed_by_day: dict[date, int]
    sites: list[SiteStats]  # by name
    overdue: list[OverdueHazard]  # most overdue first
    #: party-member presence per (site id, day)
    presence: dict[tuple[str, date], Presence]

    def hazards_on(self, day: date) -> int:
        return sum(self.hazards_by_day.get((day, r), 0) for r in self.rules)

    @property
    def ranking(self) -> list[SiteStats]:
        """Sites by hazards per day (most first), then rectification rate (lowest
        first, none last), then name."""
        return sorted(self.sites, key=lambda s: s.rank)

    @property
    def presence_sites(self) -> list[SiteStats]:
        """The sites with any party-member presence in the range."""
        seen = {site for site, _day in self.presence}
        return [s for s in self.sites if s.site_id in seen]

    @property
    def totals(self) -> SiteStats:
        total = SiteStats(site_id="", name="")
        for s in self.sites:
            for name in ("hazards", "pending", "dismissed", "assigned", "accepted", "on_time"):
                setattr(total, name, getattr(total, name) + getattr(s, name))
            total.overdue += s.overdue
            total.party_events += s.party_events
            total.party_persons |= {f"{s.site_id}/{p}" for p in s.party_persons}
        total.hazards_per_day = total.hazards / len(self.days) if self.days else 0.0
        return total


def person_key(worker_id: str | None, camera_id: str, track_id: int | None) -> str:
    """A person is a worker id when face matching named one, else a camera's track."""
    if worker_id:
        return f"worker:{worker_id}"
    return f"track:{camera_id}:{track_id}"


def _scope(query: Any, user: User, site: str | None, since: datetime, until: datetime) -> Any:
    query = query.where(
        site_filter(user, EventRecord.site_id),
        EventRecord.started_at >= since,
        EventRecord.started_at < until,
    )
    if site:
        query = query.where(EventRecord.site_id == site)
    return query


def dashboards(
    db: Session,
    *,
    user: User,
    sites: dict[str, str],
    site: str | None,
    start: date,
    end: date,
    now: datetime,
    tz: ZoneInfo,
) -> Dashboards:
    """All five dashboards over the local days ``start`` to ``end`` (both included) of
    ``tz``; ``sites`` are the (id, name) the user may see."""
    since, until = day_range(start, end, tz)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    chosen = {k: v for k, v in sites.items() if not site or k == site}
    stats = {k: SiteStats(site_id=k, name=v) for k, v in chosen.items()}

    def site_stats(site_id: str) -> SiteStats:
        if site_id not in stats:  # a site row the names did not have (should not happen)
            stats[site_id] = SiteStats(site_id=site_id, name=site_id)
        return stats[site_id]

    hazards_by_day: dict[tuple[date, str], int] = {}
    pending_by_day: dict[date, int] = {}
    dismissed_by_day: dict[date, int] = {}
    presence: dict[tuple[str, date], Presence] = {}
    events = select(
        EventRecord.site_id,
        EventRecord.started_at,
        EventRecord.rule,
        EventRecord.review_status,
        EventRecord.role,
        EventRecord.helmet_colour,
        EventRecord.worker_id,
        EventRecord.camera_id,
        EventRecord.track_id,
    )
    events = _scope(events, user, site, since, until).execution_options(yield_per=5000)
    hazard_rules = set(HAZARD_RULES)
    for row in db.execute(events):
        review = ReviewStatus(row.review_status)
        day = local_day(row.started_at, tz)
        entry = site_stats(row.site_id)
        if review == ReviewStatus.DISMISSED:  # a false alarm counts nowhere else
            if row.rule in hazard_rules:
                dismissed_by_day[day] = dismissed_by_day.get(day, 0) + 1
                entry.dismissed += 1
            continue
        if row.rule in hazard_rules:
            if review == ReviewStatus.CONFIRMED:
                key = (day, row.rule)
                hazards_by_day[key] = hazards_by_day.get(key, 0) + 1
                entry.hazards += 1
            else:
                pending_by_day[day] = pending_by_day.get(day, 0) + 1
                entry.pending += 1
        if row.role == PARTY_MEMBER_ROLE or row.helmet_colour == RED:
            seen = presence.setdefault((row.site_id, day), Presence())
            person = person_key(row.worker_id, row.camera_id, row.track_id)
            seen.events += 1
            seen.persons.add(person)
            entry.party_events += 1
            entry.party_persons.add(person)

    rectifications = select(
        EventRecord.event_id,
        EventRecord.site_id,
        EventRecord.started_at,
        EventRecord.rule,
        Hazard.status,
        Hazard.deadline,
        Hazard.decided_at,
        Hazard.responsible,
    ).join(Hazard, Hazard.event_id == EventRecord.event_id)
    rectifications = rectifications.where(EventRecord.review_status == ReviewStatus.CONFIRMED)
    rectifications = _scope(rectifications, user, site, since, until)
    overdue: list[OverdueHazard] = []
    for row in db.execute(rectifications.execution_options(yield_per=5000)):
        entry = site_stats(row.site_id)
        status = HazardStatus(row.status)
        entry.assigned += 1
        if status == HazardStatus.ACCEPTED:
            entry.accepted += 1
            entry.on_time += row.decided_at is not None and row.decided_at <= row.deadline
        elif status in OPEN_STATES and row.deadline < now:
            entry.overdue += 1
            overdue.append(
                OverdueHazard(
                    event_id=str(row.event_id),
                    site_id=row.site_id,
                    site_name=entry.name,
                    rule=row.rule,
                    responsible=row.responsible,
                    deadline=row.deadline,
                    started_at=row.started_at,
                    overdue_s=(now - row.deadline).total_seconds(),
                )
            )
    overdue.sort(key=lambda h: (-h.overdue_s, h.site_name, h.event_id))

    ordered = sorted(stats.values(), key=lambda s: (s.name, s.site_id))
    for entry in ordered:
        entry.hazards_per_day = entry.hazards / len(days)
    ranked = sorted(
        ordered,
        key=lambda s: (
            -s.hazards_per_day,
            s.rect_rate if s.rect_rate is not None else 2.0,
            s.name,
            s.site_id,
        ),
    )
    for number, entry in enumerate(ranked, start=1):
        entry.rank = number
    return Dashboards(
        start=start,
        end=end,
        days=days,
        rules=HAZARD_RULES,
        hazards_by_day=hazards_by_day,
        pending_by_day=pending_by_day,
        dismissed_by_day=dismissed_by_day,
        sites=ordered,
        overdue=overdue,
        presence=presence,
    )
