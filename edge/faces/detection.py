"""Face detection with OpenCV's YuNet (``cv2.FaceDetectorYN``).

Faces are looked for where they can be: the upper part of each tracked person box,
padded, so the detector runs on a few small crops instead of the whole frame. Small crops
are scaled up before detection (YuNet finds faces from about 10 px of its input, and a
20 px face in a 60 px crop is easier at twice the size).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.errors import SitewatchError
from sitewatch.resources import SHARED_ENV, shared_root

logger = logging.getLogger(__name__)

DETECTOR_MODEL = "face_detection_yunet_2026may.onnx"
RECOGNIZER_MODEL = "face_recognition_sface_2021dec_int8bq.onnx"


class FaceModelError(SitewatchError, FileNotFoundError):
    """A face model file that is not where the config or the environment says."""


@dataclass(frozen=True)
class Face:
    """One detected face in frame coordinates."""

    xyxy: np.ndarray  # float32 (4,)
    #: (5, 2): right eye, left eye, nose tip, right mouth corner, left mouth corner.
    landmarks: np.ndarray
    score: float

    @property
    def size_px(self) -> float:
        return float(min(self.xyxy[2] - self.xyxy[0], self.xyxy[3] - self.xyxy[1]))

    def yunet_row(self) -> np.ndarray:
        """The 15-value YuNet row (x, y, w, h, landmarks, score) that alignCrop takes."""
        x0, y0, x1, y1 = (float(v) for v in self.xyxy)
        return np.array(
            [x0, y0, x1 - x0, y1 - y0, *self.landmarks.reshape(-1), self.score], np.float32
        )


def resolve_model(name: str, models_dir: str | Path | None = None) -> Path:
    """Find model ``name`` in ``models_dir``, else $SITEWATCH_SHARED/models, else ../shared.

    Raises FaceModelError naming every path tried.
    """
    candidates: list[Path] = []
    if models_dir:
        candidates.append(Path(models_dir).expanduser() / name)
    else:
        candidates.append(shared_root() / "models" / name)
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FaceModelError(
        f"face model {name} not found (tried {tried}); set faces.models_dir in the site "
        f"config or ${SHARED_ENV} to the folder that holds models/"
    )


class FaceDetector:
    """YuNet on whole images or on the upper part of person boxes."""

    def __init__(
        self,
        model_path: Path,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        min_face_px: int = 12,
        upper_fraction: float = 0.5,
        pad_fraction: float = 0.15,
        min_crop_px: int = 160,
    ) -> None:
        self.model_path = model_path
        self.min_face_px = min_face_px
        self.upper_fraction = upper_fraction
        self.pad_fraction = pad_fraction
        self.min_crop_px = min_crop_px
        self._net = cv2.FaceDetectorYN.create(
            str(model_path), "", (320, 320), score_threshold, nms_threshold, 50
        )

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Every face in ``image_bgr`` at least ``min_face_px`` high and wide."""
        h, w = image_bgr.shape[:2]
        if h < 8 or w < 8:
            return []
        self._net.setInputSize((w, h))
        _, rows = self._net.detect(image_bgr)
        if rows is None:
            return []
        faces = [_face(row) for row in rows]
        return [f for f in faces if f.size_px >= self.min_face_px]

    def detect_in_boxes(self, image_bgr: np.ndarray, persons_xyxy: np.ndarray) -> list[list[Face]]:
        """Faces per person box, looked for in the padded upper part of each box."""
        out: list[list[Face]] = []
        for xyxy in np.asarray(persons_xyxy, dtype=np.float32).reshape(-1, 4):
            out.append(self._detect_upper(image_bgr, xyxy))
        return out

    def _detect_upper(self, image_bgr: np.ndarray, xyxy: np.ndarray) -> list[Face]:
        x0, y0, x1, y1 = self.upper_crop(xyxy, image_bgr.shape[1], image_bgr.shape[0])
        crop = image_bgr[y0:y1, x0:x1]
        if crop.size == 0:
            return []
        scale = min(4.0, max(1.0, self.min_crop_px / max(crop.shape[:2])))
        if scale > 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        faces = []
        for face in self.detect(crop) if scale == 1.0 else self._detect_scaled(crop, scale):
            offset = np.array([x0, y0], np.float32)
            faces.append(
                Face(
                    xyxy=face.xyxy / scale + np.tile(offset, 2),
                    landmarks=face.landmarks / scale + offset,
                    score=face.score,
                )
            )
        return faces

    def _detect_scaled(self, crop: np.ndarray, scale: float) -> list[Face]:
        keep_px, self.min_face_px = self.min_face_px, int(self.min_face_px * scale)
        try:
            return self.detect(crop)
        finally:
            self.min_face_px = keep_px

    def upper_crop(self, xyxy: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
        """The padded upper part of a person box, clipped to the image."""
        x0, y0, x1, y1 = (float(v) for v in xyxy)
        bw, bh = x1 - x0, y1 - y0
        pad = self.pad_fraction * max(bw, 1.0)
        top = y0 - self.pad_fraction * bh
        bottom = y0 + self.upper_fraction * bh
        return (
            max(0, int(x0 - pad)),
            max(0, int(top)),
            min(width, int(np.ceil(x1 + pad))),
            min(height, int(np.ceil(bottom))),
        )


def _face(row: np.ndarray) -> Face:
    x, y, w, h = (float(v) for v in row[:4])
    return Face(
        xyxy=np.array([x, y, x + w, y + h], np.float32),
        landmarks=np.asarray(row[4:14], np.float32).reshape(5, 2),
        score=float(row[14]),
    )
