"""Zones managed on the server (issue 17): pulled, kept on disk, swapped into the cameras.

The box's YAML stays the base. The server's :class:`~sitewatch.contract.site_config.SiteZones`
(``GET /api/v1/site-config?since_version=N``: 200 with the whole version, 204 when the box
has it) lists the cameras it manages: such a camera judges with the server's zones in
place of its YAML zones; a camera not listed (or dropped from the list) judges with its
YAML zones.

:class:`ZonesSync` pulls every ``server.zones_sync_interval_s`` and at once when a
heartbeat reply says the server has another version (:meth:`ZonesSync.wake`). Each version
it gets is written whole to ``site-zones.json`` in the outbox folder (temporary file, then
rename) before it is applied, and read back at start, so a box that starts without the
network runs with the last version it got. Each new version is handed to the subscribers
(the camera workers, which swap it in between two frames). A failed pull is logged and
counted; the zones in use are kept.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import ValidationError

from sitewatch.contract.site_config import SiteZones
from sitewatch.edge.config import CameraConfig
from sitewatch.edge.errors import SitewatchError
from sitewatch.zones.config import CameraZones

logger = logging.getLogger(__name__)

SITE_CONFIG_PATH = "/api/v1/site-config"
#: The last SiteZones the box got, in the outbox folder (the box's writable state).
SITE_ZONES_NAME = "site-zones.json"

Subscriber = Callable[[SiteZones], None]


class ZonesSyncError(SitewatchError, RuntimeError):
    """The server could not be asked, or answered something unusable."""


def load_site_zones(path: Path) -> SiteZones:
    """The SiteZones kept in ``path``; ValueError naming the problem when unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return SiteZones.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"{path}: {describe_errors(exc)}") from None


def save_site_zones(path: Path, zones: SiteZones) -> None:
    """Write ``zones`` to ``path`` whole: a temporary file, flushed, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(zones.model_dump_json(indent=1, exclude_none=True))
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def describe_errors(exc: ValidationError) -> str:
    """Every problem of a SiteZones validation with where it is (cameras.<id>.restricted[0])."""
    problems = []
    for error in exc.errors():
        where = ""
        for part in error["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def camera_zones(
    camera: CameraConfig, site_zones: SiteZones | None
) -> tuple[CameraZones, int | None]:
    """The zones ``camera`` judges with and their server version (None: its YAML zones)."""
    if site_zones is not None and camera.id in site_zones.cameras:
        return site_zones.cameras[camera.id], site_zones.version
    return camera.zones, None


class ZonesSync:
    """The server's zones of one site: kept file, periodic pull, subscribers."""

    def __init__(
        self,
        base_url: str,
        token: str,
        path: Path,
        *,
        interval_s: float = 30.0,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        #: Pulls that failed (unreachable server, HTTP error, malformed answer).
        self.failures = 0
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._lock = threading.Lock()
        self._pull_lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._zones: SiteZones | None = None
        if self.path.exists():
            try:
                self._zones = load_site_zones(self.path)
                logger.info(
                    "site zones v%d from %s: camera(s) %s",
                    self._zones.version,
                    self.path,
                    ", ".join(sorted(self._zones.cameras)) or "none",
                )
            except ValueError as exc:  # never stop the box for it: the next pull rewrites it
                logger.error("ignoring the kept site zones: %s", exc)

    @property
    def zones(self) -> SiteZones | None:
        """The version in use (None: none got yet)."""
        return self._zones

    @property
    def version(self) -> int | None:
        return self._zones.version if self._zones is not None else None

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def note_server_version(self, version: int) -> None:
        """A heartbeat reply's site_config_version: pull at once when it is not ours."""
        if version != (self.version or 0):
            logger.info("server has site zones v%d (box: v%s): pulling", version, self.version)
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    def pull(self) -> bool:
        """One pull now; True when a new version was applied. Never raises: a failure is
        logged and counted, and the zones in use are kept."""
        with self._pull_lock:
            try:
                zones = self._fetch()
            except ZonesSyncError as exc:
                self.failures += 1
                logger.warning("%s; keeping site zones v%s", exc, self.version)
                return False
            if zones is None:
                return False
            try:
                save_site_zones(self.path, zones)
            except OSError as exc:  # still apply it: the box runs right until a restart
                logger.error("cannot keep site zones v%d in %s: %s", zones.version, self.path, exc)
            self._apply(zones)
            return True

    def _fetch(self) -> SiteZones | None:
        params = {"since_version": self.version or 0}
        try:
            answer = self._client.get(SITE_CONFIG_PATH, params=params)
        except httpx.HTTPError as exc:
            raise ZonesSyncError(f"site zones pull: {exc}") from exc
        if answer.status_code == 204:
            return None
        if answer.status_code != 200:
            raise ZonesSyncError(
                f"site zones pull: HTTP {answer.status_code} from {answer.url}: {answer.text[:200]}"
            )
        try:
            zones = SiteZones.model_validate_json(answer.content)
        except ValidationError as exc:
            raise ZonesSyncError(f"site zones pull: refused ({describe_errors(exc)})") from exc
        current = self._zones
        if current is not None and zones.model_dump() == current.model_dump():
            return None
        return zones

    def _apply(self, zones: SiteZones) -> None:
        with self._lock:
            before = self._zones
            self._zones = zones
            subscribers = list(self._subscribers)
        before_ids = set(before.cameras) if before is not None else set()
        logger.info(
            "site zones v%s -> v%d: server zones for %s%s",
            before.version if before is not None else "-",
            zones.version,
            ", ".join(sorted(zones.cameras)) or "no camera",
            f"; back to YAML zones: {', '.join(sorted(before_ids - set(zones.cameras)))}"
            if before_ids - set(zones.cameras)
            else "",
        )
        for subscriber in subscribers:
            try:
                subscriber(zones)
            except Exception:
                logger.exception("site zones: a subscriber failed to take v%d", zones.version)

    def start(self) -> None:
        """First pull (blocking, bounded by the server timeout), then poll in a thread."""
        if self._thread is not None:
            return
        self.pull()
        self._thread = threading.Thread(target=self._poll, name="zones-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._client.close()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.pull()
