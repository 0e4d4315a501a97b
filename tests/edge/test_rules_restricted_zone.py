"""restricted_zone: feet inside a restricted polygon (the boundary counts as inside)."""

from __future__ import annotations

from sitewatch.contract.events import EventPhase, Severity
from tests.edge.rules_support import Person, Stepper, phases, site_config

ZONES = {
    "restricted": [
        {"name": "pit", "polygon": [[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]},
        {"name": "crane", "polygon": [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9], [0.5, 0.9]]},
    ]
}
RULES = {"restricted_zone": {"min_duration_s": 1.0, "end_after_s": 1.0, "cooldown_s": 10}}


def stepper() -> Stepper:
    return Stepper(site_config(rules=RULES, zones=ZONES))


def test_inside_raises_with_the_zone_outside_does_not() -> None:
    s = stepper()
    inside, outside = Person(1, feet_xy=(0.4, 0.4)), Person(2, feet_xy=(0.1, 0.9))
    assert s.run(0.0, 0.5, 0.5, inside, outside) == []
    [start] = s.step(1.0, inside, outside)
    assert (start.phase, start.track_id, start.zone) == (EventPhase.START, 1, "pit")
    assert start.severity is Severity.HIGH  # restricted_zone default, kept with partial config
    assert start.distance is None


def test_on_the_boundary_counts_as_inside() -> None:
    s = stepper()
    events = s.run(0.0, 1.0, 0.5, Person(1, feet_xy=(0.6, 0.3)))
    assert phases(events) == [(EventPhase.START, 1, "pit")]


def test_one_event_per_zone_where_zones_overlap() -> None:
    s = stepper()
    events = s.run(0.0, 1.0, 0.5, Person(1, feet_xy=(0.55, 0.55)))
    assert sorted(phases(events), key=str) == [
        (EventPhase.START, 1, "crane"),
        (EventPhase.START, 1, "pit"),
    ]


def test_walking_out_ends_and_walking_into_another_zone_starts() -> None:
    s = stepper()
    [pit] = s.run(0.0, 1.0, 0.5, Person(1, feet_xy=(0.3, 0.3)))
    events = s.run(1.5, 2.5, 0.5, Person(1, feet_xy=(0.8, 0.8)))
    assert [(e.phase, e.zone) for e in events] == [
        (EventPhase.END, "pit"),
        (EventPhase.START, "crane"),
    ]
    assert events[0].event_id == pit.event_id
    assert events[0].ended_at == s.at(1.0)
    assert events[1].started_at == s.at(1.5)
