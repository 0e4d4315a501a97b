#!/usr/bin/env python3
"""Alert latency: event start on the box -> the message at a receiver, three ways (issue 16).

Starts a real server (``sitewatch server run``, SQLite in a temporary folder) with a signed
webhook channel and a routing rule pointing at a local HTTP receiver, and a real box
(``sitewatch edge run``) on the demo config's sample video, looped and paced at real time
as a camera delivers it, with its own MQTT (the local Mosquitto) and local webhook alerts.
For every event the box starts it measures, on this machine's one clock:

- ``mqtt``: the box's ``start`` message received by a subscriber here (QoS 1);
- ``box webhook``: the box's signed POST received here;
- ``server webhook``: the server's webhook channel message received here (box outbox ->
  ``PUT /api/v1/events/<id>`` -> notification queued with the event -> the delivery worker,
  which looks every ``notify_poll_s``, POSTs it).

Zero point: the start event's ``updated_at``, the wall-clock time the box captured the
frame that made the hazard start (the box raises the event right after processing that
frame, so each path includes one frame's pipeline time, printed too). For the server path
the server's own records split the time into box -> server (``received_at``) and
server -> receiver. Aim (issue 16): p95 < 2 s through the server, < 0.5 s over MQTT.

    .venv/bin/python -m scripts.bench.alert_latency --events 8 --seconds 120
    .venv/bin/python -m scripts.bench.alert_latency --notify-poll-s 0.1

Box, server and this script share the machine's CPU (the detector runs at detect_fps).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from scripts.common import PROJECT_ROOT as ROOT
from sitewatch.contract.signing import SIGNATURE_HEADER, webhook_signature
from sitewatch.resources import config_file, shared_root

DEFAULT_BROKER = "127.0.0.1:1883"
SITE_ID = "bench-site"
ADMIN, ADMIN_PASSWORD = "bench-admin", secrets.token_urlsafe(12)
HOOK_SECRET = secrets.token_urlsafe(16)
DEFAULT_VIDEO = "concrete-pour-crew.mp4"  # the demo config's sample video
PATHS = ("mqtt", "box webhook", "server webhook")


class BenchError(RuntimeError):
    """A failure to report in one line (no traceback)."""


@dataclass
class Arrivals:
    """Per event id: the zero point and when each path's message arrived (``time.time()``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    zero: dict[str, float] = field(default_factory=dict)  # start's updated_at
    rule: dict[str, str] = field(default_factory=dict)
    got: dict[str, dict[str, float]] = field(default_factory=lambda: {p: {} for p in PATHS})
    bad_signatures: int = 0

    def start(self, path: str, body: dict[str, Any], at: float) -> None:
        """A box message (MQTT or its webhook): only the ``start`` phase is timed."""
        if body.get("phase") != "start":
            return
        event_id = str(body["event_id"])
        zero = datetime.fromisoformat(str(body["updated_at"])).timestamp()
        with self.lock:
            self.zero.setdefault(event_id, zero)
            self.rule.setdefault(event_id, str(body.get("rule")))
            self.got[path].setdefault(event_id, at)

    def server(self, body: dict[str, Any], at: float) -> None:
        with self.lock:
            self.got["server webhook"].setdefault(str(body["event_id"]), at)

    def complete(self) -> int:
        """Events seen on every path."""
        with self.lock:
            return sum(all(e in self.got[p] for p in PATHS) for e in self.zero)

    def latencies(self, path: str) -> list[float]:
        with self.lock:
            return [t - self.zero[e] for e, t in self.got[path].items() if e in self.zero]


