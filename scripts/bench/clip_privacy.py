"""Seconds to encode one event clip with and without blurring unknown faces in every frame.

A clip of ``--frames`` frames (default 100 = 10 s at 10 fps) from a real video goes through
FrameRing -> ClipRecorder (one clip-encoder thread) -> PyAV/libx264, as on the edge box;
the time from the clip being due to the MP4 being written is printed, with privacy off,
privacy on with nobody enrolled, and privacy on with one enrolled worker (the largest face
of the first frame; his face is then embedded on every frame too).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np

from scripts.common import shared_root
from sitewatch.edge.clips import ClipRecorder, FrameRing
from sitewatch.edge.config import CameraConfig, FacesConfig, PrivacyConfig, SiteConfig, SiteInfo
from sitewatch.edge.faces.clip_privacy import clip_blur_factory
from sitewatch.edge.faces.stage import FaceStage
from sitewatch.edge.faces.tracks import FaceRegister

SHARED = shared_root()
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def read_frames(video: Path, count: int, step: int) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == count:
                break
    if not frames:
        raise FileNotFoundError(f"no frames decoded from {video}")
    return frames


def clip_seconds(frames: list[np.ndarray], site: SiteConfig, stage: FaceStage) -> float:
    ring = FrameRing(max_age_s=120.0, fps=10.0)
    finished: list[float] = []
    end = T0 + timedelta(seconds=0.1 * (len(frames) - 1))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(1, "clip-encoder") as pool:
        recorder = ClipRecorder(ring, pool, fps=10.0, filter_factory=clip_blur_factory(site, stage))
        on_done = lambda _e, _p: finished.append(time.perf_counter())  # noqa: E731
        recorder.request("bench", T0, end, Path(tmp) / "clip.mp4", on_done)
        for j, image in enumerate(frames):
            ring.add(T0 + timedelta(seconds=0.1 * j), image)
        started = time.perf_counter()
        ring.add(end + timedelta(seconds=0.2), frames[-1])  # the clip is due now
        recorder.flush(timeout_s=600.0)
    return finished[0] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", type=Path, default=SHARED / "data/videos/red-white-helmets.mp4")
    parser.add_argument("--models", type=Path, default=SHARED / "models")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--step", type=int, default=2, help="take every n-th decoded frame")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    frames = read_frames(args.video, args.frames, args.step)
    stage = FaceStage(FacesConfig(enabled=True, models_dir=str(args.models)))
    height, width = frames[0].shape[:2]
    print(f"{len(frames)} frames {width}x{height} from {args.video.name}, 1 encoder thread")
    cases = [("privacy off", False, False), ("blur, nobody enrolled", True, False)]
    cases.append(("blur, 1 worker enrolled", True, True))
    for name, blur, enrol in cases:
        stage.register = FaceRegister()
        if enrol:
            face = max(stage.detector.detect(frames[0]), key=lambda f: f.size_px)
            stage.register.set("w", [stage.embedder.embed(frames[0], face)])
        site = SiteConfig(
            site=SiteInfo(id="bench"),
            cameras=[CameraConfig(id="cam", source="x.mp4")],
            privacy=PrivacyConfig(blur_unknown_faces=blur),
        )
        times = [clip_seconds(frames, site, stage) for _ in range(args.runs)]
        per_frame_ms = 1000 * min(times) / len(frames)
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name:26s} clip s: {runs}  (best {per_frame_ms:.1f} ms a frame, encoding included)")


if __name__ == "__main__":
    main()
