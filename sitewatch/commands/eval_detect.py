"""``sitewatch eval detect``: detector accuracy on a folder of images + YOLO txt labels."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

if TYPE_CHECKING:
    from sitewatch.edge.colour_models import ColourModel

DEFAULT_CLASS_MAP = "0:person,1:head,2:helmet"


def _image_paths(data: Path) -> list[Path]:
    from sitewatch.edge.evaluation.detection_metrics import IMAGE_SUFFIXES

    folder = data / "images" if (data / "images").is_dir() else data
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _colours(frame: np.ndarray, xyxy: np.ndarray, model: ColourModel | None) -> list[str]:
    from sitewatch.edge.helmet_colour import classify_helmet_colours

    return [c.value for c in classify_helmet_colours(frame, xyxy, model)]


def eval_detect(
    model: Annotated[Path, typer.Option(help="ONNX detector (class names in metadata).")],
    data: Annotated[Path, typer.Option(help="Folder with images/ and labels/ (YOLO txt).")],
    class_map: Annotated[
        str, typer.Option(help="Label id -> model class name[/colour], e.g. '0:head,1:helmet/red'.")
    ] = DEFAULT_CLASS_MAP,
    input_size: Annotated[
        int | None,
        typer.Option(help="Input long side for dynamic models (default: the training size)."),
    ] = None,
    confidence: Annotated[float, typer.Option(help="Detector threshold for AP.")] = 0.001,
    orange_helmets: Annotated[
        bool, typer.Option(help="Colour with the orange rule on (attributes.orange_helmets).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per-class precision, recall, AP50, mAP50-95; helmet colour accuracy; ms per image."""
    import cv2
    import supervision as sv
    from rich.console import Console
    from rich.table import Table

    from sitewatch.edge.detector import Detector
    from sitewatch.edge.evaluation.detection_metrics import (
        compute_metrics,
        parse_class_map,
        read_labels,
        score_colours,
        to_sv,
    )

    entries = parse_class_map(class_map)
    from sitewatch.edge.helmet_colour import load_default_model, with_orange_rule

    detector = Detector(model, input_size=input_size, confidence=confidence, iou=0.6)
    colour_model = with_orange_rule(load_default_model(), orange_helmets)
    names = detector.class_names
    unknown = {e.name for e in entries.values()} - set(names)
    if unknown:
        raise typer.BadParameter(f"class map names {sorted(unknown)} not in model classes {names}")
    labels_dir = data / "labels" if (data / "labels").is_dir() else data
    predictions: list[sv.Detections] = []
    targets: list[sv.Detections] = []
    confusion: dict[str, dict[str, int]] = {}
    elapsed_s = 0.0
    images = _image_paths(data)
    if not images:
        raise typer.BadParameter(f"no images in {data}")
    for path in images:
        frame = cv2.imread(str(path))
        if frame is None:
            raise typer.BadParameter(f"cannot read image {path}")
        start = time.perf_counter()
        dets = detector.detect(frame)
        elapsed_s += time.perf_counter() - start
        labelled = read_labels(labels_dir / f"{path.stem}.txt", entries, frame.shape[1::-1])
        predictions.append(to_sv(dets.xyxy, list(dets.data["class_name"]), names, dets.confidence))
        targets.append(to_sv(labelled.xyxy, labelled.names, names))
        score_colours(
            labelled,
            dets,
            "helmet",
            partial(_colours, frame, model=colour_model),
            confusion,
        )
    report = compute_metrics(predictions, targets, names)
    report.colour_confusion, report.ms_per_image = confusion, 1000 * elapsed_s / len(images)
    result = report.as_dict()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table("class", "precision", "recall", "AP50", "mAP50-95")
    for name, row in report.per_class.items():
        table.add_row(
            name,
            *(
                f"{row.get(k, float('nan')):.3f}"
                for k in ("precision", "recall", "ap50", "map50_95")
            ),
        )
    console = Console()
    console.print(table)
    console.print(
        f"mAP50 {report.map50:.3f}  mAP50-95 {report.map50_95:.3f}  "
        f"{report.ms_per_image:.1f} ms/image over {report.images} images"
    )
    if confusion:
        console.print(
            f"helmet colour accuracy {result['colour_accuracy']:.3f}, red recall "
            f"{result['red_recall']}, red precision {result['red_precision']}"
        )
        console.print(json.dumps(confusion))
