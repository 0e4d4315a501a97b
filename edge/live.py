"""The live edge box: one process watching every camera of a site.

Per camera a :class:`~sitewatch.edge.camera_worker.CameraWorker` (capture, clip ring,
pipeline thread, outbox sink). One uploader pushes the outbox and sends heartbeats, one
thread refreshes the metrics. With a server: the zones it manages are pulled and swapped
into the cameras (:mod:`edge.site_zones`), and each camera's picture is sent
(:mod:`edge.pictures`). A camera that fails only makes its own threads wait and retry.
Tunables that do not belong in the site config are :class:`~sitewatch.edge.edge_tuning.EdgeTuning`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitewatch.contract.heartbeat import CameraStatus, Heartbeat, HeartbeatReply
from sitewatch.edge.alerts import BoxAlerts, make_alerts
from sitewatch.edge.camera_worker import CameraWorker
from sitewatch.edge.capture import CameraState
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.edge_tuning import EdgeTuning
from sitewatch.edge.metrics import EdgeMetrics
from sitewatch.edge.outbox import Outbox, OutboxItem
from sitewatch.edge.overload import is_behind
from sitewatch.edge.pictures import PictureSender
from sitewatch.edge.pipeline_factory import PipelineFactory, default_pipeline_factory
from sitewatch.edge.site_zones import SITE_ZONES_NAME, ZonesSync, camera_zones
from sitewatch.edge.uploader import Outcome, Uploader, UploadTuning, resolve_token

if TYPE_CHECKING:
    from sitewatch.edge.faces.site_register import SiteRegister

logger = logging.getLogger(__name__)

__all__ = ["EdgeRunner", "EdgeTuning", "default_pipeline_factory"]


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
        self.alerts: BoxAlerts | None = make_alerts(site, config_path=config_path)
        #: Local + server face register (faces on), swapped into every camera's face stage.
        self.face_register = self._make_face_register()
        #: The zones the server manages (with a server), from the kept file until a pull.
        self.zones_sync = self._make_zones_sync()
        factory = pipeline_factory or default_pipeline_factory(config_path, self.face_register)
        self.workers = [self._make_worker(cam, factory) for cam in site.cameras if cam.enabled]
        if self.zones_sync is not None:
            for worker in self.workers:
                self.zones_sync.subscribe(worker.set_site_zones)
        self.pictures: PictureSender | None = None
        if self.uploader is not None:
            uploader = self.uploader
            self.pictures = PictureSender(
                self.workers,
                uploader.put_picture,
                interval_s=self.tuning.picture_interval_s,
                max_side=self.tuning.picture_max_side,
                quality=self.tuning.picture_quality,
                ready=lambda: uploader.last_heartbeat_ok is True,
            )
        if self.face_register is not None:
            for worker in self.workers:
                if worker.pipeline.faces is not None:
                    self.face_register.subscribe(worker.pipeline.faces.replace_register)
        self.metrics_port: int | None = None
        self._skipped_seen: dict[str, int] = {}
        #: Some camera is behind (the box says so once per change, and in its heartbeat).
        self.overloaded = False

    def _make_worker(self, camera: CameraConfig, factory: PipelineFactory) -> CameraWorker:
        """A camera built with the server's zones when the kept version lists it."""
        site_zones = self.zones_sync.zones if self.zones_sync is not None else None
        zones, version = camera_zones(camera, site_zones)
        effective = camera if version is None else camera.model_copy(update={"zones": zones})
        if version is not None:
            logger.info("camera %s: server zones v%d (kept)", camera.id, version)
        return CameraWorker(
            self, camera, factory(self.site, effective), zones=zones, zones_version=version
        )

    def _make_zones_sync(self) -> ZonesSync | None:
        server = self.site.server
        if server is None:
            return None
        return ZonesSync(
            server.url,
            resolve_token(server, config_path=self.config_path),
            self.outbox.root / SITE_ZONES_NAME,
            interval_s=server.zones_sync_interval_s,
            timeout_s=server.timeout_s,
        )

    def _make_face_register(self) -> SiteRegister | None:
        """Faces on: the local register, plus the server's (synced) when there is a server."""
        faces = self.site.faces
        if not faces.enabled:
            return None
        from sitewatch.edge.config import ConfigError, resolve_path
        from sitewatch.edge.faces.site_register import SYNCED_REGISTER_NAME, SiteRegister
        from sitewatch.edge.faces.sync import RegisterSync

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
            on_heartbeat_reply=self._on_heartbeat_reply,
        )

    def _on_heartbeat_reply(self, reply: HeartbeatReply) -> None:
        """Pull the zones when the server has another version; send wanted pictures."""
        if self.zones_sync is not None:
            self.zones_sync.note_server_version(reply.site_config_version)
        if self.pictures is not None and reply.pictures_wanted:
            self.pictures.want(reply.pictures_wanted)

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
        if self.zones_sync is not None:
            self.zones_sync.start()  # first pull before the cameras; a failure is logged
        if self.alerts is not None:
            self.alerts.start()  # connects in the background
        for worker in self.workers:
            worker.start()
        if self.uploader is not None:
            self.uploader.start()
        if self.pictures is not None:
            self.pictures.start()

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
        if self.zones_sync is not None:
            self.zones_sync.stop(timeout_s=self._sync_timeout_s() + 1.0)
        if self.pictures is not None:
            self.pictures.stop(timeout_s=self._sync_timeout_s() + 1.0)
        for worker in self.workers:
            worker.shutdown(timeout_s=5.0)
        if self.alerts is not None:
            self.alerts.stop(timeout_s=5.0)  # the ends of open events, then "offline"
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

        cameras = []
        behind = set(self.behind_cameras())
        for worker in self.workers:
            state = worker.capture.state
            width, height = worker.frame_wh or (None, None)
            cameras.append(
                CameraStatus(
                    camera_id=state.camera_id,
                    online=state.online,
                    since=state.since,
                    fps=round(state.fps, 2),
                    name=worker.camera.name,
                    width=width,
                    height=height,
                    last_frame_at=worker.last_frame_at,
                    zones_version=worker.zones_version,
                    yaml_zones=worker.camera.zones.model_dump(mode="json", exclude_none=True),
                    detect_fps=round(worker.detect_fps, 2) if state.online else None,
                    behind=state.camera_id in behind,
                )
            )
        heartbeat = Heartbeat(
            cameras=cameras,
            queue_depth=self.outbox.depth(),
            version=__version__,
            site_name=self.site.site.name,
            site_config_version=self.zones_sync.version if self.zones_sync is not None else None,
            overloaded=bool(behind),
        )
        return heartbeat.model_dump(mode="json")

    def behind_cameras(self) -> list[str]:
        """Cameras getting under 90 % of the detections they are due (edge.overload)."""
        now = datetime.now(UTC)
        return [
            worker.camera.id
            for worker in self.workers
            if worker.capture.state.online
            and is_behind(
                detect_fps_target=worker.camera.detect_fps,
                detect_fps=worker.detect_fps,
                capture_fps=worker.capture.state.fps,
                online_since=worker.capture.state.since,
                now=now,
            )
        ]

    def refresh_metrics(self) -> None:
        m = self.metrics
        online = 0
        behind = set(self.behind_cameras())
        for worker in self.workers:
            cam, state = worker.camera.id, worker.capture.state
            online += state.online
            m.camera_online.labels(cam).set(int(state.online))
            m.capture_fps.labels(cam).set(state.fps)
            m.detect_fps.labels(cam).set(worker.detect_fps if state.online else 0.0)
            m.camera_behind.labels(cam).set(int(cam in behind))
            skipped = worker.capture.slot.overwritten
            m.frames_skipped.labels(cam).inc(skipped - self._skipped_seen.get(cam, 0))
            self._skipped_seen[cam] = skipped
            key = f"reconnects:{cam}"
            m.reconnects.labels(cam).inc(state.reconnects - self._skipped_seen.get(key, 0))
            self._skipped_seen[key] = state.reconnects
        m.cameras_online.set(online)
        self._say_overload(behind)
        if self.face_register is not None:
            m.face_register_version.set(self.face_register.version)
            m.face_register_workers.set(len(self.face_register.register))
            failures = self.face_register.failures
            m.face_register_sync_failures.inc(failures - self._skipped_seen.get("sync", 0))
            self._skipped_seen["sync"] = failures
        m.observe_outbox(self.outbox)
        if self.alerts is not None:
            self._observe_alerts(self.alerts)

    def _say_overload(self, behind: set[str]) -> None:
        """The overload gauge, and a log line when the box's state changes."""
        self.metrics.overloaded.set(int(bool(behind)))
        if bool(behind) == self.overloaded:
            return
        self.overloaded = bool(behind)
        if behind:
            logger.warning(
                "box overloaded: camera(s) %s under 90 %% of their detections a second",
                ", ".join(sorted(behind)),
            )
        else:
            logger.info("box no longer overloaded: every camera at its rate")

    def _observe_alerts(self, alerts: BoxAlerts) -> None:
        """Alert counters as increments since the last refresh; the broker's connection."""
        for channel in alerts.channels:
            for outcome in ("sent", "failed", "dropped"):
                total = getattr(channel, outcome)
                key = f"alerts:{channel.name}:{outcome}"
                self.metrics.alerts.labels(channel.name, outcome).inc(
                    total - self._skipped_seen.get(key, 0)
                )
                self._skipped_seen[key] = total
        if alerts.mqtt is not None:
            self.metrics.alerts_broker_connected.set(int(alerts.mqtt.connected))

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
