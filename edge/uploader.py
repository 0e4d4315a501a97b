"""Pushes the outbox to the central server, and sends heartbeats.

Items leave the outbox in the order they were spooled: an event's ``start`` message, then
its snapshots, updates, its clip and its ``end``, so media never reach the server before
their event. Each item is deleted from the outbox only after a 2xx answer; a crash in
between sends it again, and the server's upsert by event id (and idempotent media PUT)
makes that harmless: nothing is lost, nothing is duplicated.

Failures: connection errors, timeouts, 5xx, 408, 425, 429 and 401 (a token being
rotated) are retried with exponential backoff and full jitter (``retry_min_s`` doubling
up to ``retry_max_s``). Other 4xx answers mean the server will not take the item as it
is (invalid, forbidden, unknown event): it moves to the outbox's dead letters with the
status and the server's detail, logged and counted, and the queue goes on. Nothing is
deleted: ``sitewatch edge outbox list`` shows the dead letters, ``... retry`` (or the first
start of another edge version) puts them back in the queue. Later items of a dead-lettered
event are held beside it unsent, so the server still gets an event's items in order.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from sitewatch.contract.heartbeat import HeartbeatReply
from sitewatch.edge.config import ServerConnection, resolve_path
from sitewatch.edge.errors import SitewatchError
from sitewatch.edge.outbox import Outbox, OutboxItem

logger = logging.getLogger(__name__)

RETRY_STATUS = {401, 408, 425, 429}
_CONTENT_TYPES = {"clip": "video/mp4"}


class TokenError(SitewatchError, ValueError):
    """No usable device token in the config."""


def resolve_token(server: ServerConnection, *, config_path: Path | None) -> str:
    """The device token from ``device_token`` or ``token_file`` (relative to the config)."""
    if server.device_token:
        return server.device_token.strip()
    if not server.token_file:
        raise TokenError("server: set device_token or token_file (the device token)")
    path = Path(server.token_file).expanduser()
    if not path.is_absolute():
        path = resolve_path(server.token_file, config_path=config_path)
        if config_path is not None and not path.exists():
            path = config_path.parent / server.token_file  # name it where it was expected
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TokenError(f"server.token_file {path}: cannot read ({exc.strerror})") from None
    if not token:
        raise TokenError(f"server.token_file {path} is empty")
    return token


@dataclass
class UploadTuning:
    retry_min_s: float = 1.0
    retry_max_s: float = 60.0
    heartbeat_s: float = 30.0


class Outcome:
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


class Uploader:
    """Two threads: the queue pusher and the heartbeat; ``stop()`` ends both."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        base_url: str,
        token: str,
        timeout_s: float = 10.0,
        tuning: UploadTuning | None = None,
        heartbeat_body: Callable[[], dict[str, Any]] | None = None,
        on_result: Callable[[OutboxItem, str], None] | None = None,
        on_heartbeat_reply: Callable[[HeartbeatReply], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.outbox = outbox
        self.tuning = tuning or UploadTuning()
        self._heartbeat_body = heartbeat_body
        self._on_result = on_result
        self._on_heartbeat_reply = on_heartbeat_reply
        self._stop = threading.Event()
        headers = {"Authorization": f"Bearer {token}"}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self._beat_client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        #: Camera pictures (edge.pictures): their own connection, never behind the queue.
        self._picture_client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self._threads = [
            threading.Thread(target=self._push_loop, name="uploader", daemon=True),
            threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True),
        ]
        self.last_heartbeat_ok: bool | None = None

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout_s)
        self._client.close()
        self._beat_client.close()
        self._picture_client.close()

    def drain(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout_s`` passed (False)."""
        waited = 0.0
        while self.outbox.depth() and waited < timeout_s and not self._stop.is_set():
            self._stop.wait(0.1)
            waited += 0.1
        return self.outbox.depth() == 0

    # ---- the queue -----------------------------------------------------------------------

    def _push_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            item = self.outbox.next_item(timeout_s=0.5)
            if item is None:
                continue
            outcome = self.send(item)
            if outcome == Outcome.RETRY:
                failures += 1
                self.outbox.note_attempt(item)
                self._stop.wait(self.backoff_s(failures))
            else:
                failures = 0

    def backoff_s(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max, min * 2**(failures-1))], at least min / 2."""
        ceiling = min(self.tuning.retry_max_s, self.tuning.retry_min_s * 2 ** (failures - 1))
        return max(self.tuning.retry_min_s / 2, random.uniform(0, ceiling))

    def send(self, item: OutboxItem) -> str:
        """Send one item; ack or reject it in the outbox; return the outcome."""
        try:
            response = self._request(item)
        except FileNotFoundError:  # dropped from a full spool after it was picked
            logger.info("%s of event %s is gone from the spool; skipping", item.kind, item.event_id)
            self.outbox.ack(item)
            return self._report(item, Outcome.REJECTED)
        except (httpx.TransportError, OSError) as exc:
            logger.info("upload of %s %s failed: %s", item.kind, item.event_id, exc)
            return self._report(item, Outcome.RETRY)
        if response.is_success:
            self.outbox.ack(item)
            return self._report(item, Outcome.SENT)
        code = response.status_code
        detail = _server_detail(response)
        if code >= 500 or code in RETRY_STATUS:
            level = logging.ERROR if code == 401 else logging.INFO
            logger.log(
                level, "server answered %d to %s %s: %s", code, item.kind, item.event_id, detail
            )
            return self._report(item, Outcome.RETRY)
        self.outbox.reject(item, detail, status=code)  # a dead letter, kept for a retry
        return self._report(item, Outcome.REJECTED)

    def _request(self, item: OutboxItem) -> httpx.Response:
        url = f"/api/v1/events/{item.event_id}"
        if item.kind == "event":
            assert item.body is not None
            headers = {"Content-Type": "application/json"}
            return self._client.put(url, content=item.body.encode(), headers=headers)
        assert item.path is not None
        content_type = _CONTENT_TYPES.get(item.kind, "image/jpeg")
        with open(item.path, "rb") as handle:
            files = {"file": (item.path.name, handle, content_type)}
            return self._client.put(f"{url}/media/{item.kind}", files=files)

    def _report(self, item: OutboxItem, outcome: str) -> str:
        if self._on_result is not None:
            self._on_result(item, outcome)
        return outcome

    # ---- heartbeats ----------------------------------------------------------------------

    def _beat_loop(self) -> None:
        while not self._stop.is_set():
            self.heartbeat()
            self._stop.wait(self.tuning.heartbeat_s)

    def heartbeat(self) -> bool:
        if self._heartbeat_body is None:
            return False
        try:
            response = self._beat_client.post("/api/v1/heartbeat", json=self._heartbeat_body())
            ok = response.is_success
            if not ok:
                logger.warning(
                    "heartbeat refused: %d %s", response.status_code, response.text[:200]
                )
        except (httpx.TransportError, OSError) as exc:
            logger.info("heartbeat failed: %s", exc)
            ok = False
        self.last_heartbeat_ok = ok
        if ok and response.status_code == 200 and self._on_heartbeat_reply is not None:
            self._handle_reply(response)
        return ok

    def _handle_reply(self, response: httpx.Response) -> None:
        """The server's answer (HeartbeatReply): its zones version, the pictures it wants."""
        try:
            reply = HeartbeatReply.model_validate_json(response.content)
        except ValidationError as exc:  # an older server answers 204 or {}: nothing to do
            logger.info("heartbeat reply not understood: %s", str(exc)[:200])
            return
        assert self._on_heartbeat_reply is not None
        try:
            self._on_heartbeat_reply(reply)
        except Exception:
            logger.exception("handling the heartbeat reply failed")

    # ---- camera pictures -----------------------------------------------------------------

    def put_picture(self, camera_id: str, jpeg: bytes, persons_json: str | None = None) -> bool:
        """PUT a camera's current picture (with its people, JSON of normalised boxes);
        True when the server took it. Never raises and never retries: a lost picture is
        followed by the next one."""
        files = {"file": (f"{camera_id}.jpg", jpeg, "image/jpeg")}
        data = {"persons": persons_json} if persons_json is not None else None
        try:
            response = self._picture_client.put(
                f"/api/v1/cameras/{camera_id}/picture", files=files, data=data
            )
        except (httpx.TransportError, OSError) as exc:
            logger.info("picture of camera %s not sent: %s", camera_id, exc)
            return False
        if not response.is_success:
            logger.info(
                "picture of camera %s refused: %d %s",
                camera_id,
                response.status_code,
                _server_detail(response),
            )
            return False
        return True


def _server_detail(response: httpx.Response, limit: int = 500) -> str:
    """The server's ``detail`` (FastAPI's error body) when it is a string, else the body."""
    text = response.text
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str):
        text = detail
    return " ".join(text.split())[:limit] or response.reason_phrase
