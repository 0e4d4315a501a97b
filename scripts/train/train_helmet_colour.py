"""Fit the helmet colour classifier (edge/helmet_colour.py) on helmet-colour's crops.

Crops are the labelled helmet boxes (red, blue, white, yellow) of helmet-colour images,
split by image with models/data-split (the detector's split). ``--method boosted`` (default):
gradient-boosted trees (scikit-learn HistGradientBoostingClassifier on hsv-lab-v2 features,
train crops plus a saturation-boosted copy of each, settings by grouped 5-fold CV on train),
exported as JSON arrays; ``--method logreg``: the earlier multinomial logistic regression on
hsv-hist-v1 features (C by 5-fold CV). Either is written to models/helmet-colour.json. Val
accuracy and confusion matrices of the model, of the logistic regression and of the HSV
hue-vote rules (the models as shipped, orange off, and with the orange rule a site can turn on)
go to
models/helmet-colour-metrics.json and are printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from scripts.common import PROJECT_ROOT, shared_root
from sitewatch.contract.events import HelmetColour
from sitewatch.edge.colour_features import colour_features, colour_features_v2
from sitewatch.edge.colour_hue import classify_by_hue_votes
from sitewatch.edge.colour_models import (
    FEATURE_VERSION,
    FEATURE_VERSION_V2,
    BoostedColourModel,
    HelmetColourModel,
    load_colour_model,
)
from sitewatch.edge.helmet_colour import crop_boxes

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
        "detect_orange": False,  # a site turns it on: attributes.orange_helmets
    }


def fit_boosted(
    features: np.ndarray, colours: list[str], groups: np.ndarray, seed: int = 0
) -> dict[str, object]:
    """Gradient-boosted trees (HistGradientBoostingClassifier, settings chosen by 5-fold
    CV on train, ``groups`` kept within a fold), exported as per-tree node arrays for
    :class:`BoostedColourModel`."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GridSearchCV, GroupKFold

    search = GridSearchCV(
        HistGradientBoostingClassifier(random_state=seed, early_stopping=False),
        {"max_iter": [100, 200], "max_leaf_nodes": [15, 31]},
        cv=GroupKFold(5),
        n_jobs=1,
    )
    search.fit(features, colours, groups=groups)
    best = search.best_estimator_
    logger.info("%s, 5-fold CV accuracy %.4f", search.best_params_, search.best_score_)
    trees = []
    depth = 0
    for iteration in best._predictors:
        for class_index, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise RuntimeError("categorical splits are not exported")
            depth = max(depth, int(nodes["depth"].max()))
            trees.append(
                {
                    "class": class_index,
                    "feature": nodes["feature_idx"].astype(int).tolist(),
                    "threshold": nodes["num_threshold"].astype(float).tolist(),
                    "left": nodes["left"].astype(int).tolist(),
                    "right": nodes["right"].astype(int).tolist(),
                    "value": nodes["value"].astype(float).tolist(),
                    "leaf": nodes["is_leaf"].astype(int).tolist(),
                }
            )
    raw: dict[str, object] = {
        "features": FEATURE_VERSION_V2,
        "kind": "hist-gradient-boosting",
        "classes": [str(c) for c in best.classes_],
        "baseline": np.asarray(best._baseline_prediction).ravel().astype(float).tolist(),
        "max_depth": depth,
        "n_features": int(features.shape[1]),
        "params": {k: int(v) for k, v in search.best_params_.items()},
        "cv_accuracy": round(float(search.best_score_), 4),
        "trees": trees,
        "min_probability": 0.0,
        "detect_orange": False,  # a site turns it on: attributes.orange_helmets
    }
    exported = BoostedColourModel.from_raw(raw)
    gap = np.abs(exported.probabilities(features[:200]) - best.predict_proba(features[:200]))
    if gap.max() > 1e-9:
        raise RuntimeError(f"exported trees differ from scikit-learn by {gap.max():.3g}")
    return raw


#: saturation gain of the augmented copy of each train crop (value gains a third of it)
SATURATION_GAIN = 1.6


def saturate(crop_bgr: np.ndarray, gain: float = SATURATION_GAIN) -> np.ndarray:
    """The crop with saturation x ``gain`` (and value x ``1 + (gain - 1) / 3``), clipped:
    cameras and sunlight render helmets more saturated than most of helmet-colour's
    images, and trees do not extrapolate (without it a flat saturated yellow helmet
    reads red)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(crop_bgr), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * gain, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * (1 + (gain - 1) / 3), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=shared_root() / "data")
    parser.add_argument("--split-dir", type=Path, default=PROJECT_ROOT / "models" / "data-split")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "models" / "helmet-colour.json")
    parser.add_argument(
        "--metrics", type=Path, default=PROJECT_ROOT / "models" / "helmet-colour-metrics.json"
    )
    parser.add_argument("--method", choices=("boosted", "logreg"), default="boosted")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    split = {n: (args.split_dir / f"{n}.txt").read_text().split() for n in ("train", "val")}
    train_crops, train_colours = load_crops(args.data_root, split["train"])
    val_crops, val_colours = load_crops(args.data_root, split["val"])
    logreg_raw = fit(np.stack([colour_features(c) for c in train_crops]), train_colours)
    classes = logreg_raw["classes"]
    assert isinstance(classes, list)
    logreg = HelmetColourModel(
        classes=tuple(HelmetColour(c) for c in classes),
        mean=np.asarray(logreg_raw["mean"]),
        scale=np.asarray(logreg_raw["scale"]),
        coef=np.asarray(logreg_raw["coef"]),
        intercept=np.asarray(logreg_raw["intercept"]),
    )
    orange_logreg = dataclasses.replace(logreg, detect_orange=True)
    results: dict[str, object] = {
        "train_crops": len(train_crops),
        "hue_votes": summary(val_colours, [classify_by_hue_votes(c).value for c in val_crops]),
        "logreg": summary(val_colours, [logreg.classify(c).value for c in val_crops]),
        "logreg_orange_rule": summary(
            val_colours, [orange_logreg.classify(c).value for c in val_crops]
        ),
        "logreg_cv_accuracy": logreg_raw["cv_accuracy"],
    }
    raw = logreg_raw
    if args.method == "boosted":
        features = np.stack(
            [colour_features_v2(c) for c in train_crops]
            + [colour_features_v2(saturate(c)) for c in train_crops]
        )
        groups = np.tile(np.arange(len(train_crops)), 2)  # a crop and its copy: same fold
        raw = fit_boosted(features, train_colours * 2, groups)
        raw["saturation_augmentation"] = SATURATION_GAIN
        boosted = BoostedColourModel.from_raw(raw)
        orange = dataclasses.replace(boosted, detect_orange=True)
        results["boosted"] = summary(val_colours, [boosted.classify(c).value for c in val_crops])
        results["boosted_orange_rule"] = summary(
            val_colours, [orange.classify(c).value for c in val_crops]
        )
        results["boosted_cv_accuracy"] = raw["cv_accuracy"]
    args.out.write_text(json.dumps(raw) + "\n")
    load_colour_model(args.out)  # the written file loads
    args.metrics.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["HelmetColour"]
