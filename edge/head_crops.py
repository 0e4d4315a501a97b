"""Where a person's head is expected inside the person box, and the square crop of it
that the head classifier (:mod:`edge.head_classifier`) reads.

On high CCTV views heads are 10-20 px: too small for the detector to call bare or
helmeted, but the person around them is found. The crop is cut from the full-resolution
frame around the expected head, so the classifier sees every pixel there is. The same
geometry makes the training crops (``scripts/train/train_head_classifier.py``): a head box
and a crop of ``CROP_PER_HEAD`` head sizes around it.
"""

from __future__ import annotations

import cv2
import numpy as np

#: A head is about this share of its person box's width (median 0.64 on our walkway CCTV
#: labels, 0.80 at the turnstile where bodies are partly hidden), held between these shares
#: of the box height (a person with arms out, or cut off at the frame's edge), and its centre
#: lies this many head sizes below the box's top.
HEAD_WIDTH_SHARE = 0.7
HEAD_HEIGHT_RANGE = (0.12, 0.30)
HEAD_CENTRE_PER_SIZE = 0.55
#: A crop's side in head sizes: room for the head to be off its expected place.
CROP_PER_HEAD = 2.0
#: Side of the classifier's input (crops are resized to it).
CROP_SIDE = 48


def expected_heads(person_xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) boxes where each person's head is expected (square, in frame pixels)."""
    persons = np.asarray(person_xyxy, dtype=np.float32).reshape(-1, 4)
    width = persons[:, 2] - persons[:, 0]
    height = persons[:, 3] - persons[:, 1]
    low, high = HEAD_HEIGHT_RANGE
    size = np.clip(width * HEAD_WIDTH_SHARE, height * low, height * high)
    cx = (persons[:, 0] + persons[:, 2]) / 2
    cy = persons[:, 1] + size * HEAD_CENTRE_PER_SIZE
    return np.stack([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2], axis=1)


def crop_boxes(head_xyxy: np.ndarray, per_head: float = CROP_PER_HEAD) -> np.ndarray:
    """Square crops of ``per_head`` head sizes centred on each head box."""
    heads = np.asarray(head_xyxy, dtype=np.float32).reshape(-1, 4)
    size = np.maximum(heads[:, 2] - heads[:, 0], heads[:, 3] - heads[:, 1]) * per_head
    cx = (heads[:, 0] + heads[:, 2]) / 2
    cy = (heads[:, 1] + heads[:, 3]) / 2
    return np.stack([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2], axis=1)


def cut_crops(frame_bgr: np.ndarray, boxes_xyxy: np.ndarray, side: int = CROP_SIDE) -> np.ndarray:
    """(N, side, side, 3) BGR crops; parts of a box outside the frame are black."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    out = np.zeros((len(boxes), side, side, 3), dtype=np.uint8)
    for i, (x1, y1, x2, _) in enumerate(boxes):
        scale = side / max(float(x2 - x1), 1.0)
        # One affine warp: crop, pad and resize together (area-like when shrinking).
        matrix = np.array([[scale, 0, -x1 * scale], [0, scale, -y1 * scale]], dtype=np.float32)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        out[i] = cv2.warpAffine(
            frame_bgr,
            matrix,
            (side, side),
            flags=interpolation,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
    return out
