"""no_helmet: bare heads of tracked people; silence when helmet info is missing."""

from __future__ import annotations

import numpy as np

from sitewatch.contract.events import EventPhase, HelmetState, Severity
from sitewatch.edge.detections import CLASS_NAME
from tests.edge.rules_support import FRAME_WH, Person, Stepper, detections, phases, site_config

RULES = {"no_helmet": {"min_duration_s": 1.0, "end_after_s": 1.0, "severity": "high"}}


def test_bare_head_raises_helmet_and_unknown_do_not() -> None:
    stepper = Stepper(site_config(rules=RULES))
    people = (
        Person(1, helmet="bare", feet_xy=(0.1, 0.9)),
        Person(2, helmet="helmet", feet_xy=(0.3, 0.9)),
        Person(3, helmet="unknown", feet_xy=(0.5, 0.9)),
        Person(4, helmet="", feet_xy=(0.7, 0.9)),
        Person(5, helmet="nonsense", feet_xy=(0.9, 0.9)),
    )
    events = stepper.run(0.0, 5.0, 0.5, *people)
    assert phases(events) == [(EventPhase.START, 1, None)]
    assert events[0].severity is Severity.HIGH
    assert events[0].helmet_state is HelmetState.BARE


def test_model_without_helmet_classes_raises_nothing() -> None:
    stepper = Stepper(site_config(rules=RULES))
    for k in range(20):
        dets = detections(Person(1, helmet="bare"), with_data=False)  # COCO-only model
        assert stepper.engine.evaluate(dets, stepper.at(k * 0.5), FRAME_WH) == []


def test_people_without_track_ids_are_not_followed() -> None:
    stepper = Stepper(site_config(rules=RULES))
    assert stepper.run(0.0, 5.0, 0.5, Person(None, helmet="bare")) == []


def test_disabled_rule_does_nothing() -> None:
    rules = {"no_helmet": {"min_duration_s": 0.0}}
    site = site_config(rules=rules)
    site.rules.no_helmet.enabled = False
    stepper = Stepper(site)
    assert stepper.run(0.0, 5.0, 0.5, Person(1, helmet="bare")) == []
    assert stepper.engine.rules == []


def test_boxes_of_other_classes_are_ignored() -> None:
    stepper = Stepper(site_config(rules={"no_helmet": {"min_duration_s": 0.0}}))
    dets = detections(Person(1, helmet="bare"), Person(2, helmet="bare"))
    dets.data[CLASS_NAME] = np.array(["person", "head"])
    events = stepper.engine.evaluate(dets, stepper.at(0.0), FRAME_WH)
    assert phases(events) == [(EventPhase.START, 1, None)]


def test_update_when_the_worker_is_recognised() -> None:
    stepper = Stepper(site_config(rules=RULES))
    [start] = stepper.run(0.0, 1.0, 0.5, Person(1, helmet="bare"))
    assert start.worker_id is None
    [update] = stepper.step(1.5, Person(1, helmet="bare", worker_id="w-42"))
    assert (update.phase, update.event_id, update.worker_id) == (
        EventPhase.UPDATE,
        start.event_id,
        "w-42",
    )
    assert stepper.run(2.0, 4.0, 0.5, Person(1, helmet="bare", worker_id="w-42")) == []


def test_odd_values_from_earlier_stages_do_not_break_events() -> None:
    stepper = Stepper(site_config(rules={"no_helmet": {"min_duration_s": 0.0}}))
    dets = detections(Person(1, helmet="bare", worker_id="w" * 100))
    dets.confidence = np.array([np.nan], dtype=np.float32)
    [start] = stepper.engine.evaluate(dets, stepper.at(0.0), FRAME_WH)
    assert start.worker_id == "w" * 64
    assert start.confidence is None
