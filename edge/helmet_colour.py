"""Helmet colour from the pixels of a helmet box.

A helmet box from the detector covers the whole head: the shell is its upper part and
the face (skin, often reddish-orange) its lower part. The colour is therefore read from
the upper-central window of the box only (:data:`WINDOW`), in HSV:

* a pixel is *chromatic* when saturated and bright enough, and then votes for the hue
  band it falls in (red, orange, yellow, blue);
* a pixel is *white* when its saturation is low and its value high;
* the colour with the most votes wins if its share of the window reaches
  :data:`MIN_SHARE`; otherwise the helmet is ``other``.

Hue bands use OpenCV's 0..179 hue scale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from edge.events import HelmetColour

logger = logging.getLogger(__name__)


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
MIN_SATURATION = 90
MIN_VALUE = 70
WHITE_MAX_SATURATION = 50
WHITE_MIN_VALUE = 150
MIN_SHARE = 0.15
MIN_CROP_PX = 2


def helmet_window(crop_bgr: np.ndarray, window: ColourWindow = WINDOW) -> np.ndarray:
    """The upper-central part of a helmet crop, where the shell is."""
    height, width = crop_bgr.shape[:2]
    x0, x1 = int(width * window.x0), max(int(width * window.x1), int(width * window.x0) + 1)
    y0, y1 = int(height * window.y0), max(int(height * window.y1), int(height * window.y0) + 1)
    return crop_bgr[y0:y1, x0:x1]


def colour_votes(crop_bgr: np.ndarray) -> dict[HelmetColour, float]:
    """Share of the window's pixels that vote for each colour (sums to <= 1)."""
    hsv = cv2.cvtColor(helmet_window(crop_bgr), cv2.COLOR_BGR2HSV).reshape(-1, 3)
    hue, sat, val = (hsv[:, i].astype(np.int32) for i in range(3))
    n_px = max(len(hsv), 1)
    chromatic = (sat >= MIN_SATURATION) & (val >= MIN_VALUE)
    votes: dict[HelmetColour, float] = {colour: 0.0 for colour in HelmetColour}
    for colour, low, high in HUE_BANDS:
        votes[colour] += float(np.count_nonzero(chromatic & (hue >= low) & (hue < high))) / n_px
    white = (sat <= WHITE_MAX_SATURATION) & (val >= WHITE_MIN_VALUE)
    votes[HelmetColour.WHITE] = float(np.count_nonzero(white)) / n_px
    return votes


def classify_helmet_colour(crop_bgr: np.ndarray) -> HelmetColour:
    """Colour of one helmet crop (BGR, the whole helmet/head box)."""
    if crop_bgr.ndim != 3 or crop_bgr.shape[2] != 3:
        raise ValueError(f"crop_bgr must be HxWx3 BGR, got shape {crop_bgr.shape}")
    if min(crop_bgr.shape[:2]) < MIN_CROP_PX:
        return HelmetColour.OTHER
    votes = colour_votes(crop_bgr)
    best = max(votes, key=lambda colour: votes[colour])
    return best if votes[best] >= MIN_SHARE else HelmetColour.OTHER


def crop_boxes(frame_bgr: np.ndarray, xyxy: np.ndarray) -> list[np.ndarray]:
    """Crops of ``frame_bgr`` for each box, clipped to the frame (may be empty)."""
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
    height, width = frame_bgr.shape[:2]
    boxes = np.round(xyxy).astype(np.int64)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return [frame_bgr[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]


def classify_helmet_colours(frame_bgr: np.ndarray, xyxy: np.ndarray) -> list[HelmetColour]:
    """Colour of every helmet box ``xyxy (N, 4)`` (pixels) in ``frame_bgr``."""
    return [classify_helmet_colour(crop) for crop in crop_boxes(frame_bgr, xyxy)]
