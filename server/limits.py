"""The request gate: who may send a body, and how large, decided before a byte of it is read.

FastAPI reads and parses a request's body before it runs the dependencies that check
the token or the cookie, so without this gate an anonymous client could make the
server hold and parse ~100 MB of JSON before its 401. The gate runs first:

* it looks the route up in a short table (device ingest, public login, user uploads,
  everything else) and gives it its own body limit from the settings;
* a request that changes state must carry a valid device token (device routes) or a
  live session cookie (the rest, login excepted), checked against the database, or it
  is answered 401 without its body being read;
* a declared ``Content-Length`` over the limit is answered 413 at once; a chunked body
  is counted as it arrives and answered 413 as soon as it passes the limit.

The route's own dependencies still authenticate and authorise in full: the gate only
makes sure nobody unauthenticated gets to spend the server's memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from anyio import to_thread
from sqlalchemy.exc import DBAPIError
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sitewatch.server.faults import fault_answer
from sitewatch.server.settings import Settings

#: Multipart framing around the largest allowed file.
BODY_SLACK_BYTES = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Posts anyone may send: logging in, and logging out (harmless without a session).
_OPEN_DOORS = frozenset({"/api/v1/auth/login", "/ui/login", "/api/v1/auth/logout", "/ui/logout"})


class Caller(Enum):
    DEVICE = "device"
    USER = "user"
    ANYONE = "anyone"


@dataclass(frozen=True)
class RoutePolicy:
    caller: Caller
    max_body_bytes: int


#: A device-route check: the bearer token of a request -> is it an active device's?
TokenCheck = Callable[[str], bool]
#: A user-route check: the session cookie of a request -> is it a live session's?
CookieCheck = Callable[[str], bool]


def route_policy(method: str, path: str, settings: Settings) -> RoutePolicy:
    """Who may send a body to ``method path``, and how large it may be."""
    if method == "PUT":  # only devices PUT (events, their media, camera pictures)
        if re.fullmatch(r"/api/v1/cameras/[^/]+/picture", path):
            return RoutePolicy(Caller.DEVICE, settings.max_snapshot_bytes + BODY_SLACK_BYTES)
        if "/media/" not in path:
            return RoutePolicy(Caller.DEVICE, settings.max_event_bytes)
        kind = path.rsplit("/", 1)[-1]
        limits = {"clip": settings.max_clip_bytes, "face": settings.max_face_bytes}
        size = limits.get(kind, settings.max_snapshot_bytes)
        return RoutePolicy(Caller.DEVICE, size + BODY_SLACK_BYTES)
    if method == "POST" and path == "/api/v1/heartbeat":
        return RoutePolicy(Caller.DEVICE, settings.max_form_bytes)
    if method == "POST" and path in _OPEN_DOORS:
        return RoutePolicy(Caller.ANYONE, 16 * 1024)
    if method == "POST" and re.fullmatch(r"(/api/v1|/ui)/events/[^/]+/(hazard/)?evidence", path):
        return RoutePolicy(Caller.USER, settings.max_evidence_bytes + BODY_SLACK_BYTES)
    if method == "POST" and re.fullmatch(r"/api/v1/workers/[^/]+", path):
        photos = settings.max_enrol_photos * settings.max_evidence_bytes
        return RoutePolicy(Caller.USER, photos + BODY_SLACK_BYTES)
    return RoutePolicy(Caller.USER, settings.max_form_bytes)


class _BodyTooLarge(Exception):
    pass


class RequestGate:
    """ASGI middleware: authentication presence and body limits per route (see module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        device_token_ok: TokenCheck,
        session_cookie_ok: CookieCheck,
        cookie_name: str,
    ) -> None:
        self.app = app
        self.settings = settings
        self.device_token_ok = device_token_ok
        self.session_cookie_ok = session_cookie_ok
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        policy = route_policy(scope["method"], scope["path"], self.settings)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        try:
            refusal = await self._authentication_refusal(policy.caller, headers)
        except DBAPIError as exc:
            fault = fault_answer(exc)
            if fault is None:
                raise
            await _answer(send, fault.status, fault.detail, fault.headers)
            return
        if refusal is not None:
            await _answer(send, 401, refusal, {"www-authenticate": "Bearer"})
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > policy.max_body_bytes:
            await _answer(send, 413, _too_large(policy.max_body_bytes))
            return
        await self._limited(scope, receive, send, policy.max_body_bytes)

    async def _authentication_refusal(
        self, caller: Caller, headers: dict[bytes, bytes]
    ) -> str | None:
        if caller is Caller.DEVICE:
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return "device token required (Authorization: Bearer <token>)"
            if not await to_thread.run_sync(self.device_token_ok, token):
                return "unknown or revoked device token"
        elif caller is Caller.USER:
            cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
            cookie = cookies.get(self.cookie_name)
            if not cookie or not await to_thread.run_sync(self.session_cookie_ok, cookie):
                return "login required"
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    await _answer(send, 413, _too_large(limit))
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after the 413, whatever the app answers is dropped
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not refused:
                raise


def _too_large(limit: int) -> str:
    return f"request body is larger than the limit of {limit} bytes for this route"


async def _answer(
    send: Send, status: int, detail: str, extra: dict[str, str] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is not read
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
