"""Per-person helmet attributes: which head is whose, helmet or bare, colour, role.

Each head / helmet box goes to at most one person and each person gets at most one: the
score of a pair is the share of the head box that lies inside the upper half of the person
box (it must reach ``cfg.head_person_min_overlap``), minus a small penalty for a head off
the person's centre line; ``scipy.optimize.linear_sum_assignment`` picks the best overall
matching, which settles crowded scenes where one head lies inside two person boxes.
A person left without a head box (a 10-20 px head on a high CCTV camera) is read by the
head classifier (``edge.head_classifier``) on the crop where its head should be.

A person's helmet state and colour are a majority vote over the observations of the last
``cfg.helmet_window_s`` seconds; frames where no head was seen do not vote, so one missed
or wrong frame does not flip the state. The colour of a tracked person's helmet is checked
at most ``cfg.colour_checks_per_s`` times a second (the costly part of this stage when every
frame is detected); frames between vote on the state only. A track's memory is dropped once
it has not been seen for a window, so the state stays bounded.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from sitewatch.contract.events import HelmetColour, HelmetState
from sitewatch.edge.config import AttributesConfig
from sitewatch.edge.detections import (
    CLASS_NAME,
    HEAD_XYXY,
    HELMET,
    HELMET_COLOUR,
    HELMET_STATE,
    ROLE,
    Detections,
)
from sitewatch.edge.head_crops import expected_heads

logger = logging.getLogger(__name__)

#: Part of the person box (from the top) where that person's head is expected.
UPPER_SHARE = 0.5
#: Score penalty per person-width of horizontal offset between head and person centres.
OFF_CENTRE_PENALTY = 0.25
DEFAULT_ROLE = "worker"
#: A person box whose top is this close to the frame's top is not read by the head
#: classifier: the head may be cut off, and the crop would show a body.
TOP_EDGE_PX = 2.0
#: A colour check is due once this share of the check period has passed: live frame times
#: jitter, and a frame a little early should not wait a whole period more.
COLOUR_PERIOD_SLACK = 0.75

T = TypeVar("T")
ColourClassifier = Callable[[np.ndarray, np.ndarray], list[HelmetColour]]
#: (frame, head boxes) -> (N, 2) P(bare), P(helmet): ``HeadClassifier.probabilities``.
HeadReader = Callable[[np.ndarray, np.ndarray], np.ndarray]


def association_scores(
    person_xyxy: np.ndarray, head_xyxy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(P, H) matrices: the pair score, and the share of each head box inside each
    person's upper part (the score is that share less an off-centre penalty)."""
    persons = np.asarray(person_xyxy, dtype=np.float64).reshape(-1, 4)
    heads = np.asarray(head_xyxy, dtype=np.float64).reshape(-1, 4)
    upper = persons.copy()
    upper[:, 3] = persons[:, 1] + (persons[:, 3] - persons[:, 1]) * UPPER_SHARE
    ix1 = np.maximum(upper[:, None, 0], heads[None, :, 0])
    iy1 = np.maximum(upper[:, None, 1], heads[None, :, 1])
    ix2 = np.minimum(upper[:, None, 2], heads[None, :, 2])
    iy2 = np.minimum(upper[:, None, 3], heads[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    head_area = np.maximum((heads[:, 2] - heads[:, 0]) * (heads[:, 3] - heads[:, 1]), 1e-9)
    inside = inter / head_area[None, :]
    person_w = np.maximum(persons[:, 2] - persons[:, 0], 1e-9)
    head_cx = (heads[:, 0] + heads[:, 2]) / 2
    person_cx = (persons[:, 0] + persons[:, 2]) / 2
    offset = np.abs(head_cx[None, :] - person_cx[:, None])
    return inside - OFF_CENTRE_PENALTY * offset / person_w[:, None], inside


def associate_heads(
    person_xyxy: np.ndarray, head_xyxy: np.ndarray, min_overlap: float
) -> np.ndarray:
    """For each person, the index of its head box, or -1 (one head per person at most)."""
    n_persons = len(np.asarray(person_xyxy).reshape(-1, 4))
    assigned = np.full(n_persons, -1, dtype=int)
    if n_persons == 0 or len(np.asarray(head_xyxy).reshape(-1, 4)) == 0:
        return assigned
    scores, inside = association_scores(person_xyxy, head_xyxy)
    allowed = inside >= min_overlap
    rows, cols = linear_sum_assignment(np.where(allowed, scores, -1e6), maximize=True)
    for row, col in zip(rows, cols, strict=True):
        if allowed[row, col]:
            assigned[row] = col
    return assigned


@dataclass
class _TrackMemory:
    """Observations of one track within the window: (time_s, state, colour or None)."""

    observations: deque[tuple[float, HelmetState, HelmetColour | None]] = field(
        default_factory=deque
    )
    state: HelmetState = HelmetState.UNKNOWN
    colour: HelmetColour | None = None
    last_seen_s: float = 0.0
    last_colour_check_s: float | None = None


class HelmetAttributes:
    """``update(persons, heads, frame, now_s) -> persons with helmet data keys``."""

    def __init__(
        self,
        cfg: AttributesConfig,
        *,
        classify_colours: ColourClassifier | None = None,
        read_heads: HeadReader | None = None,
    ) -> None:
        if classify_colours is None:
            from sitewatch.edge.helmet_colour import (
                classify_helmet_colours,
                load_default_model,
                with_orange_rule,
            )

            model = with_orange_rule(load_default_model(), cfg.orange_helmets)
            classify_colours = partial(classify_helmet_colours, model=model)
        if read_heads is None and cfg.head_classifier:
            from sitewatch.edge.head_classifier import HeadClassifier

            read_heads = HeadClassifier().probabilities
        self.cfg = cfg
        self._classify: ColourClassifier = classify_colours
        self._read_heads = read_heads
        self._tracks: dict[int, _TrackMemory] = {}
        rate = cfg.colour_checks_per_s
        self._colour_gap_s = COLOUR_PERIOD_SLACK / rate if rate > 0 else 0.0

    @property
    def tracked_ids(self) -> list[int]:
        """Track ids with state held (bounded: pruned after a window unseen)."""
        return sorted(self._tracks)

    def update(
        self, persons: Detections, heads: Detections, frame_bgr: np.ndarray, now_s: float
    ) -> Detections:
        """Persons (tracked) with HELMET_STATE, HELMET_COLOUR, ROLE and HEAD_XYXY filled."""
        head_of = associate_heads(persons.xyxy, heads.xyxy, self.cfg.head_person_min_overlap)
        due = self._colour_due(persons, heads, head_of, now_s)
        colours = self._head_colours(heads, due, frame_bgr)
        read = self._read_missed_heads(persons, head_of, frame_bgr)
        states, colour_out, roles = [], [], []
        head_xyxy = np.full((len(persons), 4), np.nan, dtype=np.float32)
        for i in range(len(persons)):
            head = int(head_of[i])
            state, colour = HelmetState.UNKNOWN, None
            if head >= 0:
                head_xyxy[i] = heads.xyxy[head]
                is_helmet = str(heads.data[CLASS_NAME][head]) == HELMET
                state = HelmetState.HELMET if is_helmet else HelmetState.BARE
                colour = colours.get(head)
            else:
                state = read.get(i, HelmetState.UNKNOWN)
            if persons.tracker_id is not None:
                state, colour = self._smooth(int(persons.tracker_id[i]), now_s, state, colour)
            states.append(state.value)
            colour_out.append(colour.value if colour else "")
            roles.append(self._role(state, colour))
        self._prune(now_s)
        out = _copy(persons)
        out.data[HELMET_STATE] = np.array(states, dtype=object)
        out.data[HELMET_COLOUR] = np.array(colour_out, dtype=object)
        out.data[ROLE] = np.array(roles, dtype=object)
        out.data[HEAD_XYXY] = head_xyxy
        return out

    def _read_missed_heads(
        self, persons: Detections, head_of: np.ndarray, frame_bgr: np.ndarray
    ) -> dict[int, HelmetState]:
        """The head classifier's call for each person without a detected head: bare (or
        helmet, if the site asks for helmet votes) where it is sure enough; no colour, as
        the crop is not the helmet's box."""
        missed = np.flatnonzero(head_of < 0)
        if self._read_heads is None or len(missed) == 0:
            return {}
        expected = expected_heads(persons.xyxy[missed])
        big_enough = (expected[:, 2] - expected[:, 0]) >= self.cfg.head_min_px
        # A person box at the frame's top edge may have its head outside the frame.
        below_top = persons.xyxy[missed, 1] > TOP_EDGE_PX
        readable = big_enough & below_top
        missed, expected = missed[readable], expected[readable]
        if len(missed) == 0:
            return {}
        probabilities = self._read_heads(frame_bgr, expected)
        calls = {}
        for i, (p_bare, p_helmet) in zip(missed, probabilities, strict=True):
            if p_bare >= self.cfg.head_bare_min_p:
                calls[int(i)] = HelmetState.BARE
            elif self.cfg.head_helmet_min_p < 1.0 and p_helmet >= self.cfg.head_helmet_min_p:
                calls[int(i)] = HelmetState.HELMET
        return calls

    def _colour_due(
        self, persons: Detections, heads: Detections, head_of: np.ndarray, now_s: float
    ) -> np.ndarray:
        """``head_of`` with -1 for the helmets whose colour was checked too recently; the
        others' check time is set to now."""
        if self._colour_gap_s == 0.0 or persons.tracker_id is None:
            return head_of
        due = head_of.copy()
        for i, track_id in enumerate(persons.tracker_id):
            if due[i] < 0 or str(heads.data[CLASS_NAME][due[i]]) != HELMET:
                continue
            memory = self._memory(int(track_id))
            last = memory.last_colour_check_s
            if last is not None and now_s - last < self._colour_gap_s:
                due[i] = -1
            else:
                memory.last_colour_check_s = now_s
        return due

    def _memory(self, track_id: int) -> _TrackMemory:
        """The track's memory, created on first sight (not built per call, as setdefault's
        argument would be: this runs for every person of every frame)."""
        memory = self._tracks.get(track_id)
        if memory is None:
            memory = self._tracks[track_id] = _TrackMemory()
        return memory

    def _head_colours(
        self, heads: Detections, head_of: np.ndarray, frame_bgr: np.ndarray
    ) -> dict[int, HelmetColour]:
        used = [int(h) for h in head_of if h >= 0 and str(heads.data[CLASS_NAME][h]) == HELMET]
        if not used:
            return {}
        return dict(zip(used, self._classify(frame_bgr, heads.xyxy[used]), strict=True))

    def _role(self, state: HelmetState, colour: HelmetColour | None) -> str:
        if state is not HelmetState.HELMET:
            return ""
        if colour is None:
            return DEFAULT_ROLE
        return self.cfg.role_by_colour.get(colour, DEFAULT_ROLE)

    def _smooth(
        self, track_id: int, now_s: float, state: HelmetState, colour: HelmetColour | None
    ) -> tuple[HelmetState, HelmetColour | None]:
        memory = self._memory(track_id)
        memory.last_seen_s = now_s
        if state is not HelmetState.UNKNOWN:
            memory.observations.append((now_s, state, colour))
        while memory.observations and memory.observations[0][0] < now_s - self.cfg.helmet_window_s:
            memory.observations.popleft()
        memory.state = _majority([s for _, s, _ in memory.observations], memory.state)
        if not memory.observations:
            memory.state = HelmetState.UNKNOWN
        helmet_colours: list[HelmetColour | None] = [
            c for _, s, c in memory.observations if s is HelmetState.HELMET and c
        ]
        memory.colour = _majority(helmet_colours, memory.colour) if helmet_colours else None
        if memory.state is not HelmetState.HELMET:
            memory.colour = None
        return memory.state, memory.colour

    def _prune(self, now_s: float) -> None:
        stale = [
            tid
            for tid, m in self._tracks.items()
            if now_s - m.last_seen_s > self.cfg.helmet_window_s
        ]
        for tid in stale:
            del self._tracks[tid]


def _majority(values: list[T], previous: T) -> T:
    """Most frequent value; on a tie the previous one if tied, else the most recent tied."""
    if not values:
        return previous
    counts = Counter(values)
    best = max(counts.values())
    tied = {v for v, n in counts.items() if n == best}
    if previous in tied:
        return previous
    return next(v for v in reversed(values) if v in tied)


def _copy(dets: Detections) -> Detections:
    return Detections(
        xyxy=dets.xyxy.copy(),
        mask=dets.mask,
        confidence=dets.confidence,
        class_id=dets.class_id,
        tracker_id=dets.tracker_id,
        data=dict(dets.data),
        metadata=dict(dets.metadata),
    )
