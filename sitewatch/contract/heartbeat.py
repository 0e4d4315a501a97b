"""A box's heartbeat (``POST /api/v1/devices/heartbeat``): its cameras and its outbox."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CameraStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    camera_id: str = Field(max_length=64)
    online: bool
    since: datetime | None = None
    fps: float | None = Field(default=None, ge=0)


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cameras: list[CameraStatus] = Field(default_factory=list, max_length=256)
    queue_depth: int = Field(default=0, ge=0)
    version: str = Field(default="", max_length=64)
