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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from edge.annotate import FrameAnnotator
from edge.config import CameraConfig, PersonRuleConfig, RulesConfig, SiteConfig, SiteInfo
from edge.detections import Detections
from edge.detector import Detector
from edge.events import Event, EventPhase
from edge.faces.stage import snapshot_blur
from edge.pipeline import STAGES, CameraPipeline, FrameResult
from edge.snapshots import EventRecorder
from edge.video import FrameSampler, Mp4Writer, VideoError, VideoFrame, VideoReader

logger = logging.getLogger(__name__)

ANNOTATED_VIDEO = "annotated.mp4"
ProgressCallback = Callable[[float], None]


def default_site_config(video: Path) -> SiteConfig:
    """The site used without --config: one camera, no zones.

    Only the helmet rules can find hazards without zones, so the ``person`` rule is on:
    the replay reports every person it tracks (one event each, with a snapshot).
    """
    return SiteConfig(
        site=SiteInfo(id="replay", name="replay"),
        cameras=[CameraConfig(id="camera", source=str(video))],
        rules=RulesConfig(person=PersonRuleConfig(enabled=True)),
    )


@dataclass
class ReplayResult:
    video: Path
    frame_wh: tuple[int, int]
    frames_read: int = 0
    frames_detected: int = 0
    video_s: float = 0.0  # time of the last frame processed
    wall_s: float = 0.0
    decode_s: float = 0.0  # demuxing, decoding, pixel conversion
    output_s: float = 0.0  # drawing, JPEG and MP4 encoding
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
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


def _timed_frames(reader: VideoReader, result: ReplayResult) -> Iterator[VideoFrame]:
    """The reader's frames, adding the time spent decoding them to ``result.decode_s``."""
    frames = reader.frames()
    while True:
        started = time.perf_counter()
        frame = next(frames, None)
        result.decode_s += time.perf_counter() - started
        if frame is None:
            return
        yield frame


class _Outputs:
    """Snapshots, events.jsonl and the optional MP4 for one replay."""

    def __init__(
        self,
        recorder: EventRecorder,
        writer: Mp4Writer | None,
        camera: CameraConfig,
        blur: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.blur = blur  # privacy: unknown faces in snapshots
        self.recorder = recorder
        self.writer = writer
        self.annotator = FrameAnnotator(zones=camera.zones)
        self.persons: Detections = Detections.empty()

    def detected(self, image: np.ndarray, frame: FrameResult) -> None:
        self.persons = frame.persons
        self.record(frame.events, image)

    def record(self, events: list[Event], image: np.ndarray | None) -> None:
        for event in events:
            snapshot = None
            if image is not None and event.phase is EventPhase.START:
                private = self.blur(image) if self.blur is not None else image
                snapshot = self.annotator.draw(private, self.persons, highlight=event)
            self.recorder.record(event, snapshot)

    def frame(self, frame: VideoFrame) -> None:
        if self.writer is not None:
            self.writer.write(self.annotator.draw(frame.bgr(), self.persons), frame.time_s)


def run_replay(
    video: Path,
    site: SiteConfig,
    camera: CameraConfig,
    detector: Detector,
    out_dir: Path,
    *,
    detect_fps: float | None = None,
    annotate: bool = False,
    max_seconds: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> ReplayResult:
    """Replay ``video`` and write events.jsonl, snapshots (and annotated.mp4) to out_dir.

    ``detect_fps`` None uses the camera's; 0 detects every frame. Raises VideoError when
    the file cannot be opened or holds no decodable frame; damage part-way is reported in
    the result.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    fps = camera.detect_fps if detect_fps is None else detect_fps
    with VideoReader(video) as reader:
        result = ReplayResult(video=Path(video), frame_wh=reader.frame_wh)
        origin = reader.time_origin()
        pipeline = CameraPipeline(site, camera, detector, frame_rate=fps or reader.fps)
        seed = f"{site.site.id}/{camera.id}/{Path(video).name}"
        writer = (
            Mp4Writer(out_dir / ANNOTATED_VIDEO, reader.fps, reader.frame_wh) if annotate else None
        )
        with EventRecorder(out_dir, id_seed=seed) as recorder:
            outputs = _Outputs(recorder, writer, camera, snapshot_blur(site, pipeline.faces))
            last_now = _loop(
                reader,
                pipeline,
                outputs,
                result,
                origin,
                FrameSampler(fps),
                max_seconds,
                on_progress,
            )
            outputs.record(pipeline.finish(last_now), None)
            if writer is not None:
                writer.close()
            result.messages = recorder.messages
        result.stopped_at_s, result.stop_reason = reader.stopped_at_s, reader.stop_reason
    if reader.frames_read == 0:
        raise VideoError(f"no frame could be decoded from {video} ({reader.stop_reason})")
    result.wall_s = time.perf_counter() - started
    return result


def _loop(
    reader: VideoReader,
    pipeline: CameraPipeline,
    outputs: _Outputs,
    result: ReplayResult,
    origin: datetime,
    sampler: FrameSampler,
    max_seconds: float | None,
    on_progress: ProgressCallback | None,
) -> datetime:
    now = origin
    for frame in _timed_frames(reader, result):
        if max_seconds is not None and frame.time_s > max_seconds:
            break
        now = origin + timedelta(seconds=frame.time_s)
        result.frames_read += 1
        result.video_s = frame.time_s
        if sampler.take(frame.time_s):
            decode_started = time.perf_counter()
            image = frame.bgr()
            result.decode_s += time.perf_counter() - decode_started
            processed = pipeline.process(image, now)
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
