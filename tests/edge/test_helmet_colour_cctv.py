"""Helmet colour on site CCTV: pink is never red, a frame without colour gives unknown.

Real crops: the helmet boxes labelled by hand on frames of the shared turnstile clips
(tests/data/cctv/labels, class 6 = pink, 4 = white, 3 = yellow), decoded from the video.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sitewatch.contract.events import HelmetColour
from sitewatch.edge.colour_hue import classify_by_hue_votes
from sitewatch.edge.helmet_colour import classify_crops, classify_helmet_colours, is_greyscale
from tests.conftest import PROJECT_ROOT, shared_file

LABELS = PROJECT_ROOT / "tests" / "data" / "cctv" / "labels" / "turnstile-a"
PINK, WHITE, YELLOW = 6, 4, 3


def _labelled_frames(video: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(frame, label ids, xyxy pixels) of every labelled frame of turnstile-a."""
    wanted = {int(p.stem.rsplit("_f", 1)[1]): p for p in LABELS.glob("*.txt")}
    frames = []
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                image = frame.to_ndarray(format="bgr24")
                rows = np.loadtxt(wanted[index], ndmin=2)
                height, width = image.shape[:2]
                cx, cy, w, h = (rows[:, k] for k in range(1, 5))
                xyxy = (
                    np.stack(
                        [
                            (cx - w / 2) * width,
                            (cy - h / 2) * height,
                            (cx + w / 2) * width,
                            (cy + h / 2) * height,
                        ],
                        axis=1,
                    )
                    if len(rows)
                    else np.zeros((0, 4))
                )
                frames.append((image, rows[:, 0].astype(int) if len(rows) else rows, xyxy))
    return frames


@pytest.fixture(scope="module")
def turnstile() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if not LABELS.is_dir():
        pytest.skip(f"no CCTV labels at {LABELS}")
    return _labelled_frames(shared_file("data/videos/turnstile-a.mp4"))


def _colours_of(turnstile: list, label_id: int) -> list[HelmetColour]:
    found: list[HelmetColour] = []
    for image, ids, xyxy in turnstile:
        boxes = xyxy[ids == label_id]
        if len(boxes):
            found += classify_helmet_colours(image, boxes)
    return found


def test_pink_helmets_on_cctv_read_pink_never_red(turnstile: list) -> None:
    colours = _colours_of(turnstile, PINK)
    assert len(colours) >= 20, "expected the labelled pink helmets of turnstile-a"
    assert HelmetColour.RED not in colours, colours
    assert colours.count(HelmetColour.PINK) / len(colours) >= 0.9, colours


def test_white_and_yellow_helmets_on_cctv_keep_their_colour(turnstile: list) -> None:
    white, yellow = _colours_of(turnstile, WHITE), _colours_of(turnstile, YELLOW)
    assert len(white) >= 10 and len(yellow) >= 3
    assert white.count(HelmetColour.WHITE) / len(white) >= 0.9, white
    assert HelmetColour.PINK not in white + yellow and HelmetColour.RED not in white + yellow


def test_a_greyscale_frame_gives_unknown_never_a_guess(turnstile: list) -> None:
    image, ids, xyxy = next(f for f in turnstile if (f[1] == PINK).sum() >= 1)
    assert not is_greyscale(image)
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    infrared = np.clip(grey.astype(np.int16) + np.array([6, 0, 3]), 0, 255).astype(np.uint8)
    helmets = xyxy[ids >= 2]
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
