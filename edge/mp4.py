"""Writing H.264 MP4 files (PyAV/libx264): a replay's annotated video and event clips.

Frames keep the times they are given (milliseconds as pts), so the output plays in step
with the source. Clips are written for browsers: ``+faststart`` (they play while
downloading), to a temporary name that is synced and renamed into place when complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from sitewatch.edge.closing import Closing

#: A per-frame image transform applied before encoding (e.g. blur unknown faces).
FrameFilter = Callable[[np.ndarray], np.ndarray]
TIME_BASE = Fraction(1, 1000)


class Mp4Writer(Closing):
    """Writes BGR frames to an H.264 (yuv420p) MP4 at given times; a context manager.

    Odd frame sizes are cropped by one pixel (yuv420p needs even sides).
    """

    def __init__(
        self,
        path: Path,
        fps: float,
        frame_wh: tuple[int, int],
        crf: int = 23,
        *,
        faststart: bool = False,
    ) -> None:
        self.path = Path(path)
        self.time_base = TIME_BASE
        self._wh = (frame_wh[0] - frame_wh[0] % 2, frame_wh[1] - frame_wh[1] % 2)
        options = {"movflags": "+faststart"} if faststart else {}
        self._container = av.open(str(self.path), mode="w", format="mp4", options=options)
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self._wh
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = self.time_base
        # the encoder counts in ms too: at its default 1/fps two frames closer than a frame
        # period would get the same pts, and muxing refuses them (EINVAL)
        self._stream.codec_context.time_base = self.time_base
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._last_pts = -1

    def write(self, frame_bgr: np.ndarray, time_s: float) -> None:
        width, height = self._wh
        image = np.ascontiguousarray(frame_bgr[:height, :width])
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        pts = max(round(time_s / self.time_base), self._last_pts + 1)
        frame.pts, frame.time_base = pts, self.time_base
        self._last_pts = pts
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


class TimedImage(Protocol):
    """A stored frame that knows when it was captured (``clips.BufferedFrame``)."""

    @property
    def captured_at(self) -> datetime: ...

    def decode(self) -> np.ndarray: ...


def write_clip(
    frames: Sequence[TimedImage],
    path: Path,
    *,
    fps: float = 10.0,
    frame_filter: FrameFilter | None = None,
) -> Path:
    """Encode ``frames`` to a browser-playable clip at ``path`` (atomically: synced, renamed).

    Every frame takes the first one's size; ``frame_filter``, when given, transforms each
    decoded frame before it is encoded.
    """
    if not frames:
        raise ValueError(f"no frames for clip {path}")
    first = frames[0].decode()
    height, width = first.shape[:2]
    tmp = path.with_name(f".{path.name}.part")
    t0 = frames[0].captured_at
    with Mp4Writer(tmp, fps, (width, height), crf=26, faststart=True) as writer:
        for item in frames:
            image = item.decode()
            if frame_filter is not None:
                image = frame_filter(image)
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height))
            writer.write(image, (item.captured_at - t0).total_seconds())
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path
