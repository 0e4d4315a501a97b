"""Privacy in event clips: unknown faces are blurred in every frame of the encoded MP4.

Real frames of red-white-helmets.mp4 go through the real FrameRing -> ClipRecorder ->
PyAV/libx264 path with the real YuNet/SFace models; the MP4 is decoded again and the
labelled face boxes (tests/data/faces/labels.json) are checked on the pixels.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sitewatch.edge.clips import ClipRecorder, FrameRing
from sitewatch.edge.config import CameraConfig, FacesConfig, PrivacyConfig, SiteConfig, SiteInfo
from sitewatch.edge.faces.clip_privacy import clip_blur_factory
from sitewatch.edge.faces.detection import Face
from sitewatch.edge.faces.stage import FaceStage
from sitewatch.edge.faces.tracks import FaceRegister
from sitewatch.edge.mp4 import FrameFilter
from tests.conftest import shared_file
from tests.edge.live_support import ffprobe

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
VIDEO = "red-white-helmets.mp4"
FIRST, LAST, STEP = 30, 100, 5  # source frames 30, 35, ..., 100 -> clip frames 0..14
LABELS = Path(__file__).resolve().parents[1] / "data" / "faces" / "labels.json"


@pytest.fixture(scope="module")
def source() -> dict[int, np.ndarray]:
    frames: dict[int, np.ndarray] = {}
    with av.open(str(shared_file(f"data/videos/{VIDEO}"))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i > LAST:
                break
            if i >= FIRST and (i - FIRST) % STEP == 0:
                frames[i] = frame.to_ndarray(format="bgr24")
    return frames


@pytest.fixture(scope="module")
def stage() -> FaceStage:
    models = shared_file("models/face_detection_yunet_2026may.onnx").parent
    return FaceStage(FacesConfig(enabled=True, models_dir=str(models)), register=FaceRegister())


def _labelled(index: int) -> list[np.ndarray]:
    frames = json.loads(LABELS.read_text())["frames"]
    entry = next(f for f in frames if f["video"] == VIDEO and f["frame_index"] == index)
    return [np.array(face["xyxy"], np.float32) for face in entry["faces"]]


def _site(blur: bool) -> SiteConfig:
    return SiteConfig(
        site=SiteInfo(id="site"),
        cameras=[CameraConfig(id="cam", source="x.mp4")],
        privacy=PrivacyConfig(blur_unknown_faces=blur),
    )


def _record(
    source: dict[int, np.ndarray],
    tmp_path: Path,
    factory: Callable[[], FrameFilter] | None,
) -> list[np.ndarray]:
    """One clip through FrameRing + ClipRecorder on a clip-encoder thread; decoded frames."""
    ring = FrameRing(max_age_s=60.0, fps=10.0)
    done: dict[str, Path | None] = {}
    with ThreadPoolExecutor(1, "clip-encoder") as encoder:
        recorder = ClipRecorder(ring, encoder, fps=10.0, filter_factory=factory)
        end = T0 + timedelta(seconds=0.1 * (len(source) - 1))
        recorder.request("ev", T0, end, tmp_path / "clip.mp4", lambda e, p: done.update({e: p}))
        for j, index in enumerate(sorted(source)):
            ring.add(T0 + timedelta(seconds=0.1 * j), source[index])
        ring.add(end + timedelta(seconds=0.2), source[LAST])  # past the end: the clip is due
        recorder.flush()
    path = done["ev"]
    assert path is not None and path.is_file()
    info = ffprobe(path)
    assert info["codec_name"] == "h264" and int(info["nb_frames"]) == len(source)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(decoded) == len(source)
    return decoded


def _clip_frame(decoded: list[np.ndarray], index: int) -> np.ndarray:
    return decoded[(index - FIRST) // STEP]


def _sharpness(image: np.ndarray, xyxy: np.ndarray, inset: float = 0.0) -> float:
    """Laplacian variance in ``xyxy``, shrunk by ``inset`` of its size on each side."""
    box = np.asarray(xyxy, np.float32)
    margin = inset * np.tile(box[2:] - box[:2], 2) * np.array([1, 1, -1, -1], np.float32)
    x0, y0, x1, y1 = (int(v) for v in box + margin)
    gray = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def _red_face(stage: FaceStage, image: np.ndarray) -> Face:
    faces = [f for f in stage.detector.detect(image) if f.xyxy[2] < 700]
    return max(faces, key=lambda f: f.size_px)


def test_unknown_faces_are_blurred_in_every_clip_frame(
    stage: FaceStage, source: dict[int, np.ndarray], tmp_path: Path
) -> None:
    made_in: list[str] = []
    factory = clip_blur_factory(_site(True), stage)
    assert factory is not None

    def counted() -> FrameFilter:
        made_in.append(threading.current_thread().name)
        assert factory is not None
        return factory()

    decoded = _record(source, tmp_path, counted)
    assert len(made_in) == 1 and made_in[0].startswith("clip-encoder")  # its own models
    # The labelled frames, every labelled face (hard ones too). The labels are a few px
    # off and can reach past the padded detection box, where the blurred patch meets the
    # sharp background: that edge is not the face, so the face's inner 80 % is measured.
    for index in (30, 100):
        original, clip = source[index], _clip_frame(decoded, index)
        for xyxy in _labelled(index):
            before, after = _sharpness(original, xyxy, 0.1), _sharpness(clip, xyxy, 0.1)
            assert after < before / 5, (index, xyxy.tolist(), before, after)
    for index, original in source.items():  # every frame: SFace no longer sees the person
        face = _red_face(stage, original)
        clip = _clip_frame(decoded, index)
        similarity = float(stage.embedder.embed(original, face) @ stage.embedder.embed(clip, face))
        assert similarity < stage.config.match_threshold, (index, similarity)


def test_enrolled_worker_stays_sharp_and_the_unknown_is_blurred(
    stage: FaceStage, source: dict[int, np.ndarray], tmp_path: Path
) -> None:
    enrol = source[FIRST]
    stage.register.set("w-red", [stage.embedder.embed(enrol, _red_face(stage, enrol))])
    try:
        decoded = _record(source, tmp_path, clip_blur_factory(_site(True), stage))
    finally:
        stage.register.remove("w-red")
    original, clip = source[100], _clip_frame(decoded, 100)
    red, white = _labelled(100)
    assert _sharpness(clip, red, 0.1) > _sharpness(original, red, 0.1) * 0.5  # kept (H.264)
    assert _sharpness(clip, white, 0.1) < _sharpness(original, white, 0.1) / 5  # blurred
    face = _red_face(stage, original)
    similarity = float(stage.embedder.embed(original, face) @ stage.embedder.embed(clip, face))
    assert similarity >= stage.config.match_threshold, similarity  # still recognisable


def test_privacy_off_or_faces_off_leaves_the_clip_unchanged(
    stage: FaceStage, source: dict[int, np.ndarray], tmp_path: Path
) -> None:
    assert clip_blur_factory(_site(True), None) is None
    factory = clip_blur_factory(_site(False), stage)
    assert factory is None
    decoded = _record(source, tmp_path, factory)
    for index, original in source.items():
        clip = _clip_frame(decoded, index)
        assert cv2.PSNR(original, clip) > 30.0, index  # only JPEG + H.264 loss
        for xyxy in _labelled(index) if index in (30, 100) else []:
            assert _sharpness(clip, xyxy, 0.1) > _sharpness(original, xyxy, 0.1) * 0.5


@pytest.mark.parametrize("blur", [True, False])
def test_live_camera_worker_spools_a_blurred_clip(
    stage: FaceStage, source: dict[int, np.ndarray], tmp_path: Path, blur: bool
) -> None:
    """The live hook: a camera whose pipeline has a face stage spools a blurred clip."""
    from types import SimpleNamespace

    from sitewatch.contract.events import Event, RuleKind
    from sitewatch.edge.config import ClipConfig, OutboxConfig
    from sitewatch.edge.live import EdgeRunner

    site = _site(blur).model_copy(
        update={
            "clips": ClipConfig(pre_s=0.0, post_s=1.0),
            "outbox": OutboxConfig(path=str(tmp_path / "spool")),
        }
    )
    # Stand-in pipeline: the worker only reads its face stage here (no frames processed).
    runner = EdgeRunner(site, pipeline_factory=lambda _s, _c: SimpleNamespace(faces=stage))
    try:
        worker = runner.workers[0]
        assert (worker.recorder.filter_factory is not None) is blur
        for j, index in enumerate(sorted(source)):
            worker.ring.add(T0 + timedelta(seconds=0.1 * j), source[index])
        event = Event(site_id="site", camera_id="cam", rule=RuleKind.NO_HELMET, started_at=T0)
        worker.handle_event(event, source[LAST], None, T0 + timedelta(seconds=0.4))
        worker.ring.add(T0 + timedelta(seconds=1.6), source[LAST])  # past the post-roll
        worker.recorder.flush()
        clip_path = runner.outbox.media_path(str(event.event_id), "clip.mp4")
        with av.open(str(clip_path)) as container:
            decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    finally:
        runner.encoder.shutdown()
        runner.outbox.close()
    assert len(decoded) == len(source)
    original, clip = source[100], _clip_frame(decoded, 100)
    for xyxy in _labelled(100):
        ratio = _sharpness(clip, xyxy, 0.1) / _sharpness(original, xyxy, 0.1)
        assert ratio < 0.2 if blur else ratio > 0.5, (xyxy.tolist(), ratio)


def test_flush_does_not_raise_when_a_slow_clip_outlasts_its_timeout(
    source: dict[int, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Blurring makes encoding slow; shutdown's flush logs and the pool still finishes."""
    import time

    def slow(image: np.ndarray) -> np.ndarray:  # a deliberately slow filter (~0.75 s a clip)
        time.sleep(0.05)
        return image

    ring = FrameRing(max_age_s=60.0, fps=10.0)
    done: dict[str, Path | None] = {}
    encoder = ThreadPoolExecutor(1, "clip-encoder")
    recorder = ClipRecorder(ring, encoder, fps=10.0, filter_factory=lambda: slow)
    recorder.request("ev", T0, T0 + timedelta(seconds=60), tmp_path / "c.mp4", done.__setitem__)
    for j, index in enumerate(sorted(source)):
        ring.add(T0 + timedelta(seconds=0.1 * j), source[index])
    with caplog.at_level("WARNING", logger="sitewatch.edge.clips"):
        recorder.flush(timeout_s=0.05)
    assert "still encoding" in caplog.text and "ev" not in done
    encoder.shutdown(wait=True)
    path = done["ev"]
    assert path is not None and ffprobe(path)["codec_name"] == "h264"
