"""post_unattended: nobody of a staffing role in the post, in working hours, site time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sitewatch.contract.events import EventPhase
from sitewatch.edge.config import WorkingHours
from sitewatch.edge.rules.post_unattended import is_working_time
from tests.edge.rules_support import Person, Stepper, phases, site_config

ZONES = {
    "posts": [
        {
            "name": "gate",
            "polygon": [[0.7, 0.6], [1.0, 0.6], [1.0, 1.0], [0.7, 1.0]],
            "max_unattended_s": 10,
        }
    ]
}
RULES = {
    "post_unattended": {
        "end_after_s": 1.0,
        "cooldown_s": 0.0,
        "working_hours": [{"start": "08:00", "end": "18:00", "weekdays": [1, 2, 3, 4, 5]}],
    }
}
STAFF = Person(1, feet_xy=(0.85, 0.8), colour="red", role="party_member")
STAFF_OUTSIDE = Person(2, feet_xy=(0.2, 0.8), colour="red", role="party_member")
WORKER_INSIDE = Person(3, feet_xy=(0.85, 0.8), colour="yellow", role="worker")


def stepper(t0: datetime = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)) -> Stepper:
    """t0 defaults to Monday 10:00 in Asia/Shanghai."""
    return Stepper(site_config(rules=RULES, zones=ZONES), t0=t0)


def test_unattended_for_max_unattended_s_starts_then_staffing_ends_it() -> None:
    s = stepper()
    assert s.run(0.0, 9.5, 0.5, STAFF_OUTSIDE, WORKER_INSIDE) == []
    [start] = s.step(10.0, STAFF_OUTSIDE, WORKER_INSIDE)
    assert (start.phase, start.track_id, start.zone) == (EventPhase.START, None, "gate")
    assert start.started_at == s.at(0.0)
    assert start.bbox_xyxy is None
    assert s.run(10.5, 12.0, 0.5) == []
    assert s.step(12.5, STAFF) == []  # staffed: the hazard is gone for 0.5 s
    [end] = s.step(13.0, STAFF)
    assert (end.phase, end.event_id, end.ended_at) == (EventPhase.END, start.event_id, s.at(12.0))


def test_a_staffed_post_raises_nothing() -> None:
    s = stepper()
    assert s.run(0.0, 60.0, 0.5, STAFF) == []


def test_brief_staffing_resets_nothing_a_long_one_does() -> None:
    s = stepper()
    s.run(0.0, 5.0, 0.5)
    s.step(5.5, STAFF)  # one frame of staff: the pending time goes on
    assert s.run(6.0, 9.5, 0.5) == []
    [start] = s.step(10.0)
    assert start.started_at == s.at(0.0)


def test_outside_working_hours_nothing() -> None:
    s = stepper(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))  # Monday 19:00 Shanghai
    assert s.run(0.0, 60.0, 1.0) == []
    s = stepper(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))  # Sunday 10:00 Shanghai
    assert s.run(0.0, 60.0, 1.0) == []


def test_working_hours_are_read_in_the_site_timezone() -> None:
    # 00:30 UTC is outside 08:00-18:00 in UTC but 08:30 in Shanghai: the post is watched.
    s = stepper(datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    events = s.run(0.0, 10.0, 1.0)
    assert phases(events) == [(EventPhase.START, None, "gate")]
    # The same instants for a site in UTC: before working hours, nothing.
    site = site_config(rules=RULES, zones=ZONES, timezone="UTC")
    s = Stepper(site, t0=datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    assert s.run(0.0, 10.0, 1.0) == []


def test_the_end_of_working_hours_ends_the_event() -> None:
    s = stepper(datetime(2026, 11, 23, 9, 59, 40, tzinfo=UTC))  # 17:59:40 Shanghai
    [start] = s.run(0.0, 10.0, 1.0)
    assert start.phase is EventPhase.START
    assert s.run(11.0, 19.0, 1.0) == []  # 17:59:51 .. 17:59:59, still working hours
    [end] = s.step(20.0)  # 18:00:00: not working time, unseen for end_after_s
    assert (end.phase, end.ended_at) == (EventPhase.END, s.at(19.0))  # 17:59:59


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")), True),
        (datetime(2026, 11, 23, 7, 59, 59, tzinfo=ZoneInfo("Asia/Shanghai")), False),
        (datetime(2026, 11, 23, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai")), False),
        (datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=9))), True),  # 08:00
        (datetime(2026, 11, 28, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")), False),  # Saturday
    ],
)
def test_is_working_time(now: datetime, expected: bool) -> None:
    hours = [WorkingHours(start=time(8), end=time(18), weekdays=[1, 2, 3, 4, 5])]
    assert is_working_time(now, hours, ZoneInfo("Asia/Shanghai")) is expected


def test_is_working_time_refuses_naive_times() -> None:
    hours = [WorkingHours(start=time(8), end=time(18))]
    with pytest.raises(ValueError, match="timezone-aware"):
        is_working_time(datetime(2026, 11, 23, 9), hours, ZoneInfo("Asia/Shanghai"))


def test_a_post_with_its_own_staffing_hours_follows_them() -> None:
    """The night gate is staffed 20:00-23:00 (its own hours); the day post keeps the
    rule's 08:00-18:00."""
    night_gate = {**ZONES["posts"][0], "name": "night-gate", "hours": [
        {"start": "20:00", "end": "23:00"}]}  # fmt: skip
    zones = {"posts": [ZONES["posts"][0], night_gate]}
    at_ten = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 Shanghai
    s = Stepper(site_config(rules=RULES, zones=zones), t0=at_ten)
    assert phases(s.run(0.0, 10.0, 1.0)) == [(EventPhase.START, None, "gate")]
    at_nine_pm = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # Monday 21:00 Shanghai
    s = Stepper(site_config(rules=RULES, zones=zones), t0=at_nine_pm)
    assert phases(s.run(0.0, 10.0, 1.0)) == [(EventPhase.START, None, "night-gate")]


def test_staffing_hours_are_checked() -> None:
    from pydantic import ValidationError

    from sitewatch.zones.config import CameraZones

    bad = {**ZONES["posts"][0], "hours": [{"start": "23:00", "end": "20:00"}]}
    with pytest.raises(ValidationError, match="must be after start"):
        CameraZones.model_validate({"posts": [bad]})
