"""The review queue (issue 18): the pending review items one at a time, oldest first,
with the list's filters kept: the item's snapshot and clip, confirm / dismiss with a
reason / skip, then the next one, until "the queue is empty"."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from sitewatch.server.db.models import DismissReason
from sitewatch.server.db.types import utcnow
from sitewatch.server.ui import review_items
from sitewatch.server.ui.deps import ActingViewerDep, DbDep, ViewerDep, error_page
from sitewatch.server.ui.rendering import page_zone, render
from sitewatch.server.ui.routes_events import (
    BackQuery,
    FilterDep,
    back_query,
    bulk_flash,
    result_query,
    run_bulk,
)

router = APIRouter()


@router.get("/queue", include_in_schema=False)
def queue_page(
    request: Request,
    db: DbDep,
    viewer: ViewerDep,
    given: FilterDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    if given.error:
        return error_page(request, viewer, 400, given.error)
    filters = review_items.pending_filters(given.filters)
    result = review_items.list_items(
        db,
        user=viewer.user,
        filters=filters,
        page=skip + 1,
        now=utcnow(),
        tz=page_zone(request),
        page_size=1,
        oldest_first=True,
        clamp=False,
    )
    own = [(k, v) for k, v in given.filters.query_items() if k != "status"]
    context = {
        "item": result.items[0] if result.items else None,
        "position": skip + 1,
        "remaining": result.total,
        "skipped": min(skip, result.total),
        "skip": skip,
        "filter_query": urlencode(own),
        "back_query": urlencode([*own, ("skip", str(skip))]),
        "skip_query": urlencode([*own, ("skip", str(skip + 1))]),
        "can_edit": viewer.can_edit,
        "dismiss_reasons": [r.value for r in DismissReason],
        "flash": bulk_flash(request),
        "flash_kind": "ok",
    }
    return render(request, "queue.html", context, user=viewer.user, csrf_token=viewer.csrf_token)


@router.post("/queue/verdict", include_in_schema=False)
def post_queue_verdict(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    action: Annotated[str, Form(max_length=16)],
    item: Annotated[list[str], Form()],
    reason: Annotated[str, Form(max_length=32)] = "",
    back: BackQuery = "",
) -> Response:
    """The verdict on the queue's item (all its pending events), then the next item: the
    judged one has left the pending items, so the same position shows the next."""
    done = run_bulk(request, db, viewer, items=item, action=action, reason=reason)
    if isinstance(done, Response):
        return done
    query = urlencode([*back_query(back, keep=("skip",)), *result_query(action, done)])
    return RedirectResponse(f"/ui/queue?{query}", status_code=303)
