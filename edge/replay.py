"""Replaying a recorded video through one camera's pipeline (``sitewatch replay``).

The video runs at its own timestamps, not the machine's speed: a frame's event time is
``origin + pts``, where the origin is the container's ``creation_time`` when it has one,
else 1970-01-01 00:00 UTC. Detection runs at the camera's ``detect_fps`` (frames between
are decoded, and drawn into the optional annotated MP4 with the last result), or on every
frame when ``detect_fps`` is 0. Event ids are derived from the site, camera and video name
and the order of events, so the same input gives byte-identical ``events.jsonl``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from sitewatch.contract.events import Event, EventPhase
from sitewatch.edge.annotate import FrameAnnotator
from sitewatch.edge.config import (
    CameraConfig,
    MotionConfig,
    PersonRuleConfig,
    RulesConfig,
    SiteConfig,
    SiteInfo,
)
from sitewatch.edge.detections import Detections
from sitewatch.edge.detector_pool import DetectionsAhead, DetectorPool, FrameDetector
from sitewatch.edge.event_sink import EventMediaMaker, EventSink, FolderSink
from sitewatch.edge.frame_sampler import FrameSampler
from sitewatch.edge.mp4 import Mp4Writer
from sitewatch.edge.pipeline import STAGES, CameraPipeline, FrameResult
from sitewatch.edge.prefetch import Prefetch
from sitewatch.edge.snapshots import EventRecorder
from sitewatch.edge.video import VideoError, VideoFrame, VideoReader

logger = logging.getLogger(__name__)

ANNOTATED_VIDEO = "annotated.mp4"
#: Frames decoded ahead of the model by the replay's decoding thread.
DECODE_AHEAD = 4
#: Frames in a DetectorPool at once, per session: one running, one queued behind it.
DETECT_AHEAD_PER_SESSION = 2
ProgressCallback = Callable[[float], None]


def default_site_config(video: Path) -> SiteConfig:
    """The site used without --config: one camera, no zones.

    Only the helmet rules can find hazards without zones, so the ``person`` rule is on:
    the replay reports every person it tracks (one event each, with a snapshot). Motion
    gating stays off: a replay without a site file detects every sampled frame.
    """
    return SiteConfig(
        site=SiteInfo(id="replay", name="replay"),
        cameras=[CameraConfig(id="camera", source=str(video))],
        rules=RulesConfig(person=PersonRuleConfig(enabled=True)),
        motion=MotionConfig(enabled=False),
    )


@dataclass
class ReplayResult:
    video: Path
    frame_wh: tuple[int, int]
    frames_read: int = 0
    frames_detected: int = 0
    #: Frames of frames_detected the motion gate (site.motion) kept from the model.
    frames_gated: int = 0
    video_s: float = 0.0  # time of the last frame processed
    wall_s: float = 0.0
    #: Time the pipeline waited for decoded frames (demuxing, decoding, pixel conversion
    #: not hidden behind the model by the decoding thread; all of it with decode_ahead=0).
    decode_s: float = 0.0
    #: Time spent decoding, wherever it ran (the decoding thread or inline).
    decode_busy_s: float = 0.0
    output_s: float = 0.0  # drawing, JPEG and MP4 encoding
    #: Seconds per stage; with a DetectorPool "detect" is the time waited for detections.
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    #: Model sessions that detected frames side by side (edge.detector_pool).
    detect_sessions: int = 1
    #: Every message written to events.jsonl, in order.
    messages: list[Event] = field(default_factory=list)
    track_ids: set[int] = field(default_factory=set)
    stopped_at_s: float | None = None
    stop_reason: str | None = None

    @property
    def events(self) -> list[Event]:
        """One entry per event (its start message)."""
        return [m for m in self.messages if m.phase is EventPhase.START]

    @property
    def fps(self) -> float:
        return self.frames_read / self.wall_s if self.wall_s > 0 else 0.0


def _decoded(
    reader: VideoReader, sampler: FrameSampler, annotate: bool, max_seconds: float | None
) -> Iterator[tuple[VideoFrame, bool]]:
    """(frame, whether to detect on it) up to ``max_seconds``, with the BGR pixels already
    converted for the frames that need them. Runs in the decoding thread."""
    for frame in reader.frames():
        if max_seconds is not None and frame.time_s > max_seconds:
            return
        take = sampler.take(frame.time_s)
        if take or annotate:
            frame.bgr()
        yield frame, take


class _Inline:
    """The frames decoded in the caller's thread (``decode_ahead=0``), timed like Prefetch."""

    def __init__(self, items: Iterator[tuple[VideoFrame, bool]]) -> None:
        self._items = items
        self.busy_s = self.wait_s = 0.0

    def __iter__(self) -> Iterator[tuple[VideoFrame, bool]]:
        while True:
            started = time.perf_counter()
            item = next(self._items, None)
            self.wait_s += time.perf_counter() - started
            self.busy_s = self.wait_s
            if item is None:
                return
            yield item


class _Outputs:
    """The replay's event sink (a folder) and its optional annotated MP4."""

    def __init__(self, sink: EventSink, writer: Mp4Writer | None, camera: CameraConfig) -> None:
        self.sink = sink
        self.writer = writer
        self.annotator = FrameAnnotator(zones=camera.zones)
        self.persons: Detections = Detections.empty()

    def detected(self, image: np.ndarray, frame: FrameResult) -> None:
        self.persons = frame.persons
        for event in frame.events:
            self.sink.handle(event, image, self.persons, frame.now)

    def ended(self, events: list[Event], now: datetime) -> None:
        for event in events:
            self.sink.handle(event, None, None, now)

    def frame(self, frame: VideoFrame) -> None:
        if self.writer is not None:
            self.writer.write(self.annotator.draw(frame.bgr(), self.persons), frame.time_s)


