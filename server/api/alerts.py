"""Alert channels and routing rules (admins), the test button, and the delivery state of
an event's notifications (issue 16). A channel's secret is written, never read back."""

from __future__ import annotations

import urllib.parse
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sitewatch.contract.events import RuleKind, Severity
from sitewatch.contract.ids import Identifier
from sitewatch.server.api.deps import AdminUser, CurrentUser, DbSession, SettingsDep
from sitewatch.server.db.models import (
    AlertChannel,
    AlertRule,
    ChannelKind,
    Notification,
    NotificationStatus,
    Site,
)
from sitewatch.server.db.types import utcnow
from sitewatch.server.notify.channels import Alert, send
from sitewatch.server.notify.email import EmailUrlError, parse_email_url
from sitewatch.server.notify.mqtt import MqttUrlError, parse_mqtt_url
from sitewatch.server.notify.routing import parse_clock, parse_weekdays
from sitewatch.server.notify.worker import event_link, target_of
from sitewatch.server.services import audit, events
from sitewatch.server.services.errors import Conflict, Invalid, NotFound

DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]
router = APIRouter(prefix="/api/v1", tags=["alerts"])
ERRORS: dict[int | str, dict[str, object]] = {403: {}, 404: {}, 409: {}}
# http(s):// for the chat robots and webhooks, smtp(s):// for e-mail, mqtt(s):// for a broker.
Url = Annotated[
    str, Field(min_length=8, max_length=2000, pattern=r"^(?:https?|smtps?|mqtts?)://[^\s]+$")
]
Secret = Annotated[str, Field(min_length=1, max_length=500)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Language = Literal["zh", "en"]


def check_url(kind: ChannelKind, url: str) -> None:
    """ValueError unless ``url`` suits a channel of ``kind``."""
    if kind == ChannelKind.EMAIL:
        try:
            parse_email_url(url)
        except EmailUrlError as exc:
            raise ValueError(f"e-mail channel URL: {exc}") from None
    elif kind == ChannelKind.MQTT:
        try:
            parse_mqtt_url(url)
        except MqttUrlError as exc:
            raise ValueError(f"MQTT channel URL: {exc}") from None
    elif not url.startswith(("http://", "https://")):
        raise ValueError(f"a {kind.value} channel's URL starts with http:// or https://")


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: ChannelKind
    url: Url
    secret: Secret | None = None
    enabled: bool = True
    language: Language = "zh"

    @model_validator(mode="after")
    def _url_suits_kind(self) -> ChannelIn:
        check_url(self.kind, self.url)
        return self


class ChannelPatch(BaseModel):
    """Fields to change; ``secret: null`` removes the secret, leaving it out keeps it."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    url: Url | None = None
    secret: Secret | None = None
    enabled: bool | None = None
    language: Language | None = None


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: ChannelKind
    url: str
    secret_set: bool
    enabled: bool
    language: str
    created_at: datetime


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_id: int = Field(ge=1, le=2**31 - 1)
    site_id: Identifier | None = None
    camera_id: Identifier | None = None
    rule: RuleKind | None = None
    min_severity: Severity = Severity.LOW
    #: Local hours (the site's zone) in which event alerts are routed, "HH:MM" both or
    #: neither; 22:00-06:00 wraps past midnight. Hazard-loop messages in the other hours
    #: wait for the next active minute.
    active_from: str | None = Field(default=None, max_length=5)
    active_to: str | None = Field(default=None, max_length=5)
    #: ISO weekdays, Monday = 1 ("1,2,3,4,5"); None: every day.
    weekdays: str | None = Field(default=None, max_length=16)
    #: The channel hears only of overdue hazards (escalation).
    escalation: bool = False

    @field_validator("active_from", "active_to")
    @classmethod
    def _clock(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            parse_clock(value, info.field_name or "time")
        return value

    @field_validator("weekdays")
    @classmethod
    def _days(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return ",".join(str(d) for d in sorted(parse_weekdays(value)))

    @model_validator(mode="after")
    def _window(self) -> RuleIn:
        if (self.active_from is None) != (self.active_to is None):
            raise ValueError("active_from and active_to go together (both or neither)")
        if self.active_from is not None and self.active_from == self.active_to:
            raise ValueError("active_from and active_to must differ (leave both out: all day)")
        return self


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel_id: int
    site_id: str | None
    camera_id: str | None
    rule: str | None
    min_severity: str
    active_from: str | None
    active_to: str | None
    weekdays: str | None
    escalation: bool
    created_at: datetime


class TestOut(BaseModel):
    ok: bool
    status_code: int | None
    provider_code: Any = None
    error: str | None


class NotificationOut(BaseModel):
    id: int
    channel_id: int
    channel_name: str
    channel_kind: ChannelKind
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime


def _url_shown(channel: AlertChannel) -> str:
    """The URL without its query (WeCom's key and DingTalk's access token live there); an
    e-mail URL with its addresses but never a password in its userinfo."""
    if channel.kind == ChannelKind.EMAIL:
        try:
            parts = urllib.parse.urlsplit(channel.url)
            user = f"{parts.username}@" if parts.username else ""
            netloc = user + parts.netloc.rpartition("@")[2]
            return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        except ValueError:
            return channel.url.partition("://")[0] + "://***"
    base, sep, _ = channel.url.partition("?")
    return f"{base}?***" if sep else base


def channel_out(channel: AlertChannel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        url=_url_shown(channel),
        secret_set=bool(channel.secret),
        enabled=channel.enabled,
        language=channel.language,
        created_at=channel.created_at,
    )


def _channel(db: Session, channel_id: int) -> AlertChannel:
    channel = db.get(AlertChannel, channel_id)
    if channel is None:
        raise NotFound(f"alert channel {channel_id} not found")
    return channel


def _audit(db: Session, user: AdminUser, action: str, object_id: int, **details: Any) -> None:
    audit.record(
        db,
        actor=user,
        action=action,
        object_type="alert",
        object_id=str(object_id),
        details=details or None,
    )


@router.get("/alerts/channels", response_model=list[ChannelOut])
def list_channels(_admin: AdminUser, db: DbSession) -> list[ChannelOut]:
    return [channel_out(c) for c in db.scalars(select(AlertChannel).order_by(AlertChannel.id))]


@router.post(
    "/alerts/channels",
    response_model=ChannelOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
def create_channel(body: ChannelIn, user: AdminUser, db: DbSession) -> ChannelOut:
    channel = AlertChannel(
        name=body.name,
        kind=body.kind,
        url=body.url,
        secret=body.secret,
        enabled=body.enabled,
        language=body.language,
        created_at=utcnow(),
    )
    db.add(channel)
    db.flush()
    _audit(db, user, "alert.channel_create", channel.id, name=body.name, kind=body.kind.value)
    db.commit()
    return channel_out(channel)


@router.get("/alerts/channels/{channel_id}", response_model=ChannelOut, responses=ERRORS)
def get_channel(channel_id: DbId, _admin: AdminUser, db: DbSession) -> ChannelOut:
    return channel_out(_channel(db, channel_id))


@router.patch("/alerts/channels/{channel_id}", response_model=ChannelOut, responses=ERRORS)
def update_channel(
    channel_id: DbId, body: ChannelPatch, user: AdminUser, db: DbSession
) -> ChannelOut:
    channel = _channel(db, channel_id)
    given = body.model_dump(exclude_unset=True)
    if given.get("url") is not None:
        try:
            check_url(channel.kind, given["url"])
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    for name in ("name", "url", "enabled", "language"):
        if given.get(name) is not None:
            setattr(channel, name, given[name])
    if "secret" in given:
        channel.secret = given["secret"]
    changed = sorted(given)  # names only: never the secret or the URL's token
    _audit(db, user, "alert.channel_update", channel.id, changed=changed)
    db.commit()
    return channel_out(channel)


@router.delete(
    "/alerts/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS
)
def delete_channel(channel_id: DbId, user: AdminUser, db: DbSession) -> None:
    """Delete a channel and its rules; one with notifications is kept (disable it)."""
    channel = _channel(db, channel_id)
    used = db.scalar(select(func.count()).where(Notification.channel_id == channel.id)) or 0
    if used:
        raise Conflict(f"alert channel {channel_id} has {used} notification(s): disable it instead")
    db.delete(channel)  # its rules go by ON DELETE CASCADE
    _audit(db, user, "alert.channel_delete", channel_id)
    db.commit()


@router.post("/alerts/channels/{channel_id}/test", response_model=TestOut, responses=ERRORS)
def test_channel(
    channel_id: DbId, _admin: AdminUser, db: DbSession, settings: SettingsDep
) -> TestOut:
    """Send a test message now; the answer says what the provider said."""
    channel = _channel(db, channel_id)
    target = target_of(channel)
    db.rollback()
    test_id = uuid.UUID(int=0)
    alert = Alert(
        event_id=str(test_id),
        site_id="sitewatch",
        site_name="sitewatch",
        camera_id="-",
        rule="no_helmet",
        severity="low",
        started_at=utcnow(),
        link=event_link(settings, test_id),
        test=True,
    )
    result = send(target, alert, settings.zone, timeout_s=settings.alert_timeout_s)
    return TestOut(
        ok=result.ok,
        status_code=result.status_code,
        provider_code=result.provider_code,
        error=result.error,
    )


@router.get("/alerts/rules", response_model=list[RuleOut])
def list_rules(_admin: AdminUser, db: DbSession) -> list[RuleOut]:
    rules = db.scalars(select(AlertRule).order_by(AlertRule.id))
    return [RuleOut.model_validate(r) for r in rules]


@router.post(
    "/alerts/rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED, responses=ERRORS
)
def create_rule(body: RuleIn, user: AdminUser, db: DbSession) -> RuleOut:
    _channel(db, body.channel_id)
    if body.site_id is not None and db.get(Site, body.site_id) is None:
        raise NotFound(f"site {body.site_id!r} not found")
    rule = AlertRule(
        channel_id=body.channel_id,
        site_id=body.site_id,
        camera_id=body.camera_id,
        rule=body.rule.value if body.rule else None,
        min_severity=body.min_severity.value,
        active_from=body.active_from,
        active_to=body.active_to,
        weekdays=body.weekdays,
        escalation=body.escalation,
        created_at=utcnow(),
    )
    db.add(rule)
    db.flush()
    _audit(db, user, "alert.rule_create", rule.id, **body.model_dump(mode="json"))
    db.commit()
    return RuleOut.model_validate(rule)


@router.delete("/alerts/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_rule(rule_id: DbId, user: AdminUser, db: DbSession) -> None:
    rule = db.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound(f"alert rule {rule_id} not found")
    db.delete(rule)
    _audit(db, user, "alert.rule_delete", rule_id)
    db.commit()


@router.get(
    "/events/{event_id}/notifications",
    response_model=list[NotificationOut],
    responses={404: {}},
)
def event_notifications(
    event_id: uuid.UUID, user: CurrentUser, db: DbSession
) -> list[NotificationOut]:
    """Delivery state of an event's alerts (for anyone who may see the event)."""
    events.get_event(db, user=user, event_id=event_id)
    rows = db.scalars(
        select(Notification).where(Notification.event_id == event_id).order_by(Notification.id)
    )
    return [
        NotificationOut(
            id=n.id,
            channel_id=n.channel_id,
            channel_name=n.channel.name,
            channel_kind=n.channel.kind,
            status=n.status,
            attempts=n.attempts,
            next_attempt_at=n.next_attempt_at if n.status == NotificationStatus.PENDING else None,
            last_error=n.last_error,
            sent_at=n.sent_at,
            created_at=n.created_at,
        )
        for n in rows
    ]
