"""Log in, log out, the language switch and the static files of the review pages."""

from __future__ import annotations

import logging
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from sitewatch.server.api.deps import end_session, start_session
from sitewatch.server.security import csrf_matches
from sitewatch.server.throttle import TooManyAttempts
from sitewatch.server.ui.deps import ActingViewerDep, DbDep, Viewer, optional_viewer, safe_next
from sitewatch.server.ui.i18n import CATALOGUES, LANG_COOKIE, request_lang, translator
from sitewatch.server.ui.rendering import STATIC_DIR, render

logger = logging.getLogger(__name__)
router = APIRouter()

LOGIN_CSRF_COOKIE = "sitewatch_login_csrf"
STATIC_FILES = {
    "app.css": "text/css",
    "app.js": "text/javascript",
    "event_overlay.js": "text/javascript",  # the event page's drawing (issue 17)
    "zone_editor.js": "text/javascript",  # the zone editor (issue 17)
    "favicon.svg": "image/svg+xml",
    "review.js": "text/javascript",  # review items: keys, bulk, queue (issue 18)
}
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def _login_page(
    request: Request, *, next_url: str, error: str | None = None, username: str = ""
) -> Response:
    """The login form with a fresh double-submit CSRF token (cookie + hidden field)."""
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"next_url": next_url, "error": error, "username": username},
        status_code=401 if error else 200,
        csrf_token=token,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/ui/login"
    )
    return response


@router.get("/login", include_in_schema=False)
def login_form(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if viewer is not None:
        return RedirectResponse(next_url, status_code=303)
    return _login_page(request, next_url=next_url)


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    db: DbDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Password check (argon2, in the core); the form carries a double-submit token."""
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong")
    response = RedirectResponse(safe_next(next), status_code=303)
    try:
        session = start_session(request, response, username=username, password=password, db=db)
    except TooManyAttempts as exc:
        logger.info("UI login for %r throttled for %d s", username, exc.retry_after_s)
        t = translator(request_lang(request))
        page = _login_page(
            request,
            next_url=safe_next(next),
            error=t("login.locked", minutes=max(1, math.ceil(exc.retry_after_s / 60))),
            username=username,
        )
        page.status_code = 429
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    if session is None:
        logger.info("failed UI login for %r", username)
        t = translator(request_lang(request))
        return _login_page(
            request, next_url=safe_next(next), error=t("login.failed"), username=username
        )
    logger.info("user %s logged in to the UI", username)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, db: DbDep, viewer: ActingViewerDep) -> Response:
    """End the session (the core checked the form's CSRF token)."""
    response = RedirectResponse("/ui/login", status_code=303)
    end_session(request, response, db=db)
    logger.info("user %s logged out of the UI", viewer.user.username)
    return response


@router.get("/lang/{code}", include_in_schema=False)
def switch_language(code: str, request: Request) -> Response:
    if code not in CATALOGUES:
        raise HTTPException(status_code=404, detail=f"unknown language {code!r}")
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax", path="/")
    return response


@router.get("/", include_in_schema=False)
def ui_home() -> Response:
    return RedirectResponse("/ui/events", status_code=303)


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    """The page's CSS and JavaScript: a fixed list of names, nothing else is served."""
    if name not in STATIC_FILES:
        raise HTTPException(status_code=404, detail="no such static file")
    return FileResponse(
        STATIC_DIR / name,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=300"},
    )
