"""Stable ids for people, from roboflow ``trackers``' ByteTrack.

supervision 0.26+ moved its ``sv.ByteTrack`` into the separate, maintained ``trackers``
package (``trackers.ByteTrackTracker``); this module wraps that. Only person boxes are
tracked. A new track gets an id after ``minimum_consecutive_frames`` matches; boxes of
tracks not yet confirmed are left out of the output, so every returned person has an id.
Given timestamps, the tracker predicts motion over the real time between updates, which
matters when detection runs on a subset of frames.
"""

from __future__ import annotations

import logging

import numpy as np
import trackers

from sitewatch.edge.config import TrackingConfig
from sitewatch.edge.detections import CLASS_NAME, PERSON, Detections

logger = logging.getLogger(__name__)

#: trackers counts its lost-track buffer in frames of a 30 fps video.
_BUFFER_REFERENCE_FPS = 30.0


class PersonTracker:
    """``update(detections) -> tracked person detections`` (``tracker_id`` filled)."""

    def __init__(self, cfg: TrackingConfig, frame_rate: float) -> None:
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        self.cfg = cfg
        self.frame_rate = frame_rate
        self._tracker = trackers.ByteTrackTracker(
            lost_track_buffer=max(1, round(cfg.lost_track_buffer_s * _BUFFER_REFERENCE_FPS)),
            frame_rate=frame_rate,
            track_activation_threshold=cfg.track_activation_threshold,
            minimum_consecutive_frames=cfg.minimum_consecutive_frames,
            # supervision's threshold was a cost (1 - IoU); trackers takes the IoU itself.
            minimum_iou_threshold=1.0 - cfg.minimum_matching_threshold,
            # As in supervision's ByteTrack: boxes that may start a track are "high".
            high_conf_det_threshold=cfg.track_activation_threshold,
        )

    def update(self, dets: Detections, now_s: float | None = None) -> Detections:
        """Track the person boxes of ``dets``; ``now_s`` is the frame time in seconds.

        Without ``now_s`` every call counts as one frame at ``frame_rate``.
        """
        tracked = self._tracker.update(subset(dets, _person_mask(dets)), timestamp=now_s)
        if tracked.tracker_id is None or len(tracked) == 0:
            return _empty_tracked()
        ids = tracked.tracker_id
        confirmed = np.flatnonzero(ids >= 0)
        return subset(tracked, confirmed[np.argsort(ids[confirmed], kind="stable")])

    def reset(self) -> None:
        self._tracker.reset()


def subset(dets: Detections, index: np.ndarray) -> Detections:
    """``dets[index]`` (a boolean mask or integer indices), typed as Detections."""
    picked = dets[index]
    assert isinstance(picked, Detections)
    return picked


def _person_mask(dets: Detections) -> np.ndarray:
    names = dets.data.get(CLASS_NAME)
    if names is None:
        raise ValueError("detections lack data['class_name']; run them through the Detector")
    return np.asarray(names) == PERSON


def _empty_tracked() -> Detections:
    empty = Detections.empty()
    empty.tracker_id = np.empty(0, dtype=int)
    empty.data[CLASS_NAME] = np.empty(0, dtype=str)
    return empty
