"""The dashboard page: per site and per local day (the server's ``timezone``), from the
core's dashboard service plus the party-member (red helmet role) presence of
:mod:`server.ui.queries`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from sitewatch.contract.events import RuleKind
from sitewatch.server.db.types import utcnow
from sitewatch.server.localtime import day_range, local_day
from sitewatch.server.services.dashboard import dashboard
from sitewatch.server.ui import queries
from sitewatch.server.ui.deps import DbDep, ViewerDep, error_page
from sitewatch.server.ui.rendering import page_zone, render

router = APIRouter()

DEFAULT_DAYS = 14
MAX_DAYS = 366


@dataclass(frozen=True)
class DashboardRow:
    day: date
    site_id: str
    site_name: str
    by_rule: dict[str, int]
    total: int
    confirmed: int
    dismissed: int
    pending: int
    rect_rate: float | None
    overdue: int
    red_helmet_events: int
    party_events: int
    party_persons: int


def _range(date_from: str | None, date_to: str | None, tz: ZoneInfo) -> tuple[date, date]:
    """The chosen local days, by default the last two weeks up to today in ``tz``;
    FilterError names a bad field."""
    filters = queries.parse_filters(
        site=None, camera=None, rule=None, status=None,
        date_from=date_from, date_to=date_to, rules=(),
    )  # fmt: skip
    end = filters.date_to or local_day(utcnow(), tz)
    start = filters.date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    if (end - start).days >= MAX_DAYS:
        raise queries.FilterError(f"date range longer than {MAX_DAYS} days")
    return start, end


@router.get("/dashboard", include_in_schema=False)
def dashboard_page(
    request: Request,
    db: DbDep,
    viewer: ViewerDep,
    site: Annotated[str | None, Query(max_length=64)] = None,
    date_from: Annotated[str | None, Query(max_length=10)] = None,
    date_to: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    tz = page_zone(request)
    try:
        start, end = _range(date_from, date_to, tz)
    except queries.FilterError as exc:
        return error_page(request, viewer, 400, str(exc))
    sites = queries.visible_sites(db, viewer.user)
    names = {s.id: s.name for s in sites}
    since, until = day_range(start, end, tz)
    stats = dashboard(
        db,
        user=viewer.user,
        tz=tz,
        site_id=site or None,
        date_from=since,
        date_to=until,
        now=utcnow(),
    )
    party = queries.party_presence(
        db, user=viewer.user, site=site or None, start=start, end=end, tz=tz
    )
    rows = []
    for day in sorted(stats.days, key=lambda d: (d.day or start, d.site_id), reverse=True):
        presence = party.get((day.site_id, day.day or start), queries.PartyPresence())
        rows.append(
            DashboardRow(
                day=day.day or start,
                site_id=day.site_id,
                site_name=names.get(day.site_id, day.site_id),
                by_rule=day.events_by_rule,
                total=day.events,
                confirmed=day.confirmed,
                dismissed=day.dismissed,
                pending=day.pending,
                rect_rate=day.completion_rate,
                overdue=day.hazards_overdue,
                red_helmet_events=day.red_helmet_events,
                party_events=presence.events,
                party_persons=len(presence.persons),
            )
        )
    context = {
        "days": rows,
        "sites": sites,
        "rules": [r.value for r in RuleKind if r.is_hazard],
        "filters": {"site": site, "date_from": start.isoformat(), "date_to": end.isoformat()},
    }
    return render(
        request, "dashboard.html", context, user=viewer.user, csrf_token=viewer.csrf_token
    )
