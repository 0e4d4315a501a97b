"""Cost of the face stage: ms per frame and pipeline frames/s with and without it.

    .venv/bin/python -m scripts.bench.faces [VIDEO] [--frames N] [--step K] [--every N]

Decodes N frames (every K-th) of the video into memory first, then runs the same frames
through CameraPipeline twice, faces off and faces on (YuNet on the upper part of each
tracked person every ``--every`` frames, SFace on the best face per person), and prints
the face stage's mean time per frame, the pipeline's frames/s each way, and the cost of
blurring one snapshot (full-frame YuNet + SFace for each face). Nothing is timed-asserted.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np

from sitewatch.edge.config import FacesConfig
from sitewatch.edge.detector import Detector
from sitewatch.edge.faces.stage import FaceStage
from sitewatch.edge.pipeline import CameraPipeline
from sitewatch.edge.replay import default_site_config
from sitewatch.resources import shared_root

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _frames(video: Path, count: int, step: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) >= count:
                break
    return out


def _run(
    pipeline: CameraPipeline, frames: list[np.ndarray], fps: float
) -> tuple[float, list[float]]:
    face_s: list[float] = []
    started = time.perf_counter()
    for n, image in enumerate(frames):
        result = pipeline.process(image, T0 + timedelta(seconds=n / fps))
        if "faces" in result.timings_s:
            face_s.append(result.timings_s["faces"])
    return len(frames) / (time.perf_counter() - started), face_s


def _runs(values: list[float]) -> str:
    return f"{max(values):.1f} ({', '.join(f'{v:.1f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_video = shared_root() / "data" / "videos" / "red-white-helmets.mp4"
    parser.add_argument("video", nargs="?", type=Path, default=default_video)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--step", type=int, default=5, help="take every K-th decoded frame")
    parser.add_argument("--every", type=int, default=2, help="faces.detect_every_n_frames")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    site = default_site_config(args.video)
    camera = site.cameras[0]
    detector = Detector.from_config(site.model)
    frames = _frames(args.video, args.frames, args.step)
    fps = 30.0 / args.step
    models = str(shared_root() / "models")
    faces_cfg = FacesConfig(enabled=True, models_dir=models, detect_every_n_frames=args.every)
    faces_cfg = FacesConfig(enabled=True, models_dir=models, detect_every_n_frames=args.every)
    stage = FaceStage(faces_cfg)

    _run(CameraPipeline(site, camera, detector, frame_rate=fps), frames[:5], fps)  # warm up
    fps_off, fps_on, face_s, looked_s = [], [], [], []
    for _ in range(args.repeats):  # interleaved, so background load hits both alike
        off, _ = _run(CameraPipeline(site, camera, detector, frame_rate=fps), frames, fps)
        stage = FaceStage(faces_cfg)  # fresh: its first frame looks for faces
        with_faces = CameraPipeline(site, camera, detector, frame_rate=fps, faces=stage)
        on, seconds = _run(with_faces, frames, fps)
        fps_off.append(off)
        fps_on.append(on)
        face_s += seconds
        looked_s += seconds[:: args.every]  # the frames on which faces were looked for

    privacy = stage.privacy()
    blur_s = []
    for image in frames[:: max(1, len(frames) // 10)]:
        started = time.perf_counter()
        privacy.blur_unknown(image)
        blur_s.append(time.perf_counter() - started)

    h, w = frames[0].shape[:2]
    print(f"video {args.video.name} {w}x{h}, {len(frames)} frames (every {args.step}th)")
    print(f"person model {detector.model_path.name}; faces every {args.every} frame(s)")
    print(f"pipeline without faces: {_runs(fps_off)} frames/s (runs: best, all)")
    print(f"pipeline with faces:    {_runs(fps_on)} frames/s")
    ms = [s * 1000 for s in face_s]
    looked = [s * 1000 for s in looked_s]
    print(f"face stage: mean {statistics.mean(ms):.1f} ms over all frames")
    print(
        f"face stage on frames that look for faces: mean {statistics.mean(looked):.1f} ms, "
        f"median {statistics.median(looked):.1f}, max {max(looked):.1f}"
    )
    print(f"snapshot blur (full frame): mean {statistics.mean(blur_s) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
