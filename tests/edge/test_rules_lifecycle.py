"""The shared event life (persistence, gap tolerance, end, cooldown, track loss), stepped
frame by frame through the no_helmet rule: min_duration 1 s, end_after 1 s, cooldown 5 s."""

from __future__ import annotations

from datetime import datetime

import pytest

from sitewatch.contract.events import EventPhase, RuleKind
from tests.edge.rules_support import Person, Stepper, phases, site_config

BARE_7 = Person(7, helmet="bare")
BARE_8 = Person(8, helmet="bare", feet_xy=(0.2, 0.9))


@pytest.fixture
def stepper() -> Stepper:
    rules = {"no_helmet": {"min_duration_s": 1.0, "end_after_s": 1.0, "cooldown_s": 5.0}}
    return Stepper(site_config(rules=rules))


def test_nothing_before_persistence_then_one_start(stepper: Stepper) -> None:
    assert stepper.step(0.0, BARE_7) == []
    assert stepper.step(0.5, BARE_7) == []
    [start] = stepper.step(1.0, BARE_7)
    assert (start.phase, start.rule, start.track_id) == (EventPhase.START, RuleKind.NO_HELMET, 7)
    assert start.started_at == stepper.at(0.0)  # when the hazard was first seen
    assert start.updated_at == stepper.at(1.0)
    assert (start.site_id, start.camera_id) == ("site-1", "cam")
    assert start.bbox_xyxy == (480.0, 800.0, 520.0, 900.0)
    assert start.frame_wh == (1000, 1000)
    assert start.confidence == pytest.approx(0.9)
    assert start.ended_at is None


def test_one_event_per_person_not_per_frame(stepper: Stepper) -> None:
    events = stepper.run(0.0, 30.0, 0.5, BARE_7)
    assert phases(events) == [(EventPhase.START, 7, None)]


def test_one_missed_frame_neither_ends_nor_restarts(stepper: Stepper) -> None:
    stepper.run(0.0, 2.0, 0.5, BARE_7)
    assert stepper.step(2.5) == []  # the person was missed in one frame
    assert stepper.run(3.0, 5.0, 0.5, BARE_7) == []
    assert phases(stepper.events) == [(EventPhase.START, 7, None)]


def test_end_after_the_hazard_is_gone_for_end_after_s(stepper: Stepper) -> None:
    [start] = stepper.run(0.0, 1.0, 0.5, BARE_7)
    assert stepper.step(1.5, Person(7, helmet="helmet")) == []  # gone 0.5 s
    [end] = stepper.step(2.0, Person(7, helmet="helmet"))  # gone 1.0 s
    assert end.phase is EventPhase.END
    assert end.event_id == start.event_id
    assert end.started_at == stepper.at(0.0)
    assert end.ended_at == stepper.at(1.0)  # the last time it was seen
    assert end.updated_at == stepper.at(2.0)
    assert end.duration_s == 1.0


def test_cooldown_blocks_a_restart_then_a_new_event(stepper: Stepper) -> None:
    [start] = stepper.run(0.0, 1.0, 0.5, BARE_7)
    [end] = stepper.run(1.5, 2.0, 0.5)  # ends at 2.0, cooldown until 7.0
    assert end.phase is EventPhase.END
    assert stepper.run(2.5, 6.5, 0.5, BARE_7) == []  # bare again, but cooling down
    assert stepper.step(7.0, BARE_7) == []  # cooldown over: persistence starts again
    assert stepper.step(7.5, BARE_7) == []
    [restart] = stepper.step(8.0, BARE_7)
    assert restart.phase is EventPhase.START
    assert restart.event_id != start.event_id
    assert restart.started_at == stepper.at(7.0)


def test_cooldown_is_per_track(stepper: Stepper) -> None:
    stepper.run(0.0, 1.0, 0.5, BARE_7)
    stepper.run(1.5, 2.0, 0.5)  # 7 ended at 2.0
    events = stepper.run(2.5, 3.5, 0.5, BARE_7, BARE_8)
    assert phases(events) == [(EventPhase.START, 8, None)]


def test_track_loss_ends_after_end_after_s(stepper: Stepper) -> None:
    stepper.run(0.0, 1.0, 0.5, BARE_7, BARE_8)
    # Track 7 vanishes (the tracker lost it); 8 goes on.
    assert stepper.step(1.5, BARE_8) == []
    [end] = stepper.step(2.0, BARE_8)
    assert (end.phase, end.track_id, end.ended_at) == (EventPhase.END, 7, stepper.at(1.0))
    assert stepper.engine.rules[0].lifecycle.open_keys == {(8, None)}


def test_a_broken_persistence_starts_over(stepper: Stepper) -> None:
    stepper.run(0.0, 0.5, 0.5, BARE_7)
    assert stepper.run(1.0, 1.5, 0.5) == []  # gone for 1.0 s: the pending hazard is dropped
    assert stepper.run(2.0, 2.5, 0.5, BARE_7) == []
    [start] = stepper.step(3.0, BARE_7)
    assert start.started_at == stepper.at(2.0)


def test_finish_ends_open_events_and_forgets_pending(stepper: Stepper) -> None:
    stepper.run(0.0, 1.0, 0.5, BARE_7)
    stepper.step(1.5, BARE_7, BARE_8)  # 8 is only pending
    [end] = stepper.finish(1.6)
    assert (end.phase, end.track_id) == (EventPhase.END, 7)
    assert (end.ended_at, end.updated_at) == (stepper.at(1.5), stepper.at(1.6))
    assert stepper.finish(1.7) == []
    assert stepper.engine.rules[0].lifecycle.state_size() == 0


def test_state_is_pruned_when_tracks_end(stepper: Stepper) -> None:
    for track in range(50):  # 50 short-lived tracks, one after the other
        t = track * 3.0
        stepper.run(t, t + 1.0, 0.5, Person(track, helmet="bare"))
    stepper.run(150.0, 160.0, 0.5)
    assert len([e for e in stepper.events if e.phase is EventPhase.START]) == 50
    assert len([e for e in stepper.events if e.phase is EventPhase.END]) == 50
    assert stepper.engine.rules[0].lifecycle.state_size() == 0


def test_zero_min_duration_starts_on_the_first_frame() -> None:
    stepper = Stepper(site_config(rules={"no_helmet": {"min_duration_s": 0}}))
    [start] = stepper.step(0.0, BARE_7)
    assert start.started_at == start.updated_at == stepper.at(0.0)


def test_naive_time_is_refused(stepper: Stepper) -> None:
    from tests.edge.rules_support import FRAME_WH, detections

    with pytest.raises(ValueError, match="timezone-aware"):
        stepper.engine.evaluate(detections(BARE_7), datetime(2026, 1, 1, 10), FRAME_WH)


def test_time_going_back_ends_open_events_and_starts_afresh(stepper: Stepper) -> None:
    [start] = stepper.run(10.0, 11.0, 0.5, BARE_7)
    [end] = stepper.step(0.0, BARE_7)  # a looped file starts again at 0
    assert (end.phase, end.event_id) == (EventPhase.END, start.event_id)
    assert (end.ended_at, end.updated_at) == (stepper.at(11.0), stepper.at(0.0))
    assert stepper.step(0.5, BARE_7) == []
    [restart] = stepper.step(1.0, BARE_7)
    assert restart.phase is EventPhase.START
    assert restart.started_at == stepper.at(0.0)
