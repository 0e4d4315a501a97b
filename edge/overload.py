"""Is a camera behind? The box says so (a metric, a log line, the heartbeat) when a camera
that delivers frames gets fewer detections a second than it should: the CPU cannot keep
up with all its cameras (issue 19)."""

from __future__ import annotations

from datetime import datetime, timedelta

#: A camera below this share of its due rate is behind (jitter stays above it).
BEHIND_SHARE = 0.9
#: Rates are measured over 2 s windows: a camera online for less is not judged yet.
WARM_UP = timedelta(seconds=5)


def is_behind(
    *,
    detect_fps_target: float,
    detect_fps: float,
    capture_fps: float,
    online_since: datetime | None,
    now: datetime,
) -> bool:
    """True when the camera gets under 90 % of the detections it is due: its target,
    or the camera's own frame rate when that is lower (a slow camera is not behind)."""
    if online_since is None or now - online_since < WARM_UP:
        return False
    due = min(detect_fps_target, capture_fps)
    return due > 0 and detect_fps < BEHIND_SHARE * due
