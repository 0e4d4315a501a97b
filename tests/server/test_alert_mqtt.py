"""The server's MQTT channel against the real Mosquitto on this machine (127.0.0.1:1883):
every alert once, in order, on ``<prefix>/<site>/<camera>/alerts``, as the webhook JSON."""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sitewatch.server.db.models import ChannelKind
from sitewatch.server.notify.channels import Alert, Target
from sitewatch.server.notify.mqtt import MqttUrlError, parse_mqtt_url, send_mqtt
from tests.edge.test_box_alerts import BROKER, Subscriber
from tests.server.conftest import event_json, post_event
from tests.server.test_alerts import Alerts, alerts, receiver

__all__ = ["alerts", "receiver"]  # fixtures used here


def _broker_up() -> bool:
    try:
        socket.create_connection(BROKER, timeout=1.0).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _broker_up(), reason=f"no MQTT broker (Mosquitto) at {BROKER[0]}:{BROKER[1]}"
)


def _wait(subscriber: Subscriber, topic: str, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while len(subscriber.on(topic)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return subscriber.on(topic)


def test_alerts_reach_the_broker_once_each_in_order(alerts: Alerts) -> None:
    prefix = f"sw-test-{uuid.uuid4().hex[:8]}"
    url = f"mqtt://{BROKER[0]}:{BROKER[1]}/{prefix}"
    answer = alerts.admin.post(
        "/api/v1/alerts/channels", json={"name": "楼宇平台", "kind": "mqtt", "url": url}
    )
    assert answer.status_code == 201, answer.text
    alerts.rule(int(answer.json()["id"]))
    subscriber = Subscriber(f"{prefix}/#")
    try:
        device = alerts.env.device("site-a")
        sent = []
        for camera in ("cam-1", "cam-1", "cam-2"):
            body = event_json("site-a", camera_id=camera, rule="fall_edge", zone="edge-1")
            post_event(device, body)
            sent.append((camera, body["event_id"]))
            alerts.deliver()  # one round per event: the broker sees them in this order
        got = _wait(subscriber, f"{prefix}/site-a/cam-1/alerts", 2)
        got += _wait(subscriber, f"{prefix}/site-a/cam-2/alerts", 1)
        time.sleep(0.3)  # anything more would arrive now
        assert len(subscriber.messages) == 3
        payloads: list[dict[str, Any]] = [json.loads(p) for p in got]
        assert [(p["camera_id"], p["event_id"]) for p in payloads] == sent
        assert payloads[0]["rule_name"] == "临边危险" and payloads[0]["kind"] == "event"
        assert all(n.status == "sent" for n in alerts.notifications())
        test = alerts.admin.post(f"/api/v1/alerts/channels/{answer.json()['id']}/test")
        assert test.json()["ok"] is True
        assert _wait(subscriber, f"{prefix}/sitewatch/_/alerts", 1)
    finally:
        subscriber.close()


def test_unreachable_broker_and_bad_urls_fail_clearly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    alert = Alert("e", "site-a", "site-a", "cam-1", "no_helmet", "high", datetime.now(UTC))
    target = Target(ChannelKind.MQTT, f"mqtt://127.0.0.1:{closed}", "pw-secret-1", "zh")
    result = send_mqtt(target, alert, ZoneInfo("Asia/Shanghai"), timeout_s=2.0)
    assert not result.ok and "MQTT" in (result.error or "")
    assert "pw-secret-1" not in (result.error or "")
    for url, reason in (
        ("http://broker", "mqtt:// or mqtts://"),
        ("mqtt://user:pw@broker", "secret"),
        ("mqtt://broker/a/#", "wildcards"),
        ("mqtt://broker/a/+/b", "wildcards"),
        ("mqtt:///prefix", "host"),
    ):
        with pytest.raises(MqttUrlError, match=reason):
            parse_mqtt_url(url)
    assert parse_mqtt_url("mqtts://bms@broker.site/site-7").port == 8883
