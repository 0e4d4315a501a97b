"""One camera of a live box: capture, clip ring, the pipeline thread, its event sink.

A capture thread keeps the newest frame (reconnecting) and feeds the clip ring; a
processing thread runs the camera's pipeline at ``detect_fps`` on the newest frame and
hands each event to the camera's :class:`~sitewatch.edge.event_sink.OutboxSink`.

Every message of an event carries the server zones version the camera judged it with
(``zones_version``, None on the YAML zones) and the person's boxes over the clip
(``track``, :class:`~sitewatch.edge.track_boxes.TrackRecorder`). New zones from the
server (:meth:`CameraWorker.set_site_zones`, any thread) wait for the processing thread,
which swaps them in between two frames (:meth:`CameraPipeline.replace_zones`). The worker
also keeps the last detected frame and its people for the camera's picture
(:meth:`CameraWorker.picture`, called from the picture thread).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from sitewatch.contract.events import Event, EventPhase
from sitewatch.edge.capture import CaptureThread, CaptureTuning, Frame
from sitewatch.edge.clips import ClipRecorder, FrameRing
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.detections import Detections
from sitewatch.edge.edge_tuning import EdgeTuning
from sitewatch.edge.event_sink import ClipWindow, EventMediaMaker, EventSink, OutboxSink
from sitewatch.edge.faces.clip_privacy import clip_blur_factory
from sitewatch.edge.metrics import EdgeMetrics
from sitewatch.edge.mp4 import FrameFilter
from sitewatch.edge.outbox import Outbox
from sitewatch.edge.pipeline_factory import Pipeline
from sitewatch.edge.site_zones import camera_zones
from sitewatch.edge.snapshots import encode_jpeg
from sitewatch.edge.track_boxes import TrackRecorder
from sitewatch.zones.config import CameraZones

if TYPE_CHECKING:
    from sitewatch.contract.site_config import SiteZones
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
    """Capture + ring + clip recorder + pipeline thread of one camera.

    ``camera`` is the camera as its YAML says; ``zones`` / ``zones_version`` the server
    zones its ``pipeline`` was built with (None: the YAML zones).
    """

    def __init__(
        self,
        runner: CameraHost,
        camera: CameraConfig,
        pipeline: Pipeline,
        *,
        zones: CameraZones | None = None,
        zones_version: int | None = None,
    ) -> None:
        self.runner = runner
        self.camera = camera
        self.pipeline = pipeline
        tuning, site = runner.tuning, runner.site
        #: The zones the camera judges with now, and their server version (None: YAML).
        self.zones = zones if zones is not None else camera.zones
        self.zones_version = zones_version
        self._zones_lock = threading.Lock()
        self._pending_zones: tuple[CameraZones, int | None] | None = None
        self._event_versions: dict[str, int | None] = {}
        self.tracks = TrackRecorder(
            pre_s=site.clips.pre_s, post_s=site.clips.post_s, history_s=_ring_age_s(site)
        )
        #: Wall-clock time of the last frame from the camera, and the frames' size.
        self.last_frame_at: datetime | None = None
        self.frame_wh: tuple[int, int] | None = None
        self._picture_lock = threading.Lock()
        #: The last detected frame and its people ([x1, y1, x2, y2] normalised).
        self._picture: tuple[np.ndarray, list[list[float]]] | None = None
        self._picture_blur_factory = clip_blur_factory(site, pipeline.faces)
        self._picture_blur: FrameFilter | None = None
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
            EventMediaMaker(site, camera.model_copy(update={"zones": self.zones}), pipeline.faces),
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

    @property
    def camera_id(self) -> str:
        return self.camera.id

    def start(self) -> None:
        self.capture.start()
        self.thread.start()

    def _on_frame(self, frame: Frame) -> None:
        self.last_frame_at = frame.captured_at
        if self.ring.wants(frame.captured_at):
            image = frame.bgr()
            self.frame_wh = (int(image.shape[1]), int(image.shape[0]))
            self.ring.add(frame.captured_at, image)

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
        self._swap_zones(frame.captured_at)
        image = frame.bgr()
        started = time.perf_counter()
        result = self.pipeline.process(image, frame.captured_at)
        self.frame_wh = result.frame_wh
        self._keep_picture(image, result.persons, result.frame_wh)
        self.tracks.observe(result.persons, frame.captured_at)
        metrics = self.runner.metrics
        metrics.inference_s.labels(self.camera.id).observe(time.perf_counter() - started)
        for stage, seconds in result.timings_s.items():
            metrics.stage_s.labels(self.camera.id, stage).observe(seconds)
        if result.gated:
            metrics.frames_gated.labels(self.camera.id).inc()
        else:
            metrics.model_calls.labels(self.camera.id).inc()
        self._count_detect()
        for event in result.events:
            self.handle_event(event, image, result.persons, frame.captured_at)
        for message in self.tracks.due(frame.captured_at):  # the complete track, no alert
            self.sink.handle(message, None, None, frame.captured_at)

    # ---- zones from the server -----------------------------------------------------------

    def set_site_zones(self, site_zones: SiteZones) -> None:
        """The server's zones (any thread): this camera's, or its YAML zones when the
        server does not list it, from the next frame on."""
        zones, version = camera_zones(self.camera, site_zones)
        with self._zones_lock:
            self._pending_zones = (zones, version)

    def _swap_zones(self, now: datetime) -> None:
        """Between two frames, in the processing thread: apply pending zones."""
        with self._zones_lock:
            pending, self._pending_zones = self._pending_zones, None
        if pending is None:
            return
        zones, version = pending
        if version == self.zones_version and zones == self.zones:
            return
        changed = zones != self.zones
        for event in self.pipeline.replace_zones(zones, now):  # ends changed zone rules' events
            self.handle_event(event, None, None, now)
        before = self.zones_version
        self.zones, self.zones_version = zones, version
        self._media_zones(zones)
        logger.info(
            "camera %s: zones %s -> %s%s",
            self.camera.id,
            "YAML" if before is None else f"server v{before}",
            "YAML" if version is None else f"server v{version}",
            "" if changed else " (same zones)",
        )

    def _media_zones(self, zones: CameraZones) -> None:
        media = getattr(self.sink, "media", None)
        if media is not None:
            media.set_zones(zones)

    # ---- the camera's picture ------------------------------------------------------------

    def _keep_picture(
        self, image: np.ndarray, persons: Detections, frame_wh: tuple[int, int]
    ) -> None:
        width, height = frame_wh
        boxes = [
            [
                round(min(max(float(x1) / width, 0.0), 1.0), 4),
                round(min(max(float(y1) / height, 0.0), 1.0), 4),
                round(min(max(float(x2) / width, 0.0), 1.0), 4),
                round(min(max(float(y2) / height, 0.0), 1.0), 4),
            ]
            for x1, y1, x2, y2 in np.asarray(persons.xyxy, dtype=np.float64).reshape(-1, 4)
        ]
        with self._picture_lock:
            self._picture = (image, boxes)

    def picture(self, *, max_side: int = 1280, quality: int = 80) -> tuple[bytes, str] | None:
        """The last detected frame as a JPEG (longest side at most ``max_side``, unknown
        faces blurred where privacy asks) and its people as JSON; None before the first
        frame. Called from one picture thread (the blur's models live in it)."""
        with self._picture_lock:
            held = self._picture
        if held is None:
            return None
        image, boxes = held
        height, width = image.shape[:2]
        scale = min(1.0, max_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if self._picture_blur_factory is not None:
            if self._picture_blur is None:
                self._picture_blur = self._picture_blur_factory()
            image = self._picture_blur(image)
        return encode_jpeg(image, quality), json.dumps(boxes)

    def _count_detect(self) -> None:
        now = time.monotonic()
        self._detect_times = [t for t in self._detect_times if now - t <= 2.0] + [now]
        span = now - self._detect_times[0]
        self.detect_fps = (len(self._detect_times) - 1) / span if span > 0 else 0.0

    def handle_event(
        self, event: Event, image: np.ndarray | None, persons: Detections | None, at: datetime
    ) -> None:
        """Count the event raised at ``at``, alert (never blocks), hand it to the sink (outbox).

        The event gets the zones version of its start and its track boxes so far."""
        event = self._stamp(event, at)
        self.runner.metrics.events.labels(self.camera.id, event.rule.value, event.phase.value).inc()
        if self.runner.alerts is not None:
            self.runner.alerts.publish(event)
        self.sink.handle(event, image, persons, at)

    def _stamp(self, event: Event, at: datetime) -> Event:
        key = str(event.event_id)
        if event.phase is EventPhase.START or key not in self._event_versions:
            self._event_versions[key] = self.zones_version
        version = self._event_versions[key]
        if event.phase is EventPhase.END:
            del self._event_versions[key]
        if event.zones_version != version:
            event = event.model_copy(update={"zones_version": version})
        return self.tracks.attach(event, at)

    def shutdown(self, timeout_s: float) -> None:
        """After stop_event: join threads, end open events, finish clips."""
        self.capture.stop()
        self.thread.join(timeout_s)
        now = datetime.now(UTC)
        try:
            for event in self.pipeline.finish(now):
                self.handle_event(event, None, None, now)
            for message in self.tracks.flush():
                self.sink.handle(message, None, None, now)
        except Exception:
            logger.exception("camera %s: ending open events failed", self.camera.id)
        self.recorder.flush(timeout_s=max(timeout_s, 30.0))
        self.capture.join(min(timeout_s, 2.0))


def _ring_age_s(site: SiteConfig) -> float:
    rules = site.rules
    waits = [rules.no_helmet, rules.fall_edge, rules.restricted_zone, rules.party_member_helmet]
    longest = max((r.min_duration_s for r in waits if r.enabled), default=0.0)
    return site.clips.pre_s + min(longest, 20.0) + 2.0
