"""Safety events: the one payload shared by the edge pipeline and the server.

An event has a life: the rule that raises it emits it with ``phase=start``, may emit
``update`` while the hazard goes on (a better snapshot, a higher severity), and emits
``end`` once the hazard is over. All three carry the same ``event_id``, so the server
upserts by id and a re-sent message is harmless.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sitewatch.contract.ids import Identifier

__all__ = ["Identifier"]


class RuleKind(str, Enum):
    NO_HELMET = "no_helmet"
    FALL_EDGE = "fall_edge"
    RESTRICTED_ZONE = "restricted_zone"
    POST_UNATTENDED = "post_unattended"
    PARTY_MEMBER_HELMET = "party_member_helmet"
    #: Not a hazard: one event per tracked person (Frigate's "tracked object"), for
    #: "who was seen, when, wearing what". Off on sites by default; on in bare replays.
    PERSON = "person"

    @property
    def is_hazard(self) -> bool:
        return self is not RuleKind.PERSON


class Severity(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class EventPhase(str, Enum):
    START = "start"
    UPDATE = "update"
    END = "end"


class HelmetColour(str, Enum):
    RED = "red"
    ORANGE = "orange"
    PINK = "pink"  # never red: pink helmets are common at site entrances
    YELLOW = "yellow"
    WHITE = "white"
    BLUE = "blue"
    OTHER = "other"
    #: The picture holds no colour to judge (a greyscale or infrared night frame).
    UNKNOWN = "unknown"


class HelmetState(str, Enum):
    HELMET = "helmet"
    BARE = "bare"  # a bare head was seen
    UNKNOWN = "unknown"  # no head visible (back turned, occluded, too small)


#: One box of a person over an event's clip, see :attr:`Event.track`.
TrackBox = tuple[
    Annotated[float, Field(allow_inf_nan=False, ge=-600, le=86400)],
    Annotated[float, Field(allow_inf_nan=False, ge=-1e5, le=1e5)],
    Annotated[float, Field(allow_inf_nan=False, ge=-1e5, le=1e5)],
    Annotated[float, Field(allow_inf_nan=False, ge=-1e5, le=1e5)],
    Annotated[float, Field(allow_inf_nan=False, ge=-1e5, le=1e5)],
]
#: A clip of 10 s at up to 60 detections a second, with room.
MAX_TRACK_BOXES = 1200


class Event(BaseModel):
    """One hazard raised by one rule, for one person (or one post / zone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    phase: EventPhase = EventPhase.START
    site_id: Identifier
    camera_id: Identifier
    rule: RuleKind
    severity: Severity = Severity.MEDIUM
    #: Tracker id of the person; None for events about a place (an unattended post).
    track_id: int | None = None
    zone: str | None = Field(default=None, max_length=128)
    helmet_state: HelmetState | None = None
    helmet_colour: HelmetColour | None = None
    role: str | None = Field(default=None, max_length=64)
    worker_id: str | None = Field(default=None, max_length=64)
    #: Video time in replay, wall-clock time on a live camera (timezone-aware when live).
    started_at: datetime
    updated_at: datetime | None = None
    ended_at: datetime | None = None
    #: Box of the person in pixels of the source frame, (x1, y1, x2, y2).
    bbox_xyxy: tuple[float, float, float, float] | None = None
    frame_wh: tuple[int, int] | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Distance to the nearest fall-risk edge (metres when calibrated, else normalised).
    distance: float | None = None
    distance_unit: str | None = Field(default=None, pattern=r"^(m|norm)$")
    #: Media file names relative to the event's media folder (never absolute paths).
    snapshot: str | None = Field(default=None, max_length=255)
    clip: str | None = Field(default=None, max_length=255)
    face_thumbnail: str | None = Field(default=None, max_length=255)
    message: str | None = Field(default=None, max_length=500)
    #: Version of the server's zones the camera judged with (None: the box's YAML only).
    zones_version: int | None = Field(default=None, ge=0)
    #: The person's box over the clip: (seconds from started_at, may be negative for the
    #: clip's lead-in; x1, y1, x2, y2 in pixels of frame_wh), in time order.
    track: list[TrackBox] | None = Field(default=None, max_length=MAX_TRACK_BOXES)

    @field_validator("bbox_xyxy")
    @classmethod
    def _box_is_ordered(
        cls, box: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if box is not None and (box[2] < box[0] or box[3] < box[1]):
            raise ValueError(f"bbox_xyxy must have x2 >= x1 and y2 >= y1, got {box}")
        return box

    @field_validator("snapshot", "clip", "face_thumbnail")
    @classmethod
    def _plain_file_name(cls, name: str | None) -> str | None:
        if name is not None and (
            "/" in name or "\\" in name or name.startswith(".") or "\x00" in name
        ):
            raise ValueError(f"media name must be a plain file name, got {name!r}")
        return name

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()
