"""The hand-labelled CCTV frames (tests/data/cctv) decoded from the shared clips."""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np
import pytest

from scripts.train.cctv_frames import CLASS_MAP, LABELS, labelled_indices
from sitewatch.edge.evaluation.detection_metrics import LabelledImage, parse_class_map, read_labels
from tests.conftest import shared_file

ENTRIES = parse_class_map(CLASS_MAP)


def labelled_frames(clip: str) -> Iterator[tuple[np.ndarray, LabelledImage]]:
    """(BGR frame, its labels in pixels) for every labelled frame of ``clip``."""
    wanted = labelled_indices(clip)
    if not wanted:
        pytest.skip(f"no labels for {clip} at {LABELS / clip}")
    video = shared_file(f"data/videos/{clip}.mp4")
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                image = frame.to_ndarray(format="bgr24")
                label = LABELS / clip / f"{clip}_f{index:06d}.txt"
                yield image, read_labels(label, ENTRIES, image.shape[1::-1])
