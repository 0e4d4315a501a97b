"""The live edge box: one process watching every camera of a site.

Per camera: a capture thread (newest frame only, reconnects, feeds the clip ring) and a
processing thread that runs the camera's pipeline at ``detect_fps`` on the newest frame
and turns events into outbox items (event JSON, annotated + clean snapshots at once, the
clip when its post-roll has been recorded). One uploader pushes the outbox, one thread
refreshes the metrics. A camera that fails only makes its own threads wait and retry.

Tunables that do not belong in the site config (timeouts, backoff, heartbeat period,
clip frame rate) are read from ``SITEWATCH_EDGE_*`` environment variables, see
:class:`EdgeTuning`; tests use them to run with small timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from edge.capture import CameraState, CaptureThread, CaptureTuning, Frame
from edge.clips import ClipRecorder, FrameRing
from edge.config import CameraConfig, SiteConfig
from edge.events import Event, EventPhase
from edge.metrics import EdgeMetrics
from edge.outbox import Outbox, OutboxItem
from edge.snapshots import encode_jpeg
from edge.uploader import Outcome, Uploader, UploadTuning, resolve_token

if TYPE_CHECKING:
    from edge.faces.site_register import SiteRegister

logger = logging.getLogger(__name__)


class EdgeTuning(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SITEWATCH_EDGE_", extra="ignore")

    open_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    retry_min_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=30.0, gt=0)
    #: On SIGTERM, how long to keep uploading before leaving the rest in the outbox.
    shutdown_flush_s: float = Field(default=10.0, ge=0)
    clip_fps: float = Field(default=10.0, gt=0, le=30)
    clip_max_width: int = Field(default=1280, ge=64)
    ring_max_bytes: int = Field(default=48 * 1024**2, gt=0)
    encoder_threads: int = Field(default=1, ge=1, le=8)
    #: /metrics port (0 = any free port, None = no metrics server).
    metrics_port: int | None = Field(default=9108, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"


class Pipeline(Protocol):
    """What the runner needs of edge.pipeline.CameraPipeline."""

    def process(self, frame_bgr: Any, now: datetime) -> Any: ...

    def finish(self, now: datetime) -> list[Event]: ...


PipelineFactory = Callable[[SiteConfig, CameraConfig], Pipeline]


def default_pipeline_factory(
    config_path: Path | None, face_register: SiteRegister | None = None
) -> PipelineFactory:
    """Real pipelines sharing one detector (one ONNX session for every camera, unless
    model.sessions asks for a pool: then a camera's thread borrows the next idle one).

    With ``face_register`` (faces on), each camera's face stage starts from its register
    and the party_member_helmet rule asks it for the party members at every frame.
    """
    from edge.detector_pool import FrameDetector, load_detector
    from edge.faces.stage import FaceStage
    from edge.pipeline import CameraPipeline

    detectors: dict[str, FrameDetector] = {}

    def build(site: SiteConfig, camera: CameraConfig) -> Pipeline:
        if "model" not in detectors:
            detectors["model"] = load_detector(site.model, config_path, concurrent_callers=True)
        faces = None
        if site.faces.enabled and face_register is not None:
            faces = FaceStage(site.faces, register=face_register.register, config_path=config_path)
        return CameraPipeline(
            site,
            camera,
            detectors["model"],
            frame_rate=camera.detect_fps,
            faces=faces,
            party_member_ids=(
                face_register.party_member_ids if face_register is not None else frozenset()
            ),
            config_path=config_path,
        )

    return build


class CameraWorker:
    """Capture + ring + clip recorder + pipeline thread of one camera."""

    def __init__(self, runner: EdgeRunner, camera: CameraConfig, pipeline: Pipeline) -> None:
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
        from edge.faces.clip_privacy import clip_blur_factory  # privacy: unknown faces in clips

        self.recorder = ClipRecorder(
            self.ring,
            runner.encoder,
            fps=tuning.clip_fps,
            filter_factory=clip_blur_factory(site, getattr(pipeline, "faces", None)),
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
        self._annotator: Any = None

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
        for stage, seconds in getattr(result, "timings_s", {}).items():
            metrics.stage_s.labels(self.camera.id, stage).observe(seconds)
        self._count_detect()
        for event in result.events:
            self.handle_event(event, image, getattr(result, "persons", None), frame.captured_at)

    def _count_detect(self) -> None:
        now = time.monotonic()
        self._detect_times = [t for t in self._detect_times if now - t <= 2.0] + [now]
        span = now - self._detect_times[0]
        self.detect_fps = (len(self._detect_times) - 1) / span if span > 0 else 0.0

    def handle_event(self, event: Event, image: Any, persons: Any, at: datetime) -> None:
        """Spool the event raised at ``at`` (a start also gets snapshots and a clip)."""
        runner = self.runner
        runner.metrics.events.labels(self.camera.id, event.rule.value, event.phase.value).inc()
        outbox, event_id = runner.outbox, str(event.event_id)
        if event.phase != EventPhase.START:
            outbox.put_event(event)
            return
        outbox.put_event(event)
        image = self._private(image)
        outbox.put_media_bytes(
            event_id, "snapshot", "snapshot.jpg", encode_jpeg(self._annotate(image, persons, event))
        )
        outbox.put_media_bytes(event_id, "snapshot_clean", "snapshot_clean.jpg", encode_jpeg(image))
        self._put_face(event)
        clips = runner.site.clips
        self.recorder.request(
            event_id,
            start=event.started_at - timedelta(seconds=clips.pre_s),
            end=at + timedelta(seconds=clips.post_s),
            path=outbox.tmp_path("clip.mp4"),
            on_done=runner.clip_done,
        )

    def _private(self, image: Any) -> Any:
        """``image`` with unknown faces blurred when faces and privacy are on."""
        from edge.faces.stage import snapshot_blur

        blur = snapshot_blur(self.runner.site, getattr(self.pipeline, "faces", None))
        return image if blur is None else blur(image)

    def _put_face(self, event: Event) -> None:
        """The track's best face thumbnail (media kind "face"), when it may leave the box."""
        from edge.faces.stage import shareable_thumbnail

        faces = getattr(self.pipeline, "faces", None)
        thumbnail = shareable_thumbnail(self.runner.site, faces, event.track_id)
        if thumbnail is not None:
            self.runner.outbox.put_media_bytes(
                str(event.event_id), "face", "face.jpg", encode_jpeg(thumbnail)
            )

    def _annotate(self, image: Any, persons: Any, event: Event) -> Any:
        if persons is None:
            return image
        if self._annotator is None:
            from edge.annotate import FrameAnnotator

            self._annotator = FrameAnnotator()
        return self._annotator.draw(image, persons, highlight=event)

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


class EdgeRunner:
    """Builds and runs every camera of a site; ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        config_path: Path | None = None,
        tuning: EdgeTuning | None = None,
        pipeline_factory: PipelineFactory | None = None,
    ) -> None:
        self.site = site
        self.config_path = config_path
        self.base_dir = config_path.parent if config_path else None
        self.tuning = tuning or EdgeTuning()
        self.stop_event = threading.Event()
        self.metrics = EdgeMetrics()
        spool = Path(site.outbox.path).expanduser()
        if not spool.is_absolute() and config_path is not None:
            spool = config_path.parent / spool  # a relative spool lies beside the config
        self.outbox = Outbox(spool, max_bytes=site.outbox.max_bytes, on_drop=self._on_drop)
        self.encoder = ThreadPoolExecutor(self.tuning.encoder_threads, "clip-encoder")
        self.uploader = self._make_uploader()  # a token problem shows before the model loads
        #: Local + server face register (faces on), swapped into every camera's face stage.
        self.face_register = self._make_face_register()
        factory = pipeline_factory or default_pipeline_factory(config_path, self.face_register)
        self.workers = [
            CameraWorker(self, cam, factory(site, cam)) for cam in site.cameras if cam.enabled
        ]
        if self.face_register is not None:
            for worker in self.workers:
                stage = getattr(worker.pipeline, "faces", None)
                if stage is not None and hasattr(stage, "replace_register"):
                    self.face_register.subscribe(stage.replace_register)
        self.metrics_port: int | None = None
        self._skipped_seen: dict[str, int] = {}

    def _make_face_register(self) -> SiteRegister | None:
        """Faces on: the local register, plus the server's (synced) when there is a server."""
        faces = self.site.faces
        if not faces.enabled:
            return None
        from edge.config import ConfigError, resolve_path
        from edge.faces.site_register import SYNCED_REGISTER_NAME, SiteRegister
        from edge.faces.sync import RegisterSync

        local = (
            resolve_path(faces.register_path, config_path=self.config_path)
            if faces.register_path
            else None
        )
        server = self.site.server
        sync = None
        if server is not None:
            sync = RegisterSync(
                server.url,
                resolve_token(server, config_path=self.config_path),
                self.outbox.root / SYNCED_REGISTER_NAME,
                timeout_s=server.timeout_s,
            )
        try:
            return SiteRegister(
                local_path=local, sync=sync, interval_s=faces.register_sync_interval_s
            )
        except ValueError as exc:  # an unreadable register file
            if sync is not None:
                sync.close()
            source = str(self.config_path or "<config>")
            raise ConfigError(source, [f"faces.register_path: {exc}"]) from None

    def _make_uploader(self) -> Uploader | None:
        server = self.site.server
        if server is None:
            logger.warning(
                "no server: in the config; events stay in the outbox %s", self.outbox.root
            )
            return None
        return Uploader(
            self.outbox,
            base_url=server.url,
            token=resolve_token(server, config_path=self.config_path),
            timeout_s=server.timeout_s,
            tuning=UploadTuning(
                self.tuning.retry_min_s, self.tuning.retry_max_s, self.tuning.heartbeat_s
            ),
            heartbeat_body=self.heartbeat_body,
            on_result=self._on_upload,
        )

    def start(self) -> None:
        logger.info(
            "edge starting: site %s, %d camera(s), outbox %s (%d items waiting)",
            self.site.site.id,
            len(self.workers),
            self.outbox.root,
            self.outbox.depth(),
        )
        if self.tuning.metrics_port is not None:
            self.metrics_port = self.metrics.serve(
                self.tuning.metrics_port, self.tuning.metrics_host
            )
            logger.info(
                "metrics on http://%s:%d/metrics", self.tuning.metrics_host, self.metrics_port
            )
        if self.face_register is not None:
            self.face_register.start()  # first sync before the cameras; a failure is logged
        for worker in self.workers:
            worker.start()
        if self.uploader is not None:
            self.uploader.start()

    def run(self) -> None:
        """Start, then refresh metrics until ``stop()`` (call from the main thread)."""
        self.start()
        while not self.stop_event.wait(1.0):
            self.refresh_metrics()
        self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self) -> None:
        self.stop_event.set()
        logger.info("edge stopping: finishing clips, flushing the outbox")
        if self.face_register is not None:
            self.face_register.stop(timeout_s=self._sync_timeout_s() + 1.0)
        for worker in self.workers:
            worker.shutdown(timeout_s=5.0)
        self.encoder.shutdown(wait=True)
        if self.uploader is not None:
            self.uploader.heartbeat()  # tell the server the cameras are offline now
            flushed = self.uploader.drain(self.tuning.shutdown_flush_s)
            self.uploader.stop()
            if not flushed:
                logger.info("%d item(s) left in the outbox for the next start", self.outbox.depth())
        self.refresh_metrics()
        self.outbox.close()
        self.metrics.close()

    def _sync_timeout_s(self) -> float:
        return self.site.server.timeout_s if self.site.server is not None else 0.0

    def clip_done(self, event_id: str, path: Path | None) -> None:
        if path is None:
            self.metrics.clips.labels("failed").inc()
            return
        self.outbox.put_media_file(event_id, "clip", path, "clip.mp4")
        self.metrics.clips.labels("written").inc()

    def camera_states(self) -> list[CameraState]:
        return [w.capture.state for w in self.workers]

    def heartbeat_body(self) -> dict[str, Any]:
        from sitewatch import __version__

        cameras = [
            {
                "camera_id": s.camera_id,
                "online": s.online,
                "since": s.since.isoformat(),
                "fps": round(s.fps, 2),
            }
            for s in self.camera_states()
        ]
        return {"cameras": cameras, "queue_depth": self.outbox.depth(), "version": __version__}

    def refresh_metrics(self) -> None:
        m = self.metrics
        online = 0
        for worker in self.workers:
            cam, state = worker.camera.id, worker.capture.state
            online += state.online
            m.camera_online.labels(cam).set(int(state.online))
            m.capture_fps.labels(cam).set(state.fps)
            m.detect_fps.labels(cam).set(worker.detect_fps if state.online else 0.0)
            skipped = worker.capture.slot.overwritten
            m.frames_skipped.labels(cam).inc(skipped - self._skipped_seen.get(cam, 0))
            self._skipped_seen[cam] = skipped
            key = f"reconnects:{cam}"
            m.reconnects.labels(cam).inc(state.reconnects - self._skipped_seen.get(key, 0))
            self._skipped_seen[key] = state.reconnects
        m.cameras_online.set(online)
        if self.face_register is not None:
            m.face_register_version.set(self.face_register.version)
            m.face_register_workers.set(len(self.face_register.register))
            failures = self.face_register.failures
            m.face_register_sync_failures.inc(failures - self._skipped_seen.get("sync", 0))
            self._skipped_seen["sync"] = failures
        m.outbox_items.set(self.outbox.depth())
        m.outbox_bytes.set(self.outbox.used_bytes())

    def _on_drop(self, item: OutboxItem, reason: str) -> None:
        self.metrics.dropped.labels(item.kind, reason).inc()

    def _on_upload(self, item: OutboxItem, outcome: str) -> None:
        self.metrics.uploads.labels(item.kind, outcome).inc()
        if (
            outcome == Outcome.SENT
            and item.kind == "event"
            and '"phase":"start"' in (item.body or "")
        ):
            self.metrics.ack_latency_s.observe(max(time.time() - item.created_at, 0.0))
