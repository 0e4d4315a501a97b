"""FastAPI dependencies: database session, media store, device and user authentication.

Cookie-authenticated requests that change state (any method but GET/HEAD/OPTIONS) must
carry the session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf_token`` form
field; :func:`current_session` refuses them with 403 otherwise. Device requests use a
bearer token and no cookie, so they need no CSRF token. The review UI uses the same
dependencies and :func:`start_session` / :func:`end_session`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from sqlalchemy.orm import Session

from sitewatch.server.db.models import Device, Role, User, UserSession
from sitewatch.server.media import MediaStore
from sitewatch.server.security import (
    CSRF_FORM_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    CookieSigner,
    csrf_matches,
)
from sitewatch.server.services import admin, auth
from sitewatch.server.settings import Settings
from sitewatch.server.throttle import LoginThrottle

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.db.session() as db:
        yield db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> MediaStore:
    store: MediaStore = request.app.state.store
    return store


DbSession = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[MediaStore, Depends(get_store)]


def current_device(request: Request, db: DbSession) -> Device:
    """The device of the ``Authorization: Bearer`` token; 401 if missing or unknown."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "device token required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    device = admin.authenticate_device(db, token=token.strip())
    if device is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked device token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return device


CurrentDevice = Annotated[Device, Depends(current_device)]


async def csrf_candidate(request: Request) -> str | None:
    """The CSRF token a request carries (header first, then a form field)."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.method in SAFE_METHODS:
        return None
    if _is_form(request.headers.get("content-type", "")):
        value = (await request.form()).get(CSRF_FORM_FIELD)
        return value if isinstance(value, str) else None
    return None


def is_json_type(content_type: str) -> bool:
    """JSON as FastAPI reads it: ``application/json`` or any ``+json``, in any case."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _is_form(content_type: str) -> bool:
    return content_type.strip().lower().startswith(_FORM_TYPES)


class _NonFiniteNumber(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFiniteNumber(name)


def _json_problem(body: bytes) -> str | None:
    """Why a JSON body cannot be stored though Python's parser takes it, or None.

    Python reads NaN and Infinity (not JSON) and lone surrogates such as ``"\\ud800"``
    (valid JSON, not valid Unicode): neither can be stored, encoded or even shown in an
    error answer, so they are refused here with a 422 instead of a 500 later.
    """
    try:
        parsed = json.loads(body, parse_constant=_refuse_constant)
    except _NonFiniteNumber as exc:
        return f"{exc} is not a JSON number (numbers must be finite)"
    except (ValueError, RecursionError):
        return None  # not JSON at all: FastAPI answers that with its own 422
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "a string holds a lone surrogate (\\ud800-\\udfff): not valid Unicode"
    return None


async def check_request_text(request: Request) -> None:
    """422 for text no database stores: NUL characters (in the URL, any body that is not
    a file upload, form fields), NaN / Infinity and lone surrogates in JSON.

    PostgreSQL cannot store or even compare text holding NUL, so such input is refused
    at the door with a clear error instead of failing deep in a query, on every content
    type FastAPI would parse (``Application/JSON``, ``application/vnd.api+json``...).
    """
    problem = None
    if "\x00" in request.url.path or "%00" in request.url.query or "\x00" in request.url.query:
        problem = "NUL characters are not allowed (URL)"
    elif request.method not in SAFE_METHODS:
        content_type = request.headers.get("content-type", "")
        if _is_form(content_type):
            form = await request.form()
            if any(isinstance(v, str) and "\x00" in v for v in form.values()):
                problem = "NUL characters are not allowed (form field)"
        else:
            body = await request.body()
            if b"\\u0000" in body or b"\x00" in body:
                problem = "NUL characters are not allowed (body)"
            elif body and is_json_type(content_type):
                problem = _json_problem(body)
    if problem is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)


def _signer(request: Request) -> CookieSigner:
    signer: CookieSigner = request.app.state.cookie_signer
    return signer


def optional_session(request: Request, db: DbSession) -> UserSession | None:
    """The session of the request's cookie, or None (no CSRF check: for reading only)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    token = _signer(request).unsign(cookie) if cookie else None
    return auth.session_for_token(db, token=token) if token else None


OptionalSession = Annotated[UserSession | None, Depends(optional_session)]


def current_session(
    request: Request,
    session: OptionalSession,
    csrf: Annotated[str | None, Depends(csrf_candidate)],
) -> UserSession:
    """The logged-in session; 401 without one, 403 for a state change without CSRF."""
    if session is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "login required")
    if request.method not in SAFE_METHODS and not csrf_matches(session.csrf_token, csrf):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"missing or wrong CSRF token ({CSRF_HEADER} header or {CSRF_FORM_FIELD} field)",
        )
    return session


CurrentSession = Annotated[UserSession, Depends(current_session)]


def current_user(session: CurrentSession) -> User:
    return session.user


CurrentUser = Annotated[User, Depends(current_user)]


def admin_user(user: CurrentUser) -> User:
    if user.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def start_session(
    request: Request, response: Response, *, username: str, password: str, db: Session
) -> UserSession | None:
    """Check the password and set the session cookie on ``response``; None if refused.

    Raises :class:`server.throttle.TooManyAttempts` (a ServiceError, 429) after too many
    failures for the user name or the client address.
    """
    settings = get_settings(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    keys = (f"user:{username.lower()}", f"ip:{request.client.host if request.client else '?'}")
    throttle.check(*keys)
    result = auth.login(
        db, username=username, password=password, max_age_s=settings.session_max_age_s
    )
    if result is None:
        throttle.failed(*keys)
        return None
    throttle.succeeded(keys[0])
    response.set_cookie(
        SESSION_COOKIE,
        _signer(request).sign(result.token),
        max_age=settings.session_max_age_s,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return result.session


def end_session(request: Request, response: Response, *, db: Session) -> None:
    """Delete the request's session (if any) and clear the cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    token = _signer(request).unsign(cookie) if cookie else None
    if token:
        auth.logout(db, token=token)
    response.delete_cookie(SESSION_COOKIE, path="/")
