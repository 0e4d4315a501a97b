"""Fit the helmet colour classifier (edge/helmet_colour.py) on helmet-colour's crops.

Crops are the labelled helmet boxes (red, blue, white, yellow) of helmet-colour images,
split by image with models/data-split (the detector's split). A multinomial logistic
regression (scikit-learn, standardised HSV histogram features) is fitted on the train
crops with C chosen by 5-fold cross-validation on train only, and written as JSON to
models/helmet-colour.json. Val accuracy and confusion matrices of this model and of the
HSV hue-vote rules are written to models/helmet-colour-metrics.json and printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from edge.events import HelmetColour  # noqa: E402
from edge.helmet_colour import (  # noqa: E402
    FEATURE_VERSION,
    HelmetColourModel,
    classify_by_hue_votes,
    colour_features,
    crop_boxes,
)

logger = logging.getLogger("train_helmet_colour")
SOURCE_COLOURS = {1: "red", 2: "blue", 3: "white", 4: "yellow"}
DATASET = "helmet-colour"


def load_crops(data_root: Path, keys: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """Helmet crops and their colour names for the helmet-colour images in ``keys``."""
    crops: list[np.ndarray] = []
    colours: list[str] = []
    root = data_root / DATASET
    for key in keys:
        dataset, name = key.split("/", 1)
        if dataset != DATASET:
            continue
        image = cv2.imread(str(root / "images" / name))
        if image is None:
            raise FileNotFoundError(f"cannot read {root / 'images' / name}")
        rows = (root / "labels" / f"{Path(name).stem}.txt").read_text().split("\n")
        boxes = [[float(v) for v in r.split()] for r in rows if r.strip()]
        boxes = [b for b in boxes if int(b[0]) in SOURCE_COLOURS]
        if not boxes:
            continue
        height, width = image.shape[:2]
        arr = np.asarray(boxes)[:, 1:5] * [width, height, width, height]
        xyxy = np.concatenate([arr[:, :2] - arr[:, 2:] / 2, arr[:, :2] + arr[:, 2:] / 2], axis=1)
        for crop, box in zip(crop_boxes(image, xyxy), boxes, strict=True):
            if min(crop.shape[:2]) >= 2:
                crops.append(crop)
                colours.append(SOURCE_COLOURS[int(box[0])])
    return crops, colours


def confusion(truth: list[str], predicted: list[str]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, predicted, strict=True):
        table.setdefault(t, {}).setdefault(p, 0)
        table[t][p] += 1
    return table


def summary(truth: list[str], predicted: list[str]) -> dict[str, object]:
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    red_true = sum(t == "red" for t in truth)
    red_pred = sum(p == "red" for p in predicted)
    red_hit = sum(t == p == "red" for t, p in zip(truth, predicted, strict=True))
    return {
        "n": len(truth),
        "accuracy": round(correct / max(len(truth), 1), 4),
        "red_recall": round(red_hit / max(red_true, 1), 4),
        "red_precision": round(red_hit / max(red_pred, 1), 4),
        "confusion": confusion(truth, predicted),
    }


def fit(features: np.ndarray, colours: list[str], seed: int = 0) -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    search = GridSearchCV(
        pipeline, {"logisticregression__C": [0.01, 0.03, 0.1, 0.3, 1.0]}, cv=5, n_jobs=1
    )
    search.fit(features, colours)
    scaler, logreg = search.best_estimator_.steps[0][1], search.best_estimator_.steps[1][1]
    logger.info("C=%s, 5-fold CV accuracy %.4f", search.best_params_, search.best_score_)
    return {
        "features": FEATURE_VERSION,
        "classes": [str(c) for c in logreg.classes_],
        "mean": scaler.mean_.tolist(),
        "scale": np.where(scaler.scale_ > 0, scaler.scale_, 1.0).tolist(),
        "coef": logreg.coef_.tolist(),
        "intercept": logreg.intercept_.tolist(),
        "C": search.best_params_["logisticregression__C"],
        "cv_accuracy": round(float(search.best_score_), 4),
        "min_probability": 0.0,
        "detect_orange": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--split-dir", type=Path, default=PROJECT_ROOT / "models" / "data-split")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "models" / "helmet-colour.json")
    parser.add_argument(
        "--metrics", type=Path, default=PROJECT_ROOT / "models" / "helmet-colour-metrics.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    split = {n: (args.split_dir / f"{n}.txt").read_text().split() for n in ("train", "val")}
    train_crops, train_colours = load_crops(args.data_root, split["train"])
    val_crops, val_colours = load_crops(args.data_root, split["val"])
    raw = fit(np.stack([colour_features(c) for c in train_crops]), train_colours)
    args.out.write_text(json.dumps(raw) + "\n")
    model = HelmetColourModel.load(args.out)
    no_orange = HelmetColourModel.load(args.out).__class__(
        **{**model.__dict__, "detect_orange": False}
    )
    results = {
        "train_crops": len(train_crops),
        "hue_votes": summary(val_colours, [classify_by_hue_votes(c).value for c in val_crops]),
        "logreg": summary(val_colours, [model.classify(c).value for c in val_crops]),
        "logreg_no_orange": summary(val_colours, [no_orange.classify(c).value for c in val_crops]),
        "cv_accuracy": raw["cv_accuracy"],
    }
    args.metrics.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["HelmetColour"]
