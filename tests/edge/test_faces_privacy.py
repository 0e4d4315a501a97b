"""Privacy hooks: snapshots written by replay blur unknown faces, keep enrolled ones.

Real frames of red-white-helmets.mp4 and the real YuNet/SFace models; the replay output
class is driven with one hand-made event (the COCO model raises no helmet events).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sitewatch.contract.events import Event, RuleKind
from sitewatch.edge.config import CameraConfig, FacesConfig, PrivacyConfig, SiteConfig, SiteInfo
from sitewatch.edge.detections import Detections
from sitewatch.edge.event_sink import EventMediaMaker, FolderSink
from sitewatch.edge.faces.detection import Face
from sitewatch.edge.faces.stage import FaceStage, snapshot_blur
from sitewatch.edge.faces.tracks import FaceRegister
from sitewatch.edge.snapshots import EventRecorder
from tests.conftest import shared_file

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _frame(index: int) -> np.ndarray:
    video = shared_file("data/videos/red-white-helmets.mp4")
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"no frame {index}")


def _site(blur: bool) -> SiteConfig:
    return SiteConfig(
        site=SiteInfo(id="site"),
        cameras=[CameraConfig(id="cam", source="x.mp4")],
        privacy=PrivacyConfig(blur_unknown_faces=blur),
    )


@pytest.fixture(scope="module")
def stage() -> FaceStage:
    models = shared_file("models/face_detection_yunet_2026may.onnx").parent
    return FaceStage(FacesConfig(enabled=True, models_dir=str(models)), register=FaceRegister())


def _sharpness(image: np.ndarray, face: Face) -> float:
    x0, y0, x1, y1 = (int(v) for v in face.xyxy)
    gray = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def test_replay_snapshot_blurs_unknown_and_keeps_enrolled(stage: FaceStage, tmp_path: Path) -> None:
    image = _frame(100)
    faces = stage.detector.detect(image)
    red = max((f for f in faces if f.xyxy[2] < 700), key=lambda f: f.size_px)
    white = next(f for f in faces if f.xyxy[0] > 700)
    stage.register.set("w-red", [stage.embedder.embed(_frame(30), _largest_left(stage, 30))])
    try:
        blur = snapshot_blur(_site(True), stage)
        assert blur is not None
        with EventRecorder(tmp_path) as recorder:
            media = EventMediaMaker(_site(True), _site(True).cameras[0], stage)
            event = Event(site_id="site", camera_id="cam", rule=RuleKind.NO_HELMET, started_at=T0)
            FolderSink(recorder, media).handle(event, image, Detections.empty(), T0)
            snapshot_name = recorder.messages[0].snapshot
        assert snapshot_name is not None
        written = cv2.imread(str(tmp_path / snapshot_name))
        assert written is not None
        assert _sharpness(written, white) < _sharpness(image, white) / 10  # unknown: blurred
        assert _sharpness(written, red) > _sharpness(image, red) * 0.7  # enrolled: kept (JPEG)
    finally:
        stage.register.remove("w-red")


def _largest_left(stage: FaceStage, index: int) -> Face:
    faces = [f for f in stage.detector.detect(_frame(index)) if f.xyxy[2] < 700]
    return max(faces, key=lambda f: f.size_px)


def test_no_blur_when_privacy_off_or_faces_off(stage: FaceStage) -> None:
    assert snapshot_blur(_site(False), stage) is None
    assert snapshot_blur(_site(True), None) is None


def test_with_nobody_enrolled_every_face_is_blurred(stage: FaceStage) -> None:
    image = _frame(100)
    faces = stage.detector.detect(image)
    out = stage.privacy().blur_unknown(image)
    assert len(faces) == 2
    for face in faces:
        assert _sharpness(out, face) < _sharpness(image, face) / 10
        # unrecognisable: SFace no longer sees the same person there
        similarity = float(stage.embedder.embed(image, face) @ stage.embedder.embed(out, face))
        assert similarity < stage.config.match_threshold, similarity


def test_face_thumbnail_leaves_the_box_only_for_enrolled_workers(stage: FaceStage) -> None:
    from sitewatch.edge.faces.stage import shareable_thumbnail

    enrol = _frame(30)
    stage.register.set("w-red", [stage.embedder.embed(enrol, _largest_left(stage, 30))])
    try:
        image = _frame(100)
        faces = stage.detector.detect(image)
        red = max((f for f in faces if f.xyxy[2] < 700), key=lambda f: f.size_px)
        white = next(f for f in faces if f.xyxy[0] > 700)
        for _ in range(stage.config.votes):
            stage.tracks.observe(1, image, red, stage.embedder.embed(image, red), 0.0)
            stage.tracks.observe(2, image, white, stage.embedder.embed(image, white), 0.0)
        shared = shareable_thumbnail(_site(True), stage, 1)
        assert shared is not None and shared.shape[2] == 3
        assert shareable_thumbnail(_site(True), stage, 2) is None  # unknown: never sent
        assert shareable_thumbnail(_site(False), stage, 2) is not None  # privacy off
        assert shareable_thumbnail(_site(True), stage, None) is None
    finally:
        stage.register.remove("w-red")
        stage.tracks.prune(set())
