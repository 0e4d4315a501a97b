"""Checks that keep values the database cannot store out of it, as clear 422 errors.

Pydantic accepts some values that SQLite or PostgreSQL refuse: integers beyond 64 bits,
NaN or infinite floats in JSON columns, NUL characters in text (PostgreSQL), datetimes
whose UTC time leaves years 1..9999.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sitewatch.contract.events import Event
from sitewatch.server.db.types import as_utc
from sitewatch.server.services.errors import Invalid

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC, or Invalid naming the field when it cannot be converted."""
    try:
        return as_utc(value)
    except OverflowError as exc:
        raise Invalid(f"{name}: {value.isoformat()} is out of range in UTC") from exc


def optional_utc(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else utc(value, name)


def text(value: str | None, name: str) -> str | None:
    if value is not None and "\x00" in value:
        raise Invalid(f"{name}: NUL characters are not allowed")
    return value


def _finite(values: Iterable[float | None], name: str) -> None:
    if any(v is not None and not math.isfinite(v) for v in values):
        raise Invalid(f"{name}: numbers must be finite")


@dataclass(frozen=True)
class TimeWindow:
    """Event times the server accepts: around its own clock."""

    max_future: timedelta
    max_age: timedelta


def check_event_times(event: Event, window: TimeWindow, now: datetime) -> None:
    """Invalid when a time lies outside the window or ends before the event started."""
    started = utc(event.started_at, "started_at")
    earliest, latest = now - window.max_age, now + window.max_future
    for name in ("started_at", "updated_at", "ended_at"):
        value = optional_utc(getattr(event, name), name)
        if value is None:
            continue
        if not earliest <= value <= latest:
            raise Invalid(
                f"{name} {value.isoformat()} is outside the accepted window "
                f"{earliest.isoformat(timespec='seconds')} .. "
                f"{latest.isoformat(timespec='seconds')} (the server's clock; check the "
                "box's clock)"
            )
        if value < started:
            raise Invalid(f"{name} {value.isoformat()} is before started_at {started.isoformat()}")


def check_event(event: Event) -> None:
    """Invalid if ``event`` holds a value the database cannot store."""
    if event.track_id is not None and not INT64_MIN <= event.track_id <= INT64_MAX:
        raise Invalid(f"track_id {event.track_id} does not fit in 64 bits")
    if event.frame_wh is not None and not all(0 <= v <= INT64_MAX for v in event.frame_wh):
        raise Invalid("frame_wh: sizes must be >= 0 and fit in 64 bits")
    _finite(event.bbox_xyxy or (), "bbox_xyxy")
    _finite((event.distance, event.confidence), "distance/confidence")
    for name in ("started_at", "updated_at", "ended_at"):
        optional_utc(getattr(event, name), name)
    for name in ("zone", "role", "worker_id", "message", "snapshot", "clip", "face_thumbnail"):
        text(getattr(event, name), name)
