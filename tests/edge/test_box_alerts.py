"""Alerts straight from the box (edge.alerts): MQTT against the real Mosquitto on
127.0.0.1:1883 (every message once, in order; retained state and availability; the last
will of a box killed without a disconnect; a broker that comes up late), and the webhook
against a local HTTP receiver that checks the body and the HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import generate_latest
from pydantic import SecretStr

from sitewatch.contract.events import Event, EventPhase, RuleKind
from sitewatch.edge.alerts import SIGNATURE_HEADER, BoxAlerts, MqttPublisher, make_alerts
from sitewatch.edge.config import (
    AlertsConfig,
    ConfigError,
    MqttAlertsConfig,
    WebhookAlertsConfig,
    parse_config,
)

pytestmark = pytest.mark.timeout(60)

BROKER = ("127.0.0.1", 1883)
SITE = "s1"
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def broker() -> tuple[str, int]:
    if not _port_open(*BROKER):
        pytest.skip("no MQTT broker (Mosquitto) listening on 127.0.0.1:1883")
    return BROKER


@pytest.fixture
def prefix() -> str:
    return f"swtest-{uuid.uuid4().hex[:10]}"  # retained messages of other runs stay apart


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Subscriber:
    """A real paho subscriber recording (topic, payload, retain) in arrival order."""

    def __init__(self, topic: str, host: str = BROKER[0], port: int = BROKER[1]) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4()}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(host, port, keepalive=10)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(5.0), f"no SUBACK for {topic}"

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [payload for t, payload, _r in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def clear_retained(prefix: str, host: str = BROKER[0], port: int = BROKER[1]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(host, port)
    client.loop_start()
    topics = [f"{prefix}/{SITE}/availability"] + [
        f"{prefix}/{SITE}/{cam}/state" for cam in ("cam1", "cam2")
    ]
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5.0)
    client.disconnect()
    client.loop_stop()


def mqtt_config(prefix: str, **kw: Any) -> MqttAlertsConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "host": BROKER[0],
        "port": BROKER[1],
        "topic_prefix": prefix,
        "keepalive_s": 2,
        "client_id": f"box-{uuid.uuid4().hex[:8]}",
    }
    return MqttAlertsConfig(**(values | kw))


def three_events() -> list[Event]:
    """Start and end of three events on two cameras, interleaved, in the order raised."""
    e1, e2, e3 = (
        Event(site_id=SITE, camera_id=cam, rule=rule, started_at=T0 + timedelta(seconds=i))
        for i, (cam, rule) in enumerate(
            [
                ("cam1", RuleKind.NO_HELMET),
                ("cam1", RuleKind.FALL_EDGE),
                ("cam2", RuleKind.RESTRICTED_ZONE),
            ]
        )
    )

    def end(e: Event) -> Event:
        ended = e.started_at + timedelta(seconds=5)
        return e.model_copy(update={"phase": EventPhase.END, "ended_at": ended})

    return [e1, e2, end(e1), e3, end(e2), end(e3)]


@pytest.fixture
def alerts_on_broker(broker: tuple[str, int], prefix: str) -> Iterator[BoxAlerts]:
    alerts = BoxAlerts(AlertsConfig(mqtt=mqtt_config(prefix)), SITE)
    yield alerts
    alerts.stop(timeout_s=2.0)
    clear_retained(prefix)


def test_every_event_once_in_order_with_retained_state(
    alerts_on_broker: BoxAlerts, prefix: str
) -> None:
    alerts = alerts_on_broker
    events_topic = {cam: f"{prefix}/{SITE}/{cam}/events" for cam in ("cam1", "cam2")}
    availability = f"{prefix}/{SITE}/availability"
    sub = Subscriber(f"{prefix}/#")
    try:
        alerts.start()
        assert alerts.mqtt is not None and alerts.mqtt.wait_connected(5.0)
        events = three_events()
        for event in events[:4]:  # e1, e2 open on cam1, e1 ends, e3 opens on cam2
            alerts.publish(event)
        wait_for(lambda: len(sub.on(events_topic["cam1"])) == 3, 5.0, "cam1's first events")

        late = Subscriber(f"{prefix}/{SITE}/#")  # retained: what a speaker sees on connecting
        try:
            wait_for(
                lambda: (
                    {t for t, _p, r in late.messages if r}
                    >= {availability, f"{prefix}/{SITE}/cam1/state", f"{prefix}/{SITE}/cam2/state"}
                ),
                5.0,
                "the retained availability and camera states",
            )
            retained = {t: p for t, p, r in late.messages if r}
            assert retained[availability] == "online"
            state1 = json.loads(retained[f"{prefix}/{SITE}/cam1/state"])
            assert state1["camera_id"] == "cam1" and state1["active_events"] == 1
            assert Event.model_validate(state1["last_event"]) == events[2]
            state2 = json.loads(retained[f"{prefix}/{SITE}/cam2/state"])
            assert state2["active_events"] == 1
            assert Event.model_validate(state2["last_event"]) == events[3]
            assert not any(t.endswith("/events") for t, _p, r in late.messages if r)
        finally:
            late.close()

        for event in events[4:]:
            alerts.publish(event)
        expected = {cam: [e for e in events if e.camera_id == cam] for cam in ("cam1", "cam2")}
        wait_for(
            lambda: all(len(sub.on(events_topic[c])) >= len(expected[c]) for c in expected),
            5.0,
            "every event",
        )
        time.sleep(0.5)  # a duplicate would arrive by now
        got = [p for t, p, _r in sub.messages if t.endswith("/events")]
        assert [Event.model_validate_json(p) for p in got] == events  # once each, in order
        assert got == [e.model_dump_json() for e in events]
        for cam in expected:
            assert [Event.model_validate_json(p) for p in sub.on(events_topic[cam])] == expected[
                cam
            ]
        final = json.loads(sub.on(f"{prefix}/{SITE}/cam1/state")[-1])
        assert final["active_events"] == 0

        alerts.stop(timeout_s=3.0)  # a clean stop says "offline" itself
        wait_for(lambda: sub.on(availability)[-1:] == ["offline"], 5.0, "offline on stop")
        assert sub.on(availability) == ["online", "offline"]
    finally:
        sub.close()


def test_publish_never_blocks_and_broker_coming_up_late_gets_every_event(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(mosquitto):
        pytest.skip("no mosquitto binary to start a private broker")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    publisher = MqttPublisher(mqtt_config(prefix, port=port), SITE)
    caplog.set_level(logging.INFO, logger="sitewatch.edge.alerts")
    broker: subprocess.Popen[bytes] | None = None
    sub: Subscriber | None = None
    try:
        publisher.start()
        events = three_events()
        started = time.monotonic()
        for event in events:
            publisher.put(event)
        assert time.monotonic() - started < 0.1, "publishing blocked on a missing broker"
        # after the 2nd failed try paho waits 2 s: time to start the broker and subscribe
        wait_for(lambda: publisher.connect_failures >= 2, 10.0, "two failed connects")
        conf = tmp_path / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen(
            [mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: _port_open("127.0.0.1", port), 5.0, "the private broker")
        sub = Subscriber(f"{prefix}/{SITE}/+/events", port=port)
        assert publisher.wait_connected(10.0)
        wait_for(lambda: len(sub.messages) >= len(events), 5.0, "the queued events")
        time.sleep(0.5)
        assert [Event.model_validate_json(p) for _t, p, _r in sub.messages] == events
        outage_lines = [r for r in caplog.records if "retrying" in r.getMessage()]
        assert len(outage_lines) == 1, "an outage is logged once"
        assert any("connected to the broker again" in r.getMessage() for r in caplog.records)
    finally:
        publisher.stop(timeout_s=2.0)
        if sub is not None:
            sub.close()
        if broker is not None:
            broker.terminate()
            broker.wait(5.0)


WILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from sitewatch.edge.alerts import MqttPublisher
    from sitewatch.edge.config import MqttAlertsConfig
    config = MqttAlertsConfig(enabled=True, host="127.0.0.1", port=1883,
                              topic_prefix=sys.argv[1], keepalive_s=2,
                              client_id="will-" + sys.argv[1])
    publisher = MqttPublisher(config, "s1")
    publisher.start()
    assert publisher.wait_connected(10.0)
    print("connected", flush=True)
    time.sleep(60)
    """
)


