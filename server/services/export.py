"""CSV export of the filtered event list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from sitewatch.server.db.models import EventRecord, User
from sitewatch.server.localtime import to_local
from sitewatch.server.services.events import EventFilter, filtered_query

MAX_EXPORT_ROWS = 100_000
COLUMNS = (
    "event_id",
    "site_id",
    "camera_id",
    "rule",
    "severity",
    "status",
    "review_status",
    "dismiss_reason",
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
    "distance_unit",
    "message",
    "reviewed_by",
    "reviewed_at",
    "hazard_status",
    "hazard_responsible",
    "hazard_deadline",
)
#: Leading characters that make a spreadsheet treat a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object, tz: tzinfo | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (to_local(value, tz) if tz is not None else value).isoformat()
    text = str(getattr(value, "value", value))
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text  # CSV injection: keep the text, defuse the formula
    return text


def csv_row(event: EventRecord, *, tz: tzinfo | None = None) -> list[str]:
    """One event's cells; times in ISO 8601 with the offset, in UTC or else in ``tz``."""
    hazard = event.hazard
    duration = (event.ended_at - event.started_at).total_seconds() if event.ended_at else None
    values: list[object] = [
        event.event_id,
        event.site_id,
        event.camera_id,
        event.rule,
        event.severity,
        event.status,
        event.review_status,
        event.dismiss_reason,
        event.started_at,
        event.ended_at,
        duration,
        event.track_id,
        event.helmet_state,
        event.helmet_colour,
        event.role,
        event.worker_id,
        event.zone,
        event.distance,
        event.distance_unit,
        event.message,
        event.reviewed_by.username if event.reviewed_by else None,
        event.reviewed_at,
        hazard.status if hazard else None,
        hazard.responsible if hazard else None,
        hazard.deadline if hazard else None,
    ]
    return [_cell(v, tz) for v in values]


def export_events_csv(
    db: Session, *, user: User, filters: EventFilter, max_rows: int = MAX_EXPORT_ROWS
) -> Iterator[str]:
    """CSV text in chunks (header first), newest events first, at most ``max_rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    query = filtered_query(user, filters).limit(max_rows).execution_options(yield_per=500)
    for index, event in enumerate(db.scalars(query), start=1):
        writer.writerow(csv_row(event))
        if index % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
