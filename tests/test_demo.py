"""The README's main job: `sitewatch demo` runs server + edge on a sample video."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, shared_file
from tests.edge.test_box_alerts import BROKER, Subscriber


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebhookReceiver:
    """A local HTTP receiver recording the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alarm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.slow
def test_demo_pushes_events_with_media_to_its_server(tmp_path: Path) -> None:
    """Also the box's own alerts: to the local Mosquitto (when it runs) and a webhook."""
    shared_file("data/videos/concrete-pour-crew.mp4")  # the demo config's sample video
    data_dir = tmp_path / "demo"
    webhook = WebhookReceiver()
    alerts = ["--webhook", webhook.url]
    subscriber = None
    try:
        with socket.create_connection(BROKER, timeout=1):
            subscriber = Subscriber("sitewatch/demo-site/+/events")
        alerts += ["--mqtt", f"{BROKER[0]}:{BROKER[1]}"]
    except OSError:
        pass  # no broker here: the webhook alone is checked
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
            *alerts,
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
    webhook.close()
    starts = sorted(str(b["event_id"]) for b in webhook.bodies if b["phase"] == "start")
    assert len(starts) == events == len(set(starts)), webhook.bodies
    if subscriber is not None:
        subscriber.close()
        published = [json.loads(m) for _topic, m, _retain in subscriber.messages]
        assert sorted(m["event_id"] for m in published if m["phase"] == "start") == starts