def test_last_will_offline_when_the_box_dies(broker: tuple[str, int], prefix: str) -> None:
    availability = f"{prefix}/{SITE}/availability"
    sub = Subscriber(availability)
    box = subprocess.Popen(
        [sys.executable, "-c", WILL_SCRIPT, prefix],
        stdout=subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    try:
        assert box.stdout is not None
        assert box.stdout.readline().strip() == b"connected"
        wait_for(lambda: sub.on(availability) == ["online"], 5.0, "online")
        box.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
        box.wait(5.0)
        wait_for(lambda: sub.on(availability)[-1:] == ["offline"], 10.0, "the last will")
        late = Subscriber(availability)
        try:
            wait_for(lambda: late.on(availability) == ["offline"], 5.0, "retained offline")
        finally:
            late.close()
    finally:
        if box.poll() is None:
            box.kill()
            box.wait(5.0)
        sub.close()
        clear_retained(prefix)


class Receiver:
    """A local HTTP webhook receiver; answers the queued status codes, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(statuses=[500])  # the first request fails: the sender tries again
    yield r
    r.close()


def test_webhook_posts_the_signed_event_json(receiver: Receiver) -> None:
    secret = "light-tower-secret"
    config = WebhookAlertsConfig(enabled=True, url=receiver.url, secret=SecretStr(secret))
    alerts = BoxAlerts(AlertsConfig(webhook=config), SITE)
    events = three_events()
    alerts.start()
    try:
        for event in events:
            alerts.publish(event)
        wait_for(lambda: len(receiver.requests) >= len(events) + 1, 10.0, "every POST")
    finally:
        alerts.stop(timeout_s=5.0)
    failed, *delivered = receiver.requests
    assert failed[1] == delivered[0][1]  # the 500 was retried with the same body
    assert [Event.model_validate_json(body) for _h, body in delivered] == events
    for headers, body in delivered:
        assert body == events[delivered.index((headers, body))].model_dump_json().encode()
        assert headers["Content-Type"] == "application/json"
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert alerts.webhook is not None and alerts.webhook.sent == len(events)


def test_webhook_receiver_down_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"  # nobody listens
    config = WebhookAlertsConfig(enabled=True, url=url, timeout_s=0.5)
    alerts = BoxAlerts(AlertsConfig(webhook=config), SITE)
    caplog.set_level(logging.WARNING, logger="sitewatch.edge.alerts")
    alerts.start()
    started = time.monotonic()
    for event in three_events()[:2]:
        alerts.publish(event)
    assert time.monotonic() - started < 0.1
    assert alerts.webhook is not None
    wait_for(lambda: alerts.webhook is not None and alerts.webhook.failed == 2, 15.0, "failures")
    alerts.stop(timeout_s=2.0)
    assert "X-Sitewatch" not in caplog.text
    assert sum("not delivered" in r.getMessage() for r in caplog.records) == 1


def test_unsigned_webhook_has_no_signature_header() -> None:
    r = Receiver()
    alerts = BoxAlerts(AlertsConfig(webhook=WebhookAlertsConfig(enabled=True, url=r.url)), SITE)
    alerts.start()
    try:
        alerts.publish(three_events()[0])
        wait_for(lambda: len(r.requests) == 1, 5.0, "the POST")
    finally:
        alerts.stop(timeout_s=2.0)
        r.close()
    assert SIGNATURE_HEADER not in r.requests[0][0]


ALERTS_YAML = """\
site:
  id: s1
alerts:
  mqtt:
    enabled: true
    host: broker.local
    username: box
    password: hunter2-secret
    tls: true
"""


def test_config_defaults_off_and_strict() -> None:
    site = parse_config("site:\n  id: s1\n")
    assert not site.alerts.mqtt.enabled and not site.alerts.webhook.enabled
    assert make_alerts(site) is None

    with pytest.raises(ConfigError) as info:
        parse_config(ALERTS_YAML + "    retain_events: true\n", source="site.yaml")
    assert info.value.problems == [
        "alerts.mqtt.retain_events (line 10): Extra inputs are not permitted"
    ]
    with pytest.raises(ConfigError) as info:
        parse_config("site:\n  id: s1\nalerts:\n  sms: {}\n", source="site.yaml")
    assert info.value.problems == ["alerts.sms (line 4): Extra inputs are not permitted"]
    with pytest.raises(ConfigError, match="host is required"):
        parse_config("site:\n  id: s1\nalerts:\n  mqtt:\n    enabled: true\n")
    with pytest.raises(ConfigError, match="url is required"):
        parse_config("site:\n  id: s1\nalerts:\n  webhook:\n    enabled: true\n")
    with pytest.raises(ConfigError, match=r"alerts\.mqtt\.topic_prefix \(line 6\)"):
        parse_config(
            "site:\n  id: s1\nalerts:\n  mqtt:\n    enabled: false\n    topic_prefix: a/#\n"
        )
    with pytest.raises(ConfigError, match=r"alerts\.webhook\.url \(line 5\)"):
        parse_config("site:\n  id: s1\nalerts:\n  webhook:\n    url: ftp://x\n")


def test_broker_password_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    site = parse_config(ALERTS_YAML)
    assert site.alerts.mqtt.password is not None
    assert site.alerts.mqtt.password.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(site) and "hunter2" not in str(site.alerts)
    assert "hunter2" not in site.model_dump_json()
    caplog.set_level(logging.DEBUG)
    alerts = make_alerts(site)
    assert alerts is not None and alerts.mqtt is not None
    alerts.mqtt.client.connect_async = lambda *a, **k: None  # type: ignore[method-assign]
    alerts.start()
    alerts.stop(timeout_s=1.0)
    assert "broker.local" in caplog.text and "hunter2" not in caplog.text


def test_the_box_publishes_each_event_it_handles(
    broker: tuple[str, int], prefix: str, tmp_path: Path
) -> None:
    """The wiring: EdgeRunner builds the alerts from the site, handle_event hands them on."""
    from sitewatch.edge.live import EdgeRunner

    text = textwrap.dedent(
        f"""\
        site:
          id: {SITE}
        cameras:
          - id: cam1
            source: video.mp4
        outbox:
          path: {tmp_path / "spool"}
        alerts:
          mqtt:
            enabled: true
            host: 127.0.0.1
            topic_prefix: {prefix}
        """
    )
    site = parse_config(text)
    runner = EdgeRunner(site, pipeline_factory=lambda _s, _c: SimpleNamespace(faces=None))
    sub = Subscriber(f"{prefix}/{SITE}/cam1/events")
    try:
        assert runner.alerts is not None and runner.alerts.mqtt is not None
        runner.alerts.start()
        event = three_events()[0]
        runner.workers[0].handle_event(event, None, None, T0)
        wait_for(lambda: len(sub.messages) == 1, 5.0, "the event on MQTT")
        assert Event.model_validate_json(sub.messages[0][1]) == event
        assert runner.outbox.depth() == 1  # the outbox got it as before
        runner.alerts.mqtt.wait_connected(5.0)
        runner.refresh_metrics()
        text = generate_latest(runner.metrics.registry).decode()
        assert 'sitewatch_edge_alerts_total{channel="mqtt",outcome="sent"} 1.0' in text
        assert "sitewatch_edge_alerts_broker_connected 1.0" in text
    finally:
        sub.close()
        if runner.alerts is not None:
            runner.alerts.stop(timeout_s=2.0)
        runner.encoder.shutdown()
        runner.outbox.close()
        clear_retained(prefix)
