"""Motion gating: is a camera's frame worth a model call? (issue 19)

:class:`MotionTest` is a cheap per-camera test: the frame shrunk to a small grey image
(``width`` pixels wide), blurred, and compared with the previous frame tested; the share
of pixels whose grey level changed by more than ``pixel_threshold`` is the frame's
motion, and the frame moves when that share reaches ``threshold``. It costs well under a
millisecond a frame (``scripts/bench/motion_gate.py``).

:class:`MotionGate` turns that into a decision per frame: call the model when the frame
moves, for ``hold_s`` after the last motion, at least every ``still_recheck_s`` in a
still scene, and (``follow_people``) while the last model call saw anybody, so a person
who stands still is still detected on every frame and no rule loses sight of them. The
pipeline (:class:`~sitewatch.edge.pipeline.CameraPipeline`) keeps the tracker's clock
still over gated frames, so tracks do not age out across a gated stretch, and runs the
rules on every frame, so time passes for them as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sitewatch.edge.config import MotionConfig


class MotionTest:
    """``moving(frame_bgr) -> bool``; the first frame always moves."""

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self._previous: np.ndarray | None = None
        #: Changed-pixel share of the last frame tested (0..1).
        self.last_fraction = 0.0

    def small_grey(self, frame_bgr: np.ndarray) -> np.ndarray:
        height, width = frame_bgr.shape[:2]
        small_w = min(self.cfg.width, width)
        small_h = max(1, round(height * small_w / width))
        # Striding first keeps the resize cheap (704 wide: every 4th pixel, 1080p: 12th);
        # the blur below evens out the sensor noise the skipped pixels would have averaged.
        step = max(1, width // small_w)
        view = frame_bgr[::step, ::step] if step > 1 else frame_bgr
        small = cv2.resize(view, (small_w, small_h), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def fraction(self, frame_bgr: np.ndarray) -> float | None:
        """Changed-pixel share against the previous frame tested (None: the first)."""
        grey = self.small_grey(frame_bgr)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            return None
        diff = cv2.absdiff(grey, previous)
        changed = int(np.count_nonzero(diff > self.cfg.pixel_threshold))
        self.last_fraction = changed / diff.size
        return self.last_fraction

    def moving(self, frame_bgr: np.ndarray) -> bool:
        share = self.fraction(frame_bgr)
        return share is None or share >= self.cfg.threshold

    def reset(self) -> None:
        self._previous = None


@dataclass
class GateCounts:
    detected: int = 0
    gated: int = 0

    @property
    def saved(self) -> float:
        """Share of the frames processed that had no model call."""
        total = self.detected + self.gated
        return self.gated / total if total else 0.0


class MotionGate:
    """Decides per processed frame whether the model runs (see the module doc)."""

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self.test = MotionTest(cfg)
        self.counts = GateCounts()
        self._last_model_s: float | None = None
        self._last_motion_s: float | None = None
        self._saw_people = False

    def wants_model(self, frame_bgr: np.ndarray, now_s: float) -> bool:
        """Whether the model should run on this frame (call once per processed frame)."""
        moving = self.test.moving(frame_bgr)  # always: keeps the reference frame current
        if moving:
            self._last_motion_s = now_s
        due = (
            moving
            or self._last_model_s is None
            or (self._last_motion_s is not None and now_s - self._last_motion_s < self.cfg.hold_s)
            or now_s - self._last_model_s >= self.cfg.still_recheck_s - 1e-6
            or (self.cfg.follow_people and self._saw_people)
        )
        if due:
            self.counts.detected += 1
        else:
            self.counts.gated += 1
        return due

    def model_ran(self, now_s: float, people: int) -> None:
        """The model ran on the frame at ``now_s`` and found ``people`` person boxes."""
        self._last_model_s = now_s
        self._saw_people = people > 0
