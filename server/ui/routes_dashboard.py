"""The dashboards (issue 18): for a company or a city bureau with many sites, over local
days of the server's ``timezone`` and one or all sites: hazards per day by rule,
rectification and on-time rates per site, overdue hazards ranked by days overdue,
party-member (red helmet) presence per site and day, and a ranking of the sites.

Each dashboard is an SVG chart drawn here (:mod:`server.ui.charts`), a table built from
the same :class:`Table` and a CSV of that table (``/ui/dashboard.csv?chart=...``: UTF-8
with a BOM, headers in the page's language). What counts is in
:mod:`server.ui.dashboard_queries` and stated on the page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from markupsafe import Markup
from starlette.responses import Response

from sitewatch.server.db.types import utcnow
from sitewatch.server.localtime import format_time, local_day
from sitewatch.server.ui import charts, queries
from sitewatch.server.ui.dashboard_queries import OVERDUE_SHOWN, Dashboards, dashboards
from sitewatch.server.ui.deps import DbDep, ViewerDep, error_page
from sitewatch.server.ui.i18n import Translator, label, request_lang, translator
from sitewatch.server.ui.rendering import page_zone, render

router = APIRouter()

DEFAULT_DAYS = 14
MAX_DAYS = 366
CHARTS = ("daily", "rates", "overdue", "party", "ranking")
#: Rows of the overdue table on the page (the CSV and the list's "overdue" have all).
OVERDUE_TABLE = 100
#: Leading characters that make a spreadsheet read a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None
    num: bool = False


@dataclass
class Table:
    """One dashboard's numbers: the page's table and its CSV."""

    headers: list[str]
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)  # (row key, cells)
    foot: list[Cell] | None = None
    #: Rows the page shows (the CSV has them all); None: all.
    page_limit: int | None = None

    @property
    def page_rows(self) -> list[tuple[str, list[Cell]]]:
        return self.rows if self.page_limit is None else self.rows[: self.page_limit]


@dataclass
class Panel:
    name: str
    title: str
    chart: Markup
    table: Table
    note: str = ""
    definition: str = ""


def _range(date_from: str | None, date_to: str | None, tz: ZoneInfo) -> tuple[date, date]:
    """The chosen local days, by default the last two weeks up to today in ``tz``;
    FilterError names a bad field."""
    filters = queries.parse_filters(
        site=None, camera=None, rule=None, status=None,
        date_from=date_from, date_to=date_to, rules=(),
    )  # fmt: skip
    end = filters.date_to or local_day(utcnow(), tz)
    start = filters.date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise queries.FilterError("date_from is after date_to")
    if (end - start).days >= MAX_DAYS:
        raise queries.FilterError(f"date range longer than {MAX_DAYS} days")
    return start, end


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _n(value: float) -> Cell:
    return Cell(str(value) if isinstance(value, int) else f"{value:.2f}", num=True)


def _event_href(event_id: str) -> str:
    return f"/ui/events/{event_id}"


def _daily(data: Dashboards, t: Translator, rule_label: Callable[[str], str]) -> Panel:
    columns = []
    table = Table(
        headers=[
            t("dash.day"),
            *(rule_label(r) for r in data.rules),
            t("dash18.hazards"),
            t("dash.pending"),
            t("dash.false_alarms"),
        ]
    )
    for day in data.days:
        values = [data.hazards_by_day.get((day, r), 0) for r in data.rules]
        segments = [
            charts.Segment(
                key=rule,
                value=value,
                title=f"{day.isoformat()} · {rule_label(rule)}: {value}",
                css=f"s{number}",
            )
            for number, (rule, value) in enumerate(zip(data.rules, values, strict=True))
        ]
        columns.append(charts.Column(key=day.isoformat(), label=day.strftime("%m-%d"),
                                     segments=segments))  # fmt: skip
        pending, dismissed = data.pending_by_day.get(day, 0), data.dismissed_by_day.get(day, 0)
        table.rows.append(
            (
                day.isoformat(),
                [Cell(day.isoformat()), *map(_n, values), _n(sum(values)), _n(pending),
                 _n(dismissed)],
            )
        )  # fmt: skip
    totals = [sum(data.hazards_by_day.get((d, r), 0) for d in data.days) for r in data.rules]
    table.foot = [
        Cell(t("dash.total")),
        *map(_n, totals),
        _n(sum(totals)),
        _n(sum(data.pending_by_day.values())),
        _n(sum(data.dismissed_by_day.values())),
    ]
    title = t("dash18.daily")
    return Panel("daily", title, charts.stacked_columns("chart-daily", title, columns), table)


def _rates(data: Dashboards, t: Translator) -> Panel:
    rows: list[charts.Column] = []
    table = Table(
        headers=[
            t("col.site"),
            t("dash18.hazards"),
            t("dash18.assigned"),
            t("dash18.accepted"),
            t("dash.rect_rate"),
            t("dash18.on_time"),
            t("dash18.on_time_rate"),
        ]
    )
    for s in data.sites:
        rect = f"{t('dash.rect_rate')}: {_pct(s.rect_rate)} ({s.accepted}/{s.assigned})"
        on_time = f"{t('dash18.on_time_rate')}: {_pct(s.on_time_rate)} ({s.on_time}/{s.accepted})"
        rows.append(
            charts.Column(
                key=s.site_id,
                label=s.name,
                segments=[
                    charts.Segment("rect_rate", s.rect_rate or 0.0, f"{s.name} · {rect}",
                                   "s0", _pct(s.rect_rate)),
                    charts.Segment("on_time_rate", s.on_time_rate or 0.0,
                                   f"{s.name} · {on_time}", "s1", _pct(s.on_time_rate)),
                ],
            )
        )  # fmt: skip
        table.rows.append(
            (
                s.site_id,
                [Cell(s.name), _n(s.hazards), _n(s.assigned), _n(s.accepted),
                 Cell(_pct(s.rect_rate), num=True), _n(s.on_time),
                 Cell(_pct(s.on_time_rate), num=True)],
            )
        )  # fmt: skip
    total = data.totals
    table.foot = [
        Cell(t("dash.total")), _n(total.hazards), _n(total.assigned), _n(total.accepted),
        Cell(_pct(total.rect_rate), num=True), _n(total.on_time),
        Cell(_pct(total.on_time_rate), num=True),
    ]  # fmt: skip
    title = t("dash18.rates")
    chart = charts.horizontal_bars("chart-rates", title, rows, max_value=1.0)
    return Panel("rates", title, chart, table)


def _overdue(
    data: Dashboards, t: Translator, rule_label: Callable[[str], str], tz: ZoneInfo
) -> Panel:
    rows: list[charts.Column] = []
    table = Table(
        headers=[
            t("dash18.rank"),
            t("dash18.days_overdue"),
            t("col.site"),
            t("col.rule"),
            t("dash18.responsible"),
            t("dash18.deadline"),
            t("col.time"),
            t("dash18.event"),
        ]
    )
    for number, h in enumerate(data.overdue, start=1):
        href = _event_href(h.event_id)
        if number <= OVERDUE_SHOWN:
            text = t("dash18.n_days", n=h.days)
            rows.append(
                charts.Column(
                    key=h.event_id,
                    label=f"{h.site_name} · {rule_label(h.rule)}",
                    href=href,
                    segments=[charts.Segment(
                        "days", h.overdue_s / 86400,
                        f"{h.site_name} · {rule_label(h.rule)} · {h.responsible}: {text}",
                        "s3", text,
                    )],
                )
            )  # fmt: skip
        table.rows.append(
            (
                h.event_id,
                [_n(number), _n(h.days), Cell(h.site_name), Cell(rule_label(h.rule), href),
                 Cell(h.responsible), Cell(format_time(h.deadline, tz)),
                 Cell(format_time(h.started_at, tz)), Cell(h.event_id, href)],
            )
        )  # fmt: skip
    title = t("dash18.overdue")
    note = t("dash18.overdue_shown", n=OVERDUE_SHOWN) if len(data.overdue) > OVERDUE_SHOWN else ""
    if len(data.overdue) > OVERDUE_TABLE:
        table.page_limit = OVERDUE_TABLE
        note += " " + t("dash18.overdue_table", n=OVERDUE_TABLE, total=len(data.overdue))
    chart = charts.horizontal_bars("chart-overdue", title, rows)
    return Panel("overdue", title, chart, table, note)


def _party(data: Dashboards, t: Translator) -> Panel:
    table = Table(
        headers=[t("col.site"), t("dash.day"), t("dash.party_events"), t("dash.party_persons")]
    )
    names = {s.site_id: s.name for s in data.sites}
    cells = {}
    for (site_id, day), seen in sorted(data.presence.items(), key=lambda i: (i[0][1], i[0][0])):
        name = names.get(site_id, site_id)
        persons = len(seen.persons)
        title = f"{name} · {day.isoformat()}: " + t(
            "dash18.presence_cell", events=seen.events, persons=persons
        )
        cells[(site_id, day.isoformat())] = charts.Cell(persons, title)
        table.rows.append(
            (
                f"{site_id}|{day.isoformat()}",
                [Cell(name), Cell(day.isoformat()), _n(seen.events), _n(persons)],
            )
        )
    total = data.totals
    table.foot = [Cell(t("dash.total")), Cell(""), _n(total.party_events),
                  _n(len(total.party_persons))]  # fmt: skip
    title = t("dash18.party")
    chart = charts.heat_grid(
        "chart-party",
        title,
        [(s.site_id, s.name) for s in data.presence_sites],
        [(d.isoformat(), d.strftime("%m-%d")) for d in data.days],
        cells,
    )
    return Panel("party", title, chart, table)


def _ranking(data: Dashboards, t: Translator) -> Panel:
    rows: list[charts.Column] = []
    table = Table(
        headers=[
            t("dash18.rank"),
            t("col.site"),
            t("dash18.hazards"),
            t("dash18.per_day"),
            t("dash.pending"),
            t("dash.false_alarms"),
            t("dash.rect_rate"),
            t("dash18.on_time_rate"),
            t("dash.overdue"),
        ]
    )
    for s in data.ranking:
        text = t("dash18.per_day_value", n=f"{s.hazards_per_day:.2f}")
        rows.append(
            charts.Column(
                key=s.site_id,
                label=f"{s.rank}. {s.name}",
                segments=[charts.Segment(
                    "per_day", s.hazards_per_day,
                    f"{s.rank}. {s.name}: {text} · {t('dash.rect_rate')} {_pct(s.rect_rate)}",
                    "s2", text,
                )],
            )
        )  # fmt: skip
        table.rows.append(
            (
                s.site_id,
                [_n(s.rank), Cell(s.name), _n(s.hazards), _n(s.hazards_per_day), _n(s.pending),
                 _n(s.dismissed), Cell(_pct(s.rect_rate), num=True),
                 Cell(_pct(s.on_time_rate), num=True), _n(s.overdue)],
            )
        )  # fmt: skip
    title = t("dash18.ranking")
    return Panel("ranking", title, charts.horizontal_bars("chart-ranking", title, rows), table)


def _load(
    request: Request, db: Any, viewer: Any, site: str | None, start: date, end: date
) -> tuple[Dashboards, list[Any]]:
    sites = queries.visible_sites(db, viewer.user)
    data = dashboards(
        db,
        user=viewer.user,
        sites={s.id: s.name for s in sites},
        site=site or None,
        start=start,
        end=end,
        now=utcnow(),
        tz=page_zone(request),
    )
    return data, sites


def _panels(request: Request, data: Dashboards) -> list[Panel]:
    t = translator(request_lang(request))

    def rule_label(rule: str) -> str:
        return label(t, "rule", rule)

    tz = page_zone(request)
    panels = [
        _daily(data, t, rule_label),
        _rates(data, t),
        _overdue(data, t, rule_label, tz),
        _party(data, t),
        _ranking(data, t),
    ]
    for panel in panels:
        panel.definition = t(f"dash18.panel_{panel.name}")
    return panels


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
    data, sites = _load(request, db, viewer, site, start, end)
    filter_items = [("site", site or ""), ("date_from", start.isoformat()),
                    ("date_to", end.isoformat())]  # fmt: skip
    list_query = urlencode([(k, v) for k, v in filter_items if v])
    context = {
        "data": data,
        "panels": _panels(request, data),
        "totals": data.totals,
        "sites": sites,
        "filters": {"site": site, "date_from": start.isoformat(), "date_to": end.isoformat()},
        "filter_query": urlencode(filter_items),
        "list_query": list_query,
    }
    return render(
        request, "dashboard.html", context, user=viewer.user, csrf_token=viewer.csrf_token
    )


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def table_csv(table: Table) -> str:
    """The table as CSV text with a BOM (spreadsheets then read it as UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_csv_text(h) for h in table.headers])
    for _key, cells in table.rows:
        writer.writerow([_csv_text(c.text) for c in cells])
    if table.foot:
        writer.writerow([_csv_text(c.text) for c in table.foot])
    return "\ufeff" + out.getvalue()


@router.get("/dashboard.csv", include_in_schema=False)
def dashboard_csv(
    request: Request,
    db: DbDep,
    viewer: ViewerDep,
    chart: Annotated[str, Query(max_length=16)] = "daily",
    site: Annotated[str | None, Query(max_length=64)] = None,
    date_from: Annotated[str | None, Query(max_length=10)] = None,
    date_to: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """One dashboard's table as CSV (same filters as the page)."""
    if chart not in CHARTS:
        return error_page(request, viewer, 400, f"chart: unknown chart {chart!r}")
    tz = page_zone(request)
    try:
        start, end = _range(date_from, date_to, tz)
    except queries.FilterError as exc:
        return error_page(request, viewer, 400, str(exc))
    data, _sites = _load(request, db, viewer, site, start, end)
    panel = next(p for p in _panels(request, data) if p.name == chart)
    name = f"sitewatch-{chart}-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        table_csv(panel.table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Cache-Control": "no-store"},
    )  # fmt: skip
