"""Heads to people, helmet colour to role, and smoothing over time."""

from __future__ import annotations

from typing import Protocol, cast

import numpy as np
import pytest

from sitewatch.contract.events import HelmetColour, HelmetState
from sitewatch.edge.attributes import HelmetAttributes, associate_heads
from sitewatch.edge.config import AttributesConfig
from sitewatch.edge.detections import (
    CLASS_NAME,
    HEAD_XYXY,
    HELMET_COLOUR,
    HELMET_STATE,
    ROLE,
    Detections,
)

FRAME = np.zeros((400, 600, 3), np.uint8)
# These tests are about the detector's heads; the head classifier (the second stage for
# heads the detector missed) is off here and tested in test_head_classifier.py.


class _CountingClassifier(Protocol):
    """A colour classifier that records the number of boxes of each call in ``calls``."""

    calls: list[int]

    def __call__(self, frame: np.ndarray, xyxy: np.ndarray, /) -> list[HelmetColour]: ...


def _column(dets: Detections, key: str) -> np.ndarray:
    """A ``data`` column of ``dets`` (supervision also allows lists; the stages store arrays)."""
    column = dets.data[key]
    assert isinstance(column, np.ndarray)
    return column


def _persons(boxes: list[tuple[float, float, float, float]], ids: list[int]) -> Detections:
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        confidence=np.full(len(boxes), 0.9, np.float32),
        tracker_id=np.array(ids, int),
        data={CLASS_NAME: np.array(["person"] * len(boxes))},
    )


def _heads(boxes: list[tuple[float, float, float, float]], names: list[str]) -> Detections:
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        confidence=np.full(len(boxes), 0.8, np.float32),
        data={CLASS_NAME: np.array(names, dtype=str)},
    )


def _fixed_colour(colour: HelmetColour) -> _CountingClassifier:
    calls: list[int] = []

    def classify(frame: np.ndarray, xyxy: np.ndarray) -> list[HelmetColour]:
        calls.append(len(xyxy))
        return [colour] * len(xyxy)

    counting = cast(_CountingClassifier, classify)
    counting.calls = calls
    return counting


# --- association -------------------------------------------------------------------


def test_each_head_goes_to_the_person_it_sits_on() -> None:
    persons = [(100, 100, 160, 300), (300, 100, 360, 300)]
    heads = [(315, 100, 345, 130), (115, 102, 145, 132)]
    assert associate_heads(np.array(persons), np.array(heads), 0.6).tolist() == [1, 0]


def test_a_head_low_in_the_box_or_outside_it_is_not_assigned() -> None:
    persons = [(100, 100, 160, 300)]
    low_head = [(115, 250, 145, 280)]  # at the person's knees: someone else's head
    outside = [(200, 100, 230, 130)]
    assert associate_heads(np.array(persons), np.array(low_head), 0.6).tolist() == [-1]
    assert associate_heads(np.array(persons), np.array(outside), 0.6).tolist() == [-1]
    assert associate_heads(np.array(persons), np.empty((0, 4)), 0.6).tolist() == [-1]
    assert associate_heads(np.empty((0, 4)), np.array(outside), 0.6).tolist() == []


def test_overlapping_people_each_get_their_own_head() -> None:
    # Two people overlapping: both heads lie inside the wider (front) person's box, but the
    # centred one is theirs; the other belongs to the person behind.
    persons = [(100, 100, 220, 330), (170, 90, 230, 300)]
    heads = [(185, 92, 215, 122), (140, 105, 175, 140)]
    assert associate_heads(np.array(persons), np.array(heads), 0.6).tolist() == [1, 0]


def test_one_head_per_person_and_more_heads_than_people() -> None:
    persons = [(100, 100, 160, 300)]
    heads = [(100, 100, 130, 130), (117, 105, 147, 135)]  # two candidates, both inside
    # the second is centred on the person (x 130): it wins; the other stays unassigned
    assert associate_heads(np.array(persons), np.array(heads), 0.6).tolist() == [1]


# --- states, colours, roles --------------------------------------------------------


