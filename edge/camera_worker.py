"""One camera of a live box: capture, clip ring, the pipeline thread, its event sink.

A capture thread keeps the newest frame (reconnecting) and feeds the clip ring; a
processing thread runs the camera's pipeline at ``detect_fps`` on the newest frame and
hands each event to the camera's :class:`~sitewatch.edge.event_sink.OutboxSink`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sitewatch.contract.events import Event
from sitewatch.edge.capture import CaptureThread, CaptureTuning, Frame
from sitewatch.edge.clips import ClipRecorder, FrameRing
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.detections import Detections
from sitewatch.edge.edge_tuning import EdgeTuning
from sitewatch.edge.event_sink import ClipWindow, EventMediaMaker, EventSink, OutboxSink
from sitewatch.edge.faces.clip_privacy import clip_blur_factory
from sitewatch.edge.metrics import EdgeMetrics
from sitewatch.edge.outbox import Outbox
from sitewatch.edge.pipeline_factory import Pipeline

if TYPE_CHECKING:
    from sitewatch.edge.alerts import BoxAlerts

logger = logging.getLogger(__name__)


class CameraHost(Protocol):
    """What a camera worker uses of the box that runs it (:class:`EdgeRunner`)."""

    site: SiteConfig
    tuning: EdgeTuning
    base_dir: Path | None
    stop_event: threading.Event
    metrics: EdgeMetrics
    outbox: Outbox
    encoder: ThreadPoolExecutor
    #: MQTT / webhook alerts straight from the box (None: none configured).
    alerts: BoxAlerts | None

    def clip_done(self, event_id: str, path: Path | None) -> None: ...


class CameraWorker:
    """Capture + ring + clip recorder + pipeline thread of one camera."""

    def __init__(self, runner: CameraHost, camera: CameraConfig, pipeline: Pipeline) -> None:
        self.runner = runner
        self.camera = camera
        self.pipeline = pipeline
        tuning, site = runner.tuning, runner.site
        self.ring = FrameRing(
            max_age_s=_ring_age_s(site),
            max_bytes=tuning.ring_max_bytes,
            fps=tuning.clip_fps,
            max_width=tuning.clip_max_width,
        )
        self.recorder = ClipRecorder(
            self.ring,
            runner.encoder,
            fps=tuning.clip_fps,
            filter_factory=clip_blur_factory(site, pipeline.faces),  # unknown faces in clips
        )
        self.sink: EventSink = OutboxSink(
            runner.outbox,
            EventMediaMaker(site, camera, pipeline.faces),
            self.recorder,
            ClipWindow(site.clips.pre_s, site.clips.post_s),
            runner.clip_done,
        )
        self.capture = CaptureThread(
            camera.id,
            camera.source,
            loop=camera.loop,
            base_dir=runner.base_dir,
            tuning=CaptureTuning(
                tuning.open_timeout_s,
                tuning.read_timeout_s,
                tuning.reconnect_min_s,
                tuning.reconnect_max_s,
            ),
            on_frame=self._on_frame,
        )
        self.thread = threading.Thread(target=self._loop, name=f"detect-{camera.id}", daemon=True)
        self.detect_fps = 0.0
        self._detect_times: list[float] = []

    def start(self) -> None:
        self.capture.start()
        self.thread.start()

    def _on_frame(self, frame: Frame) -> None:
        if self.ring.wants(frame.captured_at):
            self.ring.add(frame.captured_at, frame.bgr())

    def _loop(self) -> None:
        stop = self.runner.stop_event
        interval_s = 1.0 / self.camera.detect_fps
        next_due = time.monotonic()
        last_seq = 0
        while not stop.is_set():
            if self.capture.slot.wait_newer(last_seq, timeout_s=0.5) is None:
                continue
            if stop.wait(max(0.0, next_due - time.monotonic())):
                break
            frame = self.capture.slot.wait_newer(last_seq, timeout_s=0.0)
            if frame is None:
                continue
            last_seq = frame.seq
            next_due = max(next_due + interval_s, time.monotonic() - interval_s)
            try:
                self._process(frame)
            except Exception:  # one bad frame must not stop the camera
                logger.exception("camera %s: processing a frame failed", self.camera.id)

    def _process(self, frame: Frame) -> None:
        image = frame.bgr()
        started = time.perf_counter()
        result = self.pipeline.process(image, frame.captured_at)
        metrics = self.runner.metrics
        metrics.inference_s.labels(self.camera.id).observe(time.perf_counter() - started)
        for stage, seconds in result.timings_s.items():
            metrics.stage_s.labels(self.camera.id, stage).observe(seconds)
        self._count_detect()
        for event in result.events:
            self.handle_event(event, image, result.persons, frame.captured_at)

    def _count_detect(self) -> None:
        now = time.monotonic()
        self._detect_times = [t for t in self._detect_times if now - t <= 2.0] + [now]
        span = now - self._detect_times[0]
        self.detect_fps = (len(self._detect_times) - 1) / span if span > 0 else 0.0

    def handle_event(
        self, event: Event, image: np.ndarray | None, persons: Detections | None, at: datetime
    ) -> None:
        """Count the event raised at ``at``, alert (never blocks), hand it to the sink (outbox)."""
        self.runner.metrics.events.labels(self.camera.id, event.rule.value, event.phase.value).inc()
        if self.runner.alerts is not None:
            self.runner.alerts.publish(event)
        self.sink.handle(event, image, persons, at)

    def shutdown(self, timeout_s: float) -> None:
        """After stop_event: join threads, end open events, finish clips."""
        self.capture.stop()
        self.thread.join(timeout_s)
        now = datetime.now(UTC)
        try:
            for event in self.pipeline.finish(now):
                self.handle_event(event, None, None, now)
        except Exception:
            logger.exception("camera %s: ending open events failed", self.camera.id)
        self.recorder.flush(timeout_s=max(timeout_s, 30.0))
        self.capture.join(min(timeout_s, 2.0))


def _ring_age_s(site: SiteConfig) -> float:
    rules = site.rules
    waits = [rules.no_helmet, rules.fall_edge, rules.restricted_zone, rules.party_member_helmet]
    longest = max((r.min_duration_s for r in waits if r.enabled), default=0.0)
    return site.clips.pre_s + min(longest, 20.0) + 2.0
