"""Which frames of a stream to detect on, at a given rate of the stream's own time."""

from __future__ import annotations


class FrameSampler:
    """Chooses the frames to run detection on: at most ``fps`` per second of video time.

    ``fps`` of 0 (or None) selects every frame. Due times lie on a fixed grid from the first
    frame, so rounding never drifts.
    """

    def __init__(self, fps: float | None) -> None:
        self.period_s = 1.0 / fps if fps else 0.0
        self._first_s: float | None = None
        self._next_k = 0

    def take(self, time_s: float) -> bool:
        if self.period_s == 0.0:
            return True
        if self._first_s is None:
            self._first_s = time_s
        due_s = self._first_s + self._next_k * self.period_s
        if time_s + 1e-6 < due_s:
            return False
        elapsed_periods = int((time_s - self._first_s) / self.period_s + 1e-6)
        self._next_k = elapsed_periods + 1
        return True
