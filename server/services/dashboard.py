"""Dashboard numbers per site and per day (UTC days of the event's start)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from edge.events import RuleKind
from server.db.models import EventRecord, Hazard, HazardStatus, ReviewStatus, User
from server.db.types import utcnow
from server.services.access import site_filter
from server.services.hazards import OPEN_STATES
from server.services.validation import utc


class DayStats(BaseModel):
    site_id: str
    day: date | None = None  # None in the totals row
    events: int = 0
    events_by_rule: dict[str, int] = Field(default_factory=dict)
    pending: int = 0
    confirmed: int = 0
    dismissed: int = 0
    hazards: int = 0
    hazards_accepted: int = 0
    hazards_overdue: int = 0
    #: Events where a red helmet (a party member) was seen.
    red_helmet_events: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def completion_rate(self) -> float | None:
        """Accepted rectifications over all rectifications (None when there are none)."""
        return self.hazards_accepted / self.hazards if self.hazards else None

    def add(self, other: DayStats) -> None:
        for name in (
            "events",
            "pending",
            "confirmed",
            "dismissed",
            "hazards",
            "hazards_accepted",
            "hazards_overdue",
            "red_helmet_events",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for rule, count in other.events_by_rule.items():
            self.events_by_rule[rule] = self.events_by_rule.get(rule, 0) + count


class Dashboard(BaseModel):
    days: list[DayStats]
    totals: list[DayStats]  # one row per site over the whole range


def _day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _scoped(
    query: Select,
    user: User,
    site_id: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
) -> Select:
    query = query.where(site_filter(user, EventRecord.site_id))
    if site_id is not None:
        query = query.where(EventRecord.site_id == site_id)
    if date_from is not None:
        query = query.where(EventRecord.started_at >= utc(date_from, "date_from"))
    if date_to is not None:
        query = query.where(EventRecord.started_at < utc(date_to, "date_to"))
    return query


def dashboard(
    db: Session,
    *,
    user: User,
    site_id: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    now: datetime | None = None,
) -> Dashboard:
    """Counts per (site, day): events by rule, verdicts, rectifications, red helmets."""
    now = now or utcnow()
    day = func.date(EventRecord.started_at)
    stats: dict[tuple[str, date], DayStats] = defaultdict(lambda: DayStats(site_id=""))
    events = select(
        EventRecord.site_id,
        day,
        EventRecord.rule,
        EventRecord.review_status,
        func.count(),
        func.sum(case((EventRecord.helmet_colour == "red", 1), else_=0)),
    ).group_by(EventRecord.site_id, day, EventRecord.rule, EventRecord.review_status)
    # ``person`` events (a site that turned the rule on) are sightings, not hazards
    events = events.where(EventRecord.rule != RuleKind.PERSON.value)
    for site, raw_day, rule, review, count, red in db.execute(
        _scoped(events, user, site_id, date_from, date_to)
    ):
        row = stats[(site, _day(raw_day))]
        row.events += count
        row.events_by_rule[rule] = row.events_by_rule.get(rule, 0) + count
        review_name = ReviewStatus(review).value
        setattr(row, review_name, getattr(row, review_name) + count)
        row.red_helmet_events += int(red or 0)
    overdue = case((Hazard.status.in_(OPEN_STATES) & (Hazard.deadline < now), 1), else_=0)
    accepted = case((Hazard.status == HazardStatus.ACCEPTED, 1), else_=0)
    hazards = (
        select(EventRecord.site_id, day, func.count(), func.sum(accepted), func.sum(overdue))
        .join(Hazard, Hazard.event_id == EventRecord.event_id)
        .group_by(EventRecord.site_id, day)
    )
    for site, raw_day, count, n_accepted, n_overdue in db.execute(
        _scoped(hazards, user, site_id, date_from, date_to)
    ):
        row = stats[(site, _day(raw_day))]
        row.hazards += count
        row.hazards_accepted += int(n_accepted or 0)
        row.hazards_overdue += int(n_overdue or 0)
    days = []
    totals: dict[str, DayStats] = {}
    for (site, the_day), row in sorted(stats.items()):
        row.site_id, row.day = site, the_day
        days.append(row)
        totals.setdefault(site, DayStats(site_id=site)).add(row)
    return Dashboard(days=days, totals=list(totals.values()))
