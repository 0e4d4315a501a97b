"""The detector recipe end to end on a handful of images: prepare, transplant, train, export."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.train import prepare_data
from tests.conftest import PROJECT_ROOT, shared_file


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


def test_construction_site_safety_boxes_grow_to_whole_heads() -> None:
    helmet = prepare_data.Box(prepare_data.HELMET, "", (0.5, 0.2, 0.1, 0.05))
    grown = prepare_data.whole_head(helmet)
    # the shell's top stays, the box reaches down to the chin: twice the shell's height
    assert grown.cxcywh == pytest.approx((0.5, 0.225, 0.1, 0.1))
    head = prepare_data.Box(prepare_data.HEAD, "", (0.5, 0.5, 0.1, 0.05))
    assert prepare_data.whole_head(head).cxcywh[3] == pytest.approx(0.13)
    person = prepare_data.Box(prepare_data.PERSON, "", (0.5, 0.5, 0.2, 0.6))
    assert prepare_data.whole_head(person) == person
    at_edge = prepare_data.Box(prepare_data.HELMET, "", (0.5, 0.96, 0.1, 0.08))
    grown_edge = prepare_data.whole_head(at_edge)  # clipped at the bottom of the image
    assert grown_edge.cxcywh[1] + grown_edge.cxcywh[3] / 2 == pytest.approx(1.0)


def test_css_samples_leave_out_the_evaluation_views() -> None:
    root = shared_file("data/construction-site-safety")
    held_out = {line.split()[0] for line in prepare_data.CSS_EVAL_LIST.read_text().splitlines()}
    samples = prepare_data.css_samples(root)
    assert len(samples) == 660 - len(held_out)
    assert not {s.image.stem for s in samples} & held_out


def test_repeat_class_images_lists_rare_class_images_again(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    import yaml

    from scripts.train import train_detector

    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
    rows = {"a": "0 0.5 0.5 0.2 0.2\n1 0.5 0.2 0.05 0.05\n", "b": "2 0.5 0.5 0.1 0.1\n"}
    for stem, text in rows.items():
        (tmp_path / "images" / "train" / f"{stem}.jpg").write_bytes(b"jpg " + stem.encode())
        (tmp_path / "labels" / "train" / f"{stem}.txt").write_text(text)
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames:\n  0: a\n")
    out = train_detector.repeat_class_images(data, class_id=1, copies=2)
    spec = yaml.safe_load(out.read_text())
    assert spec["val"] == "images/val" and spec["names"] == {0: "a"}
    assert spec["train"] == [
        "images/train",
        "images/train-class1-copy1",
        "images/train-class1-copy2",
    ]
    for copy in spec["train"][1:]:
        images = sorted(p.name for p in (tmp_path / copy).iterdir())
        assert images == ["a.jpg"]  # b has no class-1 box
        assert (tmp_path / copy / "a.jpg").read_bytes() == b"jpg a"
        label = tmp_path / copy.replace("images/", "labels/") / "a.txt"
        assert label.read_text() == rows["a"]
    assert train_detector.repeat_class_images(data, class_id=1, copies=0) == data


@pytest.mark.train
@pytest.mark.slow
def test_prepare_transplant_train_export(tmp_path: Path) -> None:
    pytest.importorskip("ultralytics")
    data_root = shared_file("data/helmet-colour").parent
    person_model = shared_file("models/yolov8n-coco-int8.onnx")
    source = shared_file("models/yolov5n-coco.pt")
    from scripts.train import train_detector

    out = tmp_path / "data"
    css = shared_file("data/construction-site-safety")
    counts = prepare_data.prepare(
        data_root,
        out,
        split_dir=tmp_path / "split",
        person_model=person_model,
        limit=3,
        with_css=css.is_dir(),
        css_copies=2,
    )
    # 3 train images of the first two sets + 3 construction-site-safety images listed twice
    assert counts["train"]["images"] == 3 + 6 and counts["val"]["images"] == 3
    assert len(list((out / "labels" / "train").glob("css_*_copy1.txt"))) == 3
    assert counts["train"]["helmet"] + counts["train"]["head"] > 0
    assert (tmp_path / "split" / "train.txt").read_text().count("\n") == 3
    assert (out / "val-eval" / "class_map.txt").exists()
    matched, total = train_detector.transplant(source, tmp_path / "start.pt")
    assert (matched, total) == (342, 349)
    run = train_detector.train(
        tmp_path / "start.pt",
        train_detector.repeat_class_images(out / "data.yaml", class_id=2, copies=1),
        project=tmp_path / "runs",
        name="t",
        imgsz=64,
        epochs=1,
        batch=2,
        workers=0,
    )
    best = run / "weights" / "last.pt"
    assert best.exists()
    from scripts.train import export_detector

    onnx_path = tmp_path / "det.onnx"
    export_detector.export(best, onnx_path, imgsz=64)
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = session.get_modelmeta().custom_metadata_map["names"]
    assert "person" in names and "helmet" in names
    # dynamic axes (the edge's rect letterbox): 64x96 -> 8*12 + 4*6 + 2*3 = 126 anchors
    assert not any(isinstance(d, int) for d in session.get_inputs()[0].shape[2:])
    assert "imgsz" in session.get_modelmeta().custom_metadata_map
    feed = {session.get_inputs()[0].name: np.zeros((1, 3, 64, 96), np.float32)}
    assert session.run(None, feed)[0].shape == (1, 7, 126)


@pytest.mark.train
def test_onnx_to_checkpoint_rebuilds_the_shipped_detector() -> None:
    """The fused ONNX, un-fused into yolov5nu, computes the same outputs on a real image,
    and survives the trainer's weight transfer (every tensor, class branch width kept)."""
    pytest.importorskip("ultralytics")
    import numpy as np
    import onnxruntime as ort
    import torch

    from scripts.train import onnx_to_checkpoint as o2c

    shipped = PROJECT_ROOT / "models" / "sitewatch-det.onnx"
    key = next(
        k
        for k in (PROJECT_ROOT / "models" / "data-split" / "val.txt").read_text().split()
        if k.startswith("helmet-colour/")
    )
    image_path = shared_file(f"data/helmet-colour/images/{key.split('/', 1)[1]}")
    weights, meta = o2c.onnx_weights(shipped)
    names = o2c.ast.literal_eval(meta["names"])
    size = o2c.ast.literal_eval(meta["imgsz"])[0]
    model = o2c.build_model(weights, names).eval()
    image = o2c.cv2.imread(str(image_path))
    assert image is not None
    x = o2c.to_input(image, size)
    session = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x))[0].numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
    assert (expected[0, 4:] > 0.5).sum() > 0  # the image has confident detections

    from ultralytics.nn.tasks import DetectionModel

    rebuilt = DetectionModel(model.yaml, nc=len(names), verbose=False)
    rebuilt.load(model, verbose=False)  # what YOLO(checkpoint).train(...) does
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key


