"""Helmet colour from the pixels of a helmet box.

A helmet box from the detector covers the whole head: the shell is its upper part and
the face (skin, often reddish-orange) its lower part. Three methods share the same crops:

* :class:`BoostedColourModel` (the shipped ``models/helmet-colour.json``): gradient-boosted
  trees on HSV and Lab histograms of the box and of its upper-central window
  (:func:`colour_features_v2`), trained by ``scripts/train_helmet_colour.py`` on the
  labelled helmet crops of ``helmet-colour`` (red, blue, white, yellow) and stored as
  plain JSON arrays; inference is numpy only.
* :class:`HelmetColourModel`: the earlier multinomial logistic regression on HSV
  histograms (``hsv-hist-v1``), loaded when the JSON file holds one
  (``scripts/train_helmet_colour.py --method logreg``).

  For both, a crop whose best probability is below the model's ``min_probability`` is
  ``other``. The training data has no orange class; with the orange rule on (a site
  that issues orange helmets sets ``attributes.orange_helmets``, see
  :func:`with_orange_rule`), a red or yellow call whose chromatic pixels have an orange
  median hue is ``orange``. It is off by default: with it on, 4-9 % of the helmets
  labelled red read orange (model card), and those would be missed party members.
* :func:`classify_by_hue_votes`: HSV rules (pixels of the window vote for a hue band or
  white), kept as the fallback when no model file is present.

Hue values use OpenCV's 0..179 scale.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.events import HelmetColour

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "helmet-colour.json"
FEATURE_VERSION = "hsv-hist-v1"
FEATURE_VERSION_V2 = "hsv-lab-v2"


@dataclass(frozen=True)
class ColourWindow:
    """Fractions of the box (x0, y0, x1, y1) that hold the helmet shell."""

    x0: float = 0.2
    y0: float = 0.05
    x1: float = 0.8
    y1: float = 0.5


WINDOW = ColourWindow()
#: (colour, hue_low, hue_high) in OpenCV hue units, half-open [low, high).
HUE_BANDS: tuple[tuple[HelmetColour, int, int], ...] = (
    (HelmetColour.RED, 0, 10),
    (HelmetColour.ORANGE, 10, 17),
    (HelmetColour.YELLOW, 17, 38),
    (HelmetColour.BLUE, 90, 135),
    (HelmetColour.RED, 160, 180),
)
ORANGE_HUE = (10, 17)
MIN_SATURATION = 90
MIN_VALUE = 70
WHITE_MAX_SATURATION = 50
WHITE_MIN_VALUE = 150
MIN_SHARE = 0.15
MIN_CROP_PX = 2
HUE_BINS, SAT_BINS, VAL_BINS = 18, 4, 8


def helmet_window(crop_bgr: np.ndarray, window: ColourWindow = WINDOW) -> np.ndarray:
    """The upper-central part of a helmet crop, where the shell is."""
    height, width = crop_bgr.shape[:2]
    x0, x1 = int(width * window.x0), max(int(width * window.x1), int(width * window.x0) + 1)
    y0, y1 = int(height * window.y0), max(int(height * window.y1), int(height * window.y0) + 1)
    return crop_bgr[y0:y1, x0:x1]


def _hsv_pixels(crop_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(crop_bgr), cv2.COLOR_BGR2HSV).reshape(-1, 3)


def _chromatic(hsv: np.ndarray) -> np.ndarray:
    return (hsv[:, 1] >= MIN_SATURATION) & (hsv[:, 2] >= MIN_VALUE)


def colour_votes(crop_bgr: np.ndarray) -> dict[HelmetColour, float]:
    """Share of the window's pixels that vote for each colour (sums to <= 1)."""
    hsv = _hsv_pixels(helmet_window(crop_bgr)).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    n_px = max(len(hsv), 1)
    chromatic = _chromatic(hsv)
    votes: dict[HelmetColour, float] = {colour: 0.0 for colour in HelmetColour}
    for colour, low, high in HUE_BANDS:
        votes[colour] += float(np.count_nonzero(chromatic & (hue >= low) & (hue < high))) / n_px
    white = (sat <= WHITE_MAX_SATURATION) & (val >= WHITE_MIN_VALUE)
    votes[HelmetColour.WHITE] = float(np.count_nonzero(white)) / n_px
    return votes


def classify_by_hue_votes(crop_bgr: np.ndarray) -> HelmetColour:
    """The rule-based method: the colour with most votes, if it has :data:`MIN_SHARE`."""
    votes = colour_votes(crop_bgr)
    best = max(votes, key=lambda colour: votes[colour])
    return best if votes[best] >= MIN_SHARE else HelmetColour.OTHER


