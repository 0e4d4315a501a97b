"""The alerts page (issue 16, admins): channels with their test button, routing rules;
and the delivery state of an event's notifications on the event page.

The forms go through the core's ``current_session`` (login + CSRF) and reuse the API's
models and functions (:mod:`server.api.alerts`): the same validation, masking and audit
as the JSON API. Their refusals (pydantic's or the service's, in English) are shown next
to the form in the page's language.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from sitewatch.contract.events import RuleKind, Severity
from sitewatch.server.api import alerts as api
from sitewatch.server.api.deps import SettingsDep
from sitewatch.server.db.models import (
    ChannelKind,
    Notification,
    NotificationKind,
    NotificationStatus,
    Role,
    User,
)
from sitewatch.server.services.errors import Conflict, NotFound, ServiceError
from sitewatch.server.services.events import get_event
from sitewatch.server.ui import queries
from sitewatch.server.ui.deps import ActingViewerDep, DbDep, Viewer, ViewerDep, error_page
from sitewatch.server.ui.i18n import Translator, request_lang, translator
from sitewatch.server.ui.rendering import render, templates

logger = logging.getLogger(__name__)
router = APIRouter()

PAGE = "/ui/alerts"
Text = Annotated[str, Form()]
DONE = (
    "channel_created",
    "channel_updated",
    "channel_enabled",
    "channel_disabled",
    "channel_deleted",
    "rule_created",
    "rule_deleted",
)
WEEKDAYS = [str(d) for d in range(1, 8)]
#: The form field (or the label key) each model field is shown under.
FIELD_LABELS = {
    "name": "alerts.name",
    "kind": "alerts.kind",
    "url": "alerts.url",
    "secret": "alerts.secret",
    "enabled": "alerts.enabled",
    "language": "alerts.language",
    "channel_id": "alerts.channel",
    "site_id": "filter.site",
    "camera_id": "filter.camera",
    "rule": "filter.rule",
    "min_severity": "alerts.min_severity",
    "active_from": "alerts.active_from",
    "active_to": "alerts.active_to",
    "weekdays": "alerts.weekdays",
    "escalation": "alerts.escalation",
    "hours": "alerts.hours",
}
#: English reasons of the API's validators -> catalogue keys (first match wins).
_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"URL starts with http:// or https://"), "alerts.err.url_http"),
    (re.compile(r"must be a local time HH:MM"), "alerts.err.clock"),
    (re.compile(r"go together"), "alerts.err.hours_pair"),
    (re.compile(r"must differ"), "alerts.err.hours_same"),
    (re.compile(r"ISO weekdays|at least one day"), "alerts.err.weekdays"),
]
_EMAIL = re.compile(r"e-mail channel URL: (.*)", re.S)
_MQTT = re.compile(r"MQTT channel URL: (.*)", re.S)
_IN_USE = re.compile(r"has (\d+) notification")


@dataclass(frozen=True)
class FormError:
    field: str
    message: str


def reason_text(t: Translator, message: str) -> str:
    """A validator's or service's English reason in the page's language."""
    message = message.removeprefix("Value error, ")
    for pattern, key in _REASONS:
        if pattern.search(message):
            return t(key)
    email = _EMAIL.search(message)
    if email:
        return t("alerts.err.email_url", detail=email.group(1))
    mqtt = _MQTT.search(message)
    if mqtt:
        return t("alerts.err.mqtt_url", detail=mqtt.group(1))
    return t("alerts.err.invalid", detail=message)


def validation_errors(t: Translator, exc: ValidationError, whole: str) -> list[FormError]:
    """pydantic's errors as (field label, reason) in the page's language; an error of the
    whole model is shown under ``whole``."""
    found = []
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else whole
        kind = error.get("type", "")
        ctx: Mapping[str, Any] = error.get("ctx") or {}
        if kind in ("missing", "string_too_short"):
            text = t("alerts.err.required")
        elif kind == "string_too_long":
            text = t("alerts.err.too_long", n=ctx.get("max_length", "?"))
        elif kind == "string_pattern_mismatch":
            text = t("alerts.err.url_format" if name == "url" else "alerts.err.identifier")
        elif kind == "value_error":
            text = reason_text(t, str(error.get("msg", "")))
        else:
            text = t("alerts.err.choice")
        found.append(FormError(t(FIELD_LABELS.get(name, name)), text))
    return found


