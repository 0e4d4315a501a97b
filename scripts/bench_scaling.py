"""How the edge pipeline's cost grows with people in the frame and with cameras.

    .venv/bin/python scripts/bench_scaling.py [--max-seconds 3] [--cameras 1,2,4]

Three tables:

1. people, everything after inference: ``CameraPipeline.process`` on a real frame with a
   stand-in detector that returns N people, each with a bare head or a helmet, moving a
   little every frame (tracking, helmet attributes and colour, rules with a restricted
   zone and a fall edge are the real ones). Inference is left out here on purpose: it is
   the next table.
2. people, inference: ``Detector.detect`` on real frames of the shared clips with few
   (barrier-walkway, 2) and many (concrete-pour-crew, about 20) people.
3. cameras: K pipelines in one process, each decoding its own copy of the video and
   detecting at the camera's detect_fps (5/s), sharing one Detector (one ONNX Runtime
   session), as ``sitewatch edge`` does; video seconds processed per wall second per
   camera (>= 1.0 means each camera keeps up in real time).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.config import CameraConfig, SiteConfig, SiteInfo  # noqa: E402
from edge.detections import CLASS_NAME, Detections  # noqa: E402
from edge.detector import Detector  # noqa: E402
from edge.models import shared_root  # noqa: E402
from edge.pipeline import CameraPipeline  # noqa: E402
from edge.replay import default_site_config  # noqa: E402
from edge.video import FrameSampler, VideoReader  # noqa: E402
from zones.config import CameraZones, FallEdge, RestrictedZone  # noqa: E402

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NAMES = ["person", "head", "helmet"]
console = Console()


class CrowdDetector:
    """N people on a grid, drifting a pixel per frame; every other one bare-headed."""

    class_names = NAMES
    model_path = Path("crowd-stand-in.onnx")

    def __init__(self, people: int, frame_wh: tuple[int, int]) -> None:
        cols = max(int(np.ceil(np.sqrt(people * 2))), 1)
        cell_w, cell_h = frame_wh[0] / cols, frame_wh[1] / max(int(np.ceil(people / cols)), 1)
        self.origins = [((i % cols) * cell_w, (i // cols) * cell_h) for i in range(people)]
        self.size_wh = (min(cell_w * 0.8, 60.0), min(cell_h * 0.9, 160.0))
        self.step = 0

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        self.step += 1
        w, h = self.size_wh
        boxes, names = [], []
        for i, (x, y) in enumerate(self.origins):
            x += self.step % 20
            boxes.append((x, y, x + w, y + h))
            boxes.append((x + w * 0.3, y, x + w * 0.7, y + h * 0.2))
            names += ["person", "head" if i % 2 else "helmet"]
        name_array = np.array(names, dtype=str)
        return Detections(
            xyxy=np.array(boxes, np.float32).reshape(-1, 4),
            confidence=np.full(len(boxes), 0.9, np.float32),
            class_id=np.array([NAMES.index(n) for n in names], int),
            data={CLASS_NAME: name_array},
        )


def _zoned_site() -> SiteConfig:
    zones = CameraZones(
        restricted=[RestrictedZone(name="pit", polygon=[(0.0, 0.5), (0.5, 0.5), (0.5, 1.0)])],
        edges=[FallEdge(name="slab", polyline=[(0.0, 0.3), (1.0, 0.3)], danger_distance=0.05)],
    )
    camera = CameraConfig(id="cam", source="bench.mp4", zones=zones)
    return SiteConfig(site=SiteInfo(id="bench"), cameras=[camera])


def _first_frame(video: Path) -> np.ndarray:
    with VideoReader(video) as reader:
        return next(reader.frames()).bgr()


def people_after_inference(frame: np.ndarray, counts: list[int], frames: int) -> None:
    site = _zoned_site()
    table = Table(title="1. people in the frame: track + attributes + rules, no inference")
    for column in ("people", "ms per frame", "track", "attributes", "rules"):
        table.add_column(column, justify="right")
    for people in counts:
        detector = CrowdDetector(people, (frame.shape[1], frame.shape[0]))
        pipeline = CameraPipeline(site, site.cameras[0], detector, frame_rate=5)  # type: ignore[arg-type]
        stage_s: dict[str, float] = {}
        for i in range(frames):
            result = pipeline.process(frame, T0 + timedelta(seconds=i / 5))
            for stage, seconds in result.timings_s.items():
                stage_s[stage] = stage_s.get(stage, 0.0) + seconds
        per = {k: 1000 * v / frames for k, v in stage_s.items() if k != "detect"}
        table.add_row(
            str(people),
            f"{sum(per.values()):.2f}",
            *(f"{per.get(k, 0.0):.2f}" for k in ("track", "attributes", "rules")),
        )
    console.print(table)


def people_inference(detector: Detector, videos: list[Path], frames: int) -> None:
    table = Table(title="2. people in the frame: inference on real frames")
    for column in ("video", "people detected (mean)", "ms per detect (median)"):
        table.add_column(column, justify="left" if column == "video" else "right")
    for video in videos:
        counts: list[int] = []
        times_ms: list[float] = []
        with VideoReader(video) as reader:
            sampler = FrameSampler(2.0)
            for frame in reader.frames():
                if len(times_ms) >= frames:
                    break
                if not sampler.take(frame.time_s):
                    continue
                image = frame.bgr()
                started = time.perf_counter()
                dets = detector.detect(image)
                times_ms.append(1000 * (time.perf_counter() - started))
                counts.append(int(np.sum(np.asarray(dets.data[CLASS_NAME]) == "person")))
        table.add_row(
            video.name, f"{statistics.mean(counts):.1f}", f"{statistics.median(times_ms):.0f}"
        )
    console.print(table)


def cameras(detector: Detector, video: Path, counts: list[int], max_seconds: float) -> None:
    table = Table(title=f"3. cameras ({video.name}, {max_seconds:g} s each, 5 detections/s)")
    for column in ("cameras", "detections", "wall s", "detections/s", "real-time per camera"):
        table.add_column(column, justify="right")
    site = default_site_config(video)
    for count in counts:
        readers = [VideoReader(video) for _ in range(count)]
        streams = [r.frames() for r in readers]
        pipelines = [CameraPipeline(site, site.cameras[0], detector, frame_rate=5) for _ in readers]
        samplers = [FrameSampler(5.0) for _ in readers]
        detections, started = 0, time.perf_counter()
        for frames in zip(*streams, strict=False):
            if frames[0].time_s > max_seconds:
                break
            for frame, pipeline, sampler in zip(frames, pipelines, samplers, strict=True):
                if sampler.take(frame.time_s):
                    pipeline.process(frame.bgr(), T0 + timedelta(seconds=frame.time_s))
                    detections += 1
        wall_s = time.perf_counter() - started
        for reader in readers:
            reader.close()
        table.add_row(
            str(count),
            str(detections),
            f"{wall_s:.1f}",
            f"{detections / wall_s:.1f}",
            f"{max_seconds / wall_s:.2f}x",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=3.0)
    parser.add_argument("--cameras", default="1,2,4")
    parser.add_argument("--people", default="1,5,10,20,50")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    videos = shared_root() / "data" / "videos"
    pour, walkway = videos / "concrete-pour-crew.mp4", videos / "barrier-walkway.mp4"

    people_after_inference(_first_frame(pour), [int(n) for n in args.people.split(",")], 50)
    detector = Detector.from_config(default_site_config(pour).model)
    detector.detect(_first_frame(pour))  # warm-up
    people_inference(detector, [walkway, pour], 8)
    cameras(detector, pour, [int(n) for n in args.cameras.split(",")], args.max_seconds)
    console.print(f"model {detector.model_path.name}, input {max(detector.input_wh)}")


if __name__ == "__main__":
    main()