#: Bin widths of the histograms: 180 / HUE_BINS, 256 / SAT_BINS, 256 / VAL_BINS (integers,
#: so integer division of the uint8 HSV values gives exactly ``np.histogram``'s bins).
_HUE_STEP, _SAT_STEP, _VAL_STEP = 180 // HUE_BINS, 256 // SAT_BINS, 256 // VAL_BINS


def _hsv_histogram_of(hsv: np.ndarray) -> np.ndarray:
    """Joint hue x saturation histogram plus a value histogram of ``(N, 3)`` uint8 HSV
    pixels, each summing to 1.

    Same numbers as ``np.histogram2d(hue, sat, bins=(HUE_BINS, SAT_BINS),
    range=((0, 180), (0, 256)))`` and ``np.histogram(val, VAL_BINS, (0, 256))``: the bin
    edges are integer multiples of the steps above, so a pixel's bin is its value divided
    by the step; ``np.bincount`` counts them in one pass (~20x faster here).
    """
    pixels = hsv.astype(np.intp)
    joint_bin = (pixels[:, 0] // _HUE_STEP) * SAT_BINS + pixels[:, 1] // _SAT_STEP
    joint = np.bincount(joint_bin, minlength=HUE_BINS * SAT_BINS)
    value = np.bincount(pixels[:, 2] // _VAL_STEP, minlength=VAL_BINS)
    n_px = max(len(hsv), 1)
    return np.concatenate([joint, value]).astype(np.float64) / n_px


def _hsv_image(crop_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(crop_bgr), cv2.COLOR_BGR2HSV)


def _features_of(hsv_image: np.ndarray) -> np.ndarray:
    window = helmet_window(hsv_image).reshape(-1, 3)
    return np.concatenate([_hsv_histogram_of(window), _hsv_histogram_of(hsv_image.reshape(-1, 3))])


def colour_features(crop_bgr: np.ndarray) -> np.ndarray:
    """Feature vector of one crop (version :data:`FEATURE_VERSION`): histograms of the
    upper-central window and of the whole box."""
    return _features_of(_hsv_image(crop_bgr))


def looks_orange(crop_bgr: np.ndarray) -> bool:
    """True when the window's saturated pixels have a median hue in :data:`ORANGE_HUE`."""
    return _looks_orange_of(_hsv_image(crop_bgr))


def _looks_orange_of(
    hsv_image: np.ndarray, band: tuple[float, float] = (float(ORANGE_HUE[0]), float(ORANGE_HUE[1]))
) -> bool:
    hsv = helmet_window(hsv_image).reshape(-1, 3)
    hue = hsv[_chromatic(hsv), 0]
    if len(hue) < max(4, MIN_SHARE * len(hsv)):
        return False
    return bool(band[0] <= float(np.median(hue)) < band[1])


def _decide(
    model: HelmetColourModel | BoostedColourModel,
    probabilities: np.ndarray,
    hsv_image: np.ndarray | Callable[[], np.ndarray],
    orange_band: tuple[float, float],
) -> HelmetColour:
    """The model's colour call: ``other`` below its ``min_probability``; a red or yellow
    call whose window looks orange (see :func:`looks_orange`) is ``orange``.
    ``hsv_image`` may be a callable, converted only when the orange check needs it."""
    best = int(np.argmax(probabilities))
    if probabilities[best] < model.min_probability:
        return HelmetColour.OTHER
    colour = model.classes[best]
    warm = colour in (HelmetColour.RED, HelmetColour.YELLOW)
    if model.detect_orange and warm:
        hsv = hsv_image() if callable(hsv_image) else hsv_image
        if _looks_orange_of(hsv, orange_band):
            return HelmetColour.ORANGE
    return colour


@dataclass(frozen=True)
class HelmetColourModel:
    """Standardise -> linear -> softmax, weights from ``scripts/train_helmet_colour.py``."""

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
        hsv_images = [_hsv_image(crop) for crop in crops_bgr]
        probabilities = self.probabilities(np.stack([_features_of(h) for h in hsv_images]))
        return [
            _decide(self, p, hsv, ORANGE_HUE)
            for p, hsv in zip(probabilities, hsv_images, strict=True)
        ]


#: Longest side a crop is shrunk to (INTER_AREA) before the hsv-lab-v2 features.
V2_MAX_SIDE = 48
LAB_AB_BINS, LAB_L_BINS = 8, 8
CHROMA_HUE_BINS = 36
CHROMA_MIN_SATURATION, CHROMA_MIN_VALUE = 60, 50
_AB_STEP, _L_STEP, _CHROMA_STEP = 256 // LAB_AB_BINS, 256 // LAB_L_BINS, 180 // CHROMA_HUE_BINS


def _shrink(crop_bgr: np.ndarray, max_side: int = V2_MAX_SIDE) -> np.ndarray:
    height, width = crop_bgr.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return np.ascontiguousarray(crop_bgr)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(np.ascontiguousarray(crop_bgr), size, interpolation=cv2.INTER_AREA)


def _lab_histogram_of(lab: np.ndarray) -> np.ndarray:
    """Joint a* x b* histogram plus an L* histogram of ``(N, 3)`` uint8 Lab pixels."""
    pixels = lab.astype(np.intp)
    joint = np.bincount(
        (pixels[:, 1] // _AB_STEP) * LAB_AB_BINS + pixels[:, 2] // _AB_STEP,
        minlength=LAB_AB_BINS * LAB_AB_BINS,
    )
    light = np.bincount(pixels[:, 0] // _L_STEP, minlength=LAB_L_BINS)
    return np.concatenate([joint, light]).astype(np.float64) / max(len(lab), 1)


def _chroma_hue_of(hsv: np.ndarray) -> np.ndarray:
    """Hue histogram of the saturated pixels (sums to 1) and their share of all pixels."""
    chromatic = (hsv[:, 1] >= CHROMA_MIN_SATURATION) & (hsv[:, 2] >= CHROMA_MIN_VALUE)
    count = int(np.count_nonzero(chromatic))
    hue = np.bincount(hsv[chromatic, 0].astype(np.intp) // _CHROMA_STEP, minlength=CHROMA_HUE_BINS)
    share = count / max(len(hsv), 1)
    return np.concatenate([hue.astype(np.float64) / max(count, 1), [share]])


def colour_features_v2(crop_bgr: np.ndarray) -> np.ndarray:
    """hsv-lab-v2 features: the crop shrunk to :data:`V2_MAX_SIDE`, then the hsv-hist-v1
    histograms, Lab histograms of the window and of the box, and the hue histogram of the
    window's saturated pixels."""
    small = _shrink(crop_bgr)
    hsv_image = _hsv_image(small)
    lab_image = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
    window_hsv = helmet_window(hsv_image).reshape(-1, 3)
    return np.concatenate(
        [
            _features_of(hsv_image),
            _lab_histogram_of(helmet_window(lab_image).reshape(-1, 3)),
            _lab_histogram_of(lab_image.reshape(-1, 3)),
            _chroma_hue_of(window_hsv),
        ]
    )


@dataclass(frozen=True)
class BoostedColourModel:
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, exported by
    ``scripts/train_helmet_colour.py`` as arrays) on :func:`colour_features_v2`; numpy
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
            _decide(self, p, partial(_hsv_image, crop), self.orange_hue)
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


@lru_cache(maxsize=4)
def load_default_model(path: Path = DEFAULT_MODEL_PATH) -> ColourModel | None:
    """The shipped model, or None (with a warning) when its file is absent."""
    if not path.exists():
        logger.warning("no helmet colour model at %s: using HSV hue votes", path)
        return None
    return load_colour_model(path)


def with_orange_rule(model: ColourModel | None, enabled: bool) -> ColourModel | None:
    """``model`` with its orange rule switched on or off (None stays None: the hue-vote
    fallback has its own orange band)."""
    if model is None or model.detect_orange == enabled:
        return model
    return replace(model, detect_orange=enabled)


def classify_helmet_colour(crop_bgr: np.ndarray, model: ColourModel | None = None) -> HelmetColour:
    """Colour of one helmet crop (BGR, the whole helmet/head box)."""
    return classify_crops([crop_bgr], model)[0]


def classify_crops(
    crops_bgr: list[np.ndarray], model: ColourModel | None = None
) -> list[HelmetColour]:
    """Colour of each helmet crop (BGR); crops under :data:`MIN_CROP_PX` are ``other``.
    The model runs once on all the others."""
    for crop in crops_bgr:
        if crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"crop_bgr must be HxWx3 BGR, got shape {crop.shape}")
    out = [HelmetColour.OTHER] * len(crops_bgr)
    usable = [i for i, crop in enumerate(crops_bgr) if min(crop.shape[:2]) >= MIN_CROP_PX]
    model = model or load_default_model()
    if model is None:
        colours = [classify_by_hue_votes(crops_bgr[i]) for i in usable]
    else:
        colours = model.classify_many([crops_bgr[i] for i in usable])
    for i, colour in zip(usable, colours, strict=True):
        out[i] = colour
    return out


def crop_boxes(frame_bgr: np.ndarray, xyxy: np.ndarray) -> list[np.ndarray]:
    """Crops of ``frame_bgr`` for each box, clipped to the frame (may be empty)."""
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
    height, width = frame_bgr.shape[:2]
    boxes = np.round(np.nan_to_num(xyxy)).astype(np.int64)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return [frame_bgr[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]


def classify_helmet_colours(
    frame_bgr: np.ndarray, xyxy: np.ndarray, model: ColourModel | None = None
) -> list[HelmetColour]:
    """Colour of every helmet box ``xyxy (N, 4)`` (pixels) in ``frame_bgr``."""
    return classify_crops(crop_boxes(frame_bgr, xyxy), model)
