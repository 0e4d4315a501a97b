"""The English messages of the services, validators and media checks in the page's
language (issue 18).

The core's services raise :class:`~server.services.errors.ServiceError` with English
messages (the JSON API answers them as they are). A page shows them through
:func:`translate`: the first pattern of :data:`PATTERNS` that matches gives a catalogue
key, its named groups the key's fields (a field name, a role, a status, a local time
are put in words). A message no pattern knows is shown as a generic sentence of its
HTTP status, with the original text kept in a ``<details>`` element
(:func:`message_html`), so nothing a user could report is lost.

Messages left unmapped on purpose (they reach the box or the API, not a page): the
device-side event checks (``started_at ... is outside the accepted window``, identity
changes, ``track_id ... does not fit in 64 bits``), worker enrolment, user and device
administration (CLI), and the camera picture / zone checks (the zone editor has its own
texts, ``zed.err.*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from sitewatch.server.localtime import format_time
from sitewatch.server.ui.i18n import CATALOGUES, Translator, label

__all__ = [
    "PATTERNS",
    "Message",
    "is_translated",
    "message_html",
    "message_text",
    "translate",
]

#: The field names of the messages -> the catalogue key of their label.
FIELDS = {
    "date_from": "filter.date_from",
    "date_to": "filter.date_to",
    "site": "filter.site",
    "camera": "filter.camera",
    "rule": "filter.rule",
    "status": "filter.status",
    "deadline": "rect.deadline",
    "note": "verdict.note",
    "responsible": "rect.assignee",
    "correction": "msg.field.correction",
}
#: What a media message names ("evidence photo must be ...") -> its label.
WHATS = {
    "evidence photo": "rect.evidence_photo",
    "evidence": "rect.evidence_photo",
    "photo": "rect.evidence_photo",
    "snapshot": "event.snapshot",
    "clip": "event.clip",
    "face": "event.face",
    "snapshot_clean": "event.snapshot_clean",
}


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    key: str


def _p(regex: str, key: str) -> Pattern:
    return Pattern(re.compile(regex, re.S), key)


_ID = r"[0-9a-fA-F-]+"
#: English message -> catalogue key (first match wins); named groups are the fields.
PATTERNS: list[Pattern] = [
    # filters of the list and the dashboard (server/ui/queries.py, routes_dashboard.py)
    _p(r"^(?P<field>\w+): '(?P<value>.*)' is not a date \(YYYY-MM-DD\)$", "msg.not_a_date"),
    _p(r"^(?P<field>\w+): '(?P<value>.*)' is out of range$", "msg.date_out_of_range"),
    _p(r"^rule: unknown rule '(?P<value>.*)'$", "msg.unknown_rule"),
    _p(r"^status: unknown status '(?P<value>.*)'$", "msg.unknown_status"),
    _p(r"^(?P<field>\w+): longer than (?P<n>\d+) characters$", "msg.too_long"),
    _p(r"^date_to is before date_from$", "msg.date_order"),
    _p(r"^date range longer than (?P<n>\d+) days$", "msg.range_too_long"),
    # roles and access (services/access.py)
    _p(r"^user '(?P<user>.*)' \((?P<role>\w+)\) may not change anything$", "msg.read_only"),
    _p(r"^user '(?P<user>.*)' is not an admin$", "msg.admin_only"),
    # verdicts (services/events.py, routes_review.py)
    _p(r"^a dismissed event needs a reason$", "msg.reason_needed"),
    _p(r"^only a dismissed event takes a reason$", "msg.reason_only_dismissed"),
    _p(
        rf"^event {_ID} is (?P<status>\w+) already: only an admin can correct",
        "msg.admin_corrects",
    ),
    _p(r"^a corrected verdict needs the reason for the correction$", "msg.correction_needed"),
    _p(r"^a correction reason goes only with a changed verdict$", "msg.correction_unneeded"),
    _p(rf"^event {_ID} has a rectification under way", "msg.rect_under_way"),
    _p(r"^verdict must be confirm or dismiss", "msg.bad_choice"),
    _p(r"^decision must be accept or reject", "msg.bad_choice"),
    _p(r"^unknown dismiss reason '(?P<value>.*)'$", "msg.unknown_reason"),
    # the hazard loop (services/hazards.py)
    _p(rf"^event {_ID} must be confirmed before it is assigned$", "msg.confirm_first"),
    _p(r"^responsible person must not be empty$", "msg.responsible_empty"),
    _p(r"^responsible user (?P<id>\d+) not found or disabled$", "msg.responsible_missing"),
    _p(r"^user '(?P<user>.*)' \((?P<role>\w+)\) cannot rectify hazards$", "msg.cannot_rectify"),
    _p(r"^user '(?P<user>.*)' does not work on site '(?P<site>.*)'$", "msg.not_on_site"),
    _p(r"^deadline (?P<time>\S+) is in the past$", "msg.deadline_past"),
    _p(
        r"^user '(?P<user>.*)' \((?P<role>\w+)\) may not submit evidence",
        "msg.not_your_hazard",
    ),
    _p(
        rf"^rectification of event {_ID} is (?P<status>\w+); only submitted evidence",
        "msg.not_submitted",
    ),
    _p(rf"^rectification of event {_ID} is (?P<status>\w+)$", "msg.rect_closed"),
    _p(r"^rejecting evidence needs a note", "msg.reject_note"),
    _p(r"^you uploaded this evidence", "msg.four_eyes"),
    _p(rf"^event {_ID} has no rectification$", "msg.no_rectification"),
    # not found (services/access.py, events.py, media.py)
    _p(rf"^event {_ID} not found$", "msg.event_not_found"),
    _p(rf"^event {_ID} has no (?P<what>\w+)", "msg.media_missing"),
    _p(r"^(?P<thing>event|site|camera|hazard|user)\b.* not found$", "msg.not_found"),
    # checks of every text (services/validation.py)
    _p(r"^(?P<field>\w+): NUL characters are not allowed$", "msg.nul"),
    _p(r"^(?P<field>\w+): (?P<value>\S+) is out of range in UTC$", "msg.time_out_of_range"),
    # uploads (server/media.py, server/media_checks.py)
    _p(r"^(?P<what>.+?) must be (?P<wanted>.+) \(checked by its first bytes\)$", "msg.media_type"),
    _p(r"^(?P<what>.+?) is larger than the limit of (?P<bytes>\d+) bytes$", "msg.media_too_big"),
    _p(r"^(?P<what>.+?) is empty$", "msg.media_empty"),
    _p(
        r"^(?P<what>.+?) is (?P<w>\d+) x (?P<h>\d+) pixels, over the limit of "
        r"(?P<max_pixels>\d+) pixels and (?P<max_side>\d+) pixels a side",
        "msg.media_pixels",
    ),
    _p(r"^(?P<what>.+?) declares too many pixels", "msg.media_bomb"),
    _p(r"^(?P<what>.+?) declares an empty frame size", "msg.media_empty_frame"),
    _p(r"^(?P<what>.+?) is not a (?P<kinds>.+) image that can be read", "msg.media_unreadable"),
    _p(r"^(?P<what>.+?) is a broken or truncated (?P<kind>\w+)", "msg.media_broken"),
    _p(r"^(?P<what>.+?): its (?P<kind>\w+) cannot be converted to JPEG", "msg.media_convert"),
    # zones, CSRF
    _p(r"^zones of site '(?P<site>.*)' changed meanwhile", "msg.zones_changed"),
    _p(r"^CSRF token missing or wrong$", "error.csrf"),
]
#: The generic sentence of an unmapped message, by HTTP status.
GENERIC = {403: "msg.generic_403", 404: "msg.generic_404", 409: "msg.generic_409"}


@dataclass(frozen=True)
class Message:
    """A message in the page's language; ``original`` is the English text when no
    pattern knew it (shown under the generic sentence), else None."""

    text: str
    original: str | None = None
    key: str | None = None


def _time(raw: str, tz: ZoneInfo | None) -> str:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return format_time(value, tz) if tz is not None else raw


def _fields(t: Translator, groups: dict[str, str | None], tz: ZoneInfo | None) -> dict[str, str]:
    """The named groups of a match in words (field, role, status, what, time...)."""
    out: dict[str, str] = {}
    for name, raw in groups.items():
        value = raw or ""
        if name == "field":
            value = t(FIELDS[value]) if value in FIELDS else value
        elif name == "role":
            value = label(t, "user_role", value)
        elif name == "status":
            value = label(t, "status", value)
        elif name == "what":
            value = t(WHATS[value]) if value in WHATS else value
        elif name == "thing":
            value = label(t, "thing", value)
        elif name in ("wanted", "kinds"):
            kinds = re.split(r" or |, ", value)
            value = t("msg.or").join(k.removeprefix("image/").upper() for k in kinds)
        elif name == "time":
            value = _time(value, tz)
        elif name == "bytes":
            out["mb"] = f"{int(value) / 1_000_000:.1f}".removesuffix(".0")
        out[name] = value
    return out


def is_translated(text: str, lang: str) -> bool:
    """Whether ``text`` is already in ``lang``: a text of its catalogue, or Chinese
    writing on a Chinese page (a page passes its own translated sentences through)."""
    if text in CATALOGUES.get(lang, {}).values():
        return True
    return lang == "zh" and re.search(r"[\u4e00-\u9fff]", text) is not None


def translate(
    t: Translator,
    message: str,
    *,
    status: int = 400,
    lang: str | None = None,
    tz: ZoneInfo | None = None,
) -> Message:
    """``message`` (a service's, a validator's or a media check's English) in the
    language of ``t``; an unknown one as the generic sentence of ``status`` with the
    original kept. A text already in ``lang`` (see :func:`is_translated`) is kept."""
    message = message.strip().removeprefix("Value error, ")
    if lang is not None and is_translated(message, lang):
        return Message(message)
    for pattern in PATTERNS:
        found = pattern.regex.search(message)
        if found:
            return Message(t(pattern.key, **_fields(t, found.groupdict(), tz)), key=pattern.key)
    return Message(t(GENERIC.get(status, "msg.generic")), original=message)


def message_text(
    t: Translator,
    message: str,
    *,
    status: int = 400,
    lang: str | None = None,
    tz: ZoneInfo | None = None,
) -> str:
    """The translated text alone; an unmapped message with its original in brackets
    (for a form's error list, which has no room for a ``<details>``)."""
    found = translate(t, message, status=status, lang=lang, tz=tz)
    if found.original is None:
        return found.text
    return t("msg.with_detail", text=found.text, detail=found.original)


def message_html(t: Translator, found: Message) -> Markup:
    """The text; for an unmapped message, the original English in a ``<details>``."""
    if found.original is None:
        return Markup(escape(found.text))
    return Markup(
        '<span class="error-text">{}</span> <details class="error-detail">'
        "<summary>{}</summary><code>{}</code></details>"
    ).format(found.text, t("msg.detail_summary"), found.original)
