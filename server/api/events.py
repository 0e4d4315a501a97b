"""Events for logged-in users: list, detail, verdict, media download, CSV export."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse
from starlette.responses import Response

from sitewatch.server.api.deps import CurrentUser, DbSession, StoreDep
from sitewatch.server.api.schemas import EventOut, EventPage, VerdictIn
from sitewatch.server.db.models import EventRecord, MediaKind
from sitewatch.server.services import events, export
from sitewatch.server.services.errors import NotFound
from sitewatch.server.services.events import MAX_PAGE_SIZE, EventFilter
from sitewatch.server.services.media import get_media

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["events"])
Filters = Annotated[EventFilter, Query()]


def event_out(event: EventRecord) -> EventOut:
    out = EventOut.model_validate(event)
    if out.hazard is not None and event.hazard is not None:
        out.hazard.overdue = event.hazard.is_overdue(datetime.now(UTC))
    return out


@router.get("/events", response_model=EventPage)
def list_events(
    user: CurrentUser,
    db: DbSession,
    filters: Filters,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> EventPage:
    """Events the user may see, newest first, filtered and paged."""
    result = events.list_events(db, user=user, filters=filters, page=page, page_size=page_size)
    return EventPage(
        items=[event_out(e) for e in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )


@router.get("/events/{event_id}", response_model=EventOut, responses={404: {}})
def get_event(event_id: uuid.UUID, user: CurrentUser, db: DbSession) -> EventOut:
    return event_out(events.get_event(db, user=user, event_id=event_id))


@router.post("/events/{event_id}/verdict", response_model=EventOut, responses={403: {}, 404: {}})
def post_verdict(
    event_id: uuid.UUID, verdict: VerdictIn, user: CurrentUser, db: DbSession
) -> EventOut:
    """Confirm the event as a hazard, or dismiss it as a false alarm with a reason."""
    row = events.set_verdict(
        db,
        user=user,
        event_id=event_id,
        verdict=verdict.verdict,
        reason=verdict.reason,
        note=verdict.note,
        correction=verdict.correction,
    )
    return event_out(row)


@router.get(
    "/events/{event_id}/media/{kind}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "video/mp4": {}}}, 404: {}},
)
def download_media(
    event_id: uuid.UUID, kind: MediaKind, user: CurrentUser, db: DbSession, store: StoreDep
) -> Response:
    """A media file of an event (Range requests supported, so a browser can seek a clip)."""
    media = get_media(db, user=user, event_id=event_id, kind=kind)
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if not store.exists(media.stored_name):
        logger.warning("media %s of event %s is missing from the store", kind, event_id)
        raise NotFound(f"the {kind.value} file of event {event_id} is missing from the store")
    path = store.local_path(media.stored_name)
    if path is not None:
        return FileResponse(path, media_type=media.content_type, headers=headers)
    handle = store.open(media.stored_name)
    return StreamingResponse(handle, media_type=media.content_type, headers=headers)


@router.get(
    "/export/events.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_csv(user: CurrentUser, db: DbSession, filters: Filters) -> StreamingResponse:
    """The filtered event list as CSV (at most 100,000 rows)."""
    rows = list(export.export_events_csv(db, user=user, filters=filters))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        iter(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="sitewatch-events-{stamp}.csv"'},
    )
