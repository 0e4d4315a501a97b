"""CSV of the filtered event list, in the page's language (issue 18).

The page's filters include hazard states and "overdue", which the core's export filter
does not know, so the rows come from :func:`server.ui.queries.iter_events_for_csv`.
Unlike the core's export (``server.services.export``: codes and ISO 8601, for
programs), this CSV is for people opening it in Excel or WPS: headers and values in
words of the page's language (``?lang=en`` gives English), times as local
``2026-12-02 12:29:01`` (the zone named in the time columns' headers), numbers
rounded, distances with their unit ("1.2 米", "画面比例 0.05"), and every note of the
hazard loop (verdict note and reason, responsible, deadline, assignment note, evidence
note, acceptance note, who and when). The ids stay in their own columns next to the
display names; a UTF-8 BOM comes first, for Excel; a cell of free text that starts like
a formula (= + - @) is defused with a leading apostrophe.

The generator opens its own database session: a streamed response outlives the
request's dependencies.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from sitewatch.server.db.models import EventRecord, User
from sitewatch.server.localtime import to_local
from sitewatch.server.ui.i18n import DEFAULT_LANG, Translator, label, translator
from sitewatch.server.ui.queries import EventFilters, iter_events_for_csv, site_and_camera_names
from sitewatch.server.ui.views import display_status, distance_text, is_overdue, rounded

#: Rows written between two chunks of the response.
CHUNK_ROWS = 500
#: The columns, by code (header ``csv.<code>`` of the catalogue); ids next to names.
CSV_COLUMNS: tuple[str, ...] = (
    "event_id",
    "site_id",
    "site_name",
    "camera_id",
    "camera_name",
    "rule",
    "severity",
    "status",
    "overdue",
    "phase",
    "started_at",
    "ended_at",
    "duration_s",
    "track_id",
    "helmet_state",
    "helmet_colour",
    "role",
    "worker_id",
    "zone",
    "distance",
    "confidence",
    "message",
    "review_status",
    "dismiss_reason",
    "review_note",
    "reviewed_by",
    "reviewed_at",
    "hazard_responsible",
    "hazard_deadline",
    "hazard_note",
    "evidence_note",
    "evidence_by",
    "evidence_at",
    "decision_note",
    "decided_by",
    "decided_at",
)
#: Columns holding a local time (their header names the zone).
TIME_COLUMNS = frozenset(
    {"started_at", "ended_at", "reviewed_at", "hazard_deadline", "evidence_at", "decided_at"}
)
#: Columns holding a number (never defused: "-3" is a number, not a formula).
NUMBER_COLUMNS = frozenset({"duration_s", "track_id", "confidence"})
#: Leading characters that make a spreadsheet treat a cell as a formula (as the core's).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """``2026-12-02 12:29:01`` in ``tz``: to the second, no offset (Excel reads it as a
    date and time); empty for none."""
    if value is None:
        return ""
    return to_local(value, tz).strftime("%Y-%m-%d %H:%M:%S")


def header_row(t: Translator, tz: ZoneInfo) -> list[str]:
    """The headers in the language of ``t``; the time columns name the zone."""
    return [
        t("csv.time_header", name=t(f"csv.{c}"), zone=str(tz))
        if c in TIME_COLUMNS
        else t(f"csv.{c}")
        for c in CSV_COLUMNS
    ]


def _words(t: Translator, group: str, value: object) -> str:
    """An enum-like value in words; empty for none."""
    if value is None or value == "":
        return ""
    return label(t, group, value)


def user_names(db: Session) -> dict[int, str]:
    """Every user's display name (else the username), for the who-columns."""
    rows = db.execute(select(User.id, User.display_name, User.username))
    return {row.id: row.display_name or row.username for row in rows}


def event_cells(
    event: EventRecord,
    *,
    t: Translator,
    tz: ZoneInfo,
    now: datetime,
    site_name: str,
    camera_name: str,
    names: dict[int, str],
) -> list[str]:
    """One event's row, in the order of :data:`CSV_COLUMNS`."""
    hazard = event.hazard

    def who(user_id: int | None) -> str:
        return names.get(user_id, "") if user_id is not None else ""

    duration = (event.ended_at - event.started_at).total_seconds() if event.ended_at else None
    values: dict[str, str | None] = {
        "event_id": str(event.event_id),
        "site_id": event.site_id,
        "site_name": site_name,
        "camera_id": event.camera_id,
        "camera_name": camera_name,
        "rule": _words(t, "rule", event.rule),
        "severity": _words(t, "severity", event.severity),
        "status": _words(t, "status", display_status(event)),
        "overdue": t("bool.yes") if is_overdue(event, now) else "",
        "phase": _words(t, "event_phase", event.status),
        "started_at": local_time(event.started_at, tz),
        "ended_at": local_time(event.ended_at, tz),
        "duration_s": rounded(duration, 1),
        "track_id": str(event.track_id) if event.track_id is not None else "",
        "helmet_state": _words(t, "helmet", event.helmet_state),
        "helmet_colour": _words(t, "colour", event.helmet_colour),
        "role": _words(t, "role", event.role),
        "worker_id": event.worker_id,
        "zone": event.zone,
        "distance": distance_text(t, event.distance, event.distance_unit),
        "confidence": rounded(event.confidence),
        "message": event.message,
        "review_status": _words(t, "status", event.review_status),
        "dismiss_reason": _words(t, "reason", event.dismiss_reason),
        "review_note": event.review_note,
        "reviewed_by": who(event.reviewed_by_id),
        "reviewed_at": local_time(event.reviewed_at, tz),
        "hazard_responsible": hazard.responsible if hazard else None,
        "hazard_deadline": local_time(hazard.deadline, tz) if hazard else None,
        "hazard_note": hazard.note if hazard else None,
        "evidence_note": hazard.evidence_note if hazard else None,
        "evidence_by": who(hazard.evidence_by_id) if hazard else None,
        "evidence_at": local_time(hazard.evidence_at, tz) if hazard else None,
        "decision_note": hazard.decision_note if hazard else None,
        "decided_by": who(hazard.decided_by_id) if hazard else None,
        "decided_at": local_time(hazard.decided_at, tz) if hazard else None,
    }
    cells = []
    for column in CSV_COLUMNS:
        cell = values[column] or ""
        cells.append(cell if column in NUMBER_COLUMNS else _text(cell))
    return cells


def csv_chunks(
    database: Any,
    *,
    user_id: int,
    filters: EventFilters,
    now: datetime,
    tz: ZoneInfo,
    lang: str = DEFAULT_LANG,
) -> Iterator[str]:
    """The header, then the rows in chunks of :data:`CHUNK_ROWS` (BOM first, for Excel),
    in ``lang`` (the page's language: the route passes ``request_lang(request)``)."""
    t = translator(lang)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header_row(t, tz))
    with database.session() as db:
        user = db.get(User, user_id)
        if user is None:
            return
        sites, cameras = site_and_camera_names(db, user)
        names = user_names(db)
        for index, event in enumerate(
            iter_events_for_csv(db, user=user, filters=filters, now=now, tz=tz), start=1
        ):
            row = event_cells(
                event,
                t=t,
                tz=tz,
                now=now,
                site_name=sites.get(event.site_id, event.site_id),
                camera_name=cameras.get((event.site_id, event.camera_id), event.camera_id),
                names=names,
            )
            writer.writerow(row)
            if index % CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
