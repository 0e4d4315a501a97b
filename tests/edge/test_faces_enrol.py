"""Local face register: enrol from a JPEG through the CLI, recognise, remove."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
from typer.testing import CliRunner

from sitewatch.cli import app
from sitewatch.edge.config import FacesConfig
from sitewatch.edge.faces.stage import FaceStage
from sitewatch.edge.faces.tracks import FaceRegister
from tests.conftest import shared_file


def _frame(index: int) -> np.ndarray:
    video = shared_file("data/videos/red-white-helmets.mp4")
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(index)


def test_enrol_from_jpeg_recognise_then_remove(tmp_path: Path) -> None:
    models = shared_file("models/face_recognition_sface_2021dec_int8bq.onnx").parent
    photo = tmp_path / "worker.jpg"
    cv2.imwrite(str(photo), _frame(30)[60:330, 300:560])  # the red-helmet man, cropped
    register = tmp_path / "register.npz"
    runner = CliRunner()
    base = ["--register", str(register), "--models-dir", str(models)]
    result = runner.invoke(app, ["faces", "enrol", str(photo), "--worker-id", "w-red", *base])
    assert result.exit_code == 0, result.output
    assert FaceRegister.load(register).worker_ids() == ["w-red"]

    stage = FaceStage(
        FacesConfig(enabled=True, models_dir=str(models), register_path=str(register))
    )
    image = _frame(160)
    face = max(stage.detector.detect(image), key=lambda f: f.size_px)
    assert stage.register.match(stage.embedder.embed(image, face), 0.363) == "w-red"

    result = runner.invoke(
        app, ["faces", "remove", "--worker-id", "w-red", "--register", str(register)]
    )
    assert result.exit_code == 0, result.output
    assert len(FaceRegister.load(register)) == 0


def test_enrol_refuses_a_photo_without_a_face(tmp_path: Path) -> None:
    models = shared_file("models/face_detection_yunet_2026may.onnx").parent
    # a long path: the error line must not be wrapped into the path or the message
    photo = tmp_path / ("site-photos-" * 6) / "wall.jpg"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((200, 200, 3), 128, np.uint8))
    register = tmp_path / "register.npz"
    args = ["faces", "enrol", str(photo), "--worker-id", "w1", "--register", str(register)]
    result = CliRunner().invoke(app, [*args, "--models-dir", str(models)])
    assert result.exit_code == 2
    assert "no face found" in result.output and str(photo) in result.output
    assert not register.exists()
