"""The box says when it cannot keep up (issue 19): a camera with frames but under 90 % of
the detections it is due is behind; the metric, the log line and the heartbeat say so."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest

from sitewatch.edge.config import parse_config
from sitewatch.edge.live import EdgeRunner
from sitewatch.edge.overload import is_behind

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(minutes=5)


@pytest.mark.parametrize(
    ("target", "detected", "captured", "since", "behind"),
    [
        (5.0, 5.0, 25.0, LONG_AGO, False),  # at its rate
        (5.0, 4.6, 25.0, LONG_AGO, False),  # jitter
        (5.0, 2.8, 25.0, LONG_AGO, True),  # the box cannot keep up
        (5.0, 2.8, 3.0, LONG_AGO, False),  # a slow camera: 3 frames a second is all it has
        (5.0, 1.0, 3.0, LONG_AGO, True),
        (5.0, 0.0, 25.0, NOW - timedelta(seconds=2), False),  # just online: not judged yet
        (5.0, 0.0, 0.0, LONG_AGO, False),  # no frames: dark, not behind
        (5.0, 0.0, 25.0, None, False),
    ],
)
def test_is_behind(
    target: float, detected: float, captured: float, since: datetime | None, behind: bool
) -> None:
    got = is_behind(
        detect_fps_target=target,
        detect_fps=detected,
        capture_fps=captured,
        online_since=since,
        now=NOW,
    )
    assert got is behind


def test_the_box_says_it_is_overloaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = parse_config(
        f"""
        site: {{id: s1}}
        cameras:
          - {{id: cam1, source: a.mp4, detect_fps: 5}}
          - {{id: cam2, source: b.mp4, detect_fps: 5}}
        outbox: {{path: {tmp_path / "spool"}}}
        """
    )
    runner = EdgeRunner(site, pipeline_factory=lambda _s, _c: SimpleNamespace(faces=None))
    for worker, detected in zip(runner.workers, (5.0, 2.5), strict=True):
        state = worker.capture.state
        state.online, state.fps = True, 25.0
        state.since = datetime.now(UTC) - timedelta(minutes=1)
        worker.detect_fps = detected
    with caplog.at_level(logging.INFO, logger="sitewatch.edge.live"):
        runner.refresh_metrics()
        runner.refresh_metrics()  # said once, not at every refresh
    text = generate_latest(runner.metrics.registry).decode()
    assert 'sitewatch_edge_camera_behind{camera="cam2"} 1.0' in text
    assert 'sitewatch_edge_camera_behind{camera="cam1"} 0.0' in text
    assert "sitewatch_edge_overloaded 1.0" in text
    said = [r.getMessage() for r in caplog.records if "overloaded" in r.getMessage()]
    assert said == ["box overloaded: camera(s) cam2 under 90 % of their detections a second"]
    beat = runner.heartbeat_body()
    assert beat["overloaded"] is True
    assert [(c["camera_id"], c["behind"], c["detect_fps"]) for c in beat["cameras"]] == [
        ("cam1", False, 5.0),
        ("cam2", True, 2.5),
    ]
    runner.workers[1].detect_fps = 4.9
    runner.refresh_metrics()
    assert "sitewatch_edge_overloaded 0.0" in generate_latest(runner.metrics.registry).decode()
    assert runner.heartbeat_body()["overloaded"] is False