def service_error_text(t: Translator, exc: ServiceError) -> str:
    if isinstance(exc, Conflict):
        used = _IN_USE.search(exc.message)
        if used:
            return t("alerts.err.in_use", n=used.group(1))
    if isinstance(exc, NotFound):
        for what, key in (
            ("alert channel", "alerts.err.channel_missing"),
            ("alert rule", "alerts.err.rule_missing"),
            ("site", "alerts.err.site_missing"),
        ):
            if exc.message.startswith(what):
                return t(key)
    return reason_text(t, exc.message)


def _optional(value: str) -> str | None:
    return value.strip() or None


def _on(value: str) -> bool:
    return value in ("on", "1", "true", "yes")


@dataclass
class PageState:
    """What a re-rendered page shows besides the lists: errors next to their form, the
    values entered, a test result, a flash."""

    errors: dict[str, list[FormError]]
    values: dict[str, dict[str, Any]]
    tests: dict[int, api.TestOut]
    flash: str | None = None
    flash_kind: str = "info"


def _state() -> PageState:
    return PageState(errors={}, values={}, tests={})


def _page(
    request: Request, db: Session, viewer: Viewer, state: PageState, status_code: int = 200
) -> Response:
    t = translator(request_lang(request))
    channels = api.list_channels(viewer.user, db)
    names = {c.id: c.name for c in channels}
    sites = queries.visible_sites(db, viewer.user)
    site_names = {s.id: s.name for s in sites}
    context = {
        "channels": channels,
        "rules": api.list_rules(viewer.user, db),
        "channel_names": names,
        "sites": sites,
        "site_names": site_names,
        "cameras": queries.cameras_of(db, viewer.user),
        "kinds": [k.value for k in ChannelKind],
        "rule_kinds": [r.value for r in RuleKind],
        "severities": [s.value for s in Severity],
        "weekdays": WEEKDAYS,
        "errors": state.errors,
        "values": state.values,
        "tests": state.tests,
        "flash": state.flash,
        "flash_kind": state.flash_kind,
        "days_text": weekday_text(t),
    }
    return render(
        request,
        "alerts.html",
        context,
        status_code=status_code,
        user=viewer.user,
        csrf_token=viewer.csrf_token,
    )


def weekday_text(t: Translator) -> Callable[[str | None], str]:
    """ "1,2,3" -> "周一、周二、周三"; none: every day."""

    def days(value: str | None) -> str:
        if not value:
            return t("alerts.every_day")
        return t("alerts.day_sep").join(t(f"weekday.{d}") for d in value.split(","))

    return days


def _forbidden(request: Request, viewer: Viewer) -> Response | None:
    if viewer.user.role == Role.ADMIN:
        return None
    t = translator(request_lang(request))
    return error_page(request, viewer, 403, t("alerts.admin_only"))


def _done(key: str, anchor: str) -> Response:
    return RedirectResponse(f"{PAGE}?done={key}#{anchor}", status_code=303)


def _refused(
    request: Request,
    db: DbDep,
    viewer: Viewer,
    where: str,
    errors: list[FormError],
    status_code: int,
    values: dict[str, Any] | None = None,
) -> Response:
    db.rollback()
    state = _state()
    state.errors[where] = errors
    if values is not None:
        state.values[where] = values
    logger.info("alerts form %s refused for %s: %s", where, viewer.user.username, errors)
    return _page(request, db, viewer, state, status_code=status_code)


