"""The replay pipeline against the bare cost of decoding plus inference on the same frames.

    .venv/bin/python scripts/bench_pipeline_overhead.py [VIDEO] [--config C] [--max-seconds 5]

Three runs over the first ``--max-seconds`` of the same video, every frame, same detector:

- bare: ``VideoReader`` decodes each frame to BGR and ``Detector.detect`` runs on it, one
  after the other, and nothing else (the least a sequential pipeline with this decoder
  and model can cost);
- pipeline: ``edge.replay.run_replay`` with ``detect_fps=0`` (decode, detect, track,
  helmet attributes, rules, events.jsonl, snapshots), wall-clock time of the whole call.
  Its decoding runs in a background thread ahead of the model; "decode s" is the time the
  pipeline waited for frames (the decoding not hidden behind inference), with the thread's
  own decoding time in brackets;
- pipeline, decode inline: the same with ``decode_ahead=0`` (no decoding thread).

The table gives the times and the share of the pipeline's time spent outside decode and
inference, measured two ways: against the bare run, and from the pipeline's own timers
within its run (wall time less the wait for decoded frames and the detect stage; less
sensitive to the load of the machine changing between runs). Target from issue 7: at
most 25 %.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.config import load_config  # noqa: E402
from edge.detector import Detector  # noqa: E402
from edge.models import shared_root  # noqa: E402
from edge.replay import DECODE_AHEAD, ReplayResult, default_site_config, run_replay  # noqa: E402
from edge.video import VideoReader  # noqa: E402


def bench_bare(video: Path, detector: Detector, max_seconds: float) -> tuple[int, float, float]:
    """Frames, decode seconds, inference seconds."""
    frames, decode_s, infer_s = 0, 0.0, 0.0
    with VideoReader(video) as reader:
        started = time.perf_counter()
        for frame in reader.frames():
            if frame.time_s > max_seconds:
                break
            image = frame.bgr()
            decoded = time.perf_counter()
            decode_s += decoded - started
            detector.detect(image)
            started = time.perf_counter()
            infer_s += started - decoded
            frames += 1
    return frames, decode_s, infer_s


def bench_pipeline(
    video: Path, config: Path | None, detector: Detector, max_seconds: float, decode_ahead: int
) -> ReplayResult:
    site = load_config(config) if config else default_site_config(video)
    with tempfile.TemporaryDirectory() as out:
        return run_replay(
            video,
            site,
            site.cameras[0],
            detector,
            Path(out),
            detect_fps=0,
            max_seconds=max_seconds,
            decode_ahead=decode_ahead,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_video = shared_root() / "data" / "videos" / "concrete-pour-crew.mp4"
    parser.add_argument("video", nargs="?", type=Path, default=default_video)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--max-seconds", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    site = load_config(args.config) if args.config else default_site_config(args.video)
    detector = Detector.from_config(site.model, args.config)
    with VideoReader(args.video) as reader:
        detector.detect(next(reader.frames()).bgr())  # warm-up, outside both timings
    frames, decode_s, infer_s = bench_bare(args.video, detector, args.max_seconds)
    result = bench_pipeline(args.video, args.config, detector, args.max_seconds, DECODE_AHEAD)
    inline = bench_pipeline(args.video, args.config, detector, args.max_seconds, 0)

    bare_s = decode_s + infer_s
    table = Table(title=f"{args.video.name}, first {args.max_seconds:g} s, every frame")
    for column in ("run", "frames", "decode s", "inference s", "total s", "frames/s"):
        table.add_column(column, justify="left" if column == "run" else "right")
    table.add_row(
        "bare decode + inference",
        str(frames),
        f"{decode_s:.2f}",
        f"{infer_s:.2f}",
        f"{bare_s:.2f}",
        f"{frames / bare_s:.1f}",
    )
    runs = {"sitewatch run_replay": result, "sitewatch run_replay, decode inline": inline}
    for name, run in runs.items():
        table.add_row(
            name,
            str(run.frames_read),
            f"{run.decode_s:.2f} ({run.decode_busy_s:.2f})"
            if run is result
            else f"{run.decode_s:.2f}",
            f"{run.stage_s.get('detect', 0.0):.2f}",
            f"{run.wall_s:.2f}",
            f"{run.frames_read / run.wall_s:.1f}",
        )
    console = Console(width=140)
    console.print(table)
    for name, run in runs.items():
        own_inside = run.decode_s + run.stage_s.get("detect", 0.0)
        rest = {k: v for k, v in run.stage_s.items() if k != "detect"}
        rest["output (jsonl, snapshots)"] = run.output_s
        per_frame = max(run.frames_detected, 1)
        console.print(
            f"{name}: outside decode + inference, share of its time: "
            f"{100 * (1 - bare_s / run.wall_s):.1f} % against the bare run, "
            f"{100 * (1 - own_inside / run.wall_s):.1f} % from its own timers (target <= 25 %); "
            "of which, ms per frame: "
            + ", ".join(f"{k} {1000 * v / per_frame:.2f}" for k, v in rest.items())
        )
    console.print(f"model {detector.model_path.name}")


if __name__ == "__main__":
    main()
