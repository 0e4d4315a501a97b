"""Alerts straight from the box, without the server: MQTT and a local HTTP webhook.

A site's speaker or light tower reacts to the box itself, so an alert gets there even when
the link to the server is down. Every event phase (start, update, end) goes out as the
event's JSON (:meth:`Event.model_dump_json`):

- MQTT (``alerts.mqtt``): ``<prefix>/<site>/<camera>/events`` (QoS ``qos``, not retained);
  ``<prefix>/<site>/<camera>/state`` (retained): ``{"camera_id", "active_events",
  "last_event"}``; ``<prefix>/<site>/availability`` (retained): ``online`` once connected,
  ``offline`` on a clean stop and as the box's last will when it dies.
- Webhook (``alerts.webhook``): ``POST <url>`` with the JSON body, signed with
  ``X-Sitewatch-Signature: sha256=<HMAC-SHA256 hex of the body>`` when a secret is set.

Neither ever blocks or raises into a camera's pipeline thread: :meth:`BoxAlerts.publish`
only puts the event on a bounded queue per channel (full: the event is dropped for that
channel and logged), and one thread per channel sends it. While the broker is away paho
keeps QoS 1/2 messages (at most :data:`MQTT_MAX_QUEUED`) and sends them on reconnect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from sitewatch.contract.events import Event, EventPhase
from sitewatch.contract.signing import SIGNATURE_HEADER, webhook_signature
from sitewatch.edge.config import (
    AlertsConfig,
    MqttAlertsConfig,
    SiteConfig,
    WebhookAlertsConfig,
    resolve_path,
)

logger = logging.getLogger(__name__)

#: Events waiting per channel for its thread; more are dropped (and logged).
QUEUE_SIZE = 1000
#: QoS 1/2 messages paho keeps while the broker is away (then publish fails, logged).
MQTT_MAX_QUEUED = 5000
WEBHOOK_RETRIES = 2  # after the first try
WEBHOOK_BACKOFF_S = 0.5

_STOP = object()


class _Channel:
    """A bounded queue and the one thread that sends what is put on it, in order."""

    name = "alerts"

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-sender", daemon=True)
        self._full_logged = False
        #: Events handed on (to paho's queue or the receiver), given up on, dropped.
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def put(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
            self._full_logged = False
        except queue.Full:
            self.dropped += 1
            if not self._full_logged:
                self._full_logged = True
                logger.warning("%s: queue full, dropping alerts", self.name)

    def start(self) -> None:
        self._thread.start()

    def stop_sending(self, timeout_s: float) -> None:
        """Send what is queued (for at most ``timeout_s``), then end the thread."""
        if not self._thread.is_alive():
            return
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._send(item)
            except Exception:  # an alert must never stop the others
                logger.exception("%s: sending an alert failed", self.name)

    def _send(self, item: Any) -> None:
        raise NotImplementedError


class MqttPublisher(_Channel):
    """One paho client for the box: events, the cameras' retained state, availability."""

    name = "mqtt"

    def __init__(
        self, config: MqttAlertsConfig, site_id: str, *, ca_file: Path | None = None
    ) -> None:
        super().__init__()
        if not config.host:
            raise ValueError("alerts.mqtt.host is required")
        self.config, self.site_id = config, site_id
        self.base = f"{config.topic_prefix}/{site_id}"
        self.availability_topic = f"{self.base}/availability"
        self._open: dict[str, set[str]] = {}  # camera -> open event ids
        self._connected = threading.Event()
        self._outage_logged = False
        self._paho_full_logged = False
        self.connect_failures = 0
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id or f"sitewatch-{site_id}",
        )
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if config.tls:
            client.tls_set(ca_certs=str(ca_file) if ca_file else None)
        client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        client.max_queued_messages_set(MQTT_MAX_QUEUED)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        self.client = client

    def events_topic(self, camera_id: str) -> str:
        return f"{self.base}/{camera_id}/events"

    def state_topic(self, camera_id: str) -> str:
        return f"{self.base}/{camera_id}/state"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def start(self) -> None:
        cfg = self.config
        assert cfg.host is not None
        logger.info(
            "mqtt alerts to %s:%d%s, topics %s/<camera>/...",
            cfg.host,
            cfg.port,
            " (tls)" if cfg.tls else "",
            self.base,
        )
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        self.client.loop_start()  # connects, reconnects with backoff
        super().start()

    def stop(self, timeout_s: float) -> None:
        """Send what is queued, publish ``offline`` (retained), disconnect cleanly."""
        deadline = time.monotonic() + timeout_s
        self.stop_sending(timeout_s)
        if self.connected:
            info = self.client.publish(self.availability_topic, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not acknowledged in time
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()

    def _send(self, event: Event) -> None:
        camera = event.camera_id
        payload = event.model_dump_json()
        open_ids = self._open.setdefault(camera, set())
        if event.phase is EventPhase.END:
            open_ids.discard(str(event.event_id))
        else:
            open_ids.add(str(event.event_id))
        state = json.dumps(
            {
                "camera_id": camera,
                "active_events": len(open_ids),
                "last_event": json.loads(payload),
            },
            separators=(",", ":"),
        )
        if self._publish(self.events_topic(camera), payload, retain=False):
            self.sent += 1
        self._publish(self.state_topic(camera), state, retain=True)

    def _publish(self, topic: str, payload: str, *, retain: bool) -> bool:
        """Publish (paho sends it, now or on reconnect); False when paho's queue is full."""
        info = self.client.publish(topic, payload, qos=self.config.qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            if not self._paho_full_logged:
                self._paho_full_logged = True
                logger.warning(
                    "mqtt: broker away and %d messages waiting, dropping new ones",
                    MQTT_MAX_QUEUED,
                )
            return False
        # MQTT_ERR_NO_CONN: QoS 1/2 kept by paho until the reconnect; the outage is logged
        return True

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            self._outage(f"broker refused the connection: {reason}")
            return
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self._connected.set()
        if self._outage_logged:
            logger.info("mqtt: connected to the broker again")
        else:
            logger.info("mqtt: connected to the broker")
        self._outage_logged = self._paho_full_logged = False

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.connect_failures += 1
        self._outage("cannot connect to the broker")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        self._connected.clear()
        if reason.is_failure:
            self._outage(f"lost the broker: {reason}")

    def _outage(self, what: str) -> None:
        self._connected.clear()
        if not self._outage_logged:
            self._outage_logged = True
            cfg = self.config
            logger.warning(
                "mqtt %s:%d: %s; retrying, QoS %d messages kept until it is back",
                cfg.host,
                cfg.port,
                what,
                cfg.qos,
            )


class WebhookSender(_Channel):
    """POSTs each event's JSON to one URL, a few tries each, from one thread."""

    name = "webhook"

    def __init__(self, config: WebhookAlertsConfig) -> None:
        super().__init__()
        if not config.url:
            raise ValueError("alerts.webhook.url is required")
        self.url = config.url
        self._secret = config.secret.get_secret_value() if config.secret else None
        self._http = httpx.Client(timeout=config.timeout_s)
        self._failing = False

    def start(self) -> None:
        logger.info("webhook alerts to %s", self.url)
        super().start()

    def stop(self, timeout_s: float) -> None:
        self.stop_sending(timeout_s)
        self._http.close()

    def _send(self, event: Event) -> None:
        body = event.model_dump_json().encode()
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = webhook_signature(self._secret, body)
        problem = ""
        for attempt in range(WEBHOOK_RETRIES + 1):
            if attempt:
                time.sleep(WEBHOOK_BACKOFF_S * attempt)
            try:
                response = self._http.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 300:
                self.sent += 1
                if self._failing:
                    self._failing = False
                    logger.info("webhook %s: delivering again", self.url)
                return
            problem = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                break  # the receiver refuses it; another try will not help
        self.failed += 1
        if not self._failing:
            self._failing = True
            logger.warning(
                "webhook %s: event %s (%s) not delivered: %s",
                self.url,
                event.event_id,
                event.phase.value,
                problem,
            )


class BoxAlerts:
    """The box's alert channels; :meth:`publish` is safe to call from any thread."""

    def __init__(
        self, config: AlertsConfig, site_id: str, *, config_path: Path | None = None
    ) -> None:
        self.mqtt: MqttPublisher | None = None
        self.webhook: WebhookSender | None = None
        if config.mqtt.enabled:
            ca_file = (
                resolve_path(config.mqtt.ca_file, config_path=config_path)
                if config.mqtt.ca_file
                else None
            )
            self.mqtt = MqttPublisher(config.mqtt, site_id, ca_file=ca_file)
        if config.webhook.enabled:
            self.webhook = WebhookSender(config.webhook)

    @property
    def channels(self) -> list[MqttPublisher | WebhookSender]:
        return [c for c in (self.mqtt, self.webhook) if c is not None]

    def start(self) -> None:
        for channel in self.channels:
            channel.start()

    def publish(self, event: Event) -> None:
        """Hand the event to every channel; never blocks, never raises."""
        for channel in self.channels:
            try:
                channel.put(event)
            except Exception:
                logger.exception("%s: queueing an alert failed", channel.name)

    def stop(self, timeout_s: float = 5.0) -> None:
        for channel in self.channels:
            try:
                channel.stop(timeout_s)
            except Exception:
                logger.exception("%s: stopping failed", channel.name)


def make_alerts(site: SiteConfig, *, config_path: Path | None = None) -> BoxAlerts | None:
    """The site's alert channels, or None when none is enabled."""
    alerts = BoxAlerts(site.alerts, site.site.id, config_path=config_path)
    return alerts if alerts.channels else None
