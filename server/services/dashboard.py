"""Dashboard numbers per site and per day (local days of the event's start in a zone)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from sitewatch.contract.events import RuleKind
from sitewatch.server.db.models import EventRecord, Hazard, HazardStatus, ReviewStatus, User
from sitewatch.server.db.types import utcnow
from sitewatch.server.localtime import local_day
from sitewatch.server.services.access import site_filter
from sitewatch.server.services.hazards import OPEN_STATES
from sitewatch.server.services.validation import utc


class DayStats(BaseModel):
    site_id: str
    day: date | None = None  # a local day of the zone asked for; None in the totals row
    events: int = 0
    events_by_rule: dict[str, int] = Field(default_factory=dict)
    pending: int = 0
    confirmed: int = 0
    dismissed: int = 0
    hazards: int = 0
    hazards_accepted: int = 0
    hazards_overdue: int = 0
    #: Events where a red helmet (a party member) was seen, false alarms left out.
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
    tz: ZoneInfo,
    site_id: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    now: datetime | None = None,
) -> Dashboard:
    """Counts per (site, local day in ``tz``): events by rule, verdicts, rectifications,
    red helmets.

    The rows are read and counted into days here, not grouped by SQL ``date()`` (which
    gives UTC days, and differs between back ends): a local day follows the zone's
    offset on that date, daylight saving included.
    """
    now = now or utcnow()
    stats: dict[tuple[str, date], DayStats] = defaultdict(lambda: DayStats(site_id=""))
    events = select(
        EventRecord.site_id,
        EventRecord.started_at,
        EventRecord.rule,
        EventRecord.review_status,
        EventRecord.helmet_colour,
    )
    # ``person`` events (a site that turned the rule on) are sightings, not hazards
    events = events.where(EventRecord.rule != RuleKind.PERSON.value)
    scoped = _scoped(events, user, site_id, date_from, date_to).execution_options(yield_per=2000)
    for site, started_at, rule, review, colour in db.execute(scoped):
        row = stats[(site, local_day(started_at, tz))]
        row.events += 1
        row.events_by_rule[rule] = row.events_by_rule.get(rule, 0) + 1
        review_name = ReviewStatus(review).value
        setattr(row, review_name, getattr(row, review_name) + 1)
        # a red helmet in a false alarm was no party member on site
        row.red_helmet_events += colour == "red" and review_name != ReviewStatus.DISMISSED.value
    hazards = select(EventRecord.site_id, EventRecord.started_at, Hazard.status, Hazard.deadline)
    hazards = hazards.join(Hazard, Hazard.event_id == EventRecord.event_id)
    scoped = _scoped(hazards, user, site_id, date_from, date_to).execution_options(yield_per=2000)
    for site, started_at, status, deadline in db.execute(scoped):
        row = stats[(site, local_day(started_at, tz))]
        row.hazards += 1
        row.hazards_accepted += status == HazardStatus.ACCEPTED
        row.hazards_overdue += status in OPEN_STATES and deadline < now
    days = []
    totals: dict[str, DayStats] = {}
    for (site, the_day), row in sorted(stats.items()):
        row.site_id, row.day = site, the_day
        days.append(row)
        totals.setdefault(site, DayStats(site_id=site)).add(row)
    return Dashboard(days=days, totals=list(totals.values()))
