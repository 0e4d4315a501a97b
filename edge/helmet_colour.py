"""Helmet colour from the pixels of a helmet box: the classifier the edge runs.

The shipped model (``models/helmet-colour.json``, :mod:`sitewatch.edge.colour_models`) is
loaded once; without its file the hue votes of :mod:`sitewatch.edge.colour_hue` are the
fallback, with a warning. Crops are classified a frame at a time, in one batch.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from sitewatch.contract.events import HelmetColour
from sitewatch.edge.colour_hue import classify_by_hue_votes
from sitewatch.edge.colour_models import ColourModel, load_colour_model
from sitewatch.resources import model_file

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = model_file("helmet-colour.json")
MIN_CROP_PX = 2
#: A frame whose pixels' channels differ by at most this much (0-255; all but 0.1 % of the
#: shrunk frame's pixels) holds no colour: a greyscale or infrared night camera. Colour
#: frames of the shared clips and data sets measure 40-255 (checked in tests); a grey or
#: tinted IR frame a few units. A small coloured patch is enough to count as colour.
GREY_MAX_CHANNEL_SPREAD = 12
#: The frame is judged on a copy shrunk to this side (cheap on 4 MP frames).
GREY_CHECK_SIDE = 96


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
    """Colour of every helmet box ``xyxy (N, 4)`` (pixels) in ``frame_bgr``: ``unknown`` for
    all of them when the frame holds no colour (:func:`is_greyscale`), never a guess."""
    crops = crop_boxes(frame_bgr, xyxy)
    if crops and is_greyscale(frame_bgr):
        return [HelmetColour.UNKNOWN] * len(crops)
    return classify_crops(crops, model)


def is_greyscale(frame_bgr: np.ndarray) -> bool:
    """True for a frame without colour (its channels all but equal everywhere)."""
    small = cv2.resize(
        np.ascontiguousarray(frame_bgr),
        (GREY_CHECK_SIDE, GREY_CHECK_SIDE),
        interpolation=cv2.INTER_AREA,
    ).astype(np.int16)
    spread = small.max(axis=2) - small.min(axis=2)
    return bool(np.percentile(spread, 99.9) <= GREY_MAX_CHANNEL_SPREAD)
