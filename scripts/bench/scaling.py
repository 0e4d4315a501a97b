"""How the pipeline's cost grows with people in the frame and with cameras.

    .venv/bin/python -m scripts.bench.scaling [VIDEO] [--config C] [--frames 30]
        [--crops 0.25,0.5,1] [--cameras 1,2,4]

People: the first ``--frames`` frames of the video (default concrete-pour-crew.mp4, about
20 workers) are cropped to the left 25 %, 50 % and 100 % of their width, so the same scene
holds fewer or more people, and each crop runs through a fresh ``CameraPipeline`` (the
model's input size is fixed, so inference costs about the same; tracking, helmet
attributes and rules grow with the people). Cameras: N pipelines in one process, each with
its own reader of the same video and its own tracker and rules, sharing one detector as the
live edge box does, fed round-robin; total and per-camera frames per second.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from sitewatch.edge.config import SiteConfig, load_config
from sitewatch.edge.detector import Detector
from sitewatch.edge.pipeline import STAGES, CameraPipeline
from sitewatch.edge.replay import default_site_config
from sitewatch.edge.video import VideoReader
from sitewatch.resources import shared_root


def read_frames(video: Path, count: int) -> tuple[list[np.ndarray], list[float]]:
    frames, times_s = [], []
    with VideoReader(video) as reader:
        for frame in reader.frames():
            frames.append(frame.bgr())
            times_s.append(frame.time_s)
            if len(frames) == count:
                break
    return frames, times_s


def bench_people(
    site: SiteConfig,
    detector: Detector,
    frames: list[np.ndarray],
    times_s: list[float],
    crops: list[float],
) -> Table:
    table = Table(title="Cost vs people in the frame (same frames, cropped)")
    for column in ("width kept", "people/frame", "frames/s", *(f"{s} ms" for s in STAGES)):
        table.add_column(column, justify="right", no_wrap=True)
    with VideoReader(site.cameras[0].source) as reader:
        origin = reader.time_origin()
    for crop in crops:
        pipeline = CameraPipeline(site, site.cameras[0], detector, frame_rate=30.0)
        stage_s = dict.fromkeys(STAGES, 0.0)
        people = 0
        started = time.perf_counter()
        for image, time_s in zip(frames, times_s, strict=True):
            width = max(int(image.shape[1] * crop), 32)
            part = np.ascontiguousarray(image[:, :width])
            result = pipeline.process(part, origin + timedelta(seconds=time_s))
            people += len(result.persons)
            for stage, seconds in result.timings_s.items():
                stage_s[stage] += seconds
        wall_s = time.perf_counter() - started
        n = len(frames)
        table.add_row(
            f"{crop:.0%}",
            f"{people / n:.1f}",
            f"{n / wall_s:.1f}",
            *(f"{1000 * stage_s[s] / n:.1f}" for s in STAGES),
        )
    return table


def bench_cameras(
    site: SiteConfig, detector: Detector, video: Path, count: int, cameras: list[int]
) -> Table:
    table = Table(title="Cost vs cameras (one process, one shared detector)")
    for column in ("cameras", "frames", "seconds", "total frames/s", "per camera frames/s"):
        table.add_column(column, justify="right", no_wrap=True)
    for n_cameras in cameras:
        readers = [VideoReader(video) for _ in range(n_cameras)]
        try:
            streams = [r.frames() for r in readers]
            origin = readers[0].time_origin()
            pipelines = [
                CameraPipeline(site, site.cameras[0], detector, frame_rate=30.0)
                for _ in range(n_cameras)
            ]
            done = 0
            started = time.perf_counter()
            for _ in range(count):
                for stream, pipeline in zip(streams, pipelines, strict=True):
                    frame = next(stream)
                    pipeline.process(frame.bgr(), origin + timedelta(seconds=frame.time_s))
                    done += 1
            wall_s = time.perf_counter() - started
        finally:
            for reader in readers:
                reader.close()
        table.add_row(
            str(n_cameras),
            str(done),
            f"{wall_s:.1f}",
            f"{done / wall_s:.1f}",
            f"{done / wall_s / n_cameras:.1f}",
        )
    return table


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_video = shared_root() / "data" / "videos" / "concrete-pour-crew.mp4"
    parser.add_argument("video", nargs="?", type=Path, default=default_video)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--crops", default="0.25,0.5,1")
    parser.add_argument("--cameras", default="1,2,4")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    site = load_config(args.config) if args.config else default_site_config(args.video)
    site.cameras[0] = site.cameras[0].model_copy(update={"source": str(args.video)})
    detector = Detector.from_config(site.model, args.config)
    frames, times_s = read_frames(args.video, args.frames)
    console = Console()
    console.print(
        f"model {detector.model_path.name}, input {detector.input_wh}, "
        f"{len(frames)} frames of {args.video.name} per run"
    )
    console.print(bench_people(site, detector, frames, times_s, _floats(args.crops)))
    cameras = [int(v) for v in _floats(args.cameras)]
    console.print(bench_cameras(site, detector, args.video, args.frames, cameras))


if __name__ == "__main__":
    main()
