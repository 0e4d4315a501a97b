"""The replay pipeline against Ultralytics' own ``YOLO(...).track()``, same weights and input.

    .venv/bin/python scripts/bench_vs_ultralytics.py [VIDEO] [--config C] [--max-seconds 3]
        [--rounds 2]

Both sides run the same ONNX file (the model the config resolves to: the project's own,
else the shared COCO YOLOv8n) at the same input size, confidence and IoU, on every frame
of the first ``--max-seconds`` of the same video, in this process. The machine may be
shared (a training job): the two sides alternate for ``--rounds`` rounds (A B, B A, ...)
so that a change in load hits both alike, and the totals are compared:

- sitewatch: ``edge.replay.run_replay`` with ``detect_fps=0`` (decode, detect, track,
  helmet attributes, rules, events.jsonl and snapshots); frames per wall-clock second of
  the whole call, set-up included;
- Ultralytics: ``YOLO(onnx, task="detect").track(source=video, tracker="bytetrack.yaml",
  imgsz=..., stream=True)`` (OpenCV decoding, ONNX Runtime, ByteTrack); frames per second
  after its first frame (its set-up excluded, which favours Ultralytics).

``--detect-fps F`` adds a reference row: sitewatch detecting F times a second and
decoding every frame, as a camera runs by default (not equal work, not in the ratio).

Ultralytics never downloads or installs anything here: YOLO_OFFLINE and
YOLO_AUTOINSTALL=false are set before it is imported (ByteTrack needs the ``lap`` package,
in the ``train`` extra).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ.setdefault("YOLO_VERBOSE", "false")

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.config import SiteConfig, load_config  # noqa: E402
from edge.detector import Detector  # noqa: E402
from edge.models import shared_root  # noqa: E402
from edge.replay import default_site_config, run_replay  # noqa: E402
from edge.video import VideoReader  # noqa: E402


def bench_sitewatch(
    video: Path, site: SiteConfig, detector: Detector, max_seconds: float, detect_fps: float = 0
) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as out:
        result = run_replay(
            video,
            site,
            site.cameras[0],
            detector,
            Path(out),
            detect_fps=detect_fps,
            max_seconds=max_seconds,
        )
    return result.frames_read, result.wall_s


def bench_ultralytics(
    video: Path, site: SiteConfig, model_path: Path, imgsz: int, max_frames: int
) -> tuple[int, float]:
    from ultralytics import YOLO

    model = YOLO(str(model_path), task="detect")
    stream = model.track(
        source=str(video),
        tracker="bytetrack.yaml",
        imgsz=imgsz,
        conf=site.model.confidence,
        iou=site.model.iou,
        stream=True,
        verbose=False,
    )
    frames, first_s = 0, 0.0
    for _ in stream:
        frames += 1
        if frames == 1:
            first_s = time.perf_counter()
        if frames >= max_frames:
            break
    return frames - 1, time.perf_counter() - first_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_video = shared_root() / "data" / "videos" / "concrete-pour-crew.mp4"
    parser.add_argument("video", nargs="?", type=Path, default=default_video)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--max-seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--detect-fps",
        type=float,
        default=None,
        help="also time sitewatch detecting at this rate (not equal work: for reference)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    site = load_config(args.config) if args.config else default_site_config(args.video)
    detector = Detector.from_config(site.model, args.config)
    imgsz = max(detector.input_wh)
    with VideoReader(args.video) as reader:
        max_frames = round(args.max_seconds * reader.fps) + 1
    runs = {
        "sitewatch run_replay": lambda: bench_sitewatch(
            args.video, site, detector, args.max_seconds
        ),
        "ultralytics track()": lambda: bench_ultralytics(
            args.video, site, detector.model_path, imgsz, max_frames
        ),
    }
    if args.detect_fps:
        runs[f"sitewatch detect_fps={args.detect_fps:g} (reference)"] = lambda: bench_sitewatch(
            args.video, site, detector, args.max_seconds, args.detect_fps
        )
    totals: dict[str, list[float]] = {name: [0, 0.0] for name in runs}
    table = Table(title=f"{args.video.name}, first {args.max_seconds:g} s, every frame")
    for column in ("round", "pipeline", "frames", "seconds", "frames/s"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for round_no in range(args.rounds):
        names = list(runs)[:: 1 if round_no % 2 == 0 else -1]
        for name in names:
            frames, seconds = runs[name]()
            totals[name][0] += frames
            totals[name][1] += seconds
            table.add_row(
                str(round_no + 1), name, str(frames), f"{seconds:.1f}", f"{frames / seconds:.1f}"
            )
    fps = {name: count / total_s for name, (count, total_s) in totals.items()}
    for name, (count, total_s) in totals.items():
        table.add_row("all", name, str(int(count)), f"{total_s:.1f}", f"{fps[name]:.1f}")
    ours_fps, ul_fps = fps["sitewatch run_replay"], fps["ultralytics track()"]
    console = Console()
    console.print(table)
    console.print(
        f"model {detector.model_path.name}, input {imgsz}, confidence {site.model.confidence}, "
        f"iou {site.model.iou}; ratio sitewatch / ultralytics = {ours_fps / ul_fps:.2f}x "
        "(target >= 2x)"
    )


if __name__ == "__main__":
    main()
