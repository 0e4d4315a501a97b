"""The README's main job: `sitewatch demo` runs server + edge on a sample video."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, shared_file


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_demo_pushes_events_with_media_to_its_server(tmp_path: Path) -> None:
    shared_file("data/videos/concrete-pour-crew.mp4")  # the demo config's sample video
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sitewatch.cli",
            "demo",
            "--data-dir",
            str(data_dir),
            "--port",
            str(_free_port()),
            "--max-wait-s",
            "60",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "events on the server" in result.stdout
    with sqlite3.connect(data_dir / "sitewatch.db") as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        clips = db.execute("SELECT count(*) FROM media WHERE kind = 'clip'").fetchone()[0]
        devices = db.execute("SELECT count(*) FROM devices").fetchone()[0]
    assert devices == 1
    assert events >= 1, result.stdout
    assert clips == events  # every event's clip arrived before the demo returned
    assert (data_dir / "admin-password.txt").read_text().strip()
