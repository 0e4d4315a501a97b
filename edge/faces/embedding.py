"""Face embeddings with OpenCV's SFace (``cv2.FaceRecognizerSF``).

Each face is aligned from its YuNet landmarks (``alignCrop``), embedded to 128 values and
L2-normalised, so the cosine similarity of two faces is their dot product. OpenCV Zoo
gives 0.363 as SFace's cosine threshold for "same person".
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.faces.detection import Face

logger = logging.getLogger(__name__)

DEFAULT_MATCH_THRESHOLD = 0.363
EMBEDDING_DIM = 128


class FaceEmbedder:
    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self._net = cv2.FaceRecognizerSF.create(str(model_path), "")

    def aligned(self, image_bgr: np.ndarray, face: Face) -> np.ndarray:
        """The 112x112 aligned face crop."""
        return np.asarray(self._net.alignCrop(image_bgr, face.yunet_row()))

    def embed(self, image_bgr: np.ndarray, face: Face) -> np.ndarray:
        """The L2-normalised float32 (128,) embedding of ``face`` in ``image_bgr``."""
        feature = np.asarray(self._net.feature(self.aligned(image_bgr, face)), np.float32)
        return normalise(feature.reshape(-1))


def normalise(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0 or not np.isfinite(norm):
        raise ValueError("cannot normalise an all-zero or non-finite embedding")
    return vector / norm


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two L2-normalised embeddings (or rows of ``b``: max over them)."""
    return float(np.max(np.asarray(b, np.float32).reshape(-1, a.shape[-1]) @ a))
