"""Motion gating (issue 19): events on the labelled clips with it off and on, and its savings.

    .venv/bin/python -m scripts.bench.motion_gate [--skip-eval] [--skip-still] [--seconds 30]

- eval: ``sitewatch eval events`` (``evaluate_video``, the same replay) on every labelled
  clip in tests/data/events with ``motion.enabled`` false and true (the rest of each clip's
  site as its truth file says); prints recall and precision per clip both ways and the share
  of model calls the gate saved;
- still vs busy: the camera pipeline fed at the camera's detect_fps with the first frame
  of turnstile-a repeated (people standing still), barrier-walkway's median frame
  repeated (nobody there), the same with sensor noise (sigma 2 grey levels), and turnstile-a itself
  (busy); prints CPU ms per frame (process time, model included) and model calls saved
  with gating off, on, and on without follow_people (a standing person gated too), and the
  motion test's own cost per frame.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.config import CameraConfig, MotionConfig, SiteConfig
from sitewatch.edge.detections import Detections
from sitewatch.edge.detector import Detector
from sitewatch.edge.detector_pool import load_detector
from sitewatch.edge.motion import MotionTest
from sitewatch.edge.pipeline import CameraPipeline
from sitewatch.edge.replay import default_site_config
from sitewatch.resources import shared_root

ROOT = Path(__file__).resolve().parents[2]
TRUTH = ROOT / "tests" / "data" / "events"
CLIPS = ["turnstile-a", "turnstile-b", "barrier-walkway", "red-white-helmets", "concrete-pour-crew"]


def with_motion(site: SiteConfig, enabled: bool, **motion: object) -> SiteConfig:
    update = {"enabled": enabled, **motion}
    return site.model_copy(update={"motion": site.motion.model_copy(update=update)})


def _recall_precision(evaluation: object) -> tuple[int, int, int]:
    scores = evaluation.scores.values()  # type: ignore[attr-defined]
    tp = sum(s.tp for s in scores)
    fn = sum(s.fn for s in scores)
    fp = sum(s.fp for s in scores)
    return tp, fn, fp


def run_eval(clips: list[str], follow_people: bool = True) -> None:
    from sitewatch.commands.eval_events import _setup
    from sitewatch.edge.evaluation.evaluate import evaluate_video, find_video
    from sitewatch.edge.evaluation.events_truth import load_truth

    print(
        f"{'clip':<20} {'gate':<4} {'R':>5} {'P':>5} {'tp':>3} {'fn':>3} {'fp':>3}"
        f" {'calls':>6} {'gated':>6} {'saved':>6} {'wall s':>7}"
    )
    for clip in clips:
        truth_path = TRUTH / f"{clip}.yaml"
        truth = load_truth(truth_path)
        video = find_video(truth_path, truth)
        site, cam, config_path = _setup(truth_path, video, truth, None, None)
        detector = load_detector(site.model, config_path)
        for enabled in (False, True):
            started = time.perf_counter()
            evaluation = evaluate_video(
                video,
                truth,
                with_motion(site, enabled, follow_people=follow_people),
                cam,
                detector,
                tolerance_s=2.0,
            )
            tp, fn, fp = _recall_precision(evaluation)
            replay = evaluation.replay
            calls = replay.frames_detected - replay.frames_gated
            recall = tp / (tp + fn) if tp + fn else float("nan")
            precision = tp / (tp + fp) if tp + fp else float("nan")
            saved = replay.frames_gated / replay.frames_detected if replay.frames_detected else 0
            print(
                f"{clip:<20} {'on' if enabled else 'off':<4} {recall:5.2f} {precision:5.2f}"
                f" {tp:3d} {fn:3d} {fp:3d} {calls:6d} {replay.frames_gated:6d} {saved:6.1%}"
                f" {time.perf_counter() - started:7.1f}",
                flush=True,
            )


class CountingDetector:
    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.model_path = inner.model_path
        self.class_names = inner.class_names
        self.input_wh = inner.input_wh
        self.calls = 0

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        self.calls += 1
        return self.inner.detect(frame_bgr)


def _frames(video: Path, fps: float, seconds: float) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    step = max(1, round(capture.get(cv2.CAP_PROP_FPS) / fps))
    frames: list[np.ndarray] = []
    index = 0
    while len(frames) < seconds * fps:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def run_still(seconds: float) -> None:
    video = shared_root() / "data" / "videos" / "turnstile-a.mp4"
    base = default_site_config(video)
    camera: CameraConfig = base.cameras[0]
    fps = camera.detect_fps
    busy = _frames(video, fps, seconds)
    rng = np.random.default_rng(0)
    n = int(seconds * fps)
    first = busy[0]
    # barrier-walkway's median frame: the walkway with its walkers gone, in which the model
    # finds nobody (turnstile-a's median keeps a person standing at the far end)
    walkway = _frames(video.with_name("barrier-walkway.mp4"), fps, 20.0)
    empty = np.median(np.stack(walkway), axis=0).astype(np.uint8)
    stretches = {
        "still people": [first] * n,
        "still empty": [empty] * n,
        "empty+noise": [
            np.clip(empty + rng.normal(0, 2, empty.shape), 0, 255).astype(np.uint8)
            for _ in range(n)
        ],
        # the busy clip is 10 s: looped to the stretch's length
        "busy": (busy * (1 + n // max(1, len(busy))))[:n],
    }
    inner = Detector.from_config(base.model, threads=1)
    inner.detect(first)  # warm up
    test = MotionTest(MotionConfig())
    cost = []
    for frame in stretches["busy"]:
        started = time.perf_counter()
        test.moving(frame)
        cost.append(time.perf_counter() - started)
    print(
        f"motion test ({first.shape[1]}x{first.shape[0]}): median "
        f"{np.median(cost) * 1e3:.3f} ms, p90 {np.percentile(cost, 90) * 1e3:.3f} ms a frame"
    )
    print(
        f"{'stretch':<13} {'gate':<9} {'frames':>6} {'calls':>6} {'saved':>6} {'CPU ms/frame':>12}"
    )
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    modes = (("off", False, True), ("on", True, True), ("on-nofoll", True, False))
    for name, frames in stretches.items():
        for mode, enabled, follow in modes:
            detector = CountingDetector(inner)
            site = with_motion(base, enabled, follow_people=follow)
            pipeline = CameraPipeline(site, camera, detector)
            cpu = time.process_time()
            for i, frame in enumerate(frames):
                pipeline.process(frame, origin + timedelta(seconds=i / fps))
            cpu_ms = (time.process_time() - cpu) / len(frames) * 1e3
            saved = 1 - detector.calls / len(frames)
            print(
                f"{name:<13} {mode:<9} {len(frames):6d} {detector.calls:6d} {saved:6.1%}"
                f" {cpu_ms:12.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--skip-still", action="store_true")
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument(
        "--no-follow-people",
        action="store_true",
        help="eval with motion.follow_people off (a still person is gated too)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each stretch")
    args = parser.parse_args()
    if not args.skip_still:
        run_still(args.seconds)
    if not args.skip_eval:
        clips = [c for c in args.clips.split(",") if c]
        run_eval(clips, follow_people=not args.no_follow_people)


if __name__ == "__main__":
    main()
