"""The engine on the shipped calibrated example: several rules on one stream of frames."""

from __future__ import annotations

from pathlib import Path

from sitewatch.contract.events import EventPhase, RuleKind, Severity
from sitewatch.edge.config import load_config
from tests.edge.rules_support import Person, Stepper

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "examples" / "calibrated-site.yaml"


def test_calibrated_example_raises_each_hazard_once() -> None:
    site = load_config(EXAMPLE)
    stepper = Stepper(site, party_member_ids={"pm-7"})
    in_crane_zone = Person(1, feet_xy=(0.8, 0.7), helmet="helmet", colour="yellow")
    bare_at_edge = Person(2, feet_xy=(0.5, 0.42), helmet="bare")
    member_in_yellow = Person(3, feet_xy=(0.3, 0.7), colour="yellow", worker_id="pm-7")
    events = stepper.run(0.0, 10.0, 0.5, in_crane_zone, bare_at_edge, member_in_yellow)
    summary = [(e.phase, e.rule, e.track_id, e.zone, e.updated_at) for e in events]
    assert summary == [
        (EventPhase.START, RuleKind.FALL_EDGE, 2, "north-slab-edge", stepper.at(1.0)),
        (EventPhase.START, RuleKind.RESTRICTED_ZONE, 1, "tower-crane-swing", stepper.at(1.0)),
        (EventPhase.START, RuleKind.NO_HELMET, 2, None, stepper.at(2.0)),
        (EventPhase.START, RuleKind.PARTY_MEMBER_HELMET, 3, None, stepper.at(5.0)),
    ]
    fall = events[0]
    assert fall.severity is Severity.CRITICAL  # bare head at the edge
    assert fall.distance_unit == "m"
    assert fall.distance is not None and 0.0 < fall.distance < 2.0
    assert {e.site_id for e in events} == {"tower-b"}
    assert {e.camera_id for e in events} == {"slab-7f"}

    ends = stepper.finish(10.5)
    assert sorted((e.rule.value, e.track_id) for e in ends) == [
        ("fall_edge", 2),
        ("no_helmet", 2),
        ("party_member_helmet", 3),
        ("restricted_zone", 1),
    ]
    assert {e.event_id for e in ends} == {e.event_id for e in events}
    assert all(e.ended_at == stepper.at(10.0) for e in ends)