def _service_refused(
    request: Request,
    db: DbDep,
    viewer: Viewer,
    where: str,
    exc: ServiceError,
    values: dict[str, Any] | None = None,
) -> Response:
    t = translator(request_lang(request))
    error = FormError("", service_error_text(t, exc))
    return _refused(request, db, viewer, where, [error], exc.status, values)


@router.get("/alerts", include_in_schema=False)
def alerts_page(
    request: Request, db: DbDep, viewer: ViewerDep, done: str | None = None
) -> Response:
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    state = _state()
    if done in DONE:
        state.flash = translator(request_lang(request))(f"alerts.done.{done}")
    return _page(request, db, viewer, state)


@router.post("/alerts/channels", include_in_schema=False)
def post_channel(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    name: Text = "",
    kind: Text = "",
    url: Text = "",
    secret: Text = "",
    language: Text = "zh",
    enabled: Text = "",
) -> Response:
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    t = translator(request_lang(request))
    values = {"name": name, "kind": kind, "url": url, "language": language, "enabled": enabled}
    try:
        body = api.ChannelIn.model_validate(
            {
                "name": name.strip(),
                "kind": kind,
                "url": url.strip(),
                "secret": _optional(secret),
                "enabled": _on(enabled),
                "language": language,
            }
        )
    except ValidationError as exc:
        errors = validation_errors(t, exc, "url")
        return _refused(request, db, viewer, "channel_new", errors, 422, values)
    try:
        api.create_channel(body, viewer.user, db)
    except ServiceError as exc:
        return _service_refused(request, db, viewer, "channel_new", exc, values)
    return _done("channel_created", "channels")


@router.post("/alerts/channels/{channel_id}", include_in_schema=False)
def post_channel_edit(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    channel_id: api.DbId,
    name: Text = "",
    url: Text = "",
    secret: Text = "",
    remove_secret: Text = "",
    language: Text = "",
) -> Response:
    """Empty fields keep what is there; ``remove_secret`` removes the secret."""
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    t = translator(request_lang(request))
    given: dict[str, Any] = {}
    if name.strip():
        given["name"] = name.strip()
    if url.strip():
        given["url"] = url.strip()
    if language:
        given["language"] = language
    if _on(remove_secret):
        given["secret"] = None
    elif secret:
        given["secret"] = secret
    where = f"channel_{channel_id}"
    try:
        patch = api.ChannelPatch.model_validate(given)
    except ValidationError as exc:
        return _refused(request, db, viewer, where, validation_errors(t, exc, "url"), 422)
    try:
        api.update_channel(channel_id, patch, viewer.user, db)
    except ServiceError as exc:
        return _service_refused(request, db, viewer, where, exc)
    return _done("channel_updated", f"channel-{channel_id}")


@router.post("/alerts/channels/{channel_id}/enabled", include_in_schema=False)
def post_channel_enabled(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    channel_id: api.DbId,
    enabled: Text = "",
) -> Response:
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    on = _on(enabled)
    try:
        api.update_channel(channel_id, api.ChannelPatch(enabled=on), viewer.user, db)
    except ServiceError as exc:
        return _service_refused(request, db, viewer, f"channel_{channel_id}", exc)
    return _done("channel_enabled" if on else "channel_disabled", f"channel-{channel_id}")


@router.post("/alerts/channels/{channel_id}/delete", include_in_schema=False)
def post_channel_delete(
    request: Request, db: DbDep, viewer: ActingViewerDep, channel_id: api.DbId
) -> Response:
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    try:
        api.delete_channel(channel_id, viewer.user, db)
    except ServiceError as exc:
        return _service_refused(request, db, viewer, f"channel_{channel_id}", exc)
    return _done("channel_deleted", "channels")


@router.post("/alerts/channels/{channel_id}/test", include_in_schema=False)
def post_channel_test(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    viewer: ActingViewerDep,
    channel_id: api.DbId,
) -> Response:
    """Send a test message now and show what the provider answered on the page."""
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    try:
        result = api.test_channel(channel_id, viewer.user, db, settings)
    except ServiceError as exc:
        return _service_refused(request, db, viewer, f"channel_{channel_id}", exc)
    logger.info("alert channel %s tested by %s: ok=%s", channel_id, viewer.user.username, result)
    state = _state()
    state.tests[channel_id] = result
    return _page(request, db, viewer, state)


