"""Jinja2 set-up of the review pages and the one function that renders them."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse

from sitewatch.server.localtime import format_time
from sitewatch.server.ui.i18n import label, request_lang, translator

UI_PACKAGE = resources.files("sitewatch.server.ui")
TEMPLATE_DIR = Path(str(UI_PACKAGE / "templates"))
STATIC_DIR = Path(str(UI_PACKAGE / "static"))


def page_zone(request: Request) -> ZoneInfo:
    """The zone the pages show times and count days in (the ``timezone`` setting)."""
    zone: ZoneInfo = request.app.state.settings.zone
    return zone


@pass_context
def _localtime(context: Context, value: datetime | None) -> str:
    """Template filter: a time in the page's zone with its offset (``tz`` of the page)."""
    return format_time(value, context["tz"])


#: Pages load only their own CSS, JavaScript, images and video; no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; "
        "style-src 'self'; script-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
templates.env.filters["localtime"] = _localtime


def current_url(request: Request) -> str:
    """Path and query of this request without the ``lang`` switch parameter."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
    return request.url.path + (f"?{query}" if query else "")


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    user: Any = None,
    csrf_token: str = "",
) -> HTMLResponse:
    """Render ``template`` with the language helpers, the user and the CSRF token."""
    lang = request_lang(request)
    t = translator(lang)
    full: dict[str, Any] = {
        "lang": lang,
        "t": t,
        "label": partial(label, t),
        "user": user,
        "csrf_token": csrf_token,
        "current_url": current_url(request),
        "tz": page_zone(request),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(SECURITY_HEADERS)
    return response
