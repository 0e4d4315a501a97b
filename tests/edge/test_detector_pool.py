"""Detector pools: session layout, same detections as one session, order kept in replay."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sitewatch.edge.config import ModelConfig
from sitewatch.edge.detections import CLASS_NAME, Detections
from sitewatch.edge.detector import Detector
from sitewatch.edge.detector_pool import (
    DetectionsAhead,
    DetectorPool,
    load_detector,
    session_layout,
)
from sitewatch.edge.replay import default_site_config, run_replay
from sitewatch.edge.video import VideoReader
from sitewatch.resources import model_file

OWN_MODEL = model_file("sitewatch-det.onnx")


@pytest.mark.parametrize(
    ("sessions", "threads", "providers", "cores", "expected"),
    [
        (0, 0, ["CPUExecutionProvider"], 2, (2, 1)),  # one single-threaded session a core
        (0, 0, ["CPUExecutionProvider"], 16, (4, 4)),  # at most 4, the cores split
        (0, 0, ["CPUExecutionProvider"], 1, (1, 0)),  # one core: ORT's own choice
        (0, 2, ["CPUExecutionProvider"], 8, (4, 2)),  # threads given: cores // threads
        (0, 4, ["CPUExecutionProvider"], 2, (1, 4)),
        (0, 0, ["OpenVINOExecutionProvider", "CPUExecutionProvider"], 8, (1, 0)),
        (3, 0, ["CPUExecutionProvider"], 2, (3, 1)),  # asked for: kept
        (1, 0, ["CPUExecutionProvider"], 8, (1, 0)),  # one session: as before pools
    ],
)
def test_session_layout(
    sessions: int, threads: int, providers: list[str], cores: int, expected: tuple[int, int]
) -> None:
    cfg = ModelConfig(sessions=sessions, threads=threads, providers=providers)
    assert session_layout(cfg, cores) == expected


@pytest.mark.parametrize(
    ("sessions", "threads", "expected"), [(0, 0, (1, 0)), (0, 2, (1, 2)), (2, 0, (2, 1))]
)
def test_the_live_cameras_share_one_session_unless_sessions_is_set(
    sessions: int, threads: int, expected: tuple[int, int]
) -> None:
    cfg = ModelConfig(sessions=sessions, threads=threads)
    assert session_layout(cfg, 2, concurrent_callers=True) == expected


def test_the_live_edge_builds_its_pipelines_on_the_layout_it_asks_for(tmp_path: Path) -> None:
    from sitewatch.edge.config import CameraConfig, SiteConfig, SiteInfo
    from sitewatch.edge.live import default_pipeline_factory

    model = _own_model()
    for sessions, kind in ((0, Detector), (2, DetectorPool)):
        site = SiteConfig(
            site=SiteInfo(id="s"),
            model=ModelConfig(path=str(model), sessions=sessions),
            cameras=[CameraConfig(id="c", source="clip.mp4")],
        )
        pipeline = default_pipeline_factory(None)(site, site.cameras[0])
        assert type(pipeline.detector) is kind  # type: ignore[attr-defined]


def test_sessions_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="sessions"):
        ModelConfig(sessions=-1)


class _SlowDetector:
    """Stands in for a session: marks each frame's detections with its value, after a
    random delay, so that frames finish out of order when several run at once."""

    def __init__(self, seed: int, fail_on: int | None = None) -> None:
        self.model_path = Path("slow.onnx")
        self.class_names = ["person"]
        self.input_wh = (32, 32)
        self._random = random.Random(seed)
        self._fail_on = fail_on
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        value = int(frame_bgr[0, 0, 0])
        if value == self._fail_on:
            raise RuntimeError(f"frame {value} broke")
        time.sleep(self._random.uniform(0.0, 0.01))
        return Detections(
            xyxy=np.array([[value, 0, value + 1, 1]], np.float32),
            confidence=np.ones(1, np.float32),
            class_id=np.zeros(1, int),
            data={CLASS_NAME: np.array(["person"])},
        )


def _frame(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.uint8)


def test_detections_ahead_keep_the_order_and_pass_undetected_items() -> None:
    pool = DetectorPool([_SlowDetector(seed) for seed in range(3)])  # type: ignore[misc]
    items = [(i, _frame(i) if i % 3 else None) for i in range(60)]
    ahead = DetectionsAhead(pool, items, depth=6)
    got = list(ahead)
    pool.close()
    assert [item for item, _ in got] == list(range(60))
    for item, detections in got:
        if item % 3 == 0:
            assert detections is None
        else:
            assert detections is not None and detections.xyxy[0, 0] == item
    assert ahead.wait_s > 0


def test_a_failed_detection_is_raised_to_the_reader_in_its_place() -> None:
    pool = DetectorPool([_SlowDetector(seed, fail_on=7) for seed in range(2)])  # type: ignore[misc]
    seen = []
    with pytest.raises(RuntimeError, match="frame 7 broke"):
        for item, _ in DetectionsAhead(pool, [(i, _frame(i)) for i in range(20)], depth=4):
            seen.append(item)
    pool.close()
    assert seen == list(range(7))


def test_the_pool_lends_each_session_to_one_caller_at_a_time() -> None:
    class Counting(_SlowDetector):
        def detect(self, frame_bgr: np.ndarray) -> Detections:
            with self._lock:
                self.running += 1
                self.most_running = max(self.most_running, self.running)
            try:
                return super().detect(frame_bgr)
            finally:
                with self._lock:
                    self.running -= 1

    sessions = [Counting(seed) for seed in range(2)]
    pool = DetectorPool(sessions)  # type: ignore[arg-type]
    threads = [
        threading.Thread(target=lambda: [pool.detect(_frame(i)) for i in range(20)])
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [s.most_running for s in sessions] == [1, 1]


def _own_model() -> Path:
    if not OWN_MODEL.is_file():
        pytest.skip(f"the project's own model {OWN_MODEL} is not there")
    return OWN_MODEL


@pytest.mark.slow
def test_a_pool_finds_what_one_session_finds(video_dir: Path) -> None:
    model = _own_model()
    single = Detector(model)
    pool = load_detector(ModelConfig(path=str(model), sessions=2))
    assert isinstance(pool, DetectorPool) and pool.sessions == 2
    frames = []
    with VideoReader(video_dir / "concrete-pour-crew.mp4") as reader:
        for frame in reader.frames():
            frames.append(frame.bgr())
            if len(frames) == 12:
                break
    expected = [single.detect(frame) for frame in frames]
    futures = [pool.submit(frame) for frame in frames]
    pooled = [future.result() for future in futures]
    pool.close()
    assert sum(len(d) for d in expected) > 20
    for want, got in zip(expected, pooled, strict=True):
        np.testing.assert_array_equal(got.xyxy, want.xyxy)
        np.testing.assert_array_equal(got.confidence, want.confidence)
        got_names, want_names = got.data[CLASS_NAME], want.data[CLASS_NAME]
        assert isinstance(got_names, np.ndarray) and isinstance(want_names, np.ndarray)
        assert got_names.tolist() == want_names.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("detect_fps", [0, 5])
def test_replay_with_a_pool_writes_the_same_bytes(
    video_dir: Path, tmp_path: Path, detect_fps: float
) -> None:
    """Frames detected side by side, then tracked in order: events.jsonl and snapshots are
    byte-identical to a replay with one session."""
    model = _own_model()
    video = video_dir / "concrete-pour-crew.mp4"
    site = default_site_config(video)
    site = site.model_copy(update={"model": ModelConfig(path=str(model), sessions=2)})
    outputs = []
    for name, detector in (("single", Detector(model)), ("pool", load_detector(site.model))):
        out = tmp_path / name
        result = run_replay(
            video, site, site.cameras[0], detector, out, detect_fps=detect_fps, max_seconds=4
        )
        assert result.detect_sessions == (2 if name == "pool" else 1)
        outputs.append(sorted((p.name, p.read_bytes()) for p in out.rglob("*") if p.is_file()))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) >= 3  # events.jsonl and person snapshots
