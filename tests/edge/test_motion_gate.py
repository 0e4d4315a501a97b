"""Motion gating (edge.motion, issue 19): the motion test, the gate in the pipeline.

The pipeline tests use a stand-in detector that counts its calls and returns scripted
boxes; tracking, attributes and rules are the real ones. The last test replays a short
labelled clip with the real model, gating off and on, and compares the events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sitewatch.contract.events import Event, EventPhase
from sitewatch.edge.config import (
    CameraConfig,
    MotionConfig,
    PersonRuleConfig,
    RulesConfig,
    SiteConfig,
    SiteInfo,
    parse_config,
)
from sitewatch.edge.detections import CLASS_NAME, Detections
from sitewatch.edge.motion import MotionGate, MotionTest
from sitewatch.edge.pipeline import CameraPipeline
from sitewatch.edge.replay import default_site_config

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NAMES = ["person", "head", "helmet"]
FPS = 5.0


def _scene(seed: int = 0) -> np.ndarray:
    """A textured 640x360 frame (a flat one would hide nothing)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, (36, 64, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 10, axis=0), 10, axis=1)


def _with_square(x: int) -> np.ndarray:
    frame = _scene()
    frame[150:210, x : x + 60] = 250
    return frame


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


# ---- the motion test ---------------------------------------------------------------------


def test_a_still_frame_does_not_move_and_the_first_frame_does() -> None:
    test = MotionTest(MotionConfig())
    frame = _scene()
    assert test.moving(frame)  # nothing to compare with yet: worth a look
    assert not any(test.moving(frame.copy()) for _ in range(5))
    assert test.last_fraction == 0.0


def test_a_moving_square_is_motion() -> None:
    test = MotionTest(MotionConfig())
    test.moving(_with_square(100))
    assert test.moving(_with_square(130))
    assert test.last_fraction > 0.01
    assert not test.moving(_with_square(130))  # stopped


def test_sensor_noise_stays_below_the_threshold_and_a_person_sized_change_does_not() -> None:
    rng = np.random.default_rng(1)
    test = MotionTest(MotionConfig())
    base = _scene()
    test.moving(_noisy(base, rng, 3.0))
    assert not any(test.moving(_noisy(base, rng, 3.0)) for _ in range(20))
    # a small person far away: a 12x30 px figure in a 640x360 frame, noise around it
    figure = base.copy()
    figure[200:230, 300:312] = 10
    assert test.moving(_noisy(figure, rng, 3.0))


def test_the_motion_section_is_a_site_setting_on_by_default_and_off_in_a_bare_replay() -> None:
    site = parse_config("site: {id: s}\nmotion: {enabled: true, still_recheck_s: 5}\n")
    assert site.motion.enabled and site.motion.still_recheck_s == 5
    assert not default_site_config(Path("v.mp4")).motion.enabled
    assert SiteConfig(site=SiteInfo(id="s")).motion.enabled  # a site file: on by default


def test_the_gate_holds_after_motion_and_rechecks_a_still_scene() -> None:
    gate = MotionGate(MotionConfig(hold_s=1.0, still_recheck_s=2.0))
    frame = _scene()
    decisions = []
    for i in range(20):  # 4 s of one frame at 5 fps
        now_s = i / FPS
        due = gate.wants_model(frame, now_s)
        if due:
            gate.model_ran(now_s, people=0)
        decisions.append(due)
    # first frame (counts as motion) + hold 1 s (frames 0-4), then 2 s after the last call
    assert [i for i, due in enumerate(decisions) if due] == [0, 1, 2, 3, 4, 14]
    assert gate.counts.detected == 6 and gate.counts.gated == 14


# ---- the gate in the pipeline ------------------------------------------------------------


class CountingDetector:
    """The same boxes on every call; counts the calls."""

    class_names = NAMES
    model_path = Path("scripted.onnx")
    input_wh = (640, 640)

    def __init__(self, boxes: list[tuple[str, tuple[float, float, float, float]]]) -> None:
        self.boxes = boxes
        self.calls = 0

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        self.calls += 1
        names = np.array([n for n, _ in self.boxes], dtype=str)
        return Detections(
            xyxy=np.array([b for _, b in self.boxes], np.float32).reshape(-1, 4),
            confidence=np.full(len(self.boxes), 0.9, np.float32),
            class_id=np.array([NAMES.index(n) for n in names], int),
            data={CLASS_NAME: names},
        )


