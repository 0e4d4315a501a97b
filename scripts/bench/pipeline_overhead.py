"""The replay pipeline against the bare cost of decoding plus inference on the same frames.

    .venv/bin/python -m scripts.bench.pipeline_overhead [VIDEO] [--config C] [--max-seconds 5]

Runs over the first ``--max-seconds`` of the same video, every frame, same model:

- bare: ``VideoReader`` decodes each frame to BGR and the detector runs on it, and nothing
  else: the least a pipeline with this decoder and these model sessions can cost. With the
  configured detector (``model.sessions``; on 2 cores a pool of two single-threaded
  sessions, edge.detector_pool) frames are decoded in a thread ahead and detected by the
  pool ahead, as run_replay does, and only counted; with one session, one after the other;
- pipeline: ``edge.replay.run_replay`` with ``detect_fps=0`` (decode, detect, track,
  helmet attributes, rules, events.jsonl, snapshots), wall-clock time of the whole call.
  Its decoding runs in a background thread ahead of the model; "decode s" is the time the
  pipeline waited for frames (the decoding not hidden behind inference), with the thread's
  own decoding time in brackets; "inference s" the time it waited for detections;
- pipeline, decode inline: the same with ``decode_ahead=0`` (no decoding thread);
- the bare and pipeline runs again with one session (ORT's own threads), as sitewatch ran
  before detector pools.

The table gives the times and the share of each pipeline's time spent outside decode and
inference, measured two ways: against the bare run with the same sessions, and from the
pipeline's own timers within its run (wall time less the waits for decoded frames and for
detections; less sensitive to the load of the machine changing between runs). Target
from issue 7: at most 25 %.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from sitewatch.edge.config import load_config
from sitewatch.edge.detector import Detector
from sitewatch.edge.detector_pool import (
    DetectionsAhead,
    DetectorPool,
    FrameDetector,
    load_detector,
)
from sitewatch.edge.prefetch import Prefetch
from sitewatch.edge.replay import (
    DECODE_AHEAD,
    DETECT_AHEAD_PER_SESSION,
    ReplayResult,
    default_site_config,
    run_replay,
)
from sitewatch.edge.video import VideoReader
from sitewatch.resources import shared_root


def bench_bare(
    video: Path, detector: FrameDetector, max_seconds: float
) -> tuple[int, float, float]:
    """Frames, decode seconds, inference seconds (with a pool: the wait for detections)."""
    if isinstance(detector, DetectorPool):
        return bench_bare_pool(video, detector, max_seconds)
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


def bench_bare_pool(
    video: Path, pool: DetectorPool, max_seconds: float
) -> tuple[int, float, float]:
    """As run_replay feeds the pool: a decoding thread DECODE_AHEAD frames ahead, the pool
    detecting DETECT_AHEAD_PER_SESSION frames a session ahead; decode seconds are the
    time waited for decoded frames."""

    def decoded(reader: VideoReader) -> Iterator[tuple[None, np.ndarray]]:
        for frame in reader.frames():
            if frame.time_s > max_seconds:
                return
            yield None, frame.bgr()

    with VideoReader(video) as reader:
        started = time.perf_counter()
        with Prefetch(decoded(reader), depth=DECODE_AHEAD, name="bare-decode") as frames:
            depth = pool.sessions * DETECT_AHEAD_PER_SESSION
            count = sum(1 for _ in DetectionsAhead(pool, frames, depth=depth))
            total_s = time.perf_counter() - started
            decode_s = frames.wait_s
    return count, decode_s, total_s - decode_s


def bench_pipeline(
    video: Path,
    config: Path | None,
    detector: FrameDetector,
    max_seconds: float,
    decode_ahead: int,
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
    pooled = load_detector(site.model, args.config)
    sessions = pooled.sessions if isinstance(pooled, DetectorPool) else 1
    # The one-session comparison only where the configured layout is a pool.
    single = Detector.from_config(site.model, args.config) if sessions > 1 else pooled
    with VideoReader(args.video) as reader:
        frame = next(reader.frames()).bgr()
        pooled.detect(frame)  # warm-up, outside every timing
        if single is not pooled:
            single.detect(frame)

    table = Table(title=f"{args.video.name}, first {args.max_seconds:g} s, every frame")
    for column in ("run", "frames", "decode s", "inference s", "total s", "frames/s"):
        table.add_column(column, justify="left" if column == "run" else "right")
    shares = []
    layouts = [(f"{sessions} session(s)", pooled)]
    if sessions > 1:
        layouts.append(("1 session", single))
    for label, detector in layouts:
        frames, decode_s, infer_s = bench_bare(args.video, detector, args.max_seconds)
        bare_s = decode_s + infer_s
        table.add_row(
            f"bare decode + inference, {label}",
            str(frames),
            f"{decode_s:.2f}",
            f"{infer_s:.2f}",
            f"{bare_s:.2f}",
            f"{frames / bare_s:.1f}",
        )
        runs = {f"sitewatch run_replay, {label}": DECODE_AHEAD}
        if detector is pooled:
            runs[f"sitewatch run_replay, {label}, decode inline"] = 0
        for name, ahead in runs.items():
            run = bench_pipeline(args.video, args.config, detector, args.max_seconds, ahead)
            table.add_row(
                name,
                str(run.frames_read),
                f"{run.decode_s:.2f} ({run.decode_busy_s:.2f})" if ahead else f"{run.decode_s:.2f}",
                f"{run.stage_s.get('detect', 0.0):.2f}",
                f"{run.wall_s:.2f}",
                f"{run.frames_read / run.wall_s:.1f}",
            )
            shares.append(_share_line(name, run, bare_s))
    console = Console(width=160)
    console.print(table)
    for line in shares:
        console.print(line)
    console.print(f"model {pooled.model_path.name}")


def _share_line(name: str, run: ReplayResult, bare_s: float) -> str:
    own_inside = run.decode_s + run.stage_s.get("detect", 0.0)
    rest = {k: v for k, v in run.stage_s.items() if k != "detect"}
    rest["output (jsonl, snapshots)"] = run.output_s
    per_frame = max(run.frames_detected, 1)
    return (
        f"{name}: outside decode + inference, share of its time: "
        f"{100 * (1 - bare_s / run.wall_s):.1f} % against the bare run, "
        f"{100 * (1 - own_inside / run.wall_s):.1f} % from its own timers (target <= 25 %); "
        "of which, ms per frame: "
        + ", ".join(f"{k} {1000 * v / per_frame:.2f}" for k, v in rest.items())
    )


if __name__ == "__main__":
    main()
