"""A box's heartbeat (``POST /api/v1/heartbeat``): its cameras and its outbox;
the server's reply says which site-config version is current and which cameras it wants
a fresh picture of."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CameraStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    camera_id: str = Field(max_length=64)
    online: bool
    since: datetime | None = None
    fps: float | None = Field(default=None, ge=0)
    #: The camera's display name in the box's config (浇筑区); empty: none given.
    name: str = Field(default="", max_length=200)
    #: Size of the frames the camera delivers, when it has delivered one.
    width: int | None = Field(default=None, ge=1, le=16384)
    height: int | None = Field(default=None, ge=1, le=16384)
    #: Wall-clock time of the last frame decoded from the camera.
    last_frame_at: datetime | None = None
    #: The server zones version this camera runs with (None: the box's YAML zones).
    zones_version: int | None = Field(default=None, ge=0)
    #: The zones of the camera in the box's YAML (CameraZones as JSON), so the server
    #: can draw them on events judged with them.
    yaml_zones: dict[str, Any] | None = None
    #: Detections a second the camera gets now, and whether that is under 90 % of what it
    #: is due (its detect_fps, or its own frame rate when lower).
    detect_fps: float | None = Field(default=None, ge=0)
    behind: bool = False


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cameras: list[CameraStatus] = Field(default_factory=list, max_length=256)
    queue_depth: int = Field(default=0, ge=0)
    version: str = Field(default="", max_length=64)
    #: The site's display name in the box's config (演示工地).
    site_name: str = Field(default="", max_length=200)
    #: The server site-config (zones) version the box has applied; None: none yet.
    site_config_version: int | None = Field(default=None, ge=0)
    #: Some camera is behind: the box's CPU cannot keep up with all its cameras.
    overloaded: bool = False


class HeartbeatReply(BaseModel):
    """What the server answers a heartbeat with (200)."""

    #: The site's current zones version on the server (0: the server manages no zones);
    #: a box behind it pulls ``GET /api/v1/site-config``.
    site_config_version: int = 0
    #: Cameras whose picture the server wants now (someone opened the zone editor).
    pictures_wanted: list[str] = Field(default_factory=list)