def test_helmet_colour_and_role_are_filled() -> None:
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False), classify_colours=_fixed_colour(HelmetColour.RED)
    )
    persons = _persons(
        [(100, 100, 160, 300), (300, 100, 360, 300), (450, 100, 510, 300)], [1, 2, 3]
    )
    heads = _heads([(115, 102, 145, 132), (315, 100, 345, 130)], ["helmet", "head"])
    out = attrs.update(persons, heads, FRAME, now_s=0.0)
    assert _column(out, HELMET_STATE).tolist() == ["helmet", "bare", "unknown"]
    assert _column(out, HELMET_COLOUR).tolist() == ["red", "", ""]
    assert _column(out, ROLE).tolist() == ["party_member", "", ""]
    np.testing.assert_allclose(out.data[HEAD_XYXY][0], [115, 102, 145, 132])
    assert np.isnan(out.data[HEAD_XYXY][2]).all()
    assert persons.data.keys() == {CLASS_NAME}  # the input is not mutated


def test_unmapped_colour_is_a_plain_worker() -> None:
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False), classify_colours=_fixed_colour(HelmetColour.YELLOW)
    )
    out = attrs.update(
        _persons([(100, 100, 160, 300)], [1]),
        _heads([(115, 102, 145, 132)], ["helmet"]),
        FRAME,
        0.0,
    )
    assert _column(out, ROLE).tolist() == ["worker"]


def test_real_colour_classifier_on_a_red_helmet() -> None:
    frame = FRAME.copy()
    frame[102:132, 115:145] = (30, 30, 220)  # BGR red
    attrs = HelmetAttributes(AttributesConfig(head_classifier=False))
    out = attrs.update(
        _persons([(100, 100, 160, 300)], [1]),
        _heads([(115, 102, 145, 132)], ["helmet"]),
        frame,
        0.0,
    )
    assert _column(out, HELMET_COLOUR).tolist() == ["red"]
    assert _column(out, ROLE).tolist() == ["party_member"]


@pytest.mark.parametrize("orange_helmets", [False, True])
def test_orange_helmets_setting_reaches_the_colour_model(orange_helmets: bool) -> None:
    frame = FRAME.copy()
    frame[102:132, 115:145] = (0, 120, 250)  # BGR orange, hue ~14
    attrs = HelmetAttributes(AttributesConfig(head_classifier=False, orange_helmets=orange_helmets))
    out = attrs.update(
        _persons([(100, 100, 160, 300)], [1]),
        _heads([(115, 102, 145, 132)], ["helmet"]),
        frame,
        0.0,
    )
    colour = _column(out, HELMET_COLOUR).tolist()[0]
    assert (colour == "orange") == orange_helmets, colour
    assert colour in ("orange", "red", "yellow")


# --- smoothing over time -----------------------------------------------------------


def _step(attrs: HelmetAttributes, t: float, head: str | None) -> tuple[str, str]:
    persons = _persons([(100, 100, 160, 300)], [7])
    heads = _heads([(115, 102, 145, 132)], [head]) if head else _heads([], [])
    out = attrs.update(persons, heads, FRAME, now_s=t)
    return str(out.data[HELMET_STATE][0]), str(out.data[HELMET_COLOUR][0])


def test_one_wrong_or_missed_frame_does_not_flip_the_state() -> None:
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, helmet_window_s=1.5),
        classify_colours=_fixed_colour(HelmetColour.BLUE),
    )
    seq = ["helmet", "helmet", "helmet", None, "head", "helmet", "helmet"]
    states = [_step(attrs, i * 0.2, h) for i, h in enumerate(seq)]
    assert all(s == ("helmet", "blue") for s in states)


def test_a_lasting_change_wins_after_the_window() -> None:
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, helmet_window_s=1.0),
        classify_colours=_fixed_colour(HelmetColour.WHITE),
    )
    t = 0.0
    for _ in range(5):
        assert _step(attrs, t, "helmet")[0] == HelmetState.HELMET.value
        t += 0.2
    states = []
    for _ in range(8):  # the helmet comes off
        states.append(_step(attrs, t, "head")[0])
        t += 0.2
    assert states[0] == "helmet"  # one bare frame is not enough
    assert states[-1] == "bare"
    assert _step(attrs, t, "head") == ("bare", "")


