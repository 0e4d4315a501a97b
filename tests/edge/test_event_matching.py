"""Matching predicted to true events on hand-made cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sitewatch.contract.events import Event, EventPhase, RuleKind
from sitewatch.edge.evaluation.event_matching import (
    Interval,
    match_events,
    match_rule,
    predicted_intervals,
)
from sitewatch.edge.evaluation.events_truth import TruthError, load_truth

RZ = RuleKind.RESTRICTED_ZONE
NH = RuleKind.NO_HELMET


def iv(start_s: float, end_s: float, rule: RuleKind = RZ) -> Interval:
    return Interval(rule, start_s, end_s)


def test_exact_match() -> None:
    score = match_rule(RZ, [iv(2, 5)], [iv(2, 5)], tolerance_s=1.0)
    assert (score.tp, score.fp, score.fn) == (1, 0, 0)
    assert score.precision == score.recall == score.f1 == 1.0
    assert score.latencies_s == [0.0]


@pytest.mark.parametrize(
    ("pred", "tp", "latency_s"),
    [
        (iv(0.5, 1.5), 1, -1.5),  # early, ends 0.5 s before the truth: inside 1 s tolerance
        (iv(0.0, 0.5), 0, None),  # early beyond tolerance
        (iv(5.5, 7.0), 1, 3.5),  # late start, after the truth ended, within tolerance
        (iv(6.5, 8.0), 0, None),  # late beyond tolerance
        (iv(4.0, 9.0), 1, 2.0),  # late but overlapping
    ],
)
def test_early_and_late(pred: Interval, tp: int, latency_s: float | None) -> None:
    score = match_rule(RZ, [iv(2, 5)], [pred], tolerance_s=1.0)
    assert score.tp == tp
    assert score.fn == 1 - tp and score.fp == 1 - tp
    assert score.latencies_s == ([latency_s] if latency_s is not None else [])


def test_split_alert_is_one_match_and_one_duplicate() -> None:
    score = match_rule(RZ, [iv(2, 10)], [iv(2.5, 5), iv(6, 9.5)], tolerance_s=0.5)
    assert score.tp == 1 and score.fn == 0
    assert score.duplicates == {0: [1]}
    assert score.fp == 1 and score.false_positives == []
    assert score.precision == 0.5 and score.recall == 1.0
    assert score.as_dict()["duplicates_per_true_event"] == [1]


def test_merged_alert_matches_one_truth_only() -> None:
    score = match_rule(RZ, [iv(2, 4), iv(6, 8)], [iv(2.2, 8)], tolerance_s=0.5)
    assert score.tp == 1 and score.fn == 1 and score.fp == 0
    assert score.recall == 0.5 and score.precision == 1.0


def test_matching_is_one_to_one_and_maximises_overlap() -> None:
    # Greedy on the first truth would take the long prediction and leave the second unmatched.
    score = match_rule(RZ, [iv(0, 10), iv(9, 12)], [iv(0, 11.5), iv(1, 3)], tolerance_s=0.0)
    assert score.tp == 2 and score.fn == 0 and score.fp == 0


def test_wrong_rule_is_a_miss_and_a_false_alarm() -> None:
    scores = match_events([iv(2, 5, RZ)], [iv(2, 5, NH)], tolerance_s=1.0)
    assert scores[RZ].fn == 1 and scores[RZ].precision is None
    assert scores[NH].fp == 1 and scores[NH].recall is None and scores[NH].f1 is None


def test_empty_inputs() -> None:
    assert match_events([], [], tolerance_s=1.0) == {}
    score = match_rule(RZ, [], [], tolerance_s=1.0)
    assert (score.tp, score.fp, score.fn) == (0, 0, 0)
    assert score.precision is None and score.recall is None
    only_truth = match_rule(RZ, [iv(1, 2)], [], tolerance_s=1.0)
    assert only_truth.recall == 0.0 and only_truth.precision is None


def test_predicted_intervals_collapse_phases() -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    event_id = uuid.uuid4()

    def msg(
        phase: EventPhase, updated_at: datetime | None = None, ended_at: datetime | None = None
    ) -> Event:
        return Event(
            event_id=event_id,
            phase=phase,
            site_id="s",
            camera_id="c",
            rule=RZ,
            started_at=origin + timedelta(seconds=3),
            updated_at=updated_at,
            ended_at=ended_at,
        )

    messages = [
        msg(EventPhase.START),
        msg(EventPhase.UPDATE, updated_at=origin + timedelta(seconds=4)),
        msg(EventPhase.END, ended_at=origin + timedelta(seconds=7.5)),
    ]
    [interval] = predicted_intervals(messages, origin)
    assert (interval.start_s, interval.end_s) == (3.0, 7.5)
    assert interval.label == str(event_id)


def test_truth_errors_name_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "video: a.mp4\nevents:\n  - {rule: restricted_zone, start_s: 1, end_s: 2}\n"
        "  - {rule: restricted_zone, start_s: 5, end_s: 3}\n"
        "  - {rule: nope, start_s: 1, end_s: 2}\n"
    )
    with pytest.raises(TruthError) as info:
        load_truth(path)
    text = str(info.value)
    assert str(path) in text
    assert "events[1] (restricted_zone 5-3 s)" in text and "end_s (3.0) is before" in text
    assert "events[2] (nope 1-2 s).rule" in text
    path.write_text("video: a.mp4\nextra: 1\n")
    with pytest.raises(TruthError, match="extra"):
        load_truth(path)
    path.write_text("video: a.mp4\nevents:\n  - {rule: no_helmet, start_s: 1, end_s: 2}\n")
    assert load_truth(path).events[0].rule is NH
