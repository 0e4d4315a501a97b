"""ONNX Runtime inference for Ultralytics-exported YOLO detection models.

A frame is letterboxed to the model's input (aspect ratio kept, grey padding): a model with a
fixed input gets exactly that shape; a model exported with dynamic axes gets the smallest
rectangle whose long side is ``input_size`` and whose sides are multiples of the stride
(Ultralytics' ``rect`` letterbox: a 16:9 camera at 416 runs at 416x256, not 416x416). It is run
through the model, and the raw output ``(1, 4 + nc, anchors)`` (centre x, centre y, width,
height in input pixels, then one score per class) is decoded: best class per anchor,
per-class confidence thresholds, class-aware non-maximum suppression
(``cv2.dnn.NMSBoxesBatched``), then boxes mapped back to the original frame's pixels.
Class names come from the model's ``names`` metadata, which Ultralytics writes as the
string of a Python dict (``"{0: 'person', 1: 'head'}"``).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.config import ModelConfig
from sitewatch.edge.detections import CLASS_NAME, PERSON, Detections
from sitewatch.edge.errors import SitewatchError

logger = logging.getLogger(__name__)

PAD_VALUE = 114  # Ultralytics' letterbox grey


class ModelError(SitewatchError, RuntimeError):
    """A model file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the model input: ``input = frame * scale + pad``."""

    scale: float
    pad_xy: tuple[float, float]
    frame_wh: tuple[int, int]

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map boxes from model-input pixels back to frame pixels (clipped to the frame)."""
        pad = np.array([*self.pad_xy, *self.pad_xy], dtype=np.float32)
        out = (np.asarray(xyxy, dtype=np.float32) - pad) / self.scale
        width, height = self.frame_wh
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return out


