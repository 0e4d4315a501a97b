"""The evaluation report from hand-made scores (no video, no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitewatch.contract.events import RuleKind
from sitewatch.edge.evaluation.evaluate import VideoEvaluation
from sitewatch.edge.evaluation.event_matching import Interval, match_events
from sitewatch.edge.evaluation.report import _lanes, write_report
from sitewatch.edge.replay import ReplayResult

RZ = RuleKind.RESTRICTED_ZONE


def _evaluation(confidence: float | None = None, *, late_s: float = 0.0) -> VideoEvaluation:
    true = [Interval(RZ, 2, 10), Interval(RZ, 20, 25)]
    predicted = [Interval(RZ, 2.5 + late_s, 6), Interval(RZ, 5, 9), Interval(RZ, 40, 41)]
    scores = match_events(true, predicted, tolerance_s=1.0, rules=[RZ, RuleKind.NO_HELMET])
    replay = ReplayResult(video=Path("clip.mp4"), frame_wh=(64, 48))
    return VideoEvaluation(
        Path("clip.mp4"), scores, true, predicted, replay, 45.0, "m.onnx", confidence, 1.0
    )


def test_lanes_keep_overlapping_intervals_apart() -> None:
    intervals = [Interval(RZ, 0, 5), Interval(RZ, 1, 2), Interval(RZ, 3, 4), Interval(RZ, 6, 7)]
    assert _lanes(intervals) == [0, 1, 1, 0]


def test_report_has_tables_and_plots(tmp_path: Path) -> None:
    sweep = [_evaluation(0.3), _evaluation(0.5, late_s=30.0)]
    md_path, html_path = write_report(tmp_path, [_evaluation()], [sweep], tolerance_s=1.0)
    md = md_path.read_text()
    # 1 TP, 1 duplicate + 1 unmatched = 2 FP, 1 FN.
    assert "| restricted_zone | 2 | 3 | 1 | 2 | 1 | 1 | 0.33 | 0.50 | 0.40 | 0.50 |" in md
    assert "| no_helmet | 0 | 0 | 0 | 0 | 0 | 0 | - | - | - | - |" in md
    assert "<table" in html_path.read_text()
    for name in ("timeline-clip.png", "pr-clip.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
        assert f"({name})" in md


def test_report_draws_helmet_colour_confusion(tmp_path: Path) -> None:
    metrics = tmp_path / "colour.json"
    confusion = {"red": {"red": 9, "white": 1}, "white": {"white": 5}}
    metrics.write_text(json.dumps({"n": 15, "logreg": {"accuracy": 0.9, "confusion": confusion}}))
    out = tmp_path / "report"
    md_path, _ = write_report(out, [_evaluation()], [[]], tolerance_s=1.0, colour_metrics=metrics)
    assert "![logreg](colour-confusion-logreg.png)" in md_path.read_text()
    assert (out / "colour-confusion-logreg.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"missing\.json"):
        write_report(out, [], [], tolerance_s=1.0, colour_metrics=tmp_path / "missing.json")
