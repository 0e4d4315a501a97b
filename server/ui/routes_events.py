"""Read pages: the event list (filters, paging, thumbnails), its CSV export, the event
page and the media behind them (auth-checked, with HTTP Range for the clip)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import FileResponse, Response, StreamingResponse

from sitewatch.contract.events import RuleKind
from sitewatch.server.api.deps import StoreDep
from sitewatch.server.db.models import DismissReason, MediaKind
from sitewatch.server.db.types import utcnow
from sitewatch.server.localtime import local_day, to_local
from sitewatch.server.services import audit as audit_service
from sitewatch.server.services.errors import ServiceError
from sitewatch.server.services.events import get_event
from sitewatch.server.services.media import get_media
from sitewatch.server.ui import queries, views
from sitewatch.server.ui.csv_rows import csv_chunks
from sitewatch.server.ui.deps import DbDep, Viewer, ViewerDep, error_page, service_error_page
from sitewatch.server.ui.rendering import page_zone, render

logger = logging.getLogger(__name__)
router = APIRouter()

RULES = [r.value for r in RuleKind]
OptionalText = Annotated[str | None, Query(max_length=64)]


@dataclass(frozen=True)
class FilterInput:
    """The list's filters from the query string, or what was wrong with them."""

    filters: queries.EventFilters
    error: str | None = None


def filter_input(
    site: OptionalText = None,
    camera: OptionalText = None,
    rule: OptionalText = None,
    status: OptionalText = None,
    date_from: OptionalText = None,
    date_to: OptionalText = None,
) -> FilterInput:
    try:
        parsed = queries.parse_filters(
            site=site, camera=camera, rule=rule, status=status,
            date_from=date_from, date_to=date_to, rules=RULES,
        )  # fmt: skip
    except queries.FilterError as exc:
        return FilterInput(queries.EventFilters(), str(exc))
    return FilterInput(parsed)


FilterDep = Annotated[FilterInput, Depends(filter_input)]


def _site_names(db: Session, viewer: Viewer) -> dict[str, str]:
    return {s.id: s.name for s in queries.visible_sites(db, viewer.user)}


@router.get("/events", include_in_schema=False)
def event_list(
    request: Request,
    db: DbDep,
    viewer: ViewerDep,
    given: FilterDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    if given.error:
        return error_page(request, viewer, 400, given.error)
    filters = given.filters
    now = utcnow()
    tz = page_zone(request)
    result = queries.list_events(db, user=viewer.user, filters=filters, page=page, now=now, tz=tz)
    sites = queries.visible_sites(db, viewer.user)
    names = {s.id: s.name for s in sites}
    filter_query = urlencode(filters.query_items())

    def page_query(number: int) -> str:
        return urlencode([*filters.query_items(), ("page", str(number))])

    context = {
        "filters": filters,
        "filter_query": filter_query,
        "page_query": page_query,
        "page": {
            "rows": views.event_rows(result.rows, names, now),
            "total": result.total,
            "number": result.number,
            "pages": result.pages,
        },
        "sites": sites,
        "cameras": queries.cameras_of(db, viewer.user),
        "rules": RULES,
        "statuses": queries.STATUS_FILTERS,
        "overdue_total": queries.count_events(
            db, user=viewer.user, filters=queries.EventFilters(status="overdue"), now=now, tz=tz
        ),
    }
    return render(request, "events.html", context, user=viewer.user, csrf_token=viewer.csrf_token)


@router.get("/events.csv", include_in_schema=False)
def event_csv(
    request: Request,
    viewer: ViewerDep,
    given: FilterDep,
) -> Response:
    """The filtered list (same filters as the page) as CSV, streamed; times in ISO 8601
    in the page's zone, with the offset."""
    if given.error:
        return error_page(request, viewer, 400, given.error)
    filters = given.filters
    database = request.app.state.db
    tz = page_zone(request)
    now = utcnow()
    stamp = to_local(now, tz).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        csv_chunks(database, user_id=viewer.user.id, filters=filters, now=now, tz=tz),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="sitewatch-events-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _audit_lines(
    db: Session, viewer: Viewer, event_id: uuid.UUID, tz: ZoneInfo
) -> list[views.AuditLine]:
    entries = [
        *audit_service.list_entries(
            db, user=viewer.user, object_type="event", object_id=str(event_id)
        ),
        *audit_service.list_entries(
            db, user=viewer.user, object_type="hazard", object_id=str(event_id)
        ),
    ]
    return views.audit_lines(entries, tz)


@router.get("/events/{event_id}", include_in_schema=False)
def event_page(request: Request, db: DbDep, viewer: ViewerDep, event_id: uuid.UUID) -> Response:
    try:
        event = get_event(db, user=viewer.user, event_id=event_id)
    except ServiceError as exc:
        return service_error_page(request, viewer, exc)
    now = utcnow()
    tz = page_zone(request)
    detail = views.event_detail(
        db,
        event,
        site_name=_site_names(db, viewer).get(event.site_id, event.site_id),
        audit=_audit_lines(db, viewer, event_id, tz),
        now=now,
    )
    context = {
        "ev": detail,
        "can_edit": viewer.can_edit,
        "dismiss_reasons": [r.value for r in DismissReason],
        "default_deadline": local_day(now + timedelta(days=3), tz).isoformat(),
    }
    return render(request, "event.html", context, user=viewer.user, csrf_token=viewer.csrf_token)


@router.get("/events/{event_id}/media/{kind}", include_in_schema=False)
def event_media(
    db: DbDep, store: StoreDep, viewer: ViewerDep, event_id: uuid.UUID, kind: MediaKind
) -> Response:
    """A media file of an event the user may see; Range requests work (clip seeking)."""
    try:
        media = get_media(db, user=viewer.user, event_id=event_id, kind=kind)
    except ServiceError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    path = store.local_path(media.stored_name)
    if path is not None:
        if not path.is_file():
            logger.error("media file of event %s (%s) is missing: %s", event_id, kind.value, path)
            return Response("media file is missing", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type=media.content_type, headers=headers)
    return StreamingResponse(
        store.open(media.stored_name), media_type=media.content_type, headers=headers
    )
