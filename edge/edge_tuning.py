"""The live box's tunables that do not belong in the site config.

Timeouts, backoff, heartbeat period, clip frame rate: read from ``SITEWATCH_EDGE_*``
environment variables; tests use them to run with small timeouts.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EdgeTuning(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SITEWATCH_EDGE_", extra="ignore")

    open_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    retry_min_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=30.0, gt=0)
    #: Each camera's current picture goes to the server this often (and when it asks).
    picture_interval_s: float = Field(default=300.0, gt=0)
    #: Longest side and JPEG quality of those pictures.
    picture_max_side: int = Field(default=1280, ge=64, le=4096)
    picture_quality: int = Field(default=80, ge=30, le=100)
    #: On SIGTERM, how long to keep uploading before leaving the rest in the outbox.
    shutdown_flush_s: float = Field(default=10.0, ge=0)
    clip_fps: float = Field(default=10.0, gt=0, le=30)
    clip_max_width: int = Field(default=1280, ge=64)
    ring_max_bytes: int = Field(default=48 * 1024**2, gt=0)
    encoder_threads: int = Field(default=1, ge=1, le=8)
    #: /metrics port (0 = any free port, None = no metrics server).
    metrics_port: int | None = Field(default=9108, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
