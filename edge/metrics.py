"""Prometheus metrics of the edge box, served on ``/metrics`` (prometheus_client).

Each runner has its own registry (tests run several in one process). Names::

    sitewatch_edge_camera_online{camera}            1 / 0
    sitewatch_edge_cameras_online                   count
    sitewatch_edge_capture_fps{camera}              frames received per second
    sitewatch_edge_detect_fps{camera}               frames run through the pipeline per second
    sitewatch_edge_inference_seconds{camera}        histogram of pipeline.process time
    sitewatch_edge_stage_seconds{camera,stage}      the same split by pipeline stage
    sitewatch_edge_frames_skipped_total{camera}     frames replaced by a newer one unprocessed
    sitewatch_edge_frames_gated_total{camera}       processed without a model call (no motion)
    sitewatch_edge_model_calls_total{camera}        processed with a model call
    sitewatch_edge_reconnects_total{camera}
    sitewatch_edge_events_total{camera,rule,phase}
    sitewatch_edge_outbox_items / _outbox_bytes     queue depth and its size on disk
    sitewatch_edge_outbox_dead_letters              items the server refused, kept for a retry
    sitewatch_edge_outbox_dropped_total{kind,reason}
    sitewatch_edge_uploads_total{kind,outcome}      sent / retry / rejected
    sitewatch_edge_ack_latency_seconds              start message spooled -> server ack
    sitewatch_edge_clips_total{outcome}             written / failed
    sitewatch_edge_face_register_version            server register version held (faces on)
    sitewatch_edge_face_register_workers            workers in the register the cameras use
    sitewatch_edge_face_register_sync_failures_total
    sitewatch_edge_alerts_total{channel,outcome}    box alerts (mqtt, webhook): sent/failed/dropped
    sitewatch_edge_alerts_broker_connected          1 while the MQTT broker is connected
"""

from __future__ import annotations

from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600)


class OutboxGauges(Protocol):
    """What :meth:`EdgeMetrics.observe_outbox` reads (an :class:`~sitewatch.edge.outbox.Outbox`)."""

    def depth(self) -> int: ...
    def used_bytes(self) -> int: ...
    def dead_letter_count(self) -> int: ...


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.camera_online = Gauge(
            "sitewatch_edge_camera_online", "Camera online", ["camera"], registry=r
        )
        self.cameras_online = Gauge("sitewatch_edge_cameras_online", "Cameras online", registry=r)
        self.capture_fps = Gauge(
            "sitewatch_edge_capture_fps", "Frames received per second", ["camera"], registry=r
        )
        self.detect_fps = Gauge(
            "sitewatch_edge_detect_fps", "Frames detected per second", ["camera"], registry=r
        )
        self.camera_behind = Gauge(
            "sitewatch_edge_camera_behind",
            "1 while a camera gets under 90 % of the detections it is due",
            ["camera"],
            registry=r,
        )
        self.overloaded = Gauge(
            "sitewatch_edge_overloaded",
            "1 while any camera of the box is behind (the CPU cannot keep up)",
            registry=r,
        )
        self.inference_s = Histogram(
            "sitewatch_edge_inference_seconds",
            "Pipeline time per detected frame",
            ["camera"],
            registry=r,
        )
        self.stage_s = Histogram(
            "sitewatch_edge_stage_seconds",
            "Pipeline stage time per detected frame (detect, track, attributes, rules)",
            ["camera", "stage"],
            registry=r,
        )
        self.frames_skipped = Counter(
            "sitewatch_edge_frames_skipped_total",
            "Frames replaced by a newer one before processing",
            ["camera"],
            registry=r,
        )
        self.frames_gated = Counter(
            "sitewatch_edge_frames_gated_total",
            "Frames processed without a model call: no motion (site.motion)",
            ["camera"],
            registry=r,
        )
        self.model_calls = Counter(
            "sitewatch_edge_model_calls_total",
            "Frames processed with a model call",
            ["camera"],
            registry=r,
        )
        self.reconnects = Counter(
            "sitewatch_edge_reconnects_total", "Stream reconnects", ["camera"], registry=r
        )
        self.events = Counter(
            "sitewatch_edge_events_total",
            "Event messages raised",
            ["camera", "rule", "phase"],
            registry=r,
        )
        self.outbox_items = Gauge(
            "sitewatch_edge_outbox_items", "Items waiting in the outbox", registry=r
        )
        self.outbox_bytes = Gauge(
            "sitewatch_edge_outbox_bytes", "Bytes held by the outbox", registry=r
        )
        self.outbox_dead_letters = Gauge(
            "sitewatch_edge_outbox_dead_letters",
            "Outbox items the server refused, kept for a retry (sitewatch edge outbox)",
            registry=r,
        )
        self.dropped = Counter(
            "sitewatch_edge_outbox_dropped_total",
            "Outbox items dropped (spool full, refused by the server)",
            ["kind", "reason"],
            registry=r,
        )
        self.uploads = Counter(
            "sitewatch_edge_uploads_total",
            "Upload attempts by outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.ack_latency_s = Histogram(
            "sitewatch_edge_ack_latency_seconds",
            "Start message spooled to server acknowledgement",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.clips = Counter(
            "sitewatch_edge_clips_total", "Event clips by outcome", ["outcome"], registry=r
        )
        self.face_register_version = Gauge(
            "sitewatch_edge_face_register_version",
            "Server worker register version held (0: none synced)",
            registry=r,
        )
        self.face_register_workers = Gauge(
            "sitewatch_edge_face_register_workers",
            "Workers in the face register the cameras use (local + server)",
            registry=r,
        )
        self.alerts = Counter(
            "sitewatch_edge_alerts",
            "Alerts from the box by channel and outcome (sent / failed / dropped)",
            ["channel", "outcome"],
            registry=r,
        )
        self.alerts_broker_connected = Gauge(
            "sitewatch_edge_alerts_broker_connected",
            "1 while the box's MQTT broker is connected",
            registry=r,
        )
        self.face_register_sync_failures = Counter(
            "sitewatch_edge_face_register_sync_failures_total",
            "Worker register syncs that failed (the register in use was kept)",
            registry=r,
        )
        self._server: Any = None

    def observe_outbox(self, outbox: OutboxGauges) -> None:
        """Set the outbox gauges: queue depth, bytes on disk, dead letters."""
        self.outbox_items.set(outbox.depth())
        self.outbox_bytes.set(outbox.used_bytes())
        self.outbox_dead_letters.set(outbox.dead_letter_count())

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics in a background thread; returns the port (0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