def test_int8_detector_finds_what_the_fp32_one_finds(tmp_path: Path) -> None:
    """scripts/train/quantize_detector.py on a few real images, then both models on real frames:
    the int8 model keeps the metadata and finds the fp32 model's people (IoU >= 0.7)."""
    import cv2
    import supervision as sv

    from scripts.train import quantize_detector
    from sitewatch.edge.detector import Detector

    images = sorted(shared_file("data/helmet-colour/images").glob("*.jpg"))[:8]
    fp32_path = PROJECT_ROOT / "models" / "sitewatch-det.onnx"
    int8_path = quantize_detector.quantize(fp32_path, tmp_path / "int8.onnx", images)
    assert int8_path.stat().st_size < fp32_path.stat().st_size / 2
    fp32, int8 = Detector(fp32_path), Detector(int8_path)
    assert int8.class_names == fp32.class_names and int8.input_wh == fp32.input_wh
    capture = cv2.VideoCapture(str(shared_file("data/videos/concrete-pour-crew.mp4")))
    found = total = 0
    for _ in range(3):
        for _ in range(30):
            ok, frame = capture.read()
            assert ok
        a, b = fp32.detect(frame), int8.detect(frame)
        people_a = a.xyxy[a.data["class_name"] == "person"]
        people_b = b.xyxy[b.data["class_name"] == "person"]
        total += len(people_a)
        if len(people_a) and len(people_b):
            found += int((sv.box_iou_batch(people_a, people_b).max(axis=1) >= 0.7).sum())
    assert total >= 5
    assert found >= 0.8 * total, f"int8 found {found} of the fp32 model's {total} people"
    with pytest.raises(ValueError, match="no calibration images"):
        quantize_detector.quantize(fp32_path, tmp_path / "x.onnx", [])
