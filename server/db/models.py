"""The server's tables (SQLAlchemy 2 declarative models).

Enumerations are stored as their string values (VARCHAR, no native enum types) so the
same migrations run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sitewatch.server.db.base import Base
from sitewatch.server.db.types import UTCDateTime, utcnow


def _enum(enum_cls: type[Enum]) -> SAEnum:
    return SAEnum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    VIEWER = "viewer"
    #: 整改责任人: sees the hazards assigned to them and uploads their evidence; judges
    #: nothing (no verdicts, assignments or acceptance).
    RECTIFIER = "rectifier"


class EventStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class ReviewStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class DismissReason(StrEnum):
    WRONG_CLASS = "wrong_class"
    NOT_A_PERSON = "not_a_person"
    HELMET_PRESENT = "helmet_present"
    OUTSIDE_ZONE = "outside_zone"
    DUPLICATE = "duplicate"
    OTHER = "other"


class MediaKind(StrEnum):
    SNAPSHOT = "snapshot"
    SNAPSHOT_CLEAN = "snapshot_clean"
    CLIP = "clip"
    FACE = "face"
    EVIDENCE = "evidence"  # rectification photo uploaded by a user, not by a device


#: Kinds a device may upload through the ingest API.
DEVICE_MEDIA_KINDS = (MediaKind.SNAPSHOT, MediaKind.SNAPSHOT_CLEAN, MediaKind.CLIP, MediaKind.FACE)


class HazardStatus(StrEnum):
    ASSIGNED = "assigned"
    RECTIFIED = "rectified"  # evidence submitted, waiting for a reviewer
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # evidence refused; the hazard is open again


user_sites = Table(
    "user_sites",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: IANA zone of the site (alert hours are read in it); None: the server's timezone.
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: Evidence must be accepted by another user than the one who uploaded it.
    accept_by_other: Mapped[bool] = mapped_column(default=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sites: Mapped[list[Site]] = relationship(secondary=user_sites, lazy="selectin")

    @property
    def site_ids(self) -> set[str]:
        return {site.id for site in self.sites}


class UserSession(Base):
    """A logged-in browser: the cookie carries the token, the table keeps its hash."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship(lazy="joined")


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_heartbeat: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class EventRecord(Base):
    """One safety event (sitewatch/contract/events.py ``Event``) plus its review state."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_site_started", "site_id", "started_at"),
        Index("ix_events_review_started", "review_status", "started_at"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    camera_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    rule: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    status: Mapped[EventStatus] = mapped_column(_enum(EventStatus), default=EventStatus.OPEN)
    track_id: Mapped[int | None] = mapped_column(BigInteger)
    zone: Mapped[str | None] = mapped_column(String(128))
    helmet_state: Mapped[str | None] = mapped_column(String(16))
    helmet_colour: Mapped[str | None] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(64))
    worker_id: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bbox_xyxy: Mapped[list[float] | None] = mapped_column(JSON)
    frame_wh: Mapped[list[int] | None] = mapped_column(JSON)
    distance: Mapped[float | None]
    distance_unit: Mapped[str | None] = mapped_column(String(8))
    message: Mapped[str | None] = mapped_column(String(500))
    #: The server zones version the camera judged with (None: the box's YAML zones).
    zones_version: Mapped[int | None]
    #: The person's boxes over the clip: [seconds from started_at, x1, y1, x2, y2].
    track_boxes: Mapped[list[list[float]] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    review_status: Mapped[ReviewStatus] = mapped_column(
        _enum(ReviewStatus), default=ReviewStatus.PENDING
    )
    dismiss_reason: Mapped[DismissReason | None] = mapped_column(_enum(DismissReason))
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Loaded on access (ingest needs none of them); lists load them in bulk with
    # ``server.services.events.WITH_DETAILS``.
    media: Mapped[list[Media]] = relationship(back_populates="event", cascade="all, delete-orphan")
    hazard: Mapped[Hazard | None] = relationship(back_populates="event")
    reviewed_by: Mapped[User | None] = relationship()

    def media_of(self, kind: MediaKind) -> Media | None:
        return next((m for m in self.media if m.kind == kind and m.deleted_at is None), None)


class Media(Base):
    __tablename__ = "media"
    __table_args__ = (UniqueConstraint("event_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.event_id", ondelete="CASCADE"))
    kind: Mapped[MediaKind] = mapped_column(_enum(MediaKind))
    #: Key in the media store (``site/event/kind-sha.ext``), never a client-given name.
    stored_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when retention removed the file; the row stays as a record.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why an upload was refused (broken, wrong codec, too large a picture): its bytes
    #: were not kept, and ``deleted_at`` is set too, so nothing serves or shows them.
    problem: Mapped[str | None] = mapped_column(Text)
    event: Mapped[EventRecord] = relationship(back_populates="media")


class Hazard(Base):
    """The rectification of a confirmed event: who fixes it by when, and the proof."""

    __tablename__ = "hazards"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.event_id", ondelete="CASCADE"), unique=True
    )
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    responsible: Mapped[str] = mapped_column(String(200))
    #: The site's user who rectifies (a rectifier, reviewer or admin); ``responsible``
    #: holds their name as it was at the assignment.
    responsible_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[HazardStatus] = mapped_column(_enum(HazardStatus), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    evidence_note: Mapped[str | None] = mapped_column(Text)
    evidence_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evidence_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[EventRecord] = relationship(back_populates="hazard")

    def is_overdue(self, now: datetime) -> bool:
        done = self.status in (HazardStatus.ACCEPTED, HazardStatus.RECTIFIED)
        return not done and self.deadline < now


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL")
    )
    #: "user:alice", "device:site-a/box-1" or "system": readable after the actor is gone.
    actor: Mapped[str] = mapped_column(String(140))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    #: Up to "site/worker" (64 + 1 + 64 characters); see migration 0003.
    object_id: Mapped[str] = mapped_column(String(160))
    site_id: Mapped[str | None] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LoginFailure(Base):
    """One failed login for a throttle key ("user:alice", "ip:10.0.0.5").

    In the database rather than in memory, so the limit holds across the server's worker
    processes (``server.throttle``); rows older than the window are pruned.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ChannelKind(StrEnum):
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"
    WEBHOOK = "webhook"
    EMAIL = "email"
    MQTT = "mqtt"


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    #: An event alert folded into a digest (a storm): the digest row carries it.
    DIGESTED = "digested"
    #: A hazard reminder or escalation no longer needed (fixed, or its deadline moved).
    CANCELLED = "cancelled"


