"""Features of a helmet crop for the colour classifiers (HSV and Lab histograms).

A helmet box covers the whole head: the shell is its upper-central part (the
:class:`ColourWindow`), the face its lower part. Hue values use OpenCV's 0..179 scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ColourWindow:
    """Fractions of the box (x0, y0, x1, y1) that hold the helmet shell."""

    x0: float = 0.2
    y0: float = 0.05
    x1: float = 0.8
    y1: float = 0.5


WINDOW = ColourWindow()
MIN_SATURATION = 90
MIN_VALUE = 70
HUE_BINS, SAT_BINS, VAL_BINS = 18, 4, 8


def helmet_window(crop_bgr: np.ndarray, window: ColourWindow = WINDOW) -> np.ndarray:
    """The upper-central part of a helmet crop, where the shell is."""
    height, width = crop_bgr.shape[:2]
    x0, x1 = int(width * window.x0), max(int(width * window.x1), int(width * window.x0) + 1)
    y0, y1 = int(height * window.y0), max(int(height * window.y1), int(height * window.y0) + 1)
    return crop_bgr[y0:y1, x0:x1]


def hsv_pixels(crop_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(crop_bgr), cv2.COLOR_BGR2HSV).reshape(-1, 3)


def chromatic_mask(hsv: np.ndarray) -> np.ndarray:
    """Pixels of ``(N, 3)`` HSV saturated and bright enough to have a hue."""
    return (hsv[:, 1] >= MIN_SATURATION) & (hsv[:, 2] >= MIN_VALUE)


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


def to_hsv(crop_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(crop_bgr), cv2.COLOR_BGR2HSV)


def hsv_features(hsv_image: np.ndarray) -> np.ndarray:
    window = helmet_window(hsv_image).reshape(-1, 3)
    return np.concatenate([_hsv_histogram_of(window), _hsv_histogram_of(hsv_image.reshape(-1, 3))])


def colour_features(crop_bgr: np.ndarray) -> np.ndarray:
    """Feature vector of one crop (version :data:`FEATURE_VERSION`): histograms of the
    upper-central window and of the whole box."""
    return hsv_features(to_hsv(crop_bgr))


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
    hsv_image = to_hsv(small)
    lab_image = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
    window_hsv = helmet_window(hsv_image).reshape(-1, 3)
    return np.concatenate(
        [
            hsv_features(hsv_image),
            _lab_histogram_of(helmet_window(lab_image).reshape(-1, 3)),
            _lab_histogram_of(lab_image.reshape(-1, 3)),
            _chroma_hue_of(window_hsv),
        ]
    )