def letterbox(image: np.ndarray, input_wh: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` to fit ``input_wh`` keeping its aspect ratio, pad the rest with grey."""
    height, width = image.shape[:2]
    in_w, in_h = input_wh
    scale = min(in_w / width, in_h / height)
    new_w, new_h = round(width * scale), round(height * scale)
    pad_x, pad_y = (in_w - new_w) / 2, (in_h - new_h) / 2
    left, top = round(pad_x - 0.1), round(pad_y - 0.1)
    right, bottom = in_w - new_w - left, in_h - new_h - top
    resized = (
        image
        if (new_w, new_h) == (width, height)
        else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    )
    padded = cv2.copyMakeBorder(
        resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return padded, Letterbox(
        scale=scale, pad_xy=(float(left), float(top)), frame_wh=(width, height)
    )


def rect_input_wh(frame_wh: tuple[int, int], input_size: int, stride: int = 32) -> tuple[int, int]:
    """The smallest stride-aligned input that holds the frame scaled to ``input_size``."""
    width, height = frame_wh
    scale = input_size / max(width, height)
    return (
        min(input_size, -(-round(width * scale) // stride) * stride),
        min(input_size, -(-round(height * scale) // stride) * stride),
    )


def _trained_size(metadata: Mapping[str, str], default: int = 640) -> int:
    """The long side of Ultralytics' ``imgsz`` metadata (``"[320, 320]"``), else ``default``."""
    try:
        sizes = ast.literal_eval(metadata.get("imgsz", ""))
        size = max(sizes) if isinstance(sizes, list | tuple) else int(sizes)
    except (ValueError, SyntaxError, TypeError):
        return default
    return size if isinstance(size, int) and 32 <= size <= 2048 else default


def parse_class_names(metadata: Mapping[str, str], *, source: str = "model") -> list[str]:
    """Class names from ONNX metadata ``names`` (a dict or list literal), in class-id order."""
    text = metadata.get("names")
    if text is None:
        raise ModelError(f"{source}: no 'names' in the model metadata (not an Ultralytics export?)")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ModelError(f"{source}: cannot parse metadata 'names' {text[:80]!r}: {exc}") from None
    if isinstance(value, dict):
        ids = sorted(value)
        if ids != list(range(len(ids))):
            raise ModelError(f"{source}: class ids in 'names' are not 0..{len(ids) - 1}: {ids}")
        return [str(value[i]) for i in ids]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise ModelError(f"{source}: metadata 'names' is neither a dict nor a list: {text[:80]!r}")


def decode_yolo(
    output: np.ndarray,
    box: Letterbox,
    *,
    class_thresholds: np.ndarray,
    iou: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw YOLO output -> (xyxy in frame pixels, confidence, class_id) after NMS.

    ``output`` is ``(1, 4 + nc, anchors)`` or ``(4 + nc, anchors)``; ``class_thresholds``
    holds one minimum confidence per class.
    """
    rows = np.asarray(output, dtype=np.float32).reshape(-1, output.shape[-1]).T
    scores = rows[:, 4:]
    class_id = scores.argmax(axis=1)
    confidence = scores[np.arange(len(rows)), class_id]
    keep = confidence >= class_thresholds[class_id]
    rows, class_id, confidence = rows[keep], class_id[keep], confidence[keep]
    if len(rows) == 0:
        return np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, int)
    xywh = rows[:, :4].copy()
    xywh[:, :2] -= xywh[:, 2:] / 2  # centre -> top-left, as NMSBoxes wants
    nms_kept = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(), confidence.tolist(), class_id.tolist(), 0.0, float(iou)
    )
    picked = np.asarray(nms_kept, dtype=int).reshape(-1)
    picked = picked[np.argsort(-confidence[picked], kind="stable")]
    xyxy = np.concatenate([xywh[picked, :2], xywh[picked, :2] + xywh[picked, 2:]], axis=1)
    return box.to_frame(xyxy), confidence[picked], class_id[picked].astype(int)


def _open_session(model_path: Path, providers: Sequence[str], threads: int) -> object:
    import onnxruntime as ort

    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # No busy-waiting between runs: ORT's pool threads otherwise spin after each run on
    # the cores that decoding, tracking and the other cameras need. Same outputs; on the
    # shared 2-core test machine a run took ~40 % less wall time (docs/evaluation.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(model_path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"cannot load model {model_path}: {exc}") from None


class Detector:
    """Turns a BGR frame into ``Detections`` (pixel boxes, ``data['class_name']``)."""

    def __init__(
        self,
        model_path: Path,
        *,
        input_size: int | None = None,
        confidence: float = 0.35,
        iou: float = 0.5,
        providers: list[str] | None = None,
        threads: int = 0,
        class_confidence: dict[str, float] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.iou = iou
        self._session = _open_session(
            self.model_path, providers or ["CPUExecutionProvider"], threads
        )
        meta = self._session.get_modelmeta().custom_metadata_map  # type: ignore[attr-defined]
        self.class_names: list[str] = parse_class_names(meta, source=str(self.model_path))
        if PERSON not in self.class_names:
            raise ModelError(f"{self.model_path}: model has no 'person' class: {self.class_names}")
        model_input = self._session.get_inputs()[0]  # type: ignore[attr-defined]
        self._input_name: str = model_input.name
        self.input_wh = self._input_wh(model_input.shape, input_size or _trained_size(meta))
        #: Dynamic axes: each frame size gets its own rectangle (see the module docstring).
        self.dynamic_input = not all(isinstance(d, int) for d in model_input.shape[2:4])
        self._stride = int(str(meta.get("stride", "32")).strip() or 32)
        self._class_thresholds = self._thresholds(confidence, class_confidence or {})
        self._class_name_array = np.array(self.class_names)
        self.detect(np.zeros((self.input_wh[1], self.input_wh[0], 3), np.uint8))  # warm-up

    @classmethod
    def from_config(
        cls, model_cfg: ModelConfig, config_path: Path | None = None, *, threads: int | None = None
    ) -> Detector:
        """One session of the configured model; ``threads`` overrides ``model_cfg.threads``
        (edge.detector_pool.load_detector sets it per session)."""
        from sitewatch.edge.models import resolve_model_path

        return cls(
            resolve_model_path(model_cfg, config_path),
            input_size=model_cfg.input_size,
            confidence=model_cfg.confidence,
            iou=model_cfg.iou,
            providers=model_cfg.providers,
            threads=model_cfg.threads if threads is None else threads,
            class_confidence=model_cfg.class_confidence,
        )

    def _input_wh(self, shape: Sequence[object], input_size: int) -> tuple[int, int]:
        height, width = shape[2], shape[3]
        if isinstance(height, int) and isinstance(width, int):
            if (width, height) != (input_size, input_size):
                logger.info(
                    "%s has a fixed input of %dx%d; input_size %d ignored",
                    self.model_path,
                    width,
                    height,
                    input_size,
                )
            return width, height
        return input_size, input_size

    def _thresholds(self, confidence: float, per_class: dict[str, float]) -> np.ndarray:
        thresholds = np.full(len(self.class_names), confidence, dtype=np.float32)
        for name, value in per_class.items():
            if name not in self.class_names:
                logger.warning(
                    "class_confidence names %r, which %s does not have; ignored",
                    name,
                    self.model_path,
                )
                continue
            thresholds[self.class_names.index(name)] = value
        return thresholds

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """Detections of every class of the model, in pixels of ``frame_bgr``."""
        input_wh = self.input_wh
        if self.dynamic_input:
            height, width = frame_bgr.shape[:2]
            input_wh = rect_input_wh((width, height), max(self.input_wh), self._stride)
        image, box = letterbox(frame_bgr, input_wh)
        blob = cv2.dnn.blobFromImage(image, scalefactor=1 / 255.0, swapRB=True)
        (output,) = self._session.run(None, {self._input_name: blob})[:1]  # type: ignore[attr-defined]
        xyxy, confidence, class_id = decode_yolo(
            output, box, class_thresholds=self._class_thresholds, iou=self.iou
        )
        return Detections(
            xyxy=xyxy,
            confidence=confidence,
            class_id=class_id,
            data={CLASS_NAME: self._class_name_array[class_id]},
        )
