"""Request plumbing of the review pages: the logged-in user, and pages for errors.

The pages use the core's dependencies (``server.api.deps``): the same session cookie
and the same CSRF rule for every form post (``current_session``), so a browser logged
in here is logged in for the API too, and a form without the session's token is refused
before any route code runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.responses import HTMLResponse

from sitewatch.server.api.deps import CurrentSession, DbSession, OptionalSession
from sitewatch.server.db.models import Role, User, UserSession
from sitewatch.server.services.errors import ServiceError
from sitewatch.server.ui.i18n import Translator, request_lang, translator
from sitewatch.server.ui.messages import message_html, message_text, translate
from sitewatch.server.ui.rendering import page_zone, render, templates
from sitewatch.server.ui.views import distance_text

logger = logging.getLogger(__name__)

LOGIN_PATH = "/ui/login"
DbDep = DbSession


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of a page request, with the session's CSRF token."""

    user: User
    session: UserSession

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    @property
    def can_edit(self) -> bool:
        return self.user.role in (Role.ADMIN, Role.REVIEWER)


def optional_viewer(session: OptionalSession) -> Viewer | None:
    """The logged-in user of a page, if any (GET pages change nothing: no CSRF check)."""
    return Viewer(session.user, session) if session is not None else None


def require_viewer(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    """The logged-in user, or a redirect to the login page that comes back here."""
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=303, headers={"Location": f"{LOGIN_PATH}?next={quote(target, safe='')}"}
        )
    return viewer


def acting_viewer(session: CurrentSession) -> Viewer:
    """The user of a form post, after the core's login and CSRF checks (401 / 403)."""
    return Viewer(session.user, session)


ViewerDep = Annotated[Viewer, Depends(require_viewer)]
ActingViewerDep = Annotated[Viewer, Depends(acting_viewer)]


def error_page(
    request: Request, viewer: Viewer | None, status_code: int, detail: str
) -> HTMLResponse:
    """The error page; ``detail`` in the page's language: a text of the catalogue is
    shown as it is, an English message of the services, the filters or the media
    checks is translated (:mod:`server.ui.messages`), an unknown one is shown as a
    generic sentence with the original under it."""
    lang = request_lang(request)
    t = translator(lang)
    titles = {
        403: "error.forbidden",
        404: "error.not_found",
        503: "error.unavailable",
        507: "error.disk_full",
    }
    found = translate(t, detail, status=status_code, lang=lang, tz=page_zone(request))
    return render(
        request,
        "error.html",
        {
            "title": t(titles.get(status_code, "error.bad_request")),
            "detail": message_html(t, found),
            "detail_key": found.key,
        },
        status_code=status_code,
        user=viewer.user if viewer else None,
        csrf_token=viewer.csrf_token if viewer else "",
    )


def fault_page(request: Request, status_code: int) -> HTMLResponse:
    """The page for a fault the reader can wait out: 503 (database) or 507 (disk full)."""
    t = translator(request_lang(request))
    key = "error.disk_full_detail" if status_code == 507 else "error.unavailable_detail"
    return error_page(request, None, status_code, t(key))


def service_error_page(request: Request, viewer: Viewer, exc: ServiceError) -> HTMLResponse:
    """A service's refusal on the error page, in the page's language."""
    return error_page(request, viewer, exc.status, exc.message)


def error_text(request: Request, detail: str, status_code: int = 400) -> str:
    """A service's or validator's English message as plain text in the page's language
    (for a form that shows its refusals next to it)."""
    lang = request_lang(request)
    return message_text(
        translator(lang), detail, status=status_code, lang=lang, tz=page_zone(request)
    )


@pass_context
def _distance_text(context: Context, value: float | None, unit: str | None) -> str:
    """Template global: ``distance_text(ev.distance, ev.distance_unit)`` in the page's
    language ("1.2 米", "画面比例 0.05")."""
    t: Translator = context["t"]
    return distance_text(t, value, unit)


templates.env.globals["distance_text"] = _distance_text


def safe_next(target: str | None, default: str = "/ui/events") -> str:
    """A local path to go back to after login or a language switch; never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
