"""Milliseconds per frame of the shipped detector next to yolov8n-coco-int8.onnx, same run.

Each model runs through edge.detector.Detector (letterbox + ONNX Runtime + decode + NMS) at
its own input size on the same frames from a real video; prints median and mean ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from scripts.common import PROJECT_ROOT, shared_root
from sitewatch.edge.detector import Detector

SHARED = shared_root()


def read_frames(video: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise FileNotFoundError(f"no frames read from {video}")
    return frames


def bench(
    model: Path, input_size: int | None, frames: list[np.ndarray], threads: int
) -> tuple[list[float], int]:
    """Milliseconds per frame and the input size used (the model's own when None)."""
    detector = Detector(model, input_size=input_size, confidence=0.25, threads=threads)
    times_ms = []
    for frame in frames:
        start = time.perf_counter()
        detector.detect(frame)
        times_ms.append(1000 * (time.perf_counter() - start))
    return times_ms, max(detector.input_wh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=PROJECT_ROOT / "models" / "sitewatch-det.onnx"
    )
    parser.add_argument(
        "--input-size", type=int, default=None, help="default: the model's training size"
    )
    parser.add_argument(
        "--reference", type=Path, default=SHARED / "models" / "yolov8n-coco-int8.onnx"
    )
    parser.add_argument(
        "--reference-input-size",
        type=int,
        default=640,
        help="the reference's input (0: its training size)",
    )
    parser.add_argument(
        "--video", type=Path, default=SHARED / "data" / "videos" / "concrete-pour-crew.mp4"
    )
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    frames = read_frames(args.video, args.frames)
    reference_size = args.reference_input_size or None
    for model, size in ((args.model, args.input_size), (args.reference, reference_size)):
        times_ms, size_used = bench(model, size, frames, args.threads)
        print(
            f"{model.name} @{size_used}: median {statistics.median(times_ms):.1f} ms, "
            f"mean {statistics.mean(times_ms):.1f} ms over {len(times_ms)} frames"
        )


if __name__ == "__main__":
    main()
