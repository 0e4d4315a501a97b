"""Event clips: a per-camera ring buffer of recent frames and the clip recorder.

Memory is bounded twice: the ring keeps frames for ``max_age_s`` seconds only, and no
more than ``max_bytes`` of them. Frames are stored as JPEG (quality 85), downscaled to at
most ``max_width`` pixels wide and sampled at ``fps`` (10 by default), so a 1080p camera
costs about 5-15 MB for 10 s instead of ~600 MB of raw frames.

A clip for an event covers ``[start, end]`` (``started_at - pre_s`` to the time the event
was raised ``+ post_s``): :class:`ClipRecorder` copies the frames already buffered from
``start`` at once, collects new ones until ``end``, then encodes in a background thread
(:func:`sitewatch.edge.mp4.write_clip`: H.264, ``+faststart``, renamed into place when
complete).

Privacy: a recorder can be given a ``filter_factory``; each encoder thread calls it once
(lazily, so models that must not be shared across threads get one instance per thread)
and every clip frame goes through the filter before it is encoded (see
:func:`edge.faces.clip_privacy.clip_blur_factory`: unknown faces blurred).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.mp4 import FrameFilter, write_clip
from sitewatch.edge.snapshots import encode_jpeg

logger = logging.getLogger(__name__)

JPEG_QUALITY = 85
#: Never make a clip longer than this, whatever the event's timing says.
MAX_CLIP_S = 60.0


@dataclass(frozen=True)
class BufferedFrame:
    captured_at: datetime
    jpeg: bytes

    def decode(self) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("corrupt JPEG in the clip ring buffer")
        return image


def downscale_even(image_bgr: np.ndarray, max_width: int) -> np.ndarray:
    """At most ``max_width`` wide, both sides even (yuv420p needs it)."""
    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_width / width)
    new_w, new_h = int(width * scale) // 2 * 2, int(height * scale) // 2 * 2
    if (new_w, new_h) == (width, height):
        return image_bgr
    return cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)


class FrameRing:
    """Recent frames of one camera as JPEG, bounded by age and bytes; thread-safe."""

    def __init__(
        self,
        *,
        max_age_s: float,
        max_bytes: int = 48 * 1024**2,
        fps: float = 10.0,
        max_width: int = 1280,
    ) -> None:
        if max_age_s <= 0 or max_bytes <= 0 or fps <= 0:
            raise ValueError("FrameRing needs positive max_age_s, max_bytes and fps")
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.min_interval_s = 1.0 / fps
        self.max_width = max_width
        self._frames: deque[BufferedFrame] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[BufferedFrame], None]] = []

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._frames)

    def wants(self, captured_at: datetime) -> bool:
        """False when the last kept frame is too recent (keeps the ring at ``fps``)."""
        with self._lock:
            if not self._frames:
                return True
            gap_s = (captured_at - self._frames[-1].captured_at).total_seconds()
        return gap_s >= self.min_interval_s * 0.9

    def add(self, captured_at: datetime, image_bgr: np.ndarray) -> BufferedFrame | None:
        if not self.wants(captured_at):
            return None
        item = BufferedFrame(
            captured_at, encode_jpeg(downscale_even(image_bgr, self.max_width), JPEG_QUALITY)
        )
        with self._lock:
            self._frames.append(item)
            self._bytes += len(item.jpeg)
            self._trim(captured_at)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(item)
        return item

    def _trim(self, now: datetime) -> None:
        oldest = now - timedelta(seconds=self.max_age_s)
        while self._frames and (
            self._frames[0].captured_at < oldest or self._bytes > self.max_bytes
        ):
            self._bytes -= len(self._frames.popleft().jpeg)

    def since(self, start: datetime) -> list[BufferedFrame]:
        with self._lock:
            return [f for f in self._frames if f.captured_at >= start]

    def subscribe(self, listener: Callable[[BufferedFrame], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[BufferedFrame], None]) -> None:
        with self._lock:
            self._listeners.remove(listener)


@dataclass
class _Pending:
    event_id: str
    start: datetime
    end: datetime
    path: Path
    on_done: Callable[[str, Path | None], None]
    frames: list[BufferedFrame] = field(default_factory=list)


class ClipRecorder:
    """Turns clip requests into MP4 files, frames taken from one camera's ring."""

    def __init__(
        self,
        ring: FrameRing,
        encoder: ThreadPoolExecutor,
        *,
        fps: float = 10.0,
        filter_factory: Callable[[], FrameFilter] | None = None,
    ):
        self.ring = ring
        self.fps = fps
        self.filter_factory = filter_factory
        self._thread_filters = threading.local()  # one filter per encoder thread
        self._encoder = encoder
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._futures: list[Future[None]] = []
        ring.subscribe(self._on_frame)

    def request(
        self,
        event_id: str,
        start: datetime,
        end: datetime,
        path: Path,
        on_done: Callable[[str, Path | None], None],
    ) -> None:
        end = min(end, start + timedelta(seconds=MAX_CLIP_S))
        pending = _Pending(event_id, start, end, path, on_done, self.ring.since(start))
        with self._lock:
            self._pending.append(pending)

    @property
    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def _on_frame(self, item: BufferedFrame) -> None:
        ready: list[_Pending] = []
        with self._lock:
            for pending in self._pending:
                if item.captured_at <= pending.end:
                    if not pending.frames or item.captured_at > pending.frames[-1].captured_at:
                        pending.frames.append(item)
                else:
                    ready.append(pending)
            self._pending = [p for p in self._pending if p not in ready]
        for pending in ready:
            self._submit(pending)

    def _submit(self, pending: _Pending) -> None:
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._encoder.submit(self._encode, pending))

    def _thread_filter(self) -> FrameFilter | None:
        """This thread's filter, made on first use (its models stay in this thread)."""
        if self.filter_factory is None:
            return None
        made: FrameFilter | None = getattr(self._thread_filters, "filter", None)
        if made is None:
            made = self.filter_factory()
            self._thread_filters.filter = made
        return made

    def _encode(self, pending: _Pending) -> None:
        started = time.perf_counter()
        try:
            frame_filter = self._thread_filter()
            path = write_clip(pending.frames, pending.path, fps=self.fps, frame_filter=frame_filter)
            logger.info(
                "clip for event %s: %d frames in %.2f s%s",
                pending.event_id,
                len(pending.frames),
                time.perf_counter() - started,
                " (frames filtered)" if frame_filter is not None else "",
            )
        except (ValueError, OSError) as exc:
            logger.error("clip for event %s not written: %s", pending.event_id, exc)
            path = None
        except Exception:  # an encoder failure must not take the camera down
            logger.exception("clip for event %s not written", pending.event_id)
            path = None
        pending.on_done(pending.event_id, path)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Finish every clip now with the frames it has (shutdown) and wait for the encoder.

        Waits ``timeout_s`` at most; clips still encoding then (long clips with face blur)
        are logged and left to the encoder pool, whose shutdown waits for them.
        """
        with self._lock:
            pending, self._pending = self._pending, []
        for item in pending:
            logger.info("finishing clip for event %s early (shutdown)", item.event_id)
            self._submit(item)
        done, not_done = wait(list(self._futures), timeout=timeout_s)
        for future in done:
            future.result()  # _encode catches its own errors; anything else is a bug
        if not_done:  # e.g. long clips with face blur: the encoder pool still finishes them
            logger.warning("%d clip(s) still encoding after %.0f s", len(not_done), timeout_s)
