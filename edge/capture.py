"""Camera capture: one reader thread per camera that always keeps only the newest frame.

Sources (``CameraConfig.source``):

- ``rtsp://`` / ``rtsps://``: PyAV (FFmpeg) over TCP, with open and read timeouts;
- ``http(s)://``: an MJPEG (multipart) stream or any stream FFmpeg reads, through PyAV;
- a video file path: decoded with PyAV and paced at real time like a camera, looped
  when ``camera.loop`` is set (demos);
- a local camera index (``"0"``): OpenCV's ``VideoCapture`` (V4L2 on Linux).

The reader decodes every frame (inter-coded streams need it) but converts to BGR only on
demand (:meth:`Frame.bgr`), puts each frame into a :class:`FrameSlot` that holds only the
newest one, so a slow consumer never builds up lag, and hands every frame to an optional
``on_frame`` callback (the clip ring buffer, which keeps its own rate). When a stream
drops or cannot be opened the reader reports the camera offline and retries with
exponential backoff; it never raises out of its thread, so a dead camera never stops the
others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class SourceEnded(Exception):
    """A non-looping video file reached its end: the camera stays offline for good."""


@dataclass
class CaptureTuning:
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


class Frame:
    """One decoded frame; converts to a BGR array once, on first use, in the caller's thread."""

    __slots__ = ("_convert", "_image", "_lock", "captured_at", "monotonic_s", "seq")

    def __init__(
        self,
        seq: int,
        captured_at: datetime,
        monotonic_s: float,
        image_bgr: np.ndarray | None = None,
        convert: Callable[[], np.ndarray] | None = None,
    ) -> None:
        if image_bgr is None and convert is None:
            raise ValueError("Frame needs image_bgr or convert")
        self.seq = seq
        self.captured_at = captured_at
        self.monotonic_s = monotonic_s
        self._image = image_bgr
        self._convert = convert
        self._lock = threading.Lock()

    def bgr(self) -> np.ndarray:
        with self._lock:
            if self._image is None:
                assert self._convert is not None
                self._image = self._convert()
                self._convert = None
            return self._image


