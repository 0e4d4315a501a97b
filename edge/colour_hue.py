"""Hue rules on a helmet crop: the fallback classifier and the orange check.

:func:`classify_by_hue_votes` lets the window's pixels vote for a hue band or white (used
when no model file is present); :func:`looks_orange` is the orange rule that a site which
issues orange helmets turns on (``attributes.orange_helmets``).
"""

from __future__ import annotations

import numpy as np

from sitewatch.contract.events import HelmetColour
from sitewatch.edge.colour_features import (
    MIN_SATURATION,
    MIN_VALUE,
    chromatic_mask,
    helmet_window,
    hsv_pixels,
    to_hsv,
)

#: (colour, hue_low, hue_high) in OpenCV hue units, half-open [low, high).
HUE_BANDS: tuple[tuple[HelmetColour, int, int], ...] = (
    (HelmetColour.RED, 0, 10),
    (HelmetColour.ORANGE, 10, 17),
    (HelmetColour.YELLOW, 17, 38),
    (HelmetColour.BLUE, 90, 135),
    (HelmetColour.PINK, 140, 168),
    (HelmetColour.RED, 168, 180),
)
#: Pink helmets: a magenta hue (OpenCV 140-168; red sits at 168-180 and 0-10), paler than
#: red. 1.8 % of the train split's red helmet crops have their median hue there.
PINK_HUE = (140, 168)
#: Pixels pale enough for pink still count as coloured (``chromatic_mask`` asks for 90).
PINK_MIN_SATURATION = 40
ORANGE_HUE = (10, 17)
WHITE_MAX_SATURATION = 50
WHITE_MIN_VALUE = 150
MIN_SHARE = 0.15


def colour_votes(crop_bgr: np.ndarray) -> dict[HelmetColour, float]:
    """Share of the window's pixels that vote for each colour (sums to <= 1)."""
    hsv = hsv_pixels(helmet_window(crop_bgr)).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    n_px = max(len(hsv), 1)
    chromatic = chromatic_mask(hsv)
    votes: dict[HelmetColour, float] = {colour: 0.0 for colour in HelmetColour}
    for colour, low, high in HUE_BANDS:
        votes[colour] += float(np.count_nonzero(chromatic & (hue >= low) & (hue < high))) / n_px
    white = (sat <= WHITE_MAX_SATURATION) & (val >= WHITE_MIN_VALUE)
    votes[HelmetColour.WHITE] = float(np.count_nonzero(white)) / n_px
    return votes


def classify_by_hue_votes(crop_bgr: np.ndarray) -> HelmetColour:
    """The rule-based method: pink when the window looks pink (:func:`looks_pink_hsv`; pink
    is too pale for the vote's saturation floor), else the colour with most votes, if it
    has :data:`MIN_SHARE`."""
    if looks_pink_hsv(to_hsv(crop_bgr)):
        return HelmetColour.PINK
    votes = colour_votes(crop_bgr)
    best = max(votes, key=lambda colour: votes[colour])
    return best if votes[best] >= MIN_SHARE else HelmetColour.OTHER


def looks_orange(crop_bgr: np.ndarray) -> bool:
    """True when the window's saturated pixels have a median hue in :data:`ORANGE_HUE`."""
    return looks_orange_hsv(to_hsv(crop_bgr))


def looks_orange_hsv(
    hsv_image: np.ndarray, band: tuple[float, float] = (float(ORANGE_HUE[0]), float(ORANGE_HUE[1]))
) -> bool:
    """:func:`looks_orange` of a crop already converted to HSV."""
    return _window_hue_in(hsv_image, band, MIN_SATURATION)


def looks_pink_hsv(hsv_image: np.ndarray) -> bool:
    """True when the window's coloured pixels have a median hue in :data:`PINK_HUE`."""
    return _window_hue_in(hsv_image, PINK_HUE, PINK_MIN_SATURATION)


def _window_hue_in(hsv_image: np.ndarray, band: tuple[float, float], min_saturation: int) -> bool:
    """The median hue of the window's pixels at ``min_saturation`` (and bright enough) lies in
    ``band``; False when they are fewer than :data:`MIN_SHARE` of the window."""
    hsv = helmet_window(hsv_image).reshape(-1, 3)
    hue = hsv[(hsv[:, 1] >= min_saturation) & (hsv[:, 2] >= MIN_VALUE), 0]
    if len(hue) < max(4, MIN_SHARE * len(hsv)):
        return False
    return bool(band[0] <= float(np.median(hue)) < band[1])