@router.post("/alerts/rules", include_in_schema=False)
def post_rule(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    channel_id: Text = "",
    site_id: Text = "",
    camera_id: Text = "",
    rule: Text = "",
    min_severity: Text = "low",
    active_from: Text = "",
    active_to: Text = "",
    weekdays: Annotated[list[str] | None, Form()] = None,
    escalation: Text = "",
) -> Response:
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    t = translator(request_lang(request))
    days = [d for d in (weekdays or []) if d]
    values = {
        "channel_id": channel_id,
        "site_id": site_id,
        "camera_id": camera_id,
        "rule": rule,
        "min_severity": min_severity,
        "active_from": active_from,
        "active_to": active_to,
        "weekdays": days,
        "escalation": escalation,
    }
    try:
        body = api.RuleIn.model_validate(
            {
                "channel_id": channel_id,
                "site_id": _optional(site_id),
                "camera_id": _optional(camera_id),
                "rule": _optional(rule),
                "min_severity": min_severity or "low",
                "active_from": _optional(active_from),
                "active_to": _optional(active_to),
                "weekdays": ",".join(days) if days else None,
                "escalation": _on(escalation),
            }
        )
    except ValidationError as exc:
        errors = validation_errors(t, exc, "hours")
        return _refused(request, db, viewer, "rule_new", errors, 422, values)
    try:
        api.create_rule(body, viewer.user, db)
    except ServiceError as exc:
        return _service_refused(request, db, viewer, "rule_new", exc, values)
    return _done("rule_created", "rules")


@router.post("/alerts/rules/{rule_id}/delete", include_in_schema=False)
def post_rule_delete(
    request: Request, db: DbDep, viewer: ActingViewerDep, rule_id: api.DbId
) -> Response:
    refused = _forbidden(request, viewer)
    if refused is not None:
        return refused
    try:
        api.delete_rule(rule_id, viewer.user, db)
    except ServiceError as exc:
        return _service_refused(request, db, viewer, "rules", exc)
    return _done("rule_deleted", "rules")


# --- the event page's "通知" section -------------------------------------------------


@dataclass(frozen=True)
class NotificationRow:
    channel_name: str
    channel_kind: str
    kind: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None


def notification_rows(db: Session, user: User, event_id: uuid.UUID) -> list[NotificationRow]:
    """The event's alerts and its hazard loop's messages, oldest first, for a user who
    may see the event (NotFound otherwise, as the event page)."""
    event = get_event(db, user=user, event_id=event_id)
    about = Notification.event_id == event_id
    if event.hazard is not None:
        about = or_(about, Notification.hazard_id == event.hazard.id)
    rows = db.scalars(select(Notification).where(about).order_by(Notification.id))
    return [
        NotificationRow(
            channel_name=n.channel.name,
            channel_kind=n.channel.kind.value,
            kind=n.kind.value if isinstance(n.kind, NotificationKind) else str(n.kind),
            status=n.status.value,
            attempts=n.attempts,
            last_error=n.last_error,
            sent_at=n.sent_at,
            next_attempt_at=n.next_attempt_at if n.status == NotificationStatus.PENDING else None,
        )
        for n in rows
    ]


def event_notifications(request: Request, user: User | None, event_id: uuid.UUID) -> list[Any]:
    """Template global of event.html (``event_notifications(request, user, ev.id)``): its
    own short read session, so the event page's route needs no change."""
    if user is None:
        return []
    with request.app.state.db.session() as db:
        reader = db.get(User, user.id)
        if reader is None:
            return []
        try:
            return notification_rows(db, reader, event_id)
        except ServiceError:
            return []


templates.env.globals["event_notifications"] = event_notifications
