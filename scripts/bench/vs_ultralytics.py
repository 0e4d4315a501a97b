"""The replay pipeline against Ultralytics' own ``YOLO(...).track()``, same weights and input.

    .venv/bin/python -m scripts.bench.vs_ultralytics [VIDEO] [--config C] [--model M.onnx]
        [--max-seconds 5] [--rounds 2] [--pt WEIGHTS.pt | --no-pt] [--detect-fps F]

Every row runs on the first ``--max-seconds`` of the same video, in this process, with
the model the config resolves to (the project's own ONNX, else the shared COCO YOLOv8n),
at the same input size, confidence and IoU. The machine may be shared (a training job):
the rows alternate for ``--rounds`` rounds (A B C, C B A, ...) so that a change in load
hits all alike, and the totals are compared. Rows:

- ``ultralytics track(), ONNX`` (**equal work**, the reference of every ratio):
  ``YOLO(onnx, task="detect").track(source=video, tracker="bytetrack.yaml", imgsz=...,
  stream=True)``: OpenCV decoding, ONNX Runtime with Ultralytics' session options (its
  defaults), ByteTrack, on every frame;
- ``ultralytics track(), ONNX, ORT spinning off`` (**equal work**): the same, with the
  ONNX Runtime session options sitewatch uses (no busy-waiting threads), so the table
  shows how much of the difference is that setting and how much the rest of the pipeline;
  not how Ultralytics runs out of the box;
- ``ultralytics track(), PyTorch .pt`` (**equal work** in weights and ``imgsz``): how
  people use Ultralytics today. ``--pt`` names the weights; by default the exact PyTorch
  twin of the ONNX is rebuilt into a temporary folder (``scripts/train/onnx_to_checkpoint.py``,
  BN as identity: its re-export matches the ONNX with a max abs output difference of 0).
  Ultralytics letterboxes the .pt to the smallest multiple of 32 that fits (416x256 for a
  16:9 video at 416), as sitewatch and Ultralytics do with the dynamic-axes ONNX. A second
  row, ``.pt, square``, passes ``rect=False`` (416x416, what a fixed-size export sees);
- ``sitewatch, every frame`` (**equal work**): ``edge.replay.run_replay`` with
  ``detect_fps=0`` (decode, detect, track, helmet attributes and colour, rules,
  events.jsonl and snapshots), with the detector the config gives: by default one
  single-threaded ONNX Runtime session per core detecting frames side by side
  (edge.detector_pool), the frames then tracked in order;
- ``sitewatch, every frame, one session`` (**equal work**): the same with one session and
  ORT's own threads, as sitewatch ran before detector pools;
- ``ceiling: decode + model call only``: no pipeline at all, only PyAV decoding and the
  sitewatch detector (same sessions) on every frame
  (``scripts/bench/pipeline_overhead.bench_bare``): the most any pipeline with this model
  call on this machine can reach, tracking, rules and output costing nothing;
- ``ultralytics track(), ONNX, vid_stride=N``: Ultralytics decodes every frame (``grab``)
  and detects and tracks every N-th, N = round(video fps / F);
- ``sitewatch, detect_fps=F``: the camera's default, Frigate-style: decode every frame,
  detect (and track) F times a second. Not equal work with the every-frame rows; equal
  work with the vid_stride row (the same frames decoded, the same frames detected).

"frames/s" counts video frames covered per wall-clock second (decoded, whether or not
detected), "detections/s" the model calls. Sitewatch's time is the whole ``run_replay``
call, set-up included; Ultralytics' time starts at its first result (its set-up and first
frame excluded, which favours Ultralytics). "vs reference" is frames/s against the
equal-work ``ultralytics track(), ONNX`` row (every frame); "vs Ultralytics, same work" is
frames/s against the Ultralytics row that does the same work as the row (its group's first).

``--model`` runs every row on another ONNX file of the same classes (e.g. the int8
variant, models/sitewatch-det-int8.onnx, with ``--no-pt``: it has no exact .pt twin).

Ultralytics never downloads or installs anything here: YOLO_OFFLINE and
YOLO_AUTOINSTALL=false are set before it is imported (ByteTrack needs the ``lap`` package,
in the ``train`` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack, cast

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ.setdefault("YOLO_VERBOSE", "false")

from rich.console import Console
from rich.table import Table

from sitewatch.edge.config import SiteConfig, load_config
from sitewatch.edge.detector import Detector
from sitewatch.edge.detector_pool import DetectorPool, FrameDetector, load_detector
from sitewatch.edge.replay import default_site_config, run_replay
from sitewatch.edge.video import VideoReader
from sitewatch.resources import shared_root

REFERENCE = "ultralytics track(), ONNX"


EVERY_FRAME = "every frame"
CEILING = "ceiling: decode + model call only"


@dataclass
class Row:
    name: str
    #: Rows of one group do the same work; the group's first row is its Ultralytics reference.
    group: str
    run: Callable[[], tuple[int, int, float]]  # -> (frames covered, model calls, seconds)
    note: str = ""


def bench_sitewatch(
    video: Path, site: SiteConfig, detector: FrameDetector, max_seconds: float, detect_fps: float
) -> tuple[int, int, float]:
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
    return result.frames_read, result.frames_detected, result.wall_s


def bench_ceiling(
    video: Path, detector: FrameDetector, max_seconds: float
) -> tuple[int, int, float]:
    from scripts.bench.pipeline_overhead import bench_bare

    frames, decode_s, infer_s = bench_bare(video, detector, max_seconds)
    return frames, frames, decode_s + infer_s


@contextlib.contextmanager
def ort_spinning_off() -> Iterator[None]:
    """Sessions created inside get sitewatch's no-spinning options (edge.detector)."""
    import onnxruntime as ort

    original = ort.InferenceSession

    def session(path: str, sess_options: Any = None, *args: Any, **kwargs: Any) -> Any:
        options = sess_options or ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return original(path, options, *args, **kwargs)

    ort.InferenceSession = session
    try:
        yield
    finally:
        ort.InferenceSession = original


