"""Request and response bodies of the JSON API.

The ingest body is ``sitewatch.contract.events.Event``, heartbeats are in
``sitewatch.contract.heartbeat``: the box <-> server contract both sides import.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sitewatch.contract.ids import Identifier
from sitewatch.server.db.models import (
    DismissReason,
    EventStatus,
    HazardStatus,
    MediaKind,
    ReviewStatus,
    Role,
)
from sitewatch.server.localtime import zone as parse_zone

Text = Field(default=None, max_length=2000)


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class IngestResult(BaseModel):
    event_id: uuid.UUID
    created: bool
    applied: bool


class MediaResult(BaseModel):
    event_id: uuid.UUID
    kind: MediaKind
    size_bytes: int
    sha256: str
    content_type: str
    changed: bool


class MediaOut(Public):
    kind: MediaKind
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
    deleted_at: datetime | None


class HazardOut(Public):
    event_id: uuid.UUID
    site_id: str
    responsible: str
    responsible_user_id: int | None = None
    deadline: datetime
    status: HazardStatus
    note: str | None
    evidence_note: str | None
    evidence_at: datetime | None
    decision_note: str | None
    decided_at: datetime | None
    created_at: datetime
    updated_at: datetime
    overdue: bool = False


class EventOut(Public):
    event_id: uuid.UUID
    site_id: str
    camera_id: str
    rule: str
    severity: str
    phase: str
    status: EventStatus
    track_id: int | None
    zone: str | None
    helmet_state: str | None
    helmet_colour: str | None
    role: str | None
    worker_id: str | None
    confidence: float | None
    started_at: datetime
    updated_at: datetime | None
    ended_at: datetime | None
    bbox_xyxy: list[float] | None
    frame_wh: list[int] | None
    distance: float | None
    distance_unit: str | None
    message: str | None
    #: The server zones version the camera judged with (None: the box's YAML zones).
    zones_version: int | None = None
    #: The person's boxes over the clip: [seconds from started_at, x1, y1, x2, y2].
    track_boxes: list[list[float]] | None = None
    received_at: datetime
    review_status: ReviewStatus
    dismiss_reason: DismissReason | None
    review_note: str | None
    reviewed_at: datetime | None
    media: list[MediaOut] = Field(default_factory=list)
    hazard: HazardOut | None = None


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    page: int
    page_size: int


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: ReviewStatus
    reason: DismissReason | None = None
    note: str | None = Text
    #: Why a verdict already given is changed (admins only; required then).
    correction: str | None = Field(default=None, max_length=2000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: One of the site's users (GET /api/v1/sites/<id>/responsible-candidates) ...
    responsible_user_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    #: ... or the name of someone without an account.
    responsible: str | None = Field(default=None, min_length=1, max_length=200)
    deadline: datetime
    note: str | None = Text

    @model_validator(mode="after")
    def _someone(self) -> AssignIn:
        if self.responsible_user_id is None and not self.responsible:
            raise ValueError("give responsible_user_id (a user of the site) or responsible")
        return self


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Text


class AuditOut(Public):
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    site_id: str | None
    details: dict[str, Any] | None


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    username: str
    role: Role
    sites: list[str]
    csrf_token: str


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str | None = Field(default=None, max_length=200)
    #: IANA zone (Asia/Shanghai); alert hours are read in it. None: the server's zone.
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return known_zone(value)


class SitePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    #: ``null`` goes back to the server's zone; leaving it out keeps it.
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return known_zone(value)


def known_zone(value: str | None) -> str | None:
    if value is not None:
        parse_zone(value, "timezone")  # ValueError: "timezone: unknown time zone ..."
    return value


class SiteOut(Public):
    id: str
    name: str
    timezone: str | None = None
    created_at: datetime


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=1024)
    role: Role
    sites: list[str] = Field(default_factory=list, max_length=1000)
    display_name: str | None = Field(default=None, max_length=200)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    sites: list[str] | None = Field(default=None, max_length=1000)
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class UserOut(Public):
    id: int
    username: str
    display_name: str | None
    role: Role
    is_active: bool
    sites: list[str]


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: Identifier
    name: Identifier


class DeviceOut(Public):
    id: int
    site_id: str
    name: str
    is_active: bool
    created_at: datetime
    last_seen_at: datetime | None
    last_heartbeat: dict[str, Any] | None


class NewDeviceOut(BaseModel):
    device: DeviceOut
    token: str = Field(description="Shown once; only its hash is stored.")
