"""fall_edge: feet within an edge's danger distance; severity rises without a helmet."""

from __future__ import annotations

import pytest

from sitewatch.contract.events import EventPhase, Severity
from tests.edge.rules_support import Person, Stepper, phases, site_config

RULES = {"fall_edge": {"min_duration_s": 1.0, "end_after_s": 1.0}}
NORM_EDGE = {
    "edges": [{"name": "slab", "polyline": [[0.0, 0.5], [1.0, 0.5]], "danger_distance": 0.1}]
}
#: Ground = image scaled 10 m x 20 m; the edge is the ground line y = 10 m.
METRE_EDGE = {
    "calibration": {
        "image_points": [[0, 0], [1, 0], [1, 1], [0, 1]],
        "ground_points_m": [[0, 0], [10, 0], [10, 20], [0, 20]],
    },
    "edges": [{"name": "slab", "polyline": [[0.0, 0.5], [1.0, 0.5]], "danger_distance_m": 2.5}],
}


def test_near_the_edge_raises_with_distance_in_normalised_units() -> None:
    s = Stepper(site_config(rules=RULES, zones=NORM_EDGE))
    near, far = Person(1, feet_xy=(0.3, 0.45)), Person(2, feet_xy=(0.3, 0.7))
    assert s.run(0.0, 0.5, 0.5, near, far) == []
    [start] = s.step(1.0, near, far)
    assert (start.phase, start.track_id, start.zone) == (EventPhase.START, 1, "slab")
    assert start.severity is Severity.HIGH
    assert start.distance == pytest.approx(0.05)
    assert start.distance_unit == "norm"


def test_exactly_at_the_danger_distance_counts() -> None:
    zones = {
        "edges": [{"name": "slab", "polyline": [[0.0, 0.5], [1.0, 0.5]], "danger_distance": 0.25}]
    }
    s = Stepper(site_config(rules=RULES, zones=zones))
    at_limit = Person(1, feet_xy=(0.5, 0.75))  # 0.25 away, exact in binary
    beyond = Person(2, feet_xy=(0.5, 0.875))  # 0.375 away
    events = s.run(0.0, 1.0, 0.5, at_limit, beyond)
    assert phases(events) == [(EventPhase.START, 1, "slab")]
    assert events[0].distance == 0.25


def test_distance_in_metres_through_the_calibration() -> None:
    s = Stepper(site_config(rules=RULES, zones=METRE_EDGE))
    near = Person(1, feet_xy=(0.5, 0.6))  # ground y = 12 m: 2 m from the edge
    far = Person(2, feet_xy=(0.5, 0.65))  # ground y = 13 m: 3 m
    [start] = s.run(0.0, 1.0, 0.5, near, far)
    assert (start.track_id, start.distance_unit) == (1, "m")
    assert start.distance == pytest.approx(2.0, abs=1e-4)


def test_severity_rises_without_a_helmet_and_never_drops() -> None:
    s = Stepper(site_config(rules=RULES, zones=NORM_EDGE))
    [start] = s.run(0.0, 1.0, 0.5, Person(1, feet_xy=(0.3, 0.45), helmet="helmet"))
    assert start.severity is Severity.HIGH
    [update] = s.step(1.5, Person(1, feet_xy=(0.3, 0.45), helmet="bare"))
    assert (update.phase, update.event_id) == (EventPhase.UPDATE, start.event_id)
    assert update.severity is Severity.CRITICAL
    assert s.run(2.0, 3.0, 0.5, Person(1, feet_xy=(0.3, 0.45), helmet="helmet")) == []
    [end] = s.run(3.5, 4.0, 0.5)
    assert (end.phase, end.severity) == (EventPhase.END, Severity.CRITICAL)


def test_bare_from_the_start_uses_severity_without_helmet() -> None:
    rules = {
        "fall_edge": {"min_duration_s": 0.0, "severity_without_helmet": "high", "severity": "low"}
    }
    s = Stepper(site_config(rules=rules, zones=NORM_EDGE))
    [start] = s.step(0.0, Person(1, feet_xy=(0.3, 0.45), helmet="bare"))
    assert start.severity is Severity.HIGH