def _site(**motion: object) -> SiteConfig:
    return SiteConfig(
        site=SiteInfo(id="site"),
        cameras=[CameraConfig(id="cam", source="x.mp4")],
        rules=RulesConfig(person=PersonRuleConfig(enabled=True, end_after_s=1.0)),
        motion=MotionConfig(enabled=True, **motion),  # type: ignore[arg-type]
    )


def _pipeline(site: SiteConfig, detector: CountingDetector) -> CameraPipeline:
    return CameraPipeline(site, site.cameras[0], detector, frame_rate=FPS)


def test_still_frames_skip_the_model_and_are_rechecked_every_still_recheck_s() -> None:
    detector = CountingDetector([])
    pipeline = _pipeline(_site(hold_s=0.0, still_recheck_s=2.0), detector)
    frame = _scene()
    gated = [pipeline.process(frame, T0 + timedelta(seconds=i / FPS)).gated for i in range(50)]
    # 10 s of a still, empty scene: the first frame, then one call every 2 s
    assert [i for i, g in enumerate(gated) if not g] == [0, 10, 20, 30, 40]
    assert detector.calls == 5
    assert not gated[0] and gated[1] and not gated[10]
    assert pipeline.gate is not None and pipeline.gate.counts.gated == 50 - detector.calls


def test_motion_brings_the_model_back_at_once() -> None:
    detector = CountingDetector([])
    pipeline = _pipeline(_site(hold_s=0.0, still_recheck_s=60.0), detector)
    for i in range(10):
        pipeline.process(_with_square(100), T0 + timedelta(seconds=i / FPS))
    assert detector.calls == 1
    result = pipeline.process(_with_square(140), T0 + timedelta(seconds=2.0))
    assert not result.gated and detector.calls == 2


def test_a_person_in_view_is_followed_on_every_frame() -> None:
    detector = CountingDetector([("person", (100, 50, 160, 250))])
    pipeline = _pipeline(_site(hold_s=0.0), detector)
    frame = _scene()
    for i in range(25):
        assert not pipeline.process(frame, T0 + timedelta(seconds=i / FPS)).gated
    assert detector.calls == 25


def test_tracks_survive_a_gated_stretch_longer_than_the_lost_track_buffer() -> None:
    # follow_people off: a standing person is gated too; the tracker's clock must stand
    # still over the 6 s without a model call (lost_track_buffer_s is 2 s), and the rules
    # must see that same person on every gated frame.
    detector = CountingDetector([("person", (100, 50, 160, 250))])
    pipeline = _pipeline(_site(hold_s=0.0, still_recheck_s=60.0, follow_people=False), detector)
    ids: list[list[int]] = []
    events = []
    step = 0

    def feed(frame: np.ndarray) -> None:
        nonlocal step
        result = pipeline.process(frame, T0 + timedelta(seconds=step / FPS))
        step += 1
        ids.append([int(t) for t in result.persons.tracker_id])  # type: ignore[union-attr]
        events.extend(result.events)

    for x in (100, 110, 120, 130, 140):  # moving: detected, the track is confirmed
        feed(_with_square(x))
    calls = detector.calls
    for _ in range(30):  # 6 s still
        feed(_with_square(140))
    assert detector.calls == calls  # gated throughout
    feed(_with_square(180))  # moves again: detected
    assert detector.calls == calls + 1
    confirmed = [i for i in ids if i]
    assert confirmed and all(i == confirmed[0] for i in confirmed), ids
    assert ids[-31:] == [confirmed[0]] * 31
    # one person event, still open: the rules never lost sight of the person
    assert [e.phase for e in events] == [EventPhase.START]


# ---- a labelled clip, real model ---------------------------------------------------------


@pytest.mark.slow
def test_the_events_of_a_labelled_clip_are_the_same_with_gating_on(tmp_path: Path) -> None:
    from sitewatch.edge.detector_pool import load_detector
    from sitewatch.edge.replay import run_replay
    from tests.conftest import shared_file

    video = shared_file("data/videos/turnstile-a.mp4")
    base = default_site_config(video)
    detector = load_detector(base.model)
    runs = {}
    for enabled in (False, True):
        site = base.model_copy(update={"motion": MotionConfig(enabled=enabled)})
        runs[enabled] = run_replay(video, site, site.cameras[0], detector, tmp_path / str(enabled))

    def summary(messages: list[Event]) -> list[tuple[object, ...]]:
        return [(m.rule, m.phase, m.track_id, m.started_at, m.ended_at) for m in messages]

    assert runs[True].frames_detected == runs[False].frames_detected
    assert summary(runs[True].messages) == summary(runs[False].messages)
