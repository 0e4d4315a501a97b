"""Replay of real clips with the real ONNX model: tracks, events, snapshots, determinism."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitewatch.cli import app
from sitewatch.contract.events import Event, EventPhase, RuleKind
from sitewatch.edge.config import load_config
from sitewatch.edge.detector import Detector
from sitewatch.edge.frame_sampler import FrameSampler
from sitewatch.edge.pipeline import CameraPipeline
from sitewatch.edge.video import VideoReader

pytestmark = pytest.mark.slow

# One camera whose restricted zone covers the whole picture: every tracked person standing
# in it for 0.5 s raises an event. The model is pinned to the shared COCO YOLOv8n so that
# these tests check the pipeline, not the state of the project's own detector (see
# test_own_model_replays for that one).
SITE_YAML = """
site: {id: test-site}
model: {path: MODEL}
rules:
  restricted_zone: {min_duration_s: 0.5, end_after_s: 1.0}
cameras:
  - id: cam-1
    source: clip.mp4
    detect_fps: 5
    zones:
      restricted:
        - name: everywhere
          polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
"""


@pytest.fixture
def site_yaml(tmp_path: Path, coco_model: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE_YAML.replace("MODEL", str(coco_model)), encoding="utf-8")
    return path


@pytest.fixture
def crew_video(video_dir: Path, coco_model: Path) -> Path:
    return video_dir / "concrete-pour-crew.mp4"


def _replay(video: Path, out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["replay", str(video), "--out", str(out), *args])
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def _messages(out: Path) -> list[Event]:
    lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [Event.model_validate_json(line) for line in lines]


def test_tracks_are_stable_across_frames(crew_video: Path, site_yaml: Path) -> None:
    site = load_config(site_yaml)
    detector = Detector.from_config(site.model, site_yaml)
    pipeline = CameraPipeline(site, site.cameras[0], detector)
    sampler = FrameSampler(5.0)
    seen: Counter[int] = Counter()
    per_frame: list[int] = []
    with VideoReader(crew_video) as reader:
        origin = reader.time_origin()
        for frame in reader.frames():
            if frame.time_s > 3.0:
                break
            if sampler.take(frame.time_s):
                result = pipeline.process(frame.bgr(), origin + timedelta(seconds=frame.time_s))
                tracker_id = result.persons.tracker_id
                assert tracker_id is not None
                ids = tracker_id.tolist()
                assert len(ids) == len(set(ids))  # one box per id in a frame
                seen.update(ids)
                per_frame.append(len(ids))
    detected_frames = len(per_frame)
    assert detected_frames == 15  # 0.0, 0.2, ... 2.8 s
    # The crew works in place: most people keep their id through the whole 3 s.
    steady = [tid for tid, n in seen.items() if n >= 0.8 * detected_frames]
    assert len(steady) >= 4, seen
    assert len(seen) <= 2 * max(per_frame), seen  # ids are not handed out anew each frame


def test_replay_writes_events_and_snapshots(
    crew_video: Path, site_yaml: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, output = _replay(crew_video, out, "--config", str(site_yaml), "--max-seconds", "3")
    assert code == 0, output
    messages = _messages(out)
    starts = [m for m in messages if m.phase is EventPhase.START]
    ends = {m.event_id for m in messages if m.phase is EventPhase.END}
    assert len(starts) >= 4
    assert all(m.rule is RuleKind.RESTRICTED_ZONE and m.zone == "everywhere" for m in starts)
    assert {m.event_id for m in starts} == ends  # the end of the video ends every event
    assert len({m.track_id for m in starts}) == len(starts)  # one event per person
    for start in starts:
        assert start.site_id == "test-site" and start.camera_id == "cam-1"
        assert start.started_at.year == 2022  # the clip's creation_time + pts
        snapshot = out / str(start.snapshot)
        assert snapshot.read_bytes()[:3] == b"\xff\xd8\xff"
    assert len(list(out.glob("*.jpg"))) == len(starts)
    assert "restricted_zone" in output and "frames decoded" in output


def test_two_replays_give_identical_events(
    crew_video: Path, site_yaml: Path, tmp_path: Path
) -> None:
    runs = []
    for name in ("a", "b"):
        code, output = _replay(
            crew_video, tmp_path / name, "--config", str(site_yaml), "--max-seconds", "2"
        )
        assert code == 0, output
        runs.append((tmp_path / name / "events.jsonl").read_bytes())
    assert runs[0] == runs[1]
    assert len(runs[0].splitlines()) >= 2


def test_annotated_video_and_every_frame_detection(crew_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "ann"
    code, output = _replay(
        crew_video, out, "--annotate", "--detect-fps", "0", "--max-seconds", "0.5"
    )
    assert code == 0, output
    assert (out / "events.jsonl").exists()
    import av

    with av.open(str(out / "annotated.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 15 <= frames <= 16
    # every frame of the first half second went through the model
    assert re.search(rf"frames detected\W+{frames}\b", output), output


def test_a_truncated_video_is_replayed_up_to_the_damage(
    crew_video: Path, site_yaml: Path, tmp_path: Path
) -> None:
    data = crew_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 12])
    code, output = _replay(cut, tmp_path / "cut-out", "--config", str(site_yaml))
    assert code == 0, output
    assert "damaged or truncated" in output and "processed up to" in output
    assert json.loads((tmp_path / "cut-out" / "events.jsonl").read_text().splitlines()[0])


def test_unreadable_video_and_unknown_camera_fail_clearly(
    crew_video: Path, site_yaml: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"garbage" * 1000)
    code, output = _replay(junk, tmp_path / "o1")
    assert code == 2 and "junk.mp4" in output
    header_only = tmp_path / "header-only.mp4"  # opens, but holds no frame
    header_only.write_bytes(crew_video.read_bytes()[:20_000])
    code, output = _replay(header_only, tmp_path / "o3", "--config", str(site_yaml))
    assert code == 2 and "no frame could be decoded" in output and "header-only.mp4" in output
    code, output = _replay(junk, tmp_path / "o2", "--config", str(site_yaml), "--camera", "x")
    assert code == 2 and "no camera 'x'" in output and "cam-1" in output


def test_snapshot_highlights_the_event_person() -> None:
    import numpy as np

    from sitewatch.edge.annotate import FrameAnnotator
    from sitewatch.edge.detections import Detections

    frame = np.zeros((200, 300, 3), np.uint8)
    persons = Detections(
        xyxy=np.array([[20, 20, 80, 180], [150, 20, 210, 180]], np.float32),
        tracker_id=np.array([3, 4]),
        data={"helmet_state": np.array(["bare", "helmet"], dtype=object)},
    )
    event = Event(
        site_id="s",
        camera_id="c",
        rule=RuleKind.NO_HELMET,
        track_id=4,
        started_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    image = FrameAnnotator().draw(frame, persons, highlight=event)
    magenta = (image[..., 0] == 255) & (image[..., 1] == 0) & (image[..., 2] == 255)
    _, xs = np.nonzero(magenta)
    assert len(xs) > 100
    assert xs.min() >= 140  # person #4 and its label only, nothing over person #3
    red = (image[..., 2] > 200) & (image[..., 1] < 60) & (image[..., 0] < 60)
    assert red[:, :100].any()  # the bare-headed person #3 is drawn red
    assert not image[100:110, 100:140].any()  # the frame between them is untouched


def test_own_model_replays(crew_video: Path, tmp_path: Path) -> None:
    """The built-in config with the project's own detector (skipped until it is trained)."""
    from sitewatch.resources import model_file

    own = model_file("sitewatch-det.onnx")
    if not own.is_file():
        pytest.skip(f"the project's own model {own} is not there yet")
    detector = Detector(own)
    assert {"person", "head", "helmet"} <= set(detector.class_names)
    out = tmp_path / "own"
    code, output = _replay(crew_video, out, "--max-seconds", "3")
    assert code == 0, output
    assert re.search(r"people tracked\W+[1-9]", output), output
    # Without zones the built-in config reports every person it tracks: one person event
    # per track, each with a snapshot, all ended at the end of the video.
    messages = _messages(out)
    starts = [m for m in messages if m.phase is EventPhase.START]
    people = [m for m in starts if m.rule is RuleKind.PERSON]
    assert len(people) >= 4, output
    assert len({m.track_id for m in people}) == len(people)
    assert {m.event_id for m in people} <= {
        m.event_id for m in messages if m.phase is EventPhase.END
    }
    for event in people:
        assert (out / str(event.snapshot)).read_bytes()[:3] == b"\xff\xd8\xff"
        assert event.helmet_state is not None


def test_decoding_thread_changes_nothing(crew_video: Path, site_yaml: Path, tmp_path: Path) -> None:
    """Frames decoded ahead in a thread (the default) or inline: the same bytes out."""
    from sitewatch.edge.replay import run_replay

    site = load_config(site_yaml)
    detector = Detector.from_config(site.model, site_yaml)
    outputs = []
    for ahead in (0, 4):
        out = tmp_path / f"ahead-{ahead}"
        result = run_replay(
            crew_video, site, site.cameras[0], detector, out, max_seconds=3, decode_ahead=ahead
        )
        assert result.frames_read == 90 and result.decode_busy_s > 0
        files = sorted(out.iterdir())
        outputs.append([(f.name, f.read_bytes()) for f in files])
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) >= 3  # events.jsonl and at least two snapshots