class NotificationKind(StrEnum):
    EVENT = "event"
    DIGEST = "digest"
    HAZARD_ASSIGNED = "hazard_assigned"
    HAZARD_REMINDER = "hazard_reminder"
    HAZARD_OVERDUE = "hazard_overdue"
    HAZARD_EVIDENCE = "hazard_evidence"
    #: A camera without frames (or its box silent) past camera_offline_after_s, and back.
    CAMERA_OFFLINE = "camera_offline"
    CAMERA_ONLINE = "camera_online"


class AlertChannel(Base):
    """Where alerts go (issue 16): a chat robot or a signed webhook.

    ``secret`` (signing secret) is stored to sign requests; the API never returns it.
    """

    __tablename__ = "alert_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str | None] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertRule(Base):
    """Which events go to a channel: empty site / camera / rule match any."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str | None] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    camera_id: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(32))
    min_severity: Mapped[str] = mapped_column(String(16), default="low")
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Local hours ("HH:MM", the site's zone) in which the rule routes event alerts; a
    #: window may wrap past midnight (22:00-06:00). None: all day.
    active_from: Mapped[str | None] = mapped_column(String(5))
    active_to: Mapped[str | None] = mapped_column(String(5))
    #: ISO weekdays the rule routes event alerts on ("1,2,3,4,5"); None: every day.
    weekdays: Mapped[str | None] = mapped_column(String(16))
    #: An escalation rule: its channel hears only of overdue hazards.
    escalation: Mapped[bool] = mapped_column(default=False)


class Notification(Base):
    """One message to one channel: the durable delivery queue.

    ``kind`` says what about: an event alert (``event_id``; one per event and channel), a
    digest of a storm (``payload`` has site and rule; its alerts point here by
    ``digest_id``), or a step of the hazard loop (``hazard_id``; ``dedupe_key`` keeps one
    per step and deadline).

    ``next_attempt_at`` is also the claim: a worker moves it past now while it sends, so a
    worker that dies mid-send leaves the row to be retried once the claim runs out.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "channel_id"),
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
        Index("ix_notifications_channel_attempt", "channel_id", "last_attempt_at"),
        Index("ix_notifications_channel_key", "channel_id", "dedupe_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[NotificationKind] = mapped_column(
        _enum(NotificationKind), default=NotificationKind.EVENT
    )
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("events.event_id", ondelete="CASCADE")
    )
    hazard_id: Mapped[int | None] = mapped_column(
        ForeignKey("hazards.id", ondelete="CASCADE"), index=True
    )
    digest_id: Mapped[int | None] = mapped_column(index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    channel_id: Mapped[int] = mapped_column(ForeignKey("alert_channels.id"))
    status: Mapped[NotificationStatus] = mapped_column(
        _enum(NotificationStatus), default=NotificationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why the last attempt failed (truncated; secrets and signatures scrubbed).
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[AlertChannel] = relationship(lazy="joined")


class Camera(Base):
    """A camera as its box reports it with each heartbeat, and its latest picture."""

    __tablename__ = "cameras"

    site_id: Mapped[str] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    #: The display name from the box's config (浇筑区); empty: the id is shown.
    name: Mapped[str] = mapped_column(String(200), default="")
    online: Mapped[bool] = mapped_column(default=False)
    fps: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the box last reported this camera (its heartbeat).
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    zones_version: Mapped[int | None]
    #: The camera's zones in its box's YAML (CameraZones JSON), as last reported.
    yaml_zones: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Media-store key of the latest picture, when it came, and the people on it
    #: ([[x1, y1, x2, y2], ...] normalised) for the zone editor's preview.
    picture_key: Mapped[str | None] = mapped_column(String(255))
    picture_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    picture_persons: Mapped[list[list[float]] | None] = mapped_column(JSON)
    #: Someone asked for a fresh picture (the box is told with its next heartbeat).
    picture_wanted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The start of the current dark spell that an offline alarm was raised for.
    offline_alarm_for: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SiteZoneVersion(Base):
    """One version of the zones the server manages for a site's cameras (whole, so a
    box can take any version as it is); the newest is the current one."""

    __tablename__ = "site_zone_versions"
    __table_args__ = (UniqueConstraint("site_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    #: camera id -> CameraZones as JSON; a camera not here keeps the box's YAML zones.
    cameras: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The camera this version changed, and by whom ("user:alice").
    changed_camera: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(140))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
