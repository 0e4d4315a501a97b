"""Read pages: the event list (filters, paging, thumbnails), its CSV export, the event
page and the media behind them (auth-checked, with HTTP Range for the clip)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from sitewatch.contract.events import RuleKind
from sitewatch.server.api.deps import StoreDep
from sitewatch.server.db.models import DismissReason, MediaKind
from sitewatch.server.db.types import utcnow
from sitewatch.server.localtime import local_day, to_local
from sitewatch.server.services import audit as audit_service
from sitewatch.server.services.cameras import camera_names, event_zones
from sitewatch.server.services.errors import ServiceError
from sitewatch.server.services.events import get_event
from sitewatch.server.services.media import get_media
from sitewatch.server.ui import queries, review_items, views
from sitewatch.server.ui.csv_rows import csv_chunks
from sitewatch.server.ui.deps import (
    ActingViewerDep,
    DbDep,
    Viewer,
    ViewerDep,
    error_page,
    service_error_page,
)
from sitewatch.server.ui.i18n import request_lang, translator
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
    zone: Annotated[str | None, Query(max_length=128)] = None,
    severity: OptionalText = None,
) -> FilterInput:
    try:
        parsed = queries.parse_filters(
            site=site, camera=camera, rule=rule, status=status,
            date_from=date_from, date_to=date_to, rules=RULES, zone=zone, severity=severity,
        )  # fmt: skip
    except queries.FilterError as exc:
        return FilterInput(queries.EventFilters(), str(exc))
    return FilterInput(parsed)


FilterDep = Annotated[FilterInput, Depends(filter_input)]


def _site_names(db: Session, viewer: Viewer) -> dict[str, str]:
    return {s.id: s.name for s in queries.visible_sites(db, viewer.user)}


def bulk_flash(request: Request) -> str | None:
    """The summary of a bulk verdict, from the redirect's query (numbers only)."""
    params = request.query_params
    done = params.get("done")
    if done not in review_items.BULK_ACTIONS:
        return None
    try:
        n = {
            k: int(params.get(k, "0")) for k in ("n_items", "n_events", "n_unchanged", "n_refused")
        }
    except ValueError:
        return None
    t = translator(request_lang(request))
    parts = [t(f"items.done.{done}", items=n["n_items"], events=n["n_events"])]
    if n["n_unchanged"]:
        parts.append(t("items.done.unchanged", n=n["n_unchanged"]))
    if n["n_refused"]:
        parts.append(t("items.done.refused", n=n["n_refused"]))
    return t("items.done.sep").join(parts)


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
    result = review_items.list_items(
        db, user=viewer.user, filters=filters, page=page, now=now, tz=tz
    )
    sites = queries.visible_sites(db, viewer.user)
    filter_query = urlencode(filters.query_items())

    def page_query(number: int) -> str:
        return urlencode([*filters.query_items(), ("page", str(number))])

    flash = bulk_flash(request)
    context = {
        "filters": filters,
        "filter_query": filter_query,
        "page_query": page_query,
        "page": result,
        "back_query": page_query(result.number),
        "sites": sites,
        "cameras": queries.camera_options(db, viewer.user),
        "zones": queries.zone_options(db, viewer.user),
        "severities": queries.SEVERITIES,
        "rules": RULES,
        "statuses": queries.STATUS_FILTERS,
        "can_edit": viewer.can_edit,
        "dismiss_reasons": [r.value for r in DismissReason],
        "flash": flash,
        "flash_kind": "ok"
        if flash and request.query_params.get("n_refused") in (None, "0")
        else "info",
        "overdue_total": queries.count_events(
            db, user=viewer.user, filters=queries.EventFilters(status="overdue"), now=now, tz=tz
        ),
    }
    return render(request, "events.html", context, user=viewer.user, csrf_token=viewer.csrf_token)


BackQuery = Annotated[str, Form(max_length=2000)]


def back_query(raw: str, keep: tuple[str, ...] = ("page",)) -> list[tuple[str, str]]:
    """The list's filters (and paging) from a form's ``back`` field, known keys only."""
    known = {*FILTER_KEYS, *keep}
    return [(k, v) for k, v in parse_qsl(raw) if k in known][:20]


FILTER_KEYS = ("site", "camera", "rule", "status", "date_from", "date_to", "zone", "severity")


def run_bulk(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    items: list[str],
    action: str,
    reason: str,
) -> review_items.BulkResult | Response:
    """Parse a bulk form and apply it; an error page for a form that cannot be used."""
    if not viewer.can_edit:
        return error_page(request, viewer, 403, "viewers cannot give verdicts")
    if action not in review_items.BULK_ACTIONS:
        return error_page(
            request, viewer, 400, f"action must be confirm or dismiss, got {action!r}"
        )
    dismiss_reason = None
    if action == "dismiss":
        try:
            dismiss_reason = DismissReason(reason)
        except ValueError:
            t = translator(request_lang(request))
            return error_page(request, viewer, 400, t("items.err.reason"))
    try:
        parsed = review_items.parse_items(items)
    except review_items.BulkError as exc:
        return error_page(request, viewer, 400, str(exc))
    return review_items.apply_verdict(
        db,
        user=viewer.user,
        items=parsed,
        verdict=review_items.BULK_ACTIONS[action],
        reason=dismiss_reason,
    )


def result_query(action: str, result: review_items.BulkResult) -> list[tuple[str, str]]:
    return [
        ("done", action),
        ("n_items", str(result.items)),
        ("n_events", str(result.events)),
        ("n_unchanged", str(result.unchanged)),
        ("n_refused", str(len(result.refused))),
    ]


@router.post("/events/bulk", include_in_schema=False)
def post_bulk(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    action: Annotated[str, Form(max_length=16)],
    item: Annotated[list[str], Form()],
    reason: Annotated[str, Form(max_length=32)] = "",
    back: BackQuery = "",
) -> Response:
    """Confirm or dismiss (with a reason) the selected items: every pending event of
    each, one ``set_verdict`` each; events with a verdict already stay as they are."""
    done = run_bulk(request, db, viewer, items=item, action=action, reason=reason)
    if isinstance(done, Response):
        return done
    query = urlencode([*back_query(back), *result_query(action, done)])
    return RedirectResponse(f"/ui/events?{query}", status_code=303)


@router.get("/events.csv", include_in_schema=False)
def event_csv(
    request: Request,
    viewer: ViewerDep,
    given: FilterDep,
) -> Response:
    """The filtered list (same filters as the page) as CSV, streamed, in the page's
    language: local times of the page's zone (named in the headers), rounded numbers."""
    if given.error:
        return error_page(request, viewer, 400, given.error)
    filters = given.filters
    database = request.app.state.db
    tz = page_zone(request)
    now = utcnow()
    stamp = to_local(now, tz).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        csv_chunks(
            database,
            user_id=viewer.user.id,
            filters=filters,
            now=now,
            tz=tz,
            lang=request_lang(request),
        ),
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
        camera_name=camera_names(db, {event.site_id}).get((event.site_id, event.camera_id)),
        zones=event_zones(db, event),
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