class FrameSlot:
    """Holds the newest frame only; ``wait_newer`` blocks until a newer one arrives."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._taken_seq = 0
        self.overwritten = 0  # frames replaced before anyone took them

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None and self._frame.seq > self._taken_seq:
                self.overwritten += 1
            self._frame = frame
            self._cond.notify_all()

    def latest(self) -> Frame | None:
        with self._cond:
            return self._frame

    def wait_newer(self, after_seq: int, timeout_s: float) -> Frame | None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._frame is not None and self._frame.seq > after_seq, timeout_s
            )
            if not ok or self._frame is None:
                return None
            self._taken_seq = self._frame.seq
            return self._frame


@dataclass
class CameraState:
    camera_id: str
    online: bool = False
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    error: str | None = None
    fps: float = 0.0
    reconnects: int = 0
    ended: bool = False


def is_local_camera(source: str) -> bool:
    return source.isdigit()


def is_network(source: str) -> bool:
    return source.split("://", 1)[0].lower() in {"rtsp", "rtsps", "http", "https", "rtmp"}


def _pyav_frames(
    source: str, *, tuning: CaptureTuning, pace: bool
) -> Iterator[tuple[Callable[[], np.ndarray], float]]:
    """Decoded frames of one connection / one pass over a file, as (converter, pts_s)."""
    import av

    options = {"rtsp_transport": "tcp"} if source.lower().startswith("rtsp") else {}
    timeout = (tuning.open_timeout_s, tuning.read_timeout_s)
    container = av.open(source, options=options, timeout=timeout)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start_wall = time.monotonic()
        first_pts_s: float | None = None
        for av_frame in container.decode(stream):
            pts_s = float(av_frame.time) if av_frame.time is not None else 0.0
            if pace:
                first_pts_s = pts_s if first_pts_s is None else first_pts_s
                delay_s = (pts_s - first_pts_s) - (time.monotonic() - start_wall)
                if delay_s > 0:
                    time.sleep(min(delay_s, 1.0))
            yield partial(_to_bgr, av_frame), pts_s
    finally:
        container.close()


def _to_bgr(av_frame: Any) -> np.ndarray:
    return np.asarray(av_frame.to_ndarray(format="bgr24"))


def _same(image: np.ndarray) -> np.ndarray:
    return image


def _opencv_frames(source: str) -> Iterator[tuple[Callable[[], np.ndarray], float]]:
    import cv2

    capture = cv2.VideoCapture(int(source))
    if not capture.isOpened():
        raise OSError(f"cannot open local camera {source}")
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                raise OSError(f"local camera {source} stopped delivering frames")
            yield partial(_same, image), time.monotonic()
    finally:
        capture.release()


def open_frames(
    source: str, *, tuning: CaptureTuning, base_dir: Path | None = None
) -> Iterator[tuple[Callable[[], np.ndarray], float]]:
    """One pass over ``source``; raises OSError / av.FFmpegError when it cannot be read."""
    if is_local_camera(source):
        return _opencv_frames(source)
    if is_network(source):
        return _pyav_frames(source, tuning=tuning, pace=False)
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    return _pyav_frames(str(path), tuning=tuning, pace=True)


class CaptureThread(threading.Thread):
    """Reads one camera forever (until ``stop``), reconnecting with exponential backoff."""

    def __init__(
        self,
        camera_id: str,
        source: str,
        *,
        loop: bool = False,
        tuning: CaptureTuning | None = None,
        base_dir: Path | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        on_state: Callable[[CameraState], None] | None = None,
    ) -> None:
        super().__init__(name=f"capture-{camera_id}", daemon=True)
        self.camera_id = camera_id
        self.source = source
        self.loop = loop
        self.tuning = tuning or CaptureTuning()
        self.base_dir = base_dir
        self.slot = FrameSlot()
        self.state = CameraState(camera_id)
        self._on_frame = on_frame
        self._on_state = on_state
        self._stop_event = threading.Event()
        self._seq = 0
        self._fps_window: list[float] = []

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        backoff_s = self.tuning.reconnect_min_s
        while not self._stop_event.is_set():
            try:
                got_frames = self._read_once()
            except SourceEnded:
                self._set_state(online=False, error="end of file", ended=True)
                return
            except Exception as exc:  # any decoder / network failure: retry later
                got_frames = False
                self._set_state(online=False, error=_describe(exc))
                logger.warning("camera %s: %s", self.camera_id, _describe(exc))
            if self._stop_event.is_set():
                break
            backoff_s = self.tuning.reconnect_min_s if got_frames else backoff_s
            if self.state.online:
                self._set_state(online=False, error="stream ended")
            self.state.reconnects += 1
            logger.info("camera %s: reconnecting in %.1f s", self.camera_id, backoff_s)
            self._stop_event.wait(backoff_s)
            backoff_s = min(backoff_s * 2, self.tuning.reconnect_max_s)
        self._set_state(online=False, error="stopped")

    def _read_once(self) -> bool:
        """One connection (or one pass over a file); True if it delivered any frame."""
        got = False
        for convert, _pts_s in open_frames(self.source, tuning=self.tuning, base_dir=self.base_dir):
            if self._stop_event.is_set():
                return got
            if not got:
                got = True
                self._set_state(online=True, error=None)
            self._deliver(convert)
        if (
            got
            and not self.loop
            and not is_network(self.source)
            and not is_local_camera(self.source)
        ):
            raise SourceEnded(self.source)
        return got

    def _deliver(self, convert: Callable[[], np.ndarray]) -> None:
        now_mono = time.monotonic()
        self._seq += 1
        frame = Frame(self._seq, datetime.now(UTC), now_mono, convert=convert)
        self._fps_window.append(now_mono)
        while self._fps_window and now_mono - self._fps_window[0] > 2.0:
            self._fps_window.pop(0)
        span_s = now_mono - self._fps_window[0]
        self.state.fps = (len(self._fps_window) - 1) / span_s if span_s > 0 else 0.0
        self.slot.put(frame)
        if self._on_frame is not None:
            try:
                self._on_frame(frame)
            except Exception:  # a buffer bug must not kill the camera
                logger.exception("camera %s: frame callback failed", self.camera_id)

    def _set_state(self, *, online: bool, error: str | None, ended: bool = False) -> None:
        changed = online != self.state.online
        self.state.error = error
        self.state.ended = ended
        if changed:
            self.state.online = online
            self.state.since = datetime.now(UTC)
            if not online:
                self.state.fps = 0.0
            logger.info(
                "camera %s is %s%s",
                self.camera_id,
                "online" if online else "offline",
                f" ({error})" if error else "",
            )
        if self._on_state is not None:
            self._on_state(self.state)


def _describe(exc: BaseException) -> str:
    text: Any = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
