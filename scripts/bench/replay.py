"""Replay speed on this machine: frames per second and where the time goes.

    .venv/bin/python -m scripts.bench.replay [VIDEO] [--detect-fps F] [--max-seconds S]

Runs ``sitewatch replay``'s loop (edge.replay.run_replay) on a video with the model the
config resolves to (the project's own model, else the shared COCO YOLOv8n fallback) and
prints a table: decoding (the time the loop waited for decoded frames: demux + decode +
pixel conversion run in a background thread, so this is the part not hidden behind
inference), inference (letterbox, ONNX Runtime, decode + NMS; with a pool of sessions,
``model.sessions``, the time the loop waited for detections made ahead), the rest of the pipeline
(tracking, attributes, rules), output (snapshots, events.jsonl, optional MP4) and whatever
is left (loop overhead).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sitewatch.edge.config import load_config
from sitewatch.edge.detector_pool import FrameDetector, load_detector
from sitewatch.edge.replay import ReplayResult, default_site_config, run_replay
from sitewatch.resources import shared_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "video",
        nargs="?",
        type=Path,
        default=shared_root() / "data" / "videos" / "concrete-pour-crew.mp4",
    )
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--detect-fps", type=float, default=None, help="0 = every frame")
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--annotate", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    site = load_config(args.config) if args.config else default_site_config(args.video)
    camera = site.cameras[0]
    detector = load_detector(site.model, args.config)
    with tempfile.TemporaryDirectory() as out:
        result = run_replay(
            args.video,
            site,
            camera,
            detector,
            Path(out),
            detect_fps=args.detect_fps,
            annotate=args.annotate,
            max_seconds=args.max_seconds,
        )
    fps = camera.detect_fps if args.detect_fps is None else args.detect_fps
    _print(result, detector, fps)


def _print(result: ReplayResult, detector: FrameDetector, detect_fps: float) -> None:
    console = Console()
    info = Table(title=f"Replay benchmark: {result.video.name}", show_header=False)
    info.add_row("model", f"{detector.model_path.name} ({len(detector.class_names)} classes)")
    info.add_row("model sessions", str(result.detect_sessions))
    info.add_row("detect fps setting", "every frame" if not detect_fps else f"{detect_fps:g}")
    info.add_row("frames decoded / detected", f"{result.frames_read} / {result.frames_detected}")
    info.add_row("video time / wall time", f"{result.video_s:.1f} s / {result.wall_s:.1f} s")
    info.add_row("speed (decoded frames)", f"{result.fps:.1f} frames/s")
    detected_fps = result.frames_detected / result.wall_s if result.wall_s else 0.0
    info.add_row("speed (detected frames)", f"{detected_fps:.1f} frames/s")
    info.add_row("real-time factor", f"{result.video_s / result.wall_s:.2f}x")
    info.add_row("decoding thread busy", f"{result.decode_busy_s:.2f} s")
    info.add_row("events", str(len(result.events)))
    console.print(info)

    rest = sum(v for k, v in result.stage_s.items() if k != "detect")
    parts = {
        "decode": result.decode_s,
        "inference": result.stage_s.get("detect", 0.0),
        "rest (tracking, attributes, rules)": rest,
        "output (snapshots, jsonl, mp4)": result.output_s,
    }
    parts["other (loop, setup)"] = max(result.wall_s - sum(parts.values()), 0.0)
    shares = Table(title="Where the time goes")
    for column in ("part", "seconds", "share", "ms per detected frame"):
        shares.add_column(column, justify="left" if column == "part" else "right")
    for name, seconds in parts.items():
        per_frame_ms = 1000 * seconds / max(result.frames_detected, 1)
        shares.add_row(
            name, f"{seconds:.2f}", f"{100 * seconds / result.wall_s:.1f} %", f"{per_frame_ms:.1f}"
        )
    stages = ", ".join(
        f"{k} {1000 * v / max(result.frames_detected, 1):.2f} ms" for k, v in result.stage_s.items()
    )
    console.print(shares)
    console.print(f"pipeline stages per detected frame: {stages}")


if __name__ == "__main__":
    main()
