"""The MQTT channel: the server publishes each alert to a site's broker (a building
management system, a light tower's controller, Home Assistant, Node-RED).

A channel's URL says where, its secret is the broker password::

    mqtt://[user@]host[:port][/prefix]     (port 1883; prefix "sitewatch")
    mqtts://[user@]host[:port][/prefix]    (TLS, port 8883; certificates verified)

Each alert goes to ``<prefix>/<site>/<camera>/alerts`` (digests and hazard messages
without a camera to ``<prefix>/<site>/_/alerts``) as the webhook channel's JSON, QoS 1,
not retained; the send counts as done when the broker acknowledges it (PUBACK).
"""

from __future__ import annotations

import ssl
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.contract.ids import check_identifier
from sitewatch.server.db.models import ChannelKind
from sitewatch.server.notify.channels import Alert, SendResult, Target, build_request, scrub

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_PREFIX = "sitewatch"


class MqttUrlError(ValueError):
    """An MQTT channel URL that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class MqttUrl:
    tls: bool
    host: str
    port: int
    user: str | None
    prefix: str


def parse_mqtt_url(url: str) -> MqttUrl:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise MqttUrlError(f"scheme must be mqtt:// or mqtts://, got {parts.scheme or url!r}")
    if parts.password is not None:
        raise MqttUrlError("put the password in the channel's secret, not in the URL")
    if "#" in url or "+" in parts.path:
        raise MqttUrlError("the topic prefix must not hold wildcards (# or +)")
    if parts.query:
        raise MqttUrlError("no query: the topic prefix is the URL's path")
    if not parts.hostname:
        raise MqttUrlError("the broker's host is missing")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError as exc:
        raise MqttUrlError(f"bad port: {exc}") from None
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if "//" in prefix:
        raise MqttUrlError(f"topic prefix {prefix!r} must not hold empty levels")
    user = urllib.parse.unquote(parts.username) if parts.username else None
    return MqttUrl(parts.scheme == "mqtts", parts.hostname, port, user, prefix)


def topic_for(prefix: str, alert: Alert) -> str:
    def level(value: str) -> str:
        try:
            return check_identifier(value, "topic level") if value else "_"
        except ValueError:
            return "_"

    return f"{prefix}/{level(alert.site_id)}/{level(alert.camera_id)}/alerts"


def send_mqtt(target: Target, alert: Alert, zone: ZoneInfo, *, timeout_s: float) -> SendResult:
    """Publish ``alert`` at QoS 1 and wait for the broker's PUBACK; never raises."""
    try:
        where = parse_mqtt_url(target.url)
        as_json = Target(ChannelKind.WEBHOOK, target.url, None, target.language)
        body = build_request(as_json, alert, zone).body
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sitewatch-server-{uuid.uuid4().hex[:12]}"
        )
        if where.user is not None:
            client.username_pw_set(where.user, target.secret)
        if where.tls:
            client.tls_set_context(ssl.create_default_context())
        connected = threading.Event()
        answer: list[Any] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            answer.append(reason)
            connected.set()

        client.on_connect = on_connect
        client.connect(where.host, where.port, keepalive=max(5, int(timeout_s * 2)))
        client.loop_start()
        try:
            if not connected.wait(timeout_s):
                return SendResult(False, None, error="MQTT: no CONNACK within the timeout")
            if answer[0].is_failure:
                return SendResult(False, None, error=f"MQTT: broker refused: {answer[0]}")
            info = client.publish(topic_for(where.prefix, alert), body, qos=1)
            info.wait_for_publish(timeout_s)
            if not info.is_published():
                return SendResult(False, None, error="MQTT: no PUBACK within the timeout")
        finally:
            client.disconnect()
            client.loop_stop()
    except Exception as exc:  # refused, unreachable, TLS, a bad URL: a clear failure
        return SendResult(False, None, error=scrub(f"MQTT: {type(exc).__name__}: {exc}", target))
    return SendResult(True, None)