class Receiver:
    """Loopback HTTP receiver: ``/box`` gets the box's webhook, ``/server`` the server's."""

    def __init__(self, arrivals: Arrivals) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.time()
                signed = hmac.compare_digest(
                    self.headers.get(SIGNATURE_HEADER, ""), webhook_signature(HOOK_SECRET, raw)
                )
                self.send_response(204 if signed else 401)
                self.end_headers()
                if not signed:
                    arrivals.bad_signatures += 1
                    return
                body = json.loads(raw)
                if self.path == "/box":
                    arrivals.start("box webhook", body, at)
                elif self.path == "/server" and not body.get("test"):
                    arrivals.server(body, at)

            def log_message(self, *_args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, name="receiver", daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def broker_address(text: str) -> tuple[str, int]:
    host, _, port = text.partition(":")
    if not host or (port and not port.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST or HOST:PORT")
    return host, int(port or 1883)


def subscribe(broker: tuple[str, int], topic: str, arrivals: Arrivals) -> mqtt.Client:
    """A QoS 1 subscriber on the broker; BenchError when it cannot be reached."""
    try:
        with socket.create_connection(broker, timeout=2):
            pass
    except OSError as exc:
        raise BenchError(
            f"the MQTT broker (Mosquitto) is not reachable at {broker[0]}:{broker[1]} ({exc}); "
            "start it (e.g. `mosquitto -d`) or give --broker HOST:PORT"
        ) from None
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            c.subscribe(topic, qos=1)

    def on_subscribe(*_args: Any) -> None:
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        at = time.time()
        with suppress(ValueError, KeyError):
            arrivals.start("mqtt", json.loads(message.payload), at)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(*broker, keepalive=30)
    except OSError as exc:
        raise BenchError(f"cannot connect to MQTT at {broker[0]}:{broker[1]}: {exc}") from None
    client.loop_start()
    if not subscribed.wait(10.0):
        client.loop_stop()
        raise BenchError(f"the broker at {broker[0]}:{broker[1]} took no subscription in 10 s")
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'sitewatch.db'}"


def prepare_database(data_dir: Path) -> str:
    """Migrate a fresh SQLite database; add the admin, the site, the box. Returns its token."""
    from sitewatch.server.db.models import Role
    from sitewatch.server.db.session import Database
    from sitewatch.server.services import admin

    database = Database.from_url(database_url(data_dir))
    database.migrate()
    with database.session() as db:
        admin.create_user(db, actor=None, username=ADMIN, password=ADMIN_PASSWORD, role=Role.ADMIN)
        admin.create_site(db, actor=None, site_id=SITE_ID, name="alert latency bench")
        token = admin.create_device(db, actor=None, site_id=SITE_ID, name="bench-box").token
    database.dispose()
    return token


def add_channel(base_url: str, hook_url: str) -> None:
    """Through the admin API: a signed webhook channel and a rule sending it every event."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": ADMIN, "password": ADMIN_PASSWORD}
        )
        login.raise_for_status()
        headers = {"X-CSRF-Token": login.json()["csrf_token"]}
        body = {"name": "bench", "kind": "webhook", "url": hook_url, "secret": HOOK_SECRET}
        channel = client.post("/api/v1/alerts/channels", json=body, headers=headers)
        channel.raise_for_status()
        rule = {"channel_id": channel.json()["id"], "site_id": SITE_ID, "min_severity": "low"}
        client.post("/api/v1/alerts/rules", json=rule, headers=headers).raise_for_status()


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited with {process.returncode} (see its log above)")
        with suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"the server at {base_url} was not healthy within {timeout_s:.0f} s")


def edge_config(
    data_dir: Path,
    video: Path,
    server_url: str,
    token: str,
    hook_url: str,
    broker: tuple[str, int],
    prefix: str,
) -> Path:
    """The demo site config: its first camera on ``video`` (looped), this bench's server
    and alert channels."""
    base = config_file("demo-site.yaml")
    raw = yaml.safe_load(base.read_text(encoding="utf-8"))
    raw["site"]["id"] = SITE_ID
    model = raw.setdefault("model", {})
    model_path = Path(model.get("path", "models/sitewatch-det.onnx"))
    if not model_path.is_absolute():
        for root in (base.parent.parent, ROOT):
            if (root / model_path).exists():
                model["path"] = str((root / model_path).resolve())
                break
    raw["cameras"] = raw["cameras"][:1]
    raw["cameras"][0].update(source=str(video), loop=True)
    (data_dir / "device.token").write_text(token + "\n")
    raw["server"] = {"url": server_url, "token_file": str(data_dir / "device.token")}
    raw["outbox"] = {**raw.get("outbox", {}), "path": str(data_dir / "spool")}
    raw["alerts"] = {
        "mqtt": {
            "enabled": True,
            "host": broker[0],
            "port": broker[1],
            "topic_prefix": prefix,
            "client_id": f"{prefix}-box",
        },
        "webhook": {"enabled": True, "url": hook_url, "secret": HOOK_SECRET},
    }
    path = data_dir / "edge-site.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (output to ``log``), ended on the way out: SIGTERM, then SIGKILL."""
    with log.open("wb") as out:
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            stop(child)


def stop(child: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM (the box ends its open events and finishes clips), SIGKILL after
    ``timeout_s`` or on a second Ctrl-C."""
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=timeout_s)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        child.kill()
        child.wait(timeout=5)


def log_tail(log: Path, lines: int = 15) -> str:
    with suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def server_split(db_path: Path, arrivals: Arrivals) -> tuple[list[float], list[float]]:
    """(box zero -> event created on the server, created -> notification sent), seconds."""
    to_server: list[float] = []
    queued: list[float] = []
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT e.event_id, e.received_at, n.sent_at FROM events e"
            " JOIN notifications n ON n.event_id = e.event_id WHERE n.sent_at IS NOT NULL"
        ).fetchall()
    for event_id, received_at, sent_at in rows:
        key = str(uuid.UUID(str(event_id)))
        zero = arrivals.zero.get(key)
        if zero is None:
            continue
        received, sent = _utc_seconds(received_at), _utc_seconds(sent_at)
        to_server.append(received - zero)
        queued.append(sent - received)
    return to_server, queued


def server_state(db_path: Path) -> str:
    """What the server holds: events, and its notifications by status (a diagnosis)."""
    with sqlite3.connect(db_path) as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        states = db.execute(
            "SELECT status, count(*), max(last_error) FROM notifications GROUP BY status"
        ).fetchall()
    shown = ", ".join(f"{s}: {n}" + (f" ({e})" if e else "") for s, n, e in states)
    return f"  server: {events} events, notifications {shown or 'none'}"


def _utc_seconds(value: str) -> float:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:  # SQLite keeps UTC without an offset
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def inference_mean_s(metrics_url: str) -> float | None:
    """Mean of the box's sitewatch_edge_inference_seconds (one frame's pipeline time)."""
    try:
        text = httpx.get(metrics_url, timeout=2.0).text
    except httpx.HTTPError:
        return None
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("sitewatch_edge_inference_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("sitewatch_edge_inference_seconds_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total / count if count else None


def row(name: str, values: list[float], aim_s: float | None = None) -> str:
    if not values:
        return f"  {name:26s} n=0"
    ms = np.array(values) * 1000.0
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    aim = ""
    if aim_s is not None:
        aim = f"  (aim p95 < {aim_s:g} s: {'ok' if p95 < aim_s * 1000 else 'MISSED'})"
    return (
        f"  {name:26s} n={len(ms):3d}  p50={p50:7.1f} ms  p95={p95:7.1f} ms  "
        f"max={ms.max():7.1f} ms{aim}"
    )


def run(args: argparse.Namespace) -> int:
    video = args.video or shared_root() / "data" / "videos" / DEFAULT_VIDEO
    if not video.is_file():
        raise BenchError(f"video not found: {video}")
    arrivals = Arrivals()
    prefix = f"swbench-{uuid.uuid4().hex[:8]}"  # this run's topics only
    subscriber = subscribe(args.broker, f"{prefix}/{SITE_ID}/+/events", arrivals)
    receiver = Receiver(arrivals)
    try:
        with tempfile.TemporaryDirectory(prefix="sitewatch-alert-bench-") as tmp:
            return measure(args, Path(tmp), video, arrivals, receiver, prefix)
    finally:
        receiver.close()
        subscriber.disconnect()
        subscriber.loop_stop()


def measure(
    args: argparse.Namespace,
    tmp: Path,
    video: Path,
    arrivals: Arrivals,
    receiver: Receiver,
    prefix: str,
) -> int:
    server_dir, box_dir = tmp / "server", tmp / "box"
    server_dir.mkdir()
    box_dir.mkdir()
    token = prepare_database(server_dir)
    port, metrics_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    inherited = {k: v for k, v in os.environ.items() if k != "SITEWATCH_CONFIG"}
    server_env = dict(
        inherited,
        SITEWATCH_DATA_DIR=str(server_dir),
        SITEWATCH_DATABASE_URL=database_url(server_dir),
        SITEWATCH_LOG_LEVEL="WARNING",
        SITEWATCH_ENABLE_UI="false",
        SITEWATCH_NOTIFY_POLL_S=str(args.notify_poll_s),
        SITEWATCH_ALERT_RATE_PER_MINUTE="1000",  # the bench measures latency, not the limit
    )
    cli = [sys.executable, "-m", "sitewatch.cli"]
    server_log, box_log = tmp / "server.log", tmp / "box.log"
    with process([*cli, "server", "run", "--port", str(port)], server_env, server_log) as server:
        try:
            wait_healthy(base_url, server)
        except BenchError as exc:
            raise BenchError(f"{exc}\n{log_tail(server_log)}") from None
        add_channel(base_url, f"{receiver.base}/server")
        config = edge_config(
            box_dir, video, base_url, token, f"{receiver.base}/box", args.broker, prefix
        )
        box_env = dict(os.environ, SITEWATCH_EDGE_SHUTDOWN_FLUSH_S="3")
        box_command = [*cli, "edge", "run", "-c", str(config), "--log-level", "WARNING"]
        box_command += ["--metrics-port", str(metrics_port)]
        began = time.monotonic()
        with process(box_command, box_env, box_log) as box:
            print(
                f"box on {video.name} (looped, real time), server on {base_url}; waiting for "
                f"{args.events} events or {args.seconds:.0f} s...",
                flush=True,
            )
            deadline = began + args.seconds
            while arrivals.complete() < args.events and time.monotonic() < deadline:
                if box.poll() is not None:
                    raise BenchError(f"the box exited with {box.returncode}\n{log_tail(box_log)}")
                time.sleep(0.2)
            # messages still on their way for events already started
            grace = time.monotonic() + args.grace_s
            while time.monotonic() < grace and arrivals.complete() < len(arrivals.zero):
                time.sleep(0.2)
            inference_s = inference_mean_s(f"http://127.0.0.1:{metrics_port}/metrics")
        elapsed_s = time.monotonic() - began
    to_server, queued = server_split(server_dir / "sitewatch.db", arrivals)
    report(args, arrivals, elapsed_s, inference_s, to_server, queued, video)
    if len(arrivals.got["server webhook"]) < len(arrivals.zero):
        print(server_state(server_dir / "sitewatch.db"))
        print(f"server log:\n{log_tail(server_log)}\nbox log:\n{log_tail(box_log)}")
    return 0 if arrivals.zero else 1


def report(
    args: argparse.Namespace,
    arrivals: Arrivals,
    elapsed_s: float,
    inference_s: float | None,
    to_server: list[float],
    queued: list[float],
    video: Path,
) -> None:
    demo = yaml.safe_load(config_file("demo-site.yaml").read_text(encoding="utf-8"))
    camera = demo["cameras"][0]
    rules = sorted(set(arrivals.rule.values()))
    print(
        f"\nalert latency: {len(arrivals.zero)} events started ({', '.join(rules) or 'none'}) "
        f"in {elapsed_s:.0f} s on {video.name}; zero = the start event's updated_at "
        "(box wall clock at the capture of the frame that started it)"
    )
    print(row("mqtt (box -> broker -> us)", arrivals.latencies("mqtt"), 0.5))
    print(row("box webhook", arrivals.latencies("box webhook")))
    print(row("server webhook channel", arrivals.latencies("server webhook"), 2.0))
    print(row("  of which box -> server", to_server))
    print(row("  of which server queue+send", queued))
    missing = {p: len(arrivals.zero) - len(arrivals.got[p]) for p in PATHS}
    if any(missing.values()) or arrivals.bad_signatures:
        print(f"  not received: {missing}, bad signatures: {arrivals.bad_signatures}")
    frame = f"{inference_s * 1000:.0f} ms" if inference_s is not None else "?"
    print(
        f"settings: notify_poll_s={args.notify_poll_s:g} (server worker's look at the queue); "
        "box outbox push: woken by each put (condition), 0.5 s wait cap, no fixed interval; "
        f"detect_fps={camera.get('detect_fps')}; box frame pipeline mean={frame}; "
        f"mqtt qos=1; cpus={os.cpu_count()}"
    )


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=8, help="stop after this many events")
    parser.add_argument("--seconds", type=float, default=120.0, help="at most this long (box)")
    parser.add_argument(
        "--grace-s", type=float, default=8.0, help="wait this long for messages still on their way"
    )
    parser.add_argument(
        "--notify-poll-s", type=float, default=1.0, help="server SITEWATCH_NOTIFY_POLL_S"
    )
    parser.add_argument(
        "--broker",
        type=broker_address,
        default=broker_address(DEFAULT_BROKER),
        help=f"MQTT broker HOST[:PORT] (default {DEFAULT_BROKER})",
    )
    parser.add_argument("--video", type=Path, default=None, help="video (default: the demo's)")
    args = parser.parse_args()
    if not 1 <= args.events <= 500 or not 5 <= args.seconds <= 1800 or args.notify_poll_s <= 0:
        parser.error("--events within 1..500, --seconds within 5..1800, --notify-poll-s > 0")
    # Ctrl-C and SIGTERM unwind through the cleanup (also when started with SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        code = run(args)
    except BenchError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        code = 2
    except httpx.HTTPStatusError as exc:
        answer = exc.response
        print(f"✗ the server answered {answer.status_code}: {answer.text[:500]}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted; every process it started is stopped", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
