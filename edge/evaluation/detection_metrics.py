"""Detection metrics on a folder of images with YOLO txt labels (``sitewatch eval detect``).

AP50, mAP50-95, precision and recall per class come from supervision's metrics
(``sv.metrics.MeanAveragePrecision``, ``Precision``, ``Recall``); precision and recall
are taken at IoU 0.5 over predictions at or above ``report_confidence``. Labels may
carry a helmet colour through the class map (``3:helmet/red``): every labelled helmet
with a colour that a predicted helmet matches (IoU >= 0.5) is scored for colour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import supervision as sv
from supervision.metrics import MeanAveragePrecision, Precision, Recall

from sitewatch.edge.errors import SitewatchError

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Precision, recall and helmet colour are scored on predictions at or above this (AP on all).
REPORT_CONFIDENCE = 0.25


@dataclass(frozen=True)
class ClassMapEntry:
    name: str
    colour: str = ""


def parse_class_map(text: str) -> dict[int, ClassMapEntry]:
    """``"0:head,1:helmet/red"`` -> {0: head, 1: helmet with colour red}."""
    entries: dict[int, ClassMapEntry] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition(":")
        if not sep or not key.strip().isdigit() or not value.strip():
            raise ValueError(f"class map entry {item!r} is not 'id:name' or 'id:name/colour'")
        name, _, colour = value.strip().partition("/")
        entries[int(key)] = ClassMapEntry(name, colour)
    return entries


@dataclass
class LabelledImage:
    path: Path
    xyxy: np.ndarray  # (N, 4) pixels
    names: list[str]
    colours: list[str]


class LabelError(SitewatchError, ValueError):
    """A label file that cannot be read as the class map says (names file and line)."""


def read_labels(
    label_path: Path,
    class_map: dict[int, ClassMapEntry],
    wh: tuple[int, int],
    *,
    ignore_unmapped: bool = False,
) -> LabelledImage:
    """One YOLO label file in pixels. A class id missing from ``class_map`` is skipped with
    ``ignore_unmapped``, else a LabelError naming file and line (as is a malformed line)."""
    rows: list[list[float]] = []
    names: list[str] = []
    colours: list[str] = []
    text = label_path.read_text() if label_path.exists() else ""
    for line_no, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            class_id, values = int(parts[0]), [float(v) for v in parts[1:5]]
        except ValueError as exc:
            raise LabelError(f"{label_path}:{line_no}: bad YOLO line {line!r}") from exc
        if len(values) != 4:
            raise LabelError(f"{label_path}:{line_no}: {len(values)} coordinates, not 4")
        if class_id not in class_map:
            if ignore_unmapped:
                continue
            raise LabelError(
                f"{label_path}:{line_no}: class {class_id} is not in the class map "
                f"{sorted(class_map)} (add it to --class-map, or pass --ignore-unmapped)"
            )
        rows.append(values)
        names.append(class_map[class_id].name)
        colours.append(class_map[class_id].colour)
    width, height = wh
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4) * [width, height, width, height]
    xyxy = np.concatenate([arr[:, :2] - arr[:, 2:] / 2, arr[:, :2] + arr[:, 2:] / 2], axis=1)
    return LabelledImage(label_path, xyxy, names, colours)


def to_sv(
    xyxy: np.ndarray, names: list[str], class_names: list[str], confidence: np.ndarray | None = None
) -> sv.Detections:
    ids = np.array([class_names.index(n) for n in names], dtype=int)
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4), class_id=ids, confidence=confidence
    )


@dataclass
class DetectionReport:
    class_names: list[str]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    map50: float = 0.0
    map50_95: float = 0.0
    colour_confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    ms_per_image: float = 0.0
    images: int = 0

    @property
    def colour_accuracy(self) -> float | None:
        total = sum(sum(row.values()) for row in self.colour_confusion.values())
        correct = sum(row.get(t, 0) for t, row in self.colour_confusion.items())
        return correct / total if total else None

    def colour_recall_precision(self, colour: str) -> tuple[float | None, float | None]:
        row = self.colour_confusion.get(colour, {})
        hit = row.get(colour, 0)
        predicted = sum(r.get(colour, 0) for r in self.colour_confusion.values())
        return (hit / sum(row.values()) if row else None, hit / predicted if predicted else None)

    def as_dict(self) -> dict[str, object]:
        red_recall, red_precision = self.colour_recall_precision("red")
        return {
            "images": self.images,
            "ms_per_image": round(self.ms_per_image, 2),
            "map50": round(self.map50, 4),
            "map50_95": round(self.map50_95, 4),
            "per_class": self.per_class,
            "colour_accuracy": self.colour_accuracy,
            "red_recall": red_recall,
            "red_precision": red_precision,
            "colour_confusion": self.colour_confusion,
        }


def _at_least(detections: sv.Detections, confidence: float) -> sv.Detections:
    if detections.confidence is None:
        return detections
    kept = detections[detections.confidence >= confidence]
    assert isinstance(kept, sv.Detections)
    return kept


def compute_metrics(
    predictions: list[sv.Detections],
    targets: list[sv.Detections],
    class_names: list[str],
    report_confidence: float = REPORT_CONFIDENCE,
) -> DetectionReport:
    """Per-class AP50 / AP50-95 / P / R with supervision on parallel prediction/target lists."""
    report = DetectionReport(class_names=class_names, images=len(targets))
    m_ap = MeanAveragePrecision().update(predictions, targets).compute()
    confident = [_at_least(p, report_confidence) for p in predictions]
    precision = Precision(averaging_method=sv.metrics.AveragingMethod.MACRO)
    recall = Recall(averaging_method=sv.metrics.AveragingMethod.MACRO)
    p_result = precision.update(confident, targets).compute()
    r_result = recall.update(confident, targets).compute()
    report.map50, report.map50_95 = float(m_ap.map50), float(m_ap.map50_95)
    for index, class_id in enumerate(m_ap.matched_classes):
        ap = m_ap.ap_per_class[index]
        report.per_class[class_names[int(class_id)]] = {
            "ap50": round(float(ap[0]), 4),
            "map50_95": round(float(ap.mean()), 4),
        }
    for result, key, values in (
        (p_result, "precision", "precision_per_class"),
        (r_result, "recall", "recall_per_class"),
    ):
        for index, class_id in enumerate(result.matched_classes):
            entry = report.per_class.setdefault(class_names[int(class_id)], {})
            entry[key] = round(float(getattr(result, values)[index][0]), 4)
    return report


def score_colours(
    image: LabelledImage,
    prediction: sv.Detections,
    helmet_name: str,
    classify: Callable[[np.ndarray], list[str]],
    confusion: dict[str, dict[str, int]],
    min_iou: float = 0.5,
) -> None:
    """Add the colour of each labelled, coloured helmet's best-matching predicted helmet."""
    wanted = [
        i
        for i, (n, c) in enumerate(zip(image.names, image.colours, strict=True))
        if n == helmet_name and c
    ]
    if not wanted or len(prediction) == 0:
        return
    helmets_xyxy = prediction.xyxy[np.asarray(prediction.data["class_name"]) == helmet_name]
    if len(helmets_xyxy) == 0:
        return
    iou = sv.box_iou_batch(image.xyxy[wanted], helmets_xyxy)
    predicted_colours = classify(helmets_xyxy)
    for row, index in enumerate(wanted):
        best = int(np.argmax(iou[row]))
        if iou[row, best] >= min_iou:
            truth = image.colours[index]
            confusion.setdefault(truth, {}).setdefault(predicted_colours[best], 0)
            confusion[truth][predicted_colours[best]] += 1
