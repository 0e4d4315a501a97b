"""person: one low-severity event per tracked person; off unless the site turns it on."""

from __future__ import annotations

from sitewatch.contract.events import EventPhase, HelmetState, RuleKind, Severity
from sitewatch.edge.config import SiteConfig
from tests.edge.rules_support import Person, Stepper, phases, site_config

RULES = {"person": {"min_duration_s": 1.0, "end_after_s": 1.0}}


def test_each_tracked_person_gets_one_event_with_start_and_end() -> None:
    stepper = Stepper(site_config(rules=RULES))
    people = (
        Person(1, helmet="bare", feet_xy=(0.2, 0.9)),
        Person(2, helmet="helmet", colour="red", role="party_member", feet_xy=(0.6, 0.9)),
    )
    stepper.run(0.0, 5.0, 0.5, *people)
    stepper.run(5.5, 8.0, 0.5)  # both leave: each event ends once, 1 s after last seen
    assert phases(stepper.events) == [
        (EventPhase.START, 1, None),
        (EventPhase.START, 2, None),
        (EventPhase.END, 1, None),
        (EventPhase.END, 2, None),
    ]
    start_1, start_2 = stepper.events[:2]
    assert start_1.rule is RuleKind.PERSON and start_1.severity is Severity.LOW
    assert start_1.helmet_state is HelmetState.BARE
    assert start_2.role == "party_member"
    assert stepper.events[2].ended_at == stepper.at(5.0)


def test_a_glimpse_shorter_than_min_duration_raises_nothing() -> None:
    stepper = Stepper(site_config(rules=RULES))
    stepper.run(0.0, 0.5, 0.5, Person(1))
    stepper.run(2.0, 4.0, 0.5)
    assert stepper.events == []


def test_off_by_default_on_a_site_and_not_a_hazard() -> None:
    site = SiteConfig.model_validate(
        {"site": {"id": "s"}, "cameras": [{"id": "c", "source": "v.mp4"}]}
    )
    assert not site.rules.person.enabled
    assert all(rule.kind is not RuleKind.PERSON for rule in Stepper(site).engine.rules)
    assert not RuleKind.PERSON.is_hazard and RuleKind.NO_HELMET.is_hazard
