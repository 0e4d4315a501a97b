"""Each camera's current picture for the server's camera page and zone editor (issue 17).

One daemon thread sends every camera's last detected frame (a JPEG, longest side
``picture_max_side``, unknown faces blurred where the site's privacy asks) with the people
its detection saw (normalised boxes), every ``picture_interval_s`` and at once for the
cameras a heartbeat reply names (``pictures_wanted``). It goes through the uploader's own
connection, not the outbox: a lost picture is fine, the next one comes. Camera threads
only hand over a reference to their frame; the resizing, blurring and sending happen here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

logger = logging.getLogger(__name__)

#: A camera the server asks for again within this many seconds is not sent twice.
_REQUEST_GAP_S = 2.0


class PictureSource(Protocol):
    @property
    def camera_id(self) -> str: ...

    def picture(self, *, max_side: int, quality: int) -> tuple[bytes, str] | None: ...


Send = Callable[[str, bytes, str | None], bool]


class PictureSender:
    def __init__(
        self,
        sources: Sequence[PictureSource],
        send: Send,
        *,
        interval_s: float = 300.0,
        max_side: int = 1280,
        quality: int = 80,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        """``ready``: whether the server knows the cameras yet (a heartbeat went through)."""
        self.sources = {s.camera_id: s for s in sources}
        self.send = send
        self.interval_s = interval_s
        self.max_side, self.quality = max_side, quality
        self.ready = ready
        self.sent = 0
        self.failed = 0
        self._wanted: set[str] = set()
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pictures", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def want(self, camera_ids: Sequence[str]) -> None:
        """The server asks for these cameras' pictures now (unknown ids are ignored)."""
        ids = {c for c in camera_ids if c in self.sources}
        if not ids:
            return
        with self._lock:
            self._wanted |= ids
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set() or not self.ready():
                continue
            try:
                self.round(time.monotonic())
            except Exception:  # a picture must never take the box down
                logger.exception("camera pictures failed")

    def round(self, now: float) -> int:
        """Send what is due at ``now`` (monotonic); returns how many went."""
        with self._lock:
            wanted, self._wanted = self._wanted, set()
        count = 0
        for camera_id, source in self.sources.items():
            last = self._last.get(camera_id)
            asked = camera_id in wanted and (last is None or now - last >= _REQUEST_GAP_S)
            if not asked and last is not None and now - last < self.interval_s:
                continue
            picture = source.picture(max_side=self.max_side, quality=self.quality)
            if picture is None:  # no frame yet: ask again at the next round
                if camera_id in wanted:
                    with self._lock:
                        self._wanted.add(camera_id)
                continue
            self._last[camera_id] = now
            jpeg, persons = picture
            if self.send(camera_id, jpeg, persons):
                self.sent += 1
                count += 1
                logger.info(
                    "picture of camera %s sent (%d KB%s)",
                    camera_id,
                    len(jpeg) // 1024,
                    ", asked for" if asked else "",
                )
            else:
                self.failed += 1
        return count
