"""What the head classifier adds to a frame: ms for a frame's crops (1-20 people) next
to the detector's ms on the same frames, same run.

    python -m scripts.bench.head_classifier [--video CLIP] [--frames 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from scripts.bench.detector import read_frames
from scripts.common import PROJECT_ROOT, shared_root
from sitewatch.edge.detections import CLASS_NAME, PERSON
from sitewatch.edge.detector import Detector
from sitewatch.edge.head_classifier import HeadClassifier
from sitewatch.edge.head_crops import expected_heads


def median_ms(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(shared_root() / "data/videos/turnstile-a.mp4"))
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    frames = read_frames(args.video, args.frames)
    detector = Detector(PROJECT_ROOT / "models" / "sitewatch-det.onnx", threads=1)
    classifier = HeadClassifier(threads=1)
    detect_ms = statistics.median(median_ms(partial(detector.detect, f), 1) for f in frames)
    print(
        f"detector (1 thread): {detect_ms:.1f} ms a frame"
        f" ({frames[0].shape[1]}x{frames[0].shape[0]})"
    )
    people = [
        d.xyxy[np.asarray(d.data[CLASS_NAME]) == PERSON] for d in map(detector.detect, frames)
    ]
    seen = statistics.mean(len(p) for p in people)
    real_ms = statistics.median(
        median_ms(partial(classifier.probabilities, f, expected_heads(p)), 3)
        for f, p in zip(frames, people, strict=True)
        if len(p)
    )
    print(
        f"head classifier on each frame's people ({seen:.1f} a frame): {real_ms:.2f} ms"
        f" = {100 * real_ms / detect_ms:.1f} % of the detector"
    )
    for count in (1, 5, 10, 20):
        boxes = expected_heads(np.tile([[300, 100, 340, 260]], (count, 1)).astype(np.float32))
        ms = median_ms(partial(classifier.probabilities, frames[0], boxes), 20)
        print(f"  {count:2d} people: {ms:.2f} ms ({100 * ms / detect_ms:.1f} % of the detector)")


if __name__ == "__main__":
    main()
