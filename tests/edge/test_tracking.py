"""PersonTracker, stepped one frame at a time with synthetic detections."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from sitewatch.edge.config import TrackingConfig
from sitewatch.edge.detections import CLASS_NAME, Detections
from sitewatch.edge.tracking import PersonTracker


def _dets(
    boxes: Sequence[tuple[float, float, float, float]],
    names: list[str] | None = None,
    conf: float = 0.9,
) -> Detections:
    names = names or ["person"] * len(boxes)
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        confidence=np.full(len(boxes), conf, np.float32),
        class_id=np.zeros(len(boxes), int),
        data={CLASS_NAME: np.array(names, dtype=str)},
    )


def _walk(step: int) -> list[tuple[float, float, float, float]]:
    """Two people walking in opposite directions, 4 px per frame."""
    return [(100 + 4 * step, 100, 150 + 4 * step, 250), (400 - 4 * step, 120, 450 - 4 * step, 260)]


def test_ids_are_stable_while_people_move() -> None:
    tracker = PersonTracker(TrackingConfig(minimum_consecutive_frames=2), frame_rate=5)
    first = tracker.update(_dets(_walk(0)), now_s=0.0)
    assert len(first) == 0  # not confirmed yet: a track needs two frames
    seen: set[tuple[int, int]] = set()
    for step in range(1, 15):
        out = tracker.update(_dets(_walk(step)), now_s=step * 0.2)
        assert len(out) == 2
        # (id of the person who started on the left, id of the one from the right)
        started_left = int(np.argmin(np.abs(out.xyxy[:, 0] - (100 + 4 * step))))
        assert out.tracker_id is not None
        seen.add((int(out.tracker_id[started_left]), int(out.tracker_id[1 - started_left])))
    assert len(seen) == 1
    left_id, right_id = seen.pop()
    assert left_id != right_id


def test_only_people_are_tracked_and_data_is_kept() -> None:
    tracker = PersonTracker(TrackingConfig(minimum_consecutive_frames=1), frame_rate=5)
    dets = _dets(
        [(10, 10, 60, 200), (20, 15, 40, 35), (300, 10, 360, 210)],
        names=["person", "helmet", "car"],
    )
    tracker.update(dets, now_s=0.0)  # a new track gets its id on its second frame
    out = tracker.update(dets, now_s=0.2)
    names = out.data[CLASS_NAME]
    assert isinstance(names, np.ndarray)
    assert names.tolist() == ["person"]
    assert out.tracker_id is not None and len(out.tracker_id) == 1


def _first_id(dets: Detections) -> int:
    assert dets.tracker_id is not None
    return int(dets.tracker_id[0])


def test_a_lost_track_keeps_its_id_within_the_buffer_and_not_after() -> None:
    cfg = TrackingConfig(minimum_consecutive_frames=1, lost_track_buffer_s=1.0)
    tracker = PersonTracker(cfg, frame_rate=5)
    box = [(100, 100, 150, 250)]
    t = 0.0
    for _ in range(3):
        out = tracker.update(_dets(box), now_s=t)
        t += 0.2
    first_id = _first_id(out)
    for _ in range(3):  # 0.6 s unseen: within the 1 s buffer
        assert len(tracker.update(_dets([]), now_s=t)) == 0
        t += 0.2
    assert _first_id(tracker.update(_dets(box), now_s=t)) == first_id
    t += 3.0  # gone for longer than the buffer
    tracker.update(_dets([]), now_s=t)
    t += 0.2
    tracker.update(_dets([]), now_s=t)
    t += 0.2
    assert len(tracker.update(_dets(box), now_s=t)) == 0  # a new track, not yet confirmed
    t += 0.2
    assert _first_id(tracker.update(_dets(box), now_s=t)) != first_id


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="frame_rate"):
        PersonTracker(TrackingConfig(), frame_rate=0)
    tracker = PersonTracker(TrackingConfig(), frame_rate=5)
    with pytest.raises(ValueError, match="class_name"):
        tracker.update(Detections(xyxy=np.zeros((1, 4), np.float32)), now_s=0.0)
