"""Reading video files at their own timestamps (PyAV).

Every frame carries its presentation time in seconds from the start of the stream
(``pts * time_base - start_time``), so a replay does not depend on how fast the machine
decodes: the same file gives the same times, and so the same events. A file that cannot be
opened raises :class:`VideoError` naming it; a file damaged part-way (truncated, corrupt
packets) yields the frames before the damage, then :attr:`VideoReader.stopped_at_s` says
where it stopped and :attr:`VideoReader.stop_reason` why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from sitewatch.edge.closing import Closing
from sitewatch.edge.errors import SitewatchError

logger = logging.getLogger(__name__)

#: Origin of event times when the container has no ``creation_time``.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class VideoError(SitewatchError, RuntimeError):
    """A video file that cannot be read at all; the message names the file."""


class VideoFrame:
    """One decoded frame: index, time in seconds from the stream start, lazy BGR pixels."""

    __slots__ = ("_bgr", "_frame", "index", "pts", "time_s")

    def __init__(self, frame: av.VideoFrame, index: int, time_s: float, pts: int) -> None:
        self._frame = frame
        self._bgr: np.ndarray | None = None
        self.index = index
        self.time_s = time_s
        self.pts = pts  # in the stream's time_base, relative to its start

    def bgr(self) -> np.ndarray:
        """The frame as a BGR uint8 array (converted once, on first use)."""
        if self._bgr is None:
            self._bgr = self._frame.to_ndarray(format="bgr24")
        return self._bgr


class VideoReader(Closing):
    """Iterate the frames of a video file; use as a context manager."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.stopped_at_s: float | None = None
        self.stop_reason: str | None = None
        self.frames_read = 0
        self.last_time_s = 0.0  # time of the last frame read
        if not self.path.is_file():
            raise VideoError(f"video file not found: {self.path}")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise VideoError(f"cannot open video {self.path}: {exc}") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"no video stream in {self.path}")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if self._stream.codec_context.width <= 0 or self._stream.codec_context.height <= 0:
            self._container.close()
            raise VideoError(f"video stream of {self.path} has no frame size (corrupt?)")

    # -- properties -------------------------------------------------------------------
    @property
    def time_base(self) -> Fraction:
        return self._stream.time_base or Fraction(1, 1000)

    @property
    def fps(self) -> float:
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) if rate else 25.0

    @property
    def frame_wh(self) -> tuple[int, int]:
        return self._stream.codec_context.width, self._stream.codec_context.height

    @property
    def duration_s(self) -> float | None:
        if self._stream.duration is not None:
            return float(self._stream.duration * self.time_base)
        if self._container.duration is not None:
            return self._container.duration / av.time_base
        return None

    @property
    def frame_count(self) -> int | None:
        """Frames the container announces (may be 0/None for streams that do not say)."""
        return self._stream.frames or None

    @property
    def creation_time(self) -> datetime | None:
        """The container's (or stream's) ``creation_time`` metadata, as UTC."""
        for meta in (self._container.metadata, self._stream.metadata):
            text = meta.get("creation_time")
            if text:
                try:
                    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    logger.warning("%s: unreadable creation_time %r", self.path, text)
                    continue
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return None

    def time_origin(self) -> datetime:
        """Event time of the first frame: creation_time if present, else 1970-01-01 UTC."""
        return self.creation_time or EPOCH

    # -- reading ----------------------------------------------------------------------
    def frames(self) -> Iterator[VideoFrame]:
        """Decoded frames in presentation order; stops quietly (with a warning) on damage."""
        start = self._stream.start_time or 0
        step = 1.0 / self.fps
        last_time_s = -step
        decoder = self._container.decode(self._stream)
        while True:
            try:
                frame = next(decoder)
            except StopIteration:
                self._check_complete()
                return
            except (av.error.FFmpegError, OSError, EOFError) as exc:
                self._stopped(last_time_s, exc)
                return
            if frame.pts is not None:
                pts = frame.pts - start
                time_s = float(pts * self.time_base)
            else:  # no timestamp: one nominal frame after the previous one
                time_s = last_time_s + step
                pts = round(time_s / self.time_base)
            last_time_s = self.last_time_s = time_s
            self.frames_read += 1
            yield VideoFrame(frame, self.frames_read - 1, time_s, pts)

    def _check_complete(self) -> None:
        """At the end: flag a file that holds fewer frames than its header announces.

        A truncated MP4 usually ends without a decoding error, so this is how it is noticed.
        """
        expected = self.frame_count
        if expected and self.frames_read < expected - 1:
            self._stopped(
                self.last_time_s, f"only {self.frames_read} of {expected} frames could be read"
            )

    def _stopped(self, last_time_s: float, reason: object) -> None:
        self.stopped_at_s = max(last_time_s, 0.0)
        self.stop_reason = str(reason)
        logger.warning(
            "%s: video damaged or truncated, stopped at %.2f s (%s)",
            self.path,
            self.stopped_at_s,
            self.stop_reason,
        )

    def close(self) -> None:
        self._container.close()
