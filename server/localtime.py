"""Local time of the reviewers: the server's ``timezone`` setting (an IANA name).

Times are stored and sent by the API in UTC; the review UI shows them in the local zone
with the offset, and every "day" (date filters, dashboard rows, party-member presence) is
a local day: from local midnight to the next local midnight, 23 or 25 hours long on the
days a zone changes its clocks. Days are worked out in Python from the UTC instants, so
SQLite and PostgreSQL count the same (no SQL ``date()``, which would give UTC days).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str, what: str = "timezone") -> ZoneInfo:
    """The zone called ``name``; ValueError naming ``what`` when there is none such."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"{what}: unknown time zone {name!r} (use an IANA name such as 'Asia/Shanghai')"
        ) from exc


def _aware(value: datetime) -> datetime:
    """A naive value is UTC (the database's convention)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def to_local(value: datetime, tz: tzinfo) -> datetime:
    """``value`` in ``tz``; at the ends of the calendar (a stored 9999-12-31T16:00Z is
    year 10000 in UTC+14) the nearest representable instant, never an OverflowError."""
    try:
        return _aware(value).astimezone(tz)
    except OverflowError:
        edge = datetime.max if _aware(value).year > 1 else datetime.min
        return edge.replace(tzinfo=tz)


def local_day(value: datetime, tz: ZoneInfo) -> date:
    """The local date of the instant ``value`` in ``tz``."""
    return to_local(value, tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (in UTC) of the local day ``day`` in ``tz``.

    A midnight skipped by a clock change is read with the offset before the change,
    which is the instant of the change: still the first instant of that day.
    """
    try:
        return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
    except OverflowError:  # the first or last day of the calendar
        return (datetime.max if day.year > 1 else datetime.min).replace(tzinfo=UTC)


def day_range(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants ``[from, to)`` covering the local days ``start`` to ``end`` inclusive."""
    after = end + timedelta(days=1) if end < date.max else end
    return day_start(start, tz), day_start(after, tz)


def offset_text(value: datetime) -> str:
    """The UTC offset of an aware datetime as ``+08:00`` (``+05:45``, ``-03:30``)."""
    offset = value.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_time(value: datetime | None, tz: ZoneInfo) -> str:
    """Local time to the second with its offset: ``2026-11-20 07:30:00 +08:00``."""
    if value is None:
        return "—"
    local = to_local(value, tz)
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {offset_text(local)}"
