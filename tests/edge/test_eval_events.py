"""`sitewatch eval events` end to end on a labelled clip (real video, real ONNX model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from sitewatch.cli import app
from tests.conftest import PROJECT_ROOT, shared_file

pytestmark = pytest.mark.slow


def _inputs(tmp_path: Path) -> Path:
    """The barrier-walkway labels and config, detecting at 2 frames/s to keep it short."""
    video = shared_file("data/videos/barrier-walkway.mp4")
    config = yaml.safe_load((PROJECT_ROOT / "configs/eval/barrier-walkway.yaml").read_text())
    config["cameras"][0]["detect_fps"] = 2
    config["cameras"][0]["source"] = str(video)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(config))
    truth = yaml.safe_load((PROJECT_ROOT / "tests/data/events/barrier-walkway.yaml").read_text())
    truth["video"] = str(video)
    truth["config"] = "site.yaml"
    (tmp_path / "truth.yaml").write_text(yaml.safe_dump(truth))
    return tmp_path / "truth.yaml"


def _zone_score(scores: list[dict[str, Any]]) -> dict[str, Any]:
    return next(s for s in scores if s["rule"] == "restricted_zone")


def test_eval_events_scores_sweeps_and_reports(tmp_path: Path) -> None:
    truth = _inputs(tmp_path)
    report = tmp_path / "report"
    args = ["eval", "events", "--truth", str(truth), "--json", "--report", str(report)]
    sweep = ["--sweep", "--confidences", "0.35,0.7", "--min-durations", "1"]
    result = CliRunner().invoke(app, [*args, *sweep])
    assert result.exit_code == 0, result.output
    [video] = json.loads(result.stdout[result.stdout.index("[") :])
    assert {s["rule"] for s in video["scores"]} == {"restricted_zone", "no_helmet"}
    score = _zone_score(video["scores"])
    assert score["true"] == 1
    assert score["predicted"] == sum(p["rule"] == "restricted_zone" for p in video["predicted"])
    assert score["tp"] + score["fn"] == 1
    assert score["tp"] + score["fp"] == score["predicted"]
    # The sweep point at the config's own settings (confidence 0.35, min_duration 1 s)
    # replays cached detections and must score exactly like the plain run.
    by_conf = {p["confidence"]: _zone_score(p["scores"]) for p in video["sweep"]}
    assert set(by_conf) == {0.35, 0.7}
    assert by_conf[0.35] == score
    for name in ("report.md", "report.html", "timeline-barrier-walkway.png"):
        assert (report / name).stat().st_size > 0
    assert (report / "pr-barrier-walkway.png").read_bytes()[:4] == b"\x89PNG"
    assert "restricted_zone" in (report / "report.md").read_text()


def test_eval_events_names_a_broken_truth_file(tmp_path: Path) -> None:
    truth = tmp_path / "bad.yaml"
    truth.write_text("video: x.mp4\nevents:\n  - {rule: restricted_zone, start_s: 4, end_s: 1}\n")
    result = CliRunner().invoke(app, ["eval", "events", "--truth", str(truth)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "events[0]" in result.output
