"""CameraPipeline wiring: detections -> tracks -> helmet state -> no_helmet events.

The detector here is a stand-in that returns scripted boxes (with head and helmet
classes), because the project's own head/helmet model is not always on disk; tracking,
attributes, colour and rules are the real ones. The real-model path is covered by
test_replay.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from sitewatch.contract.events import EventPhase, RuleKind
from sitewatch.edge.config import (
    CameraConfig,
    NoHelmetRuleConfig,
    RulesConfig,
    SiteConfig,
    SiteInfo,
)
from sitewatch.edge.detections import CLASS_NAME, HELMET_COLOUR, HELMET_STATE, ROLE, Detections
from sitewatch.edge.pipeline import CameraPipeline

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NAMES = ["person", "head", "helmet"]


class ScriptedDetector:
    """Returns the boxes of the next scripted frame."""

    class_names = NAMES
    model_path = Path("scripted.onnx")
    input_wh = (640, 640)  # a FrameDetector has one (its model input size)

    def __init__(
        self, frames: Sequence[Sequence[tuple[str, tuple[float, float, float, float]]]]
    ) -> None:
        self.frames = iter(frames)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        boxes = next(self.frames)
        names = np.array([n for n, _ in boxes], dtype=str)
        return Detections(
            xyxy=np.array([b for _, b in boxes], np.float32).reshape(-1, 4),
            confidence=np.full(len(boxes), 0.9, np.float32),
            class_id=np.array([NAMES.index(n) for n in names], int),
            data={CLASS_NAME: names},
        )


def _site() -> SiteConfig:
    rules = RulesConfig(no_helmet=NoHelmetRuleConfig(min_duration_s=1.0, end_after_s=1.0))
    return SiteConfig(
        site=SiteInfo(id="site"), rules=rules, cameras=[CameraConfig(id="cam", source="x.mp4")]
    )


def test_a_bare_head_raises_one_no_helmet_event_and_a_red_helmet_does_not() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[100:112, 400:430] = (30, 30, 220)  # the second worker's helmet shell is red
    bare = ("person", (100, 100, 160, 300)), ("head", (115, 100, 145, 130))
    red = ("person", (390, 95, 440, 300)), ("helmet", (400, 98, 430, 128))
    script = [[*bare, *red] for _ in range(15)] + [list(red) for _ in range(10)]
    pipeline = CameraPipeline(_site(), _site().cameras[0], ScriptedDetector(script), frame_rate=5)
    events, states = [], []
    raised_s: float | None = None
    for i in range(len(script)):
        result = pipeline.process(frame, T0 + timedelta(seconds=0.2 * i))
        events.extend(result.events)
        if any(e.rule is RuleKind.NO_HELMET for e in result.events) and raised_s is None:
            raised_s = 0.2 * i
        if i == 5:
            states = list(
                zip(
                    result.persons.data[HELMET_STATE],
                    result.persons.data[ROLE],
                    result.persons.data[HELMET_COLOUR],
                    strict=True,
                )
            )
        assert set(result.timings_s) == {"detect", "track", "attributes", "rules"}
    assert ("bare", "", "") in states and ("helmet", "party_member", "red") in states
    no_helmet = [e for e in events if e.rule is RuleKind.NO_HELMET]
    assert [e.phase for e in no_helmet] == [EventPhase.START, EventPhase.END]
    start = no_helmet[0]
    # tracked (id confirmed) from the second frame: the hazard starts there, and the
    # event is raised once it has lasted min_duration_s (1 s)
    assert start.started_at == T0 + timedelta(seconds=0.2)
    assert raised_s is not None and 1.2 - 1e-9 <= raised_s <= 1.4
    assert start.track_id is not None
    assert start.bbox_xyxy is not None and start.bbox_xyxy[0] == 100
    assert pipeline.finish(T0 + timedelta(seconds=6)) == []
