"""Matching predicted events to true ones in time, per rule.

Predicted events come from ``events.jsonl`` messages: the start/update/end messages of one
``event_id`` collapse into one interval (start = ``started_at``, end = ``ended_at``, else
the last ``updated_at``, else the start), in seconds from the video's time origin.

Per rule, a prediction *can* match a true interval when they overlap once the true
interval is widened by ``tolerance_s`` on both sides. Matching is one-to-one and maximises
the number of matched pairs, ties broken in favour of pairs whose start times are closest
(Hungarian assignment, ``scipy.optimize.linear_sum_assignment``). Then:

- a matched pair is a true positive; ``latency_s`` = predicted start - true start
  (negative: the alert came early);
- an unmatched prediction that still overlaps an already-matched true interval is a
  **duplicate** of that true event (an alert split in two): reported per true event, and
  counted as a false positive for precision (an operator sees two alerts);
- any other unmatched prediction is a false positive; an unmatched true event is a false
  negative (a prediction covering two true events matches only one of them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy.optimize import linear_sum_assignment

from sitewatch.contract.events import Event, RuleKind
from sitewatch.edge.evaluation.events_truth import TrueEvent

#: Overlap bonus so that intervals that only touch (zero-length overlap) still match.
_TOUCH_S = 1e-6


@dataclass(frozen=True)
class Interval:
    rule: RuleKind
    start_s: float
    end_s: float
    zone: str | None = None
    label: str = ""  # event id or note, for reports


@dataclass
class RuleScore:
    rule: RuleKind
    true: list[Interval] = field(default_factory=list)
    predicted: list[Interval] = field(default_factory=list)
    #: (true index, predicted index) pairs.
    matches: list[tuple[int, int]] = field(default_factory=list)
    #: Per true index, the predicted indices that duplicate its match.
    duplicates: dict[int, list[int]] = field(default_factory=dict)
    false_positives: list[int] = field(default_factory=list)
    false_negatives: list[int] = field(default_factory=list)

    @property
    def tp(self) -> int:
        return len(self.matches)

    @property
    def n_duplicates(self) -> int:
        return sum(len(v) for v in self.duplicates.values())

    @property
    def fp(self) -> int:
        """False positives for precision: unmatched predictions, duplicates included."""
        return len(self.false_positives) + self.n_duplicates

    @property
    def fn(self) -> int:
        return len(self.false_negatives)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def latencies_s(self) -> list[float]:
        return [self.predicted[p].start_s - self.true[t].start_s for t, p in self.matches]

    def as_dict(self) -> dict[str, object]:
        lat = self.latencies_s
        return {
            "rule": self.rule.value,
            "true": len(self.true),
            "predicted": len(self.predicted),
            "tp": self.tp,
            "fp": self.fp,
            "fp_unmatched": len(self.false_positives),
            "duplicates": self.n_duplicates,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "latency_s": lat,
            "mean_latency_s": float(np.mean(lat)) if lat else None,
            "duplicates_per_true_event": [
                len(self.duplicates.get(i, [])) for i in range(len(self.true))
            ],
        }


def predicted_intervals(messages: Iterable[Event], origin: datetime) -> list[Interval]:
    """One interval per event_id, in seconds from ``origin`` (the video's time origin)."""
    first: dict[object, Event] = {}
    last_s: dict[object, float] = {}
    for message in messages:
        first.setdefault(message.event_id, message)
        stamp = message.ended_at or message.updated_at or message.started_at
        end_s = (stamp - origin).total_seconds()
        last_s[message.event_id] = max(last_s.get(message.event_id, end_s), end_s)
    intervals = []
    for event_id, event in first.items():
        start_s = (event.started_at - origin).total_seconds()
        end_s = max(last_s[event_id], start_s)
        intervals.append(Interval(event.rule, start_s, end_s, event.zone, str(event_id)))
    return sorted(intervals, key=lambda i: (i.start_s, i.end_s))


def true_intervals(events: Iterable[TrueEvent]) -> list[Interval]:
    return sorted(
        (Interval(e.rule, e.start_s, e.end_s, e.zone, e.note or "") for e in events),
        key=lambda i: (i.start_s, i.end_s),
    )


def _overlap_s(truth: Interval, pred: Interval, tolerance_s: float) -> float:
    """Overlap of ``pred`` with ``truth`` widened by the tolerance; <= 0 when apart."""
    lo = max(truth.start_s - tolerance_s, pred.start_s)
    hi = min(truth.end_s + tolerance_s, pred.end_s)
    return hi - lo + _TOUCH_S if hi >= lo else 0.0


def match_rule(
    rule: RuleKind, true: Sequence[Interval], predicted: Sequence[Interval], tolerance_s: float
) -> RuleScore:
    """One-to-one matching of one rule's intervals (see the module docstring)."""
    score = RuleScore(rule, list(true), list(predicted))
    overlap = np.array(
        [[_overlap_s(t, p, tolerance_s) for p in predicted] for t in true], dtype=float
    ).reshape(len(true), len(predicted))
    # 1 per pair, plus a tie-breaker for closer starts whose sum over all pairs stays < 0.5,
    # so that more pairs always win.
    bonus = 0.5 / (1 + min(len(true), len(predicted)))
    start_gap_s = np.abs(
        np.subtract.outer([t.start_s for t in true], [p.start_s for p in predicted])
    ).reshape(overlap.shape)
    weight = np.where(overlap > 0, 1.0 + bonus / (1.0 + start_gap_s), 0.0)
    matched_true: set[int] = set()
    matched_pred: set[int] = set()
    if overlap.size:
        rows, cols = linear_sum_assignment(weight, maximize=True)
        for t, p in zip(rows.tolist(), cols.tolist(), strict=True):
            if overlap[t, p] > 0:
                score.matches.append((t, p))
                matched_true.add(t)
                matched_pred.add(p)
    score.matches.sort()
    for p in range(len(predicted)):
        if p in matched_pred:
            continue
        partners = [t for t in matched_true if overlap[t, p] > 0]
        if partners:
            best = max(partners, key=lambda t: overlap[t, p])
            score.duplicates.setdefault(best, []).append(p)
        else:
            score.false_positives.append(p)
    score.false_negatives = [t for t in range(len(true)) if t not in matched_true]
    return score


def match_events(
    true: Sequence[Interval],
    predicted: Sequence[Interval],
    tolerance_s: float,
    rules: Iterable[RuleKind] | None = None,
) -> dict[RuleKind, RuleScore]:
    """Scores per rule; ``rules`` None scores every rule seen in either list."""
    by_rule_true: dict[RuleKind, list[Interval]] = defaultdict(list)
    by_rule_pred: dict[RuleKind, list[Interval]] = defaultdict(list)
    for interval in true:
        by_rule_true[interval.rule].append(interval)
    for interval in predicted:
        by_rule_pred[interval.rule].append(interval)
    wanted = (
        list(rules)
        if rules is not None
        else sorted(set(by_rule_true) | set(by_rule_pred), key=lambda r: r.value)
    )
    return {
        rule: match_rule(rule, by_rule_true[rule], by_rule_pred[rule], tolerance_s)
        for rule in wanted
    }
