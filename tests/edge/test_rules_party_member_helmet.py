"""party_member_helmet: an enrolled party member seen without a red helmet."""

from __future__ import annotations

from sitewatch.contract.events import EventPhase, HelmetColour
from tests.edge.rules_support import Person, Stepper, phases, site_config

RULES = {"party_member_helmet": {"min_duration_s": 2.0, "end_after_s": 1.0}}


def test_member_in_a_yellow_helmet_or_bare_raises_red_does_not() -> None:
    s = Stepper(site_config(rules=RULES), party_member_ids={"pm-1", "pm-2", "pm-3"})
    people = (
        Person(1, worker_id="pm-1", colour="red", feet_xy=(0.1, 0.9)),
        Person(2, worker_id="pm-2", colour="yellow", feet_xy=(0.3, 0.9)),
        Person(3, worker_id="pm-3", helmet="bare", feet_xy=(0.5, 0.9)),
        Person(4, worker_id="w-9", colour="yellow", feet_xy=(0.7, 0.9)),  # not a member
        Person(5, worker_id="", helmet="bare", feet_xy=(0.9, 0.9)),  # not recognised
    )
    assert s.run(0.0, 1.5, 0.5, *people) == []
    events = s.step(2.0, *people)
    assert phases(events) == [(EventPhase.START, 2, None), (EventPhase.START, 3, None)]
    assert events[0].worker_id == "pm-2"
    assert events[0].helmet_colour is HelmetColour.YELLOW


def test_unknown_colour_or_state_raises_nothing() -> None:
    s = Stepper(site_config(rules=RULES), party_member_ids={"pm-1"})
    assert s.run(0.0, 5.0, 0.5, Person(1, worker_id="pm-1", colour="")) == []
    assert s.run(5.5, 10.0, 0.5, Person(1, worker_id="pm-1", helmet="unknown")) == []


def test_member_ids_are_read_through_a_callable_each_frame() -> None:
    members: set[str] = set()
    s = Stepper(site_config(rules=RULES), party_member_ids=lambda: members)
    yellow = Person(1, worker_id="pm-1", colour="yellow")
    assert s.run(0.0, 3.0, 0.5, yellow) == []
    members.add("pm-1")  # enrolled while running
    assert s.run(3.5, 5.0, 0.5, yellow) == []
    [start] = s.step(5.5, yellow)
    assert start.started_at == s.at(3.5)