class UltralyticsOptions(TypedDict, total=False):
    """The options of :func:`bench_ultralytics` that a row sets."""

    vid_stride: int
    no_spinning: bool
    rect: bool | None


def bench_ultralytics(
    video: Path,
    site: SiteConfig,
    weights: Path,
    imgsz: int,
    max_frames: int,
    vid_stride: int = 1,
    no_spinning: bool = False,
    rect: bool | None = None,
) -> tuple[int, int, float]:
    """Frames covered and results after the first, and the seconds they took."""
    from ultralytics import YOLO
    from ultralytics.engine.results import Results

    with ort_spinning_off() if no_spinning else contextlib.nullcontext():
        model = YOLO(str(weights), task="detect")
        # track() is typed for both modes; with stream=True it returns a generator
        stream = cast(
            Generator[Results, None, None],
            model.track(
                source=str(video),
                tracker="bytetrack.yaml",
                imgsz=imgsz,
                conf=site.model.confidence,
                iou=site.model.iou,
                vid_stride=vid_stride,
                **({} if rect is None else {"rect": rect}),
                stream=True,
                verbose=False,
            ),
        )
        results, first_s = 0, 0.0
        for _ in stream:
            results += 1
            if results == 1:
                first_s = time.perf_counter()
            if results >= math.ceil(max_frames / vid_stride):
                break
        seconds = time.perf_counter() - first_s
        stream.close()
    return (results - 1) * vid_stride, results - 1, seconds