def run_replay(
    video: Path,
    site: SiteConfig,
    camera: CameraConfig,
    detector: FrameDetector,
    out_dir: Path,
    *,
    detect_fps: float | None = None,
    annotate: bool = False,
    max_seconds: float | None = None,
    on_progress: ProgressCallback | None = None,
    decode_ahead: int = DECODE_AHEAD,
    config_path: Path | None = None,
) -> ReplayResult:
    """Replay ``video`` and write events.jsonl, snapshots (and annotated.mp4) to out_dir.

    ``detect_fps`` None uses the camera's; 0 detects every frame. Frames are decoded by a
    background thread up to ``decode_ahead`` frames ahead of the model (0: in this
    thread); the output is the same either way. ``config_path`` (the site file) resolves
    relative paths in ``site.faces`` as the edge does. A :class:`DetectorPool` detects
    frames ahead, side by side, while earlier ones are tracked in order; the output is
    the same as with one session. Raises VideoError when the file cannot be opened or holds
    no decodable frame; damage part-way is reported in the result.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    fps = camera.detect_fps if detect_fps is None else detect_fps
    with VideoReader(video) as reader:
        result = ReplayResult(video=Path(video), frame_wh=reader.frame_wh)
        origin = reader.time_origin()
        pipeline = CameraPipeline(
            site, camera, detector, frame_rate=fps or reader.fps, config_path=config_path
        )
        seed = f"{site.site.id}/{camera.id}/{Path(video).name}"
        writer = (
            Mp4Writer(out_dir / ANNOTATED_VIDEO, reader.fps, reader.frame_wh) if annotate else None
        )
        with EventRecorder(out_dir, id_seed=seed) as recorder:
            media = EventMediaMaker(site, camera, pipeline.faces)
            outputs = _Outputs(FolderSink(recorder, media), writer, camera)
            decoded = _decoded(reader, FrameSampler(fps), annotate, max_seconds)
            frames = (
                Prefetch(decoded, depth=decode_ahead, name="replay-decode")
                if decode_ahead > 0
                else _Inline(decoded)
            )
            # The motion gate decides frame by frame from the one before: no detecting ahead.
            items = _with_detections(frames, detector, result, detect_ahead=pipeline.gate is None)
            try:
                last_now = _loop(items, pipeline, outputs, result, origin, on_progress)
            finally:
                items.close()  # frames still in a pool are dropped before the reader goes
                if isinstance(frames, Prefetch):
                    frames.close()  # the thread is done with the reader before it closes
            result.decode_s, result.decode_busy_s = frames.wait_s, frames.busy_s
            outputs.ended(pipeline.finish(last_now), last_now)
            if writer is not None:
                writer.close()
            result.messages = recorder.messages
        result.stopped_at_s, result.stop_reason = reader.stopped_at_s, reader.stop_reason
    if reader.frames_read == 0:
        raise VideoError(f"no frame could be decoded from {video} ({reader.stop_reason})")
    result.wall_s = time.perf_counter() - started
    return result


def _with_detections(
    frames: Iterable[tuple[VideoFrame, bool]],
    detector: FrameDetector,
    result: ReplayResult,
    *,
    detect_ahead: bool = True,
) -> Generator[tuple[VideoFrame, bool, Detections | None]]:
    """(frame, take, detections): computed ahead by a pool, else None (the pipeline detects)."""
    if not detect_ahead or not isinstance(detector, DetectorPool):
        for frame, take in frames:
            yield frame, take, None
        return
    result.detect_sessions = detector.sessions
    ahead = DetectionsAhead(
        detector,
        (((frame, take), frame.bgr() if take else None) for frame, take in frames),
        depth=detector.sessions * DETECT_AHEAD_PER_SESSION,
    )
    try:
        for (frame, take), detections in ahead:
            yield frame, take, detections
    finally:
        result.stage_s["detect"] += ahead.wait_s


def _loop(
    frames: Iterable[tuple[VideoFrame, bool, Detections | None]],
    pipeline: CameraPipeline,
    outputs: _Outputs,
    result: ReplayResult,
    origin: datetime,
    on_progress: ProgressCallback | None,
) -> datetime:
    now = origin
    for frame, take, detections in frames:
        now = origin + timedelta(seconds=frame.time_s)
        result.frames_read += 1
        result.video_s = frame.time_s
        if take:
            image = frame.bgr()
            processed = pipeline.process(image, now, detections)
            _count(result, processed)
            output_started = time.perf_counter()
            outputs.detected(image, processed)
            result.output_s += time.perf_counter() - output_started
        output_started = time.perf_counter()
        outputs.frame(frame)
        result.output_s += time.perf_counter() - output_started
        if on_progress is not None:
            on_progress(frame.time_s)
    return now


def _count(result: ReplayResult, processed: FrameResult) -> None:
    result.frames_detected += 1
    if processed.gated:
        result.frames_gated += 1
    for stage, seconds in processed.timings_s.items():
        result.stage_s[stage] = result.stage_s.get(stage, 0.0) + seconds
    if processed.persons.tracker_id is not None:
        result.track_ids.update(int(t) for t in processed.persons.tracker_id)


def events_by_rule(result: ReplayResult) -> dict[tuple[str, str], int]:
    """Number of events per (rule, highest severity any of the event's messages had)."""
    highest: dict[object, Event] = {}
    for message in result.messages:
        known = highest.get(message.event_id)
        if known is None or message.severity.rank > known.severity.rank:
            highest[message.event_id] = message
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for event in highest.values():
        counts[(event.rule.value, event.severity.value)] += 1
    return dict(sorted(counts.items()))
