"""Detector: letterbox / decode round trips on synthetic arrays, names, errors, real model."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest

from sitewatch.edge.config import DEFAULT_MODEL_PATH, ModelConfig
from sitewatch.edge.detections import CLASS_NAME, PERSON, Detections
from sitewatch.edge.detector import (
    Detector,
    Letterbox,
    ModelError,
    _trained_size,
    decode_yolo,
    letterbox,
    parse_class_names,
    rect_input_wh,
)
from sitewatch.edge.models import resolve_model_path


def _raw_output(boxes_in_input: list[tuple[float, float, float, float, int, float]], nc: int):
    """A (1, 4 + nc, anchors) array as Ultralytics writes it, from xyxy boxes in input px."""
    anchors = 50
    out = np.zeros((1, 4 + nc, anchors), np.float32)
    for i, (x1, y1, x2, y2, cls, score) in enumerate(boxes_in_input):
        out[0, :4, i] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        out[0, 4 + cls, i] = score
    return out


@pytest.mark.parametrize("frame_wh", [(640, 360), (360, 640), (1920, 1080), (586, 480), (640, 640)])
def test_letterbox_keeps_aspect_and_centres(frame_wh: tuple[int, int]) -> None:
    frame = np.full((frame_wh[1], frame_wh[0], 3), 200, np.uint8)
    image, box = letterbox(frame, (640, 640))
    assert image.shape == (640, 640, 3)
    scaled_w, scaled_h = frame_wh[0] * box.scale, frame_wh[1] * box.scale
    assert max(scaled_w, scaled_h) == pytest.approx(640, abs=1)
    # padding is grey 114 and the picture sits in the middle
    left, top = box.pad_xy
    assert abs(left - (640 - scaled_w) / 2) <= 1 and abs(top - (640 - scaled_h) / 2) <= 1
    if top >= 1:
        assert (image[0] == 114).all() and (image[-1] == 114).all()
    assert (image[int(top) + 2, int(left) + 2] == 200).all()


def test_decode_round_trip_maps_boxes_back_to_the_frame() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    _, box = letterbox(frame, (640, 640))
    frame_boxes = np.array([[100, 50, 180, 300], [400, 20, 440, 60]], np.float32)
    in_input = frame_boxes * box.scale + np.array([*box.pad_xy, *box.pad_xy])
    raw = _raw_output([(*in_input[0], 0, 0.9), (*in_input[1], 2, 0.6)], nc=3)
    xyxy, conf, cls = decode_yolo(raw, box, class_thresholds=np.full(3, 0.3), iou=0.5)
    np.testing.assert_allclose(xyxy, frame_boxes, atol=0.01)
    np.testing.assert_allclose(conf, [0.9, 0.6], atol=1e-6)
    assert cls.tolist() == [0, 2]


def test_decode_clips_to_the_frame_and_handles_no_detections() -> None:
    box = Letterbox(scale=1.0, pad_xy=(0.0, 140.0), frame_wh=(640, 360))
    raw = _raw_output([(-20, 100, 50, 600, 0, 0.8)], nc=1)
    xyxy, _, _ = decode_yolo(raw, box, class_thresholds=np.full(1, 0.3), iou=0.5)
    assert xyxy.tolist() == [[0.0, 0.0, 50.0, 360.0]]
    empty = decode_yolo(
        np.zeros((1, 5, 10), np.float32), box, class_thresholds=np.full(1, 0.3), iou=0.5
    )
    assert [len(a) for a in empty] == [0, 0, 0]


def test_nms_is_class_aware_and_thresholds_are_per_class() -> None:
    box = Letterbox(scale=1.0, pad_xy=(0.0, 0.0), frame_wh=(640, 640))
    raw = _raw_output(
        [
            (100, 100, 200, 300, 0, 0.9),  # person
            (102, 101, 201, 302, 0, 0.8),  # same person again: suppressed
            (100, 100, 200, 300, 1, 0.7),  # same box, other class: kept
            (300, 300, 330, 330, 2, 0.4),  # helmet below its own threshold 0.5
        ],
        nc=3,
    )
    thresholds = np.array([0.3, 0.3, 0.5], np.float32)
    _, conf, cls = decode_yolo(raw, box, class_thresholds=thresholds, iou=0.5)
    assert cls.tolist() == [0, 1]
    np.testing.assert_allclose(conf, [0.9, 0.7], atol=1e-6)


def test_class_names_from_ultralytics_metadata() -> None:
    assert parse_class_names({"names": "{0: 'person', 1: 'head', 2: 'helmet'}"}) == [
        "person",
        "head",
        "helmet",
    ]
    assert parse_class_names({"names": "['person', 'car']"}) == ["person", "car"]
    with pytest.raises(ModelError, match="no 'names'"):
        parse_class_names({}, source="m.onnx")
    with pytest.raises(ModelError, match="cannot parse"):
        parse_class_names({"names": "{0: person"})
    with pytest.raises(ModelError, match=r"not 0\.\.1"):
        parse_class_names({"names": "{0: 'a', 5: 'b'}"})


def test_missing_and_corrupt_model_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match=re.escape(str(missing))):
        Detector(missing)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match=re.escape(str(corrupt))):
        Detector(corrupt)


def test_default_model_falls_back_to_the_shared_coco_model(
    coco_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SITEWATCH_SHARED", str(coco_model.parents[1]))
    import sitewatch.edge.models

    # as if the package shipped no detector
    monkeypatch.setattr(sitewatch.edge.models, "shipped_model", lambda value: None)
    with caplog.at_level(logging.WARNING):
        assert resolve_model_path(ModelConfig(), tmp_path / "site.yaml") == coco_model
    assert "yolov8n-coco-int8.onnx" in caplog.text
    # an explicit path never falls back
    explicit = ModelConfig(path="mine.onnx")
    assert resolve_model_path(explicit, tmp_path / "site.yaml") == tmp_path / "mine.onnx"
    assert ModelConfig().path == DEFAULT_MODEL_PATH


def _frame(video: Path, index: int) -> np.ndarray:
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError("clip too short")


def test_real_model_finds_the_people_of_a_real_frame(coco_model: Path, video_dir: Path) -> None:
    detector = Detector(coco_model, confidence=0.4)
    assert detector.class_names[0] == PERSON and len(detector.class_names) == 80
    frame = _frame(video_dir / "concrete-pour-crew.mp4", 30)
    dets = detector.detect(frame)
    # supervision types every index's result as one union; a mask gives Detections
    persons = cast(Detections, dets[dets.data[CLASS_NAME] == PERSON])
    # The frame shows about ten workers in full view; COCO YOLOv8n finds most of them.
    assert 5 <= len(persons) <= 20
    assert (persons.xyxy[:, [0, 2]] <= 640).all() and (persons.xyxy[:, [1, 3]] <= 360).all()
    assert (persons.xyxy[:, 2] > persons.xyxy[:, 0]).all()
    assert persons.confidence is not None and (persons.confidence >= 0.4).all()
    # same frame, same answer
    again = detector.detect(frame)
    np.testing.assert_array_equal(again.xyxy, dets.xyxy)


@pytest.mark.parametrize(
    ("frame_wh", "size", "expected"),
    [
        ((1920, 1080), 416, (416, 256)),  # 416 x 234 rounded up to the stride
        ((640, 360), 320, (320, 192)),
        ((1080, 1920), 416, (256, 416)),
        ((500, 500), 416, (416, 416)),
        ((4000, 100), 416, (416, 32)),
    ],
)
def test_rect_input_is_the_smallest_stride_aligned_fit(
    frame_wh: tuple[int, int], size: int, expected: tuple[int, int]
) -> None:
    assert rect_input_wh(frame_wh, size) == expected


def test_trained_size_comes_from_ultralytics_metadata() -> None:
    assert _trained_size({"imgsz": "[416, 416]"}) == 416
    assert _trained_size({"imgsz": "[256, 416]"}) == 416
    assert _trained_size({}) == 640
    assert _trained_size({"imgsz": "not a list"}) == 640
    assert _trained_size({"imgsz": "[1, 1]"}) == 640


def test_shipped_model_runs_a_wide_frame_at_a_rect_input(video_dir: Path) -> None:
    """A dynamic-axes model letterboxes a 16:9 frame to a stride-aligned rectangle."""
    from sitewatch.resources import model_file

    own = model_file("sitewatch-det.onnx")
    if not own.is_file():
        pytest.skip(f"the project's own model {own} is not there")
    detector = Detector(own)
    if not detector.dynamic_input:
        pytest.skip(f"{own} has a fixed input {detector.input_wh}")
    shapes: list[tuple[int, ...]] = []
    session = detector._session
    run = session.run  # type: ignore[attr-defined]

    class Spy:
        def run(self, names: object, feeds: dict[str, np.ndarray]) -> object:
            shapes.append(next(iter(feeds.values())).shape)
            return run(names, feeds)

        def __getattr__(self, name: str) -> object:
            return getattr(session, name)

    detector._session = Spy()
    frame = _frame(video_dir / "concrete-pour-crew.mp4", 30)  # 640 x 360
    persons = detector.detect(frame)
    size = max(detector.input_wh)
    assert shapes == [(1, 3, *reversed(rect_input_wh((640, 360), size)))]
    assert shapes[0][2] < shapes[0][3] == size
    found = cast(Detections, persons[persons.data[CLASS_NAME] == PERSON])
    assert len(found) >= 5
    assert (found.xyxy[:, [1, 3]] <= 360).all() and (found.xyxy[:, [0, 2]] <= 640).all()
