"""Local times and local days of the server's ``timezone`` setting (server.localtime)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sitewatch.server.localtime import day_range, day_start, format_time, local_day, zone

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_times_are_shown_local_with_the_offset() -> None:
    at = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    assert format_time(at, SHANGHAI) == "2026-11-20 07:30:00 +08:00"
    assert format_time(at.replace(tzinfo=None), SHANGHAI) == "2026-11-20 07:30:00 +08:00"
    assert format_time(at, ZoneInfo("Asia/Kathmandu")) == "2026-11-20 05:15:00 +05:45"
    assert format_time(at, ZoneInfo("America/St_Johns")) == "2026-11-19 20:00:00 -03:30"
    assert format_time(at, ZoneInfo("UTC")) == "2026-11-19 23:30:00 +00:00"
    assert format_time(None, SHANGHAI) == "—"


def test_local_days() -> None:
    assert local_day(datetime(2026, 5, 1, 23, 30, tzinfo=UTC), SHANGHAI) == date(2026, 5, 2)
    assert day_range(date(2026, 5, 2), date(2026, 5, 3), SHANGHAI) == (
        datetime(2026, 5, 1, 16, tzinfo=UTC),
        datetime(2026, 5, 3, 16, tzinfo=UTC),
    )
    berlin = ZoneInfo("Europe/Berlin")  # 23-hour and 25-hour days
    spring = day_range(date(2026, 3, 29), date(2026, 3, 29), berlin)
    autumn = day_range(date(2026, 10, 25), date(2026, 10, 25), berlin)
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_a_skipped_midnight_starts_the_day_at_the_clock_change() -> None:
    """Santiago moves from 00:00 to 01:00 on 6 September 2026 (at 04:00Z)."""
    santiago = ZoneInfo("America/Santiago")
    start = day_start(date(2026, 9, 6), santiago)
    assert start == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert local_day(start, santiago) == date(2026, 9, 6)
    assert local_day(start - timedelta(microseconds=1), santiago) == date(2026, 9, 5)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "/etc/passwd", "Asia"])
def test_unknown_zones_are_refused_with_the_name_of_the_setting(name: str) -> None:
    with pytest.raises(ValueError, match=r"^tz: unknown time zone"):
        zone(name, "tz")
