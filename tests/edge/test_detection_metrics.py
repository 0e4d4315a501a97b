"""Detection metric code against hand-made boxes with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from sitewatch.edge.evaluation.detection_metrics import (
    ClassMapEntry,
    LabelledImage,
    compute_metrics,
    parse_class_map,
    read_labels,
    score_colours,
)

NAMES = ["person", "head", "helmet"]


def dets(xyxy: list[list[float]], class_id: list[int], conf: list[float] | None = None):
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4),
        class_id=np.asarray(class_id, dtype=int),
        confidence=None if conf is None else np.asarray(conf, dtype=np.float32),
    )


def test_parse_class_map_with_colours() -> None:
    assert parse_class_map("0:head, 1:helmet/red") == {
        0: ClassMapEntry("head"),
        1: ClassMapEntry("helmet", "red"),
    }
    with pytest.raises(ValueError, match="'x:head'"):
        parse_class_map("x:head")


def test_read_labels_names_file_and_line(tmp_path: Path) -> None:
    label = tmp_path / "a.txt"
    label.write_text("0 0.5 0.5 0.2 0.4\n7 0.1 0.1 0.1 0.1\n")
    with pytest.raises(ValueError, match=r"a.txt:2: class 7"):
        read_labels(label, parse_class_map("0:head"), (100, 50))
    skipped = read_labels(label, parse_class_map("0:head"), (100, 50), ignore_unmapped=True)
    assert skipped.names == ["head"]
    label.write_text("0 0.5 0.5 0.2 0.4\n")
    image = read_labels(label, parse_class_map("0:helmet/red"), (100, 50))
    np.testing.assert_allclose(image.xyxy, [[40, 15, 60, 35]])
    assert image.names == ["helmet"] and image.colours == ["red"]


def test_perfect_predictions_score_one() -> None:
    target = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 2])
    prediction = dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 2], [0.9, 0.8])
    report = compute_metrics([prediction], [target], NAMES)
    assert report.per_class["person"]["ap50"] == pytest.approx(1.0)
    assert report.per_class["helmet"]["map50_95"] == pytest.approx(1.0)
    assert report.per_class["helmet"]["precision"] == pytest.approx(1.0)
    assert report.per_class["helmet"]["recall"] == pytest.approx(1.0)


def test_known_average_precision_with_a_false_positive() -> None:
    # Ranked: TP (0.9), FP (0.8), TP (0.7): precision 1 up to recall 0.5, 2/3 up to 1.
    # COCO's 101-point interpolation: (51 * 1 + 50 * 2/3) / 101.
    target = dets([[0, 0, 10, 10], [50, 50, 60, 60]], [1, 1])
    prediction = dets(
        [[0, 0, 10, 10], [100, 100, 110, 110], [50, 50, 60, 60]], [1, 1, 1], [0.9, 0.8, 0.7]
    )
    report = compute_metrics([prediction], [target], NAMES)
    assert report.per_class["head"]["ap50"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-3)
    assert report.per_class["head"]["precision"] == pytest.approx(2 / 3, abs=1e-3)
    assert report.per_class["head"]["recall"] == pytest.approx(1.0)


def test_missed_box_halves_recall() -> None:
    target = dets([[0, 0, 10, 10], [50, 50, 60, 60]], [2, 2])
    prediction = dets([[0, 0, 10, 10]], [2], [0.9])
    report = compute_metrics([prediction], [target], NAMES)
    assert report.per_class["helmet"]["recall"] == pytest.approx(0.5)
    assert report.per_class["helmet"]["ap50"] == pytest.approx(51 / 101, abs=1e-3)


def test_colour_confusion_counts_matched_helmets_only() -> None:
    image = LabelledImage(
        Path("x"),
        np.array([[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], dtype=float),
        ["helmet", "helmet", "head"],
        ["red", "white", ""],
    )
    prediction = dets([[0, 0, 10, 10], [80, 80, 90, 90]], [2, 2], [0.9, 0.9])
    prediction.data["class_name"] = np.array(["helmet", "helmet"])
    confusion: dict[str, dict[str, int]] = {}
    score_colours(image, prediction, "helmet", lambda xyxy: ["orange"] * len(xyxy), confusion)
    assert confusion == {"red": {"orange": 1}}


def test_eval_detect_refuses_an_unmapped_class_in_one_line_or_ignores_it(
    tmp_path: Path, video_dir: Path
) -> None:
    """The CLI on a real frame: a label id the class map lacks is one clean line (exit 2),
    no traceback; with --ignore-unmapped that box is left out and the metrics computed."""
    import av
    import cv2
    from typer.testing import CliRunner

    from sitewatch.cli import app

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with av.open(str(video_dir / "concrete-pour-crew.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    cv2.imwrite(str(tmp_path / "images" / "f.jpg"), frame)
    (tmp_path / "labels" / "f.txt").write_text("0 0.5 0.5 0.2 0.4\n9 0.1 0.1 0.1 0.1\n")
    runner = CliRunner()
    refused = runner.invoke(app, ["eval", "detect", "--data", str(tmp_path)])
    assert refused.exit_code == 2
    assert "f.txt:2: class 9 is not in the class map" in refused.output
    assert "Traceback" not in refused.output and isinstance(refused.exception, SystemExit)
    ignored = runner.invoke(
        app, ["eval", "detect", "--data", str(tmp_path), "--ignore-unmapped", "--json"]
    )
    assert ignored.exit_code == 0, ignored.output
    assert json.loads(ignored.output)["images"] == 1
