"""The review UI: server-rendered pages under ``/ui`` (Chinese by default, English switch).

``server.app.create_app`` calls :func:`install`; the pages need the core's app state
(``db``, ``store``, ``settings``, ``cookie_signer``) and its dependencies.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import RedirectResponse

from sitewatch.server.ui import (
    routes_alerts,
    routes_auth,
    routes_cameras,
    routes_dashboard,
    routes_events,
    routes_hazards,
    routes_queue,
    routes_review,
)
from sitewatch.server.ui.deps import fault_page

ui_router = APIRouter(prefix="/ui", tags=["ui"])
ui_router.include_router(routes_auth.router)
ui_router.include_router(routes_events.router)
ui_router.include_router(routes_queue.router)  # the review queue (issue 18)
ui_router.include_router(routes_review.router)
ui_router.include_router(routes_hazards.router)
ui_router.include_router(routes_dashboard.router)
ui_router.include_router(routes_alerts.router)
ui_router.include_router(routes_cameras.router)

__all__ = ["install", "ui_router"]


def install(app: FastAPI) -> None:
    """Called by ``create_app``: the pages under ``/ui`` and ``/`` leading to them."""
    app.include_router(ui_router)
    app.state.fault_page = fault_page  # server.app answers a fault on a page with it
    app.add_api_route("/ui", _home, include_in_schema=False)
    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        app.add_api_route("/", _home, include_in_schema=False)


def _home() -> RedirectResponse:
    return RedirectResponse("/ui/events", status_code=303)