def make_rows(
    args: argparse.Namespace,
) -> tuple[list[Row], list[str], FrameDetector, SiteConfig]:
    site = load_config(args.config) if args.config else default_site_config(args.video)
    if args.model is not None:
        model = site.model.model_copy(update={"path": str(args.model.resolve())})
        site = site.model_copy(update={"model": model})
    detector = load_detector(site.model, args.config)
    # One session with ORT's own threads: sitewatch as it ran before detector pools.
    single = Detector.from_config(site.model, args.config)
    sessions = detector.sessions if isinstance(detector, DetectorPool) else 1
    imgsz = max(detector.input_wh)
    with VideoReader(args.video) as reader:
        video_fps = reader.fps
    max_frames = round(args.max_seconds * video_fps) + 1
    detect_fps = args.detect_fps if args.detect_fps is not None else site.cameras[0].detect_fps
    stride = max(1, round(video_fps / detect_fps))

    def ultralytics(
        weights: Path, **kwargs: Unpack[UltralyticsOptions]
    ) -> Callable[[], tuple[int, int, float]]:
        return lambda: bench_ultralytics(args.video, site, weights, imgsz, max_frames, **kwargs)

    onnx = detector.model_path
    sampled = f"decode all, detect 1 in {stride}"
    rows = [
        Row(REFERENCE, EVERY_FRAME, ultralytics(onnx), "Ultralytics' default ORT options"),
        Row(
            "ultralytics track(), ONNX, ORT spinning off",
            EVERY_FRAME,
            ultralytics(onnx, no_spinning=True),
            "sitewatch's ORT options patched in",
        ),
    ]
    skipped = []
    if args.no_pt:
        skipped.append("ultralytics track(), PyTorch .pt (both rows): left out (--no-pt)")
    elif args.pt is None:
        from scripts.train.onnx_to_checkpoint import identity_checkpoint

        args.pt = identity_checkpoint(onnx, Path(args.workdir) / f"{onnx.stem}.pt")
    if not args.no_pt and args.pt.is_file():
        rows += [
            Row(
                "ultralytics track(), PyTorch .pt",
                EVERY_FRAME,
                ultralytics(args.pt),
                f"{args.pt.name}, PyTorch CPU, rect letterbox",
            ),
            Row(
                "ultralytics track(), PyTorch .pt, square",
                EVERY_FRAME,
                ultralytics(args.pt, rect=False),
                f"rect=False: {imgsz}x{imgsz}",
            ),
        ]
    elif not args.no_pt:
        skipped.append(
            f"ultralytics track(), PyTorch .pt (both rows): skipped ({args.pt} not found)"
        )
    rows += [
        Row(
            "sitewatch, every frame",
            EVERY_FRAME,
            lambda: bench_sitewatch(args.video, site, detector, args.max_seconds, 0),
            f"run_replay detect_fps=0, {sessions} model session(s) side by side",
        ),
        Row(
            CEILING,
            EVERY_FRAME,
            lambda: bench_ceiling(args.video, detector, args.max_seconds),
            "PyAV decode + sitewatch's detector only, no pipeline",
        ),
        Row(
            "sitewatch, every frame, one session",
            EVERY_FRAME,
            lambda: bench_sitewatch(args.video, site, single, args.max_seconds, 0),
            "one ORT session, its default threads",
        ),
        Row(
            f"ultralytics track(), ONNX, vid_stride={stride}",
            sampled,
            ultralytics(onnx, vid_stride=stride),
            "Ultralytics' default ORT options",
        ),
        Row(
            f"sitewatch, detect_fps={detect_fps:g} (default)",
            sampled,
            lambda: bench_sitewatch(args.video, site, detector, args.max_seconds, detect_fps),
            "the camera's default rate",
        ),
    ]
    return rows, skipped, detector, site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_video = shared_root() / "data" / "videos" / "concrete-pour-crew.mp4"
    parser.add_argument("video", nargs="?", type=Path, default=default_video)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ONNX model of every row (default: the config's), e.g. models/sitewatch-det-int8.onnx",
    )
    parser.add_argument(
        "--no-pt",
        action="store_true",
        help="leave out the PyTorch rows (an int8 ONNX has no exact .pt twin)",
    )
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--pt",
        type=Path,
        default=None,
        help="PyTorch weights equivalent to the ONNX (default: rebuilt from the ONNX)",
    )
    parser.add_argument(
        "--detect-fps",
        type=float,
        default=None,
        help="sitewatch's detection rate for the default rows (default: the camera's)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    workdir = tempfile.TemporaryDirectory()
    args.workdir = workdir.name
    rows, skipped, detector, site = make_rows(args)
    totals = {row.name: [0, 0, 0.0] for row in rows}
    rounds = Table(title=f"{args.video.name}, first {args.max_seconds:g} s: each round")
    for column in ("round", "pipeline", "frames", "detections", "seconds", "frames/s"):
        rounds.add_column(column, justify="left" if column == "pipeline" else "right")
    for round_no in range(args.rounds):
        for row in rows[:: 1 if round_no % 2 == 0 else -1]:
            frames, calls, seconds = row.run()
            total = totals[row.name]
            total[0], total[1], total[2] = total[0] + frames, total[1] + calls, total[2] + seconds
            rounds.add_row(
                str(round_no + 1),
                row.name,
                str(frames),
                str(calls),
                f"{seconds:.1f}",
                f"{frames / seconds:.1f}",
            )
    fps = {name: frames / seconds for name, (frames, _, seconds) in totals.items()}
    summary = Table(title=f"All {args.rounds} rounds: ratio = frames/s / frames/s of '{REFERENCE}'")
    columns = (
        "pipeline",
        "work",
        "frames/s",
        "detections/s",
        "vs reference",
        "vs Ultralytics, same work",
        "note",
    )
    for column in columns:
        summary.add_column(
            column, justify="left" if column in ("pipeline", "work", "note") else "right"
        )
    group_reference: dict[str, str] = {}
    row_groups = {row.name: row.group for row in rows}
    for row in rows:
        group_reference.setdefault(row.group, row.name)
    for row in rows:
        _, total_calls, total_seconds = totals[row.name]
        summary.add_row(
            row.name,
            row.group + (" (equal work)" if row.group == EVERY_FRAME else ""),
            f"{fps[row.name]:.1f}",
            f"{total_calls / total_seconds:.1f}",
            f"{fps[row.name] / fps[REFERENCE]:.2f}x",
            f"{fps[row.name] / fps[group_reference[row.group]]:.2f}x",
            row.note,
        )
    console = Console(width=200)
    console.print(rounds)
    console.print(summary)
    for line in skipped:
        console.print(line)
    console.print(
        f"model {detector.model_path.name}, input {max(detector.input_wh)}, confidence "
        f"{site.model.confidence}, iou {site.model.iou}. Target: >= 2x Ultralytics track()."
    )
    for row in rows:
        if row.name.startswith("sitewatch"):
            reference = group_reference[row.group]
            ratio = fps[row.name] / fps[reference]
            console.print(
                f"{row.name} / {reference} = {ratio:.2f}x "
                f"({'met' if ratio >= 2 else 'not met'}; same work: {row.group})"
            )
    console.print(
        f"{CEILING} / {REFERENCE} = {fps[CEILING] / fps[REFERENCE]:.2f}x: the most any pipeline "
        "with this model call reaches here"
    )
    for name in fps:
        if name != REFERENCE and name.startswith("ultralytics") and EVERY_FRAME in row_groups[name]:
            ratio = fps["sitewatch, every frame"] / fps[name]
            console.print(f"sitewatch, every frame / {name} = {ratio:.2f}x")


if __name__ == "__main__":
    main()
