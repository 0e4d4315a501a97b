"""A STAND-IN for the server's ingest API (COMMON.md contract), for uploader unit tests.

It keeps events and media in memory, checks the bearer token, the event body (``Event``),
the site and the media magic bytes like the contract says, and can be told to fail the
next N requests with 503 or be stopped and restarted on the same port (server down).
It is a real HTTP server (uvicorn in a thread); the end-to-end tests in
``test_live_*.py`` use the real ``sitewatch server`` instead when it is installed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, File, Header, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse

from sitewatch.contract.events import Event
from tests.rtsp_server import free_port

MAGIC = {
    "clip": (4, b"ftyp"),
    "snapshot": (0, b"\xff\xd8"),
    "snapshot_clean": (0, b"\xff\xd8"),
    "face": (0, b"\xff\xd8"),
}


@dataclass
class IngestState:
    token: str
    site_id: str
    events: dict[str, Event] = field(default_factory=dict)
    media: dict[tuple[str, str], bytes] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def build_app(state: IngestState) -> FastAPI:
    app = FastAPI()

    def check(authorization: str | None) -> None:
        if authorization != f"Bearer {state.token}":
            raise HTTPException(401, "bad device token")
        with state.lock:
            if state.fail_next > 0:
                state.fail_next -= 1
                raise HTTPException(503, "told to fail")

    @app.put("/api/v1/events/{event_id}")
    async def put_event(
        event_id: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        check(authorization)
        event = Event.model_validate_json(await request.body())
        if str(event.event_id) != event_id:
            raise HTTPException(400, "event_id mismatch")
        if event.site_id != state.site_id:
            raise HTTPException(403, "not this device's site")
        with state.lock:
            state.requests[f"event:{event_id}"] += 1
            created = event_id not in state.events
            state.events[event_id] = event
        return JSONResponse({"event_id": event_id}, status_code=201 if created else 200)

    @app.put("/api/v1/events/{event_id}/media/{kind}")
    async def put_media(
        event_id: str,
        kind: str,
        file: Annotated[UploadFile, File()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, str]:
        check(authorization)
        if kind not in MAGIC:
            raise HTTPException(422, f"unknown media kind {kind}")
        if event_id not in state.events:
            raise HTTPException(404, "unknown event")
        data = await file.read()
        offset, magic = MAGIC[kind]
        if data[offset : offset + len(magic)] != magic:
            raise HTTPException(415, f"{kind} content is not what it claims")
        with state.lock:
            state.requests[f"{kind}:{event_id}"] += 1
            state.media[(event_id, kind)] = data
        return {"stored": kind}

    @app.post("/api/v1/heartbeat")
    async def heartbeat(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, bool]:
        check(authorization)
        with state.lock:
            state.heartbeats.append(await request.json())
        return {"ok": True}

    return app


class IngestStandIn:
    """uvicorn in a thread; ``stop()`` / ``start()`` keep the port and the state."""

    def __init__(self, *, token: str = "test-token", site_id: str = "test-site") -> None:
        self.state = IngestState(token=token, site_id=site_id)
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> IngestStandIn:
        config = uvicorn.Config(
            build_app(self.state),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("stand-in ingest server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> IngestStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
