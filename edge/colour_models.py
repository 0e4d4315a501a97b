"""The helmet colour classifiers the JSON model files hold.

* :class:`BoostedColourModel` (the shipped ``models/helmet-colour.json``): gradient-boosted
  trees on HSV and Lab histograms of the box and of its window (``hsv-lab-v2``), trained by
  ``scripts/train/train_helmet_colour.py`` and stored as plain JSON arrays; numpy inference.
* :class:`HelmetColourModel`: the earlier multinomial logistic regression on HSV
  histograms (``hsv-hist-v1``, ``--method logreg``).

For both, a crop whose best probability is below the model's ``min_probability`` is
``other``; with the orange rule on, a red or yellow call whose window looks orange is
``orange`` (:func:`sitewatch.edge.colour_hue.looks_orange`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from sitewatch.contract.events import HelmetColour
from sitewatch.edge.colour_features import colour_features_v2, hsv_features, to_hsv
from sitewatch.edge.colour_hue import ORANGE_HUE, looks_orange_hsv, looks_pink_hsv

FEATURE_VERSION = "hsv-hist-v1"
FEATURE_VERSION_V2 = "hsv-lab-v2"
#: The calls the models give pink helmets (mostly red, a few white).
PINK_LOOKALIKES = (HelmetColour.RED, HelmetColour.WHITE, HelmetColour.OTHER)


def _decide(
    model: HelmetColourModel | BoostedColourModel,
    probabilities: np.ndarray,
    hsv_image: np.ndarray | Callable[[], np.ndarray],
    orange_band: tuple[float, float],
) -> HelmetColour:
    """The model's colour call: ``other`` below its ``min_probability``; a red, white or
    other call whose window has a pink hue is ``pink`` (the models were never shown pink,
    and read it red: a pink helmet must never make a party member); with the orange rule,
    a red or yellow call whose window looks orange (see :func:`looks_orange`) is
    ``orange``. ``hsv_image`` may be a callable, converted only when a check needs it."""
    best = int(np.argmax(probabilities))
    colour = model.classes[best]
    if probabilities[best] < model.min_probability:
        colour = HelmetColour.OTHER
    check_pink = colour in PINK_LOOKALIKES
    check_orange = model.detect_orange and colour in (HelmetColour.RED, HelmetColour.YELLOW)
    if not (check_pink or check_orange):
        return colour
    hsv = hsv_image() if callable(hsv_image) else hsv_image  # converted once, for both checks
    if check_pink and looks_pink_hsv(hsv):
        return HelmetColour.PINK
    if check_orange and looks_orange_hsv(hsv, orange_band):
        return HelmetColour.ORANGE
    return colour


@dataclass(frozen=True)
class HelmetColourModel:
    """Standardise -> linear -> softmax, weights from ``scripts/train/train_helmet_colour.py``."""

    classes: tuple[HelmetColour, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray  # (n_classes,)
    min_probability: float = 0.0
    detect_orange: bool = True

    @classmethod
    def load(cls, path: Path) -> HelmetColourModel:
        try:
            raw = json.loads(path.read_text())
            if raw["features"] != FEATURE_VERSION:
                raise ValueError(f"features {raw['features']!r}, expected {FEATURE_VERSION!r}")
            model = cls(
                classes=tuple(HelmetColour(c) for c in raw["classes"]),
                mean=np.asarray(raw["mean"], dtype=np.float64),
                scale=np.asarray(raw["scale"], dtype=np.float64),
                coef=np.asarray(raw["coef"], dtype=np.float64),
                intercept=np.asarray(raw["intercept"], dtype=np.float64),
                min_probability=float(raw.get("min_probability", 0.0)),
                detect_orange=bool(raw.get("detect_orange", True)),
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"helmet colour model {path}: {exc}") from exc
        if model.coef.shape != (len(model.classes), len(model.mean)):
            raise ValueError(
                f"helmet colour model {path}: coef shape {model.coef.shape} does "
                f"not match {len(model.classes)} classes x {len(model.mean)} features"
            )
        return model

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` for features ``(N, n_features)``."""
        logits = ((features - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def classify(self, crop_bgr: np.ndarray) -> HelmetColour:
        # HSV is per pixel: the window of the crop's HSV is the HSV of its window, so one
        # conversion serves both histograms and the orange check.
        return self.classify_many([crop_bgr])[0]

    def classify_many(self, crops_bgr: list[np.ndarray]) -> list[HelmetColour]:
        """:meth:`classify` of each crop, the model run once on all of them."""
        if not crops_bgr:
            return []
        hsv_images = [to_hsv(crop) for crop in crops_bgr]
        probabilities = self.probabilities(np.stack([hsv_features(h) for h in hsv_images]))
        return [
            _decide(self, p, hsv, ORANGE_HUE)
            for p, hsv in zip(probabilities, hsv_images, strict=True)
        ]


@dataclass(frozen=True)
class BoostedColourModel:
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, exported by
    ``scripts/train/train_helmet_colour.py`` as arrays) on :func:`colour_features_v2`; numpy
    inference: every tree is walked at once, one level per step."""

    classes: tuple[HelmetColour, ...]
    baseline: np.ndarray  # (n_classes,)
    tree_class: np.ndarray  # (n_trees,) class each tree adds to
    feature: np.ndarray  # (n_trees, n_nodes)
    threshold: np.ndarray  # (n_trees, n_nodes): x <= threshold goes left
    left: np.ndarray  # (n_trees, n_nodes)
    right: np.ndarray  # (n_trees, n_nodes)
    value: np.ndarray  # (n_trees, n_nodes) leaf values (learning rate applied)
    is_leaf: np.ndarray  # (n_trees, n_nodes) bool
    depth: int
    n_features: int
    min_probability: float = 0.0
    detect_orange: bool = True
    orange_hue: tuple[float, float] = (float(ORANGE_HUE[0]), float(ORANGE_HUE[1]))

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> BoostedColourModel:
        trees = raw["trees"]
        band = raw.get("orange_hue", ORANGE_HUE)
        width = max(len(t["feature"]) for t in trees)

        def stack(key: str, dtype: type, fill: float) -> np.ndarray:
            rows = [list(t[key]) + [fill] * (width - len(t[key])) for t in trees]
            return np.asarray(rows, dtype=dtype)

        return cls(
            classes=tuple(HelmetColour(c) for c in raw["classes"]),
            baseline=np.asarray(raw["baseline"], dtype=np.float64),
            tree_class=np.asarray([t["class"] for t in trees], dtype=np.intp),
            feature=stack("feature", np.intp, 0),
            threshold=stack("threshold", np.float64, 0.0),
            left=stack("left", np.intp, 0),
            right=stack("right", np.intp, 0),
            value=stack("value", np.float64, 0.0),
            is_leaf=stack("leaf", bool, 1),
            depth=int(raw["max_depth"]),
            n_features=int(raw["n_features"]),
            min_probability=float(raw.get("min_probability", 0.0)),
            detect_orange=bool(raw.get("detect_orange", True)),
            orange_hue=(float(band[0]), float(band[1])),
        )

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` for features ``(N, n_features)``."""
        # All samples and all trees at once: node (N, T), one tree level per step.
        features = np.asarray(features, dtype=np.float64).reshape(-1, self.n_features)
        trees = np.arange(len(self.tree_class))[None, :]
        samples = np.arange(len(features))[:, None]
        node = np.zeros((len(features), len(self.tree_class)), dtype=np.intp)
        for _ in range(self.depth):
            x = features[samples, self.feature[trees, node]]
            step = np.where(
                x <= self.threshold[trees, node], self.left[trees, node], self.right[trees, node]
            )
            node = np.where(self.is_leaf[trees, node], node, step)
        leaf_values = self.value[trees, node]  # (N, T)
        raw = self.baseline + leaf_values @ self._class_of_tree
        exp = np.exp(raw - raw.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    @cached_property
    def _class_of_tree(self) -> np.ndarray:
        """(T, n_classes) one-hot: the class each tree's value adds to (built once)."""
        return np.eye(len(self.classes))[self.tree_class]

    def classify(self, crop_bgr: np.ndarray) -> HelmetColour:
        return self.classify_many([crop_bgr])[0]

    def classify_many(self, crops_bgr: list[np.ndarray]) -> list[HelmetColour]:
        """:meth:`classify` of each crop, the trees walked once for all of them."""
        if not crops_bgr:
            return []
        probabilities = self.probabilities(np.stack([colour_features_v2(c) for c in crops_bgr]))
        return [
            _decide(self, p, partial(to_hsv, crop), self.orange_hue)
            for p, crop in zip(probabilities, crops_bgr, strict=True)
        ]


ColourModel = HelmetColourModel | BoostedColourModel


def load_colour_model(path: Path) -> ColourModel:
    """The model in ``path``: logistic regression (hsv-hist-v1) or boosted trees
    (hsv-lab-v2), by the file's ``features``."""
    try:
        raw = json.loads(path.read_text())
        if raw.get("features") == FEATURE_VERSION_V2:
            model = BoostedColourModel.from_raw(raw)
            if model.feature.max() >= model.n_features:
                raise ValueError("a tree splits on a feature the model does not have")
            return model
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"helmet colour model {path}: {exc}") from exc
    return HelmetColourModel.load(path)
