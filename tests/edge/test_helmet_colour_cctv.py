"""Helmet colour on site CCTV: pink is never red, a frame without colour gives unknown.

Real crops: the helmet boxes labelled by hand on frames of the shared turnstile clips
(tests/data/cctv/labels), decoded from the video.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sitewatch.contract.events import HelmetColour
from sitewatch.edge.colour_hue import classify_by_hue_votes
from sitewatch.edge.evaluation.detection_metrics import LabelledImage
from sitewatch.edge.helmet_colour import classify_crops, classify_helmet_colours, is_greyscale
from tests.edge.cctv_support import labelled_frames

Frames = list[tuple[np.ndarray, LabelledImage]]


@pytest.fixture(scope="module")
def turnstile() -> Frames:
    return list(labelled_frames("turnstile-a"))


def _colours_of(turnstile: Frames, colour: str) -> list[HelmetColour]:
    """The classifier's colour of every helmet labelled ``colour``."""
    found: list[HelmetColour] = []
    for image, labels in turnstile:
        boxes = labels.xyxy[np.array(labels.colours) == colour]
        if len(boxes):
            found += classify_helmet_colours(image, boxes)
    return found


def test_pink_helmets_on_cctv_read_pink_never_red(turnstile: Frames) -> None:
    colours = _colours_of(turnstile, "pink")
    assert len(colours) >= 20, "expected the labelled pink helmets of turnstile-a"
    assert HelmetColour.RED not in colours, colours
    assert colours.count(HelmetColour.PINK) / len(colours) >= 0.9, colours


def test_white_and_yellow_helmets_on_cctv_keep_their_colour(turnstile: Frames) -> None:
    white, yellow = _colours_of(turnstile, "white"), _colours_of(turnstile, "yellow")
    assert len(white) >= 10 and len(yellow) >= 3
    assert white.count(HelmetColour.WHITE) / len(white) >= 0.9, white
    assert HelmetColour.PINK not in white + yellow and HelmetColour.RED not in white + yellow


def test_a_greyscale_frame_gives_unknown_never_a_guess(turnstile: Frames) -> None:
    image, labels = next(f for f in turnstile if "pink" in f[1].colours)
    assert not is_greyscale(image)
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    infrared = np.clip(grey.astype(np.int16) + np.array([6, 0, 3]), 0, 255).astype(np.uint8)
    helmets = labels.xyxy[np.array(labels.names) == "helmet"]
    for frame in (grey, infrared):  # a night camera: grey, or grey with a faint tint
        assert is_greyscale(frame)
        assert classify_helmet_colours(frame, helmets) == [HelmetColour.UNKNOWN] * len(helmets)


def test_hue_vote_fallback_reads_a_pink_shell_pink() -> None:
    # the turnstile clips' pink: hue 160, saturation 84, value 200 (OpenCV scales)
    pink = cv2.cvtColor(np.array([[[160, 84, 200]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    crop = np.full((40, 40, 3), pink, np.uint8)
    crop[24:] = (120, 150, 200)  # the face below the shell
    assert classify_by_hue_votes(crop) is HelmetColour.PINK
    assert classify_crops([crop]) == [HelmetColour.PINK]
