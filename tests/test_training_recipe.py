"""The detector recipe end to end on a handful of images: prepare, transplant, train, export."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, shared_file

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))

import prepare_data


def test_class_mapping_of_both_sets(tmp_path: Path) -> None:
    label = tmp_path / "x.txt"
    label.write_text("0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n4 0.3 0.3 0.1 0.1\n")
    hc = prepare_data.read_source_boxes(prepare_data.Sample("helmet-colour", label, label))
    assert [(b.class_id, b.colour) for b in hc] == [(1, ""), (2, "red"), (2, "yellow")]
    label.write_text("0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.5 0.9\n2 0.3 0.3 0.1 0.1\n")
    hhw = prepare_data.read_source_boxes(prepare_data.Sample("hard-hat-workers", label, label))
    assert [b.class_id for b in hhw] == [2, 1]  # helmet, head; person (1) dropped
    assert prepare_data.format_boxes(hc, colour_ids=True).split("\n")[1].startswith("3 ")
    label.write_text("0 0.5 zz\n")
    with pytest.raises(ValueError, match=r"x.txt:1"):
        prepare_data.read_source_boxes(prepare_data.Sample("helmet-colour", label, label))


@pytest.mark.train
@pytest.mark.slow
def test_prepare_transplant_train_export(tmp_path: Path) -> None:
    pytest.importorskip("ultralytics")
    data_root = shared_file("data/helmet-colour").parent
    person_model = shared_file("models/yolov8n-coco-int8.onnx")
    source = shared_file("models/yolov5n-coco.pt")
    import train_detector

    out = tmp_path / "data"
    counts = prepare_data.prepare(
        data_root, out, split_dir=tmp_path / "split", person_model=person_model, limit=3
    )
    assert counts["train"]["images"] == 3 and counts["val"]["images"] == 3
    assert counts["train"]["helmet"] + counts["train"]["head"] > 0
    assert (tmp_path / "split" / "train.txt").read_text().count("\n") == 3
    assert (out / "val-eval" / "class_map.txt").exists()
    matched, total = train_detector.transplant(source, tmp_path / "start.pt")
    assert (matched, total) == (342, 349)
    run = train_detector.train(
        tmp_path / "start.pt",
        out / "data.yaml",
        project=tmp_path / "runs",
        name="t",
        imgsz=64,
        epochs=1,
        batch=2,
        workers=0,
    )
    best = run / "weights" / "last.pt"
    assert best.exists()
    import export_detector

    onnx_path = tmp_path / "det.onnx"
    export_detector.export(best, onnx_path, imgsz=64)
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = session.get_modelmeta().custom_metadata_map["names"]
    assert "person" in names and "helmet" in names
    assert session.get_outputs()[0].shape == [1, 7, 84]
