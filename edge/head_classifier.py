"""The second stage for small heads: bare or hard hat, read from a crop of the head.

On high CCTV views the detector finds the people but not their 10-20 px heads. For each
person whose head the detector did not find, :class:`HeadClassifier` cuts the square
around where the head should be (:mod:`edge.head_crops`) from the full-resolution frame
and a small CNN (``models/head-classifier.onnx``, trained by
``scripts/train/train_head_classifier.py``) says bare or helmet; all of a frame's crops go
through ONNX Runtime as one batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sitewatch.edge.errors import SitewatchError
from sitewatch.edge.head_crops import CROP_PER_HEAD, CROP_SIDE, crop_boxes, cut_crops
from sitewatch.resources import model_file

DEFAULT_MODEL = "head-classifier.onnx"
BARE, HELMET = 0, 1


class HeadClassifierError(SitewatchError, ValueError):
    """The head classifier's model is missing or not one of ours."""


class HeadClassifier:
    """``probabilities(frame_bgr, head_xyxy) -> (N, 2)``: P(bare), P(helmet) per box (the
    rest, for a model with a "none" class, is P(no head there))."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = path or model_file(DEFAULT_MODEL)
        if not self.path.is_file():
            raise HeadClassifierError(f"head classifier {self.path} not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise HeadClassifierError(f"head classifier {self.path}: {exc}") from None
        meta = self._session.get_modelmeta().custom_metadata_map
        classes = json.loads(meta.get("classes", "null"))
        crop = json.loads(meta.get("crop", "null")) or {}
        if classes not in (["bare", "helmet"], ["bare", "helmet", "none"]) or (
            crop.get("side") != CROP_SIDE
        ):
            raise HeadClassifierError(
                f"head classifier {self.path}: classes {classes} / crop {crop} are not "
                f"['bare', 'helmet'(, 'none')] / side {CROP_SIDE}"
            )
        self.per_head = float(crop.get("per_head", CROP_PER_HEAD))
        self._input = self._session.get_inputs()[0].name

    def probabilities(self, frame_bgr: np.ndarray, head_xyxy: np.ndarray) -> np.ndarray:
        """P(bare), P(helmet) of the head in each box (expected or detected head boxes)."""
        heads = np.asarray(head_xyxy, dtype=np.float32).reshape(-1, 4)
        if len(heads) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        crops = cut_crops(frame_bgr, crop_boxes(heads, self.per_head))
        batch = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        logits = self._session.run(None, {self._input: batch / 255.0})[0]
        logits = logits - logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        # A third class, "none", says the crop holds no head: it takes its share of the
        # probability, so neither bare nor helmet reaches its threshold on a blank patch.
        return (odds / odds.sum(axis=1, keepdims=True))[:, :2].astype(np.float32)
