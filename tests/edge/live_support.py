"""Helpers for the live edge tests: a site config for a real RTSP camera, the edge as a
real ``sitewatch edge run`` subprocess, and reading its spool to compare with the server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.rtsp_server import free_port

#: Small timeouts so that the fault tests take seconds (read by edge.live.EdgeTuning).
FAST_ENV = {
    "SITEWATCH_EDGE_OPEN_TIMEOUT_S": "3",
    "SITEWATCH_EDGE_READ_TIMEOUT_S": "2",
    "SITEWATCH_EDGE_RECONNECT_MIN_S": "0.3",
    "SITEWATCH_EDGE_RECONNECT_MAX_S": "1",
    "SITEWATCH_EDGE_RETRY_MIN_S": "0.2",
    "SITEWATCH_EDGE_RETRY_MAX_S": "1",
    "SITEWATCH_EDGE_HEARTBEAT_S": "1",
    "SITEWATCH_EDGE_SHUTDOWN_FLUSH_S": "10",
}


def wait_for(
    condition: Callable[[], object], timeout_s: float, what: str, *, poll_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def write_site(
    folder: Path,
    *,
    site_id: str,
    rtsp_url: str,
    server_url: str,
    token: str,
    model: Path,
    max_bytes: int = 200_000_000,
    detect_fps: float = 3.0,
    dead_camera: bool = False,
    post_s: float = 1.0,
) -> Path:
    """A site whose whole frame is a restricted zone: every person seen raises an event."""
    (folder / "device.token").write_text(token + "\n")
    config: dict[str, Any] = {
        "site": {"id": site_id},
        "model": {"path": str(model)},
        "rules": {
            "no_helmet": {"enabled": False},
            "fall_edge": {"enabled": False},
            "post_unattended": {"enabled": False},
            "party_member_helmet": {"enabled": False},
            "restricted_zone": {"min_duration_s": 0.5, "end_after_s": 1.0, "cooldown_s": 3},
        },
        "cameras": [
            {
                "id": "gate-cam",
                "source": rtsp_url,
                "detect_fps": detect_fps,
                "zones": {
                    "restricted": [
                        {"name": "everywhere", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
                    ]
                },
            }
        ],
        "server": {"url": server_url, "token_file": "device.token", "timeout_s": 5},
        "clips": {"pre_s": 1, "post_s": post_s},
        "outbox": {"path": "spool", "max_bytes": max_bytes},
    }
    if dead_camera:  # a camera whose RTSP server does not exist
        dead_url = f"rtsp://127.0.0.1:{free_port()}/gone"
        config["cameras"].append({"id": "dead-cam", "source": dead_url, "detect_fps": 1})
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class EdgeProcess:
    """``sitewatch edge run --config ...`` in a subprocess, with /metrics on a free port."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.metrics_port = free_port()
        self.log = config.parent / "edge.log"
        self.env = {**os.environ, **FAST_ENV, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EdgeProcess:
        cmd = [sys.executable, "-m", "sitewatch.cli", "edge", "run", "--config", str(self.config)]
        cmd += ["--metrics-port", str(self.metrics_port)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self.metrics_up, 60, "the edge's /metrics")
        return self

    def metrics_up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"edge exited with {self.proc.returncode}:\n{self.log_text()}")
        try:
            return httpx.get(self.metrics_url, timeout=1).is_success
        except httpx.HTTPError:
            return False

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        text = httpx.get(self.metrics_url, timeout=2).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def terminate(self, timeout_s: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


class Spool:
    """Read-only look into the edge's outbox database (WAL allows it while the edge runs)."""

    def __init__(self, folder: Path) -> None:
        self.db = folder / "outbox.db"

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            return list(conn.execute(sql))

    def depth(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM items")[0][0]) if self.db.exists() else 0

    def started_event_ids(self) -> set[str]:
        return {row[0] for row in self._query("SELECT event_id FROM history WHERE phase='start'")}

    def history(self) -> list[tuple[Any, ...]]:
        return self._query("SELECT event_id, phase, spooled_at, started_at, acked_at FROM history")


def ffprobe(path: Path) -> dict[str, Any]:
    if shutil.which("ffprobe") is None:
        pytest.skip("needs ffprobe (apt-get install ffmpeg; scripts/setup.sh)")
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,pix_fmt,width,height,nb_frames:format=duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    return {**data["streams"][0], "duration": data["format"]["duration"]}


@contextlib.contextmanager
def running_edge(config: Path) -> Iterator[EdgeProcess]:
    """The edge for the length of a ``with`` block; it must then stop cleanly on SIGTERM."""
    edge = EdgeProcess(config).start()
    try:
        yield edge
    finally:
        assert edge.terminate() == 0, edge.log_text()
