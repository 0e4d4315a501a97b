"""``sitewatch eval detect``: detector accuracy on a folder of images + YOLO txt labels.

With ``--config`` it measures what that site's edge runs: its model file, its input size
and its colour settings; the detector's threshold stays low (``--confidence``) so that the
AP curve covers every operating point. Bad input (a missing folder, an unreadable image, a
label file that does not fit the class map) is one clean line and exit code 2.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import numpy as np
import typer
from rich.console import Console

if TYPE_CHECKING:
    from sitewatch.edge.colour_models import ColourModel
    from sitewatch.edge.detections import Detections
    from sitewatch.edge.detector import Detector
    from sitewatch.edge.evaluation.detection_metrics import ClassMapEntry, DetectionReport

DEFAULT_CLASS_MAP = "0:person,1:head,2:helmet"
err_console = Console(stderr=True, soft_wrap=True)


@dataclass(frozen=True)
class EdgeSetup:
    """What the edge runs on an image: detector (file, input size) and colour settings."""

    model: Path
    input_size: int | None
    orange_helmets: bool


def _image_paths(data: Path) -> list[Path]:
    from sitewatch.edge.evaluation.detection_metrics import IMAGE_SUFFIXES

    folder = data / "images" if (data / "images").is_dir() else data
    if not folder.is_dir():
        raise typer.BadParameter(f"--data {data} is not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _colours(frame: np.ndarray, xyxy: np.ndarray, model: ColourModel | None) -> list[str]:
    from sitewatch.edge.helmet_colour import classify_helmet_colours

    return [c.value for c in classify_helmet_colours(frame, xyxy, model)]


def _setup(
    config: Path | None, model: Path | None, input_size: int | None, orange: bool
) -> EdgeSetup:
    """The site config's settings, each overridden by the option given on the command line."""
    if config is None:
        if model is None:
            from sitewatch.resources import model_file

            model = model_file("sitewatch-det.onnx")
        return EdgeSetup(model, input_size, orange)
    from sitewatch.edge.config import load_config
    from sitewatch.edge.models import resolve_model_path

    site = load_config(config)
    return EdgeSetup(
        model or resolve_model_path(site.model, config),
        input_size or site.model.input_size,
        orange or site.attributes.orange_helmets,
    )


def evaluate_folder(
    data: Path,
    detector: Detector,
    entries: dict[int, ClassMapEntry],
    colour_model: ColourModel | None,
    *,
    ignore_unmapped: bool = False,
) -> DetectionReport:
    """Detect on every image of ``data``, score against its labels (and helmet colours)."""
    import cv2
    import supervision as sv

    from sitewatch.edge.evaluation.detection_metrics import (
        REPORT_CONFIDENCE,
        compute_metrics,
        read_labels,
        score_colours,
        to_sv,
    )

    names = detector.class_names
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
        labelled = read_labels(
            labels_dir / f"{path.stem}.txt",
            entries,
            frame.shape[1::-1],
            ignore_unmapped=ignore_unmapped,
        )
        predictions.append(to_sv(dets.xyxy, list(dets.data["class_name"]), names, dets.confidence))
        targets.append(to_sv(labelled.xyxy, labelled.names, names))
        # colour is judged on the helmets a site would act on, not on AP's long tail
        confident = np.ones(len(dets), bool) if dets.confidence is None else dets.confidence
        kept = cast("Detections", dets[np.asarray(confident >= REPORT_CONFIDENCE, dtype=bool)])
        colours = partial(_colours, frame, model=colour_model)
        score_colours(labelled, kept, "helmet", colours, confusion)
    report = compute_metrics(predictions, targets, names)
    report.colour_confusion, report.ms_per_image = confusion, 1000 * elapsed_s / len(images)
    return report


def _print_report(report: DetectionReport) -> None:
    from rich.table import Table

    table = Table("class", "precision", "recall", "AP50", "mAP50-95")
    for name, row in report.per_class.items():
        cells = (
            f"{row.get(k, float('nan')):.3f}" for k in ("precision", "recall", "ap50", "map50_95")
        )
        table.add_row(name, *cells)
    console = Console()
    console.print(table)
    console.print(
        f"mAP50 {report.map50:.3f}  mAP50-95 {report.map50_95:.3f}  "
        f"{report.ms_per_image:.1f} ms/image over {report.images} images"
    )
    if report.colour_confusion:
        result = report.as_dict()
        console.print(
            f"helmet colour accuracy {result['colour_accuracy']:.3f}, red recall "
            f"{result['red_recall']}, red precision {result['red_precision']}"
        )
        console.print(json.dumps(report.colour_confusion))


def eval_detect(
    data: Annotated[Path, typer.Option(help="Folder with images/ and labels/ (YOLO txt).")],
    model: Annotated[
        Path | None,
        typer.Option(help="ONNX detector (default: the site config's, else the shipped one)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Site config: measure its model, input size and colour settings."),
    ] = None,
    class_map: Annotated[
        str, typer.Option(help="Label id -> model class name[/colour], e.g. '0:head,1:helmet/red'.")
    ] = DEFAULT_CLASS_MAP,
    ignore_unmapped: Annotated[
        bool, typer.Option(help="Skip label ids missing from --class-map instead of refusing.")
    ] = False,
    input_size: Annotated[
        int | None,
        typer.Option(help="Model input long side (default: the config's, else the training size)."),
    ] = None,
    confidence: Annotated[float, typer.Option(help="Detector threshold for AP.")] = 0.001,
    orange_helmets: Annotated[
        bool, typer.Option(help="Colour with the orange rule on (attributes.orange_helmets).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per-class precision, recall, AP50, mAP50-95; helmet colour accuracy; ms per image."""
    from sitewatch.edge.detector import Detector
    from sitewatch.edge.errors import SitewatchError
    from sitewatch.edge.evaluation.detection_metrics import parse_class_map
    from sitewatch.edge.helmet_colour import load_default_model, with_orange_rule

    try:
        entries = parse_class_map(class_map)
        setup = _setup(config, model, input_size, orange_helmets)
        detector = Detector(
            setup.model, input_size=setup.input_size, confidence=confidence, iou=0.6
        )
        unknown = {e.name for e in entries.values()} - set(detector.class_names)
        if unknown:
            raise typer.BadParameter(
                f"class map names {sorted(unknown)} not in model classes {detector.class_names}"
            )
        colour_model = with_orange_rule(load_default_model(), setup.orange_helmets)
        report = evaluate_folder(
            data, detector, entries, colour_model, ignore_unmapped=ignore_unmapped
        )
    except (SitewatchError, ValueError, typer.BadParameter) as exc:
        err_console.print(f"✗ {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    _print_report(report)
