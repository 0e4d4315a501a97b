"""Privacy: blur the faces of everyone who is not an enrolled worker.

A face is made unrecognisable by pixelating it to a few blocks and blurring the blocks;
only the (padded) face box changes, every other pixel is left as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from sitewatch.edge.faces.detection import Face, FaceDetector
from sitewatch.edge.faces.embedding import FaceEmbedder
from sitewatch.edge.faces.tracks import FaceRegister

logger = logging.getLogger(__name__)

PAD_FRACTION = 0.15
BLOCKS = 6


def blur_region(
    image_bgr: np.ndarray, xyxy: np.ndarray, pad_fraction: float = PAD_FRACTION
) -> None:
    """Pixelate then blur ``xyxy`` (padded) of ``image_bgr`` in place."""
    h, w = image_bgr.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    pad_x, pad_y = pad_fraction * (x1 - x0), pad_fraction * (y1 - y0)
    x0i, y0i = max(0, int(x0 - pad_x)), max(0, int(y0 - pad_y))
    x1i, y1i = min(w, int(np.ceil(x1 + pad_x))), min(h, int(np.ceil(y1 + pad_y)))
    if x1i - x0i < 2 or y1i - y0i < 2:
        return
    region = image_bgr[y0i:y1i, x0i:x1i]
    small = cv2.resize(region, (BLOCKS, BLOCKS), interpolation=cv2.INTER_AREA)
    blocks = cv2.resize(small, (x1i - x0i, y1i - y0i), interpolation=cv2.INTER_NEAREST)
    kernel = max(3, (min(x1i - x0i, y1i - y0i) // 4) | 1)
    image_bgr[y0i:y1i, x0i:x1i] = cv2.GaussianBlur(blocks, (kernel, kernel), 0)


def blur_faces(
    image_bgr: np.ndarray, faces: Sequence[Face], keep: Callable[[Face], bool] | None = None
) -> tuple[np.ndarray, int]:
    """A copy of ``image_bgr`` with every face blurred unless ``keep(face)``; and the count."""
    out = image_bgr.copy()
    blurred = 0
    for face in faces:
        if keep is not None and keep(face):
            continue
        blur_region(out, face.xyxy)
        blurred += 1
    return out, blurred


class FacePrivacy:
    """Finds every face in an image and blurs those that do not match an enrolled worker."""

    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        register: FaceRegister,
        threshold: float,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.register = register
        self.threshold = threshold

    def blur_unknown(self, image_bgr: np.ndarray) -> np.ndarray:
        """A copy of ``image_bgr`` with the faces of people not enrolled blurred."""
        faces = self.detector.detect(image_bgr)

        def enrolled(face: Face) -> bool:
            if len(self.register) == 0:
                return False
            embedding = self.embedder.embed(image_bgr, face)
            return bool(self.register.match(embedding, self.threshold))

        out, blurred = blur_faces(image_bgr, faces, enrolled)
        logger.debug("privacy: %d of %d faces blurred", blurred, len(faces))
        return out