def test_no_head_for_a_whole_window_is_unknown() -> None:
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, helmet_window_s=1.0),
        classify_colours=_fixed_colour(HelmetColour.BLUE),
    )
    assert _step(attrs, 0.0, "head")[0] == "bare"
    assert _step(attrs, 0.6, None)[0] == "bare"
    assert _step(attrs, 1.2, None)[0] == "unknown"


def test_state_of_vanished_tracks_is_pruned() -> None:
    classify = _fixed_colour(HelmetColour.BLUE)
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, helmet_window_s=1.0), classify_colours=classify
    )
    for i in range(50):  # 50 different people pass by, one at a time
        attrs.update(
            _persons([(100, 100, 160, 300)], [i]),
            _heads([(115, 102, 145, 132)], ["helmet"]),
            FRAME,
            now_s=i * 0.5,
        )
    assert len(attrs.tracked_ids) <= 3
    assert classify.calls == [1] * 50


# --- colour check rate ---------------------------------------------------------------


def _scripted_colours(colours: list[HelmetColour]) -> _CountingClassifier:
    """A classifier answering each call with the next colour of ``colours``."""
    answers = iter(colours)
    calls: list[int] = []

    def classify(frame: np.ndarray, xyxy: np.ndarray) -> list[HelmetColour]:
        calls.append(len(xyxy))
        return [next(answers) for _ in range(len(xyxy))]

    counting = cast(_CountingClassifier, classify)
    counting.calls = calls
    return counting


def test_colour_is_checked_at_most_colour_checks_per_s_while_the_state_votes_every_frame() -> None:
    classify = _fixed_colour(HelmetColour.RED)
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, colour_checks_per_s=5.0), classify_colours=classify
    )
    # 30 frames a second for 2 s: every frame keeps the state and colour it had
    outs = [_step(attrs, i / 30, "helmet") for i in range(60)]
    assert set(outs) == {("helmet", "red")}
    checks = len(classify.calls)
    assert 10 <= checks <= 14  # about 5 a second (a check is due after 0.75 of a period)
    # every detected frame: one check each
    every = _fixed_colour(HelmetColour.RED)
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, colour_checks_per_s=0), classify_colours=every
    )
    for i in range(60):
        _step(attrs, i / 30, "helmet")
    assert len(every.calls) == 60


def test_at_the_check_rate_every_frame_is_checked_even_with_jittered_times() -> None:
    classify = _fixed_colour(HelmetColour.WHITE)
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, colour_checks_per_s=5.0), classify_colours=classify
    )
    times = [0.0, 0.19, 0.41, 0.58, 0.81, 0.99]  # 5 detections a second, live jitter
    for t in times:
        _step(attrs, t, "helmet")
    assert classify.calls == [1] * len(times)


def test_the_colour_vote_counts_checked_frames_only() -> None:
    # Checks at 0, 0.2, 0.4 s answer red, blue, blue: the frames between (not checked)
    # must not repeat the first answer into the vote.
    classify = _scripted_colours([HelmetColour.RED, HelmetColour.BLUE, HelmetColour.BLUE])
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, colour_checks_per_s=5.0, helmet_window_s=1.5),
        classify_colours=classify,
    )
    outs = [_step(attrs, i / 30, "helmet") for i in range(13)]  # 0 .. 0.4 s
    assert classify.calls == [1, 1, 1]
    assert outs[0] == ("helmet", "red")
    assert outs[-1] == ("helmet", "blue")


def test_a_bare_head_does_not_use_up_the_colour_check() -> None:
    classify = _fixed_colour(HelmetColour.YELLOW)
    attrs = HelmetAttributes(
        AttributesConfig(head_classifier=False, colour_checks_per_s=5.0), classify_colours=classify
    )
    _step(attrs, 0.0, "head")
    assert _step(attrs, 1 / 30, "helmet") == ("bare", "")  # the vote is 1 bare, 1 helmet
    assert classify.calls == [1]  # checked at once
