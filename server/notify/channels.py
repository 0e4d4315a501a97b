"""Messages and requests of each channel kind, as the providers document them.

- WeCom group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}``.
- DingTalk robot: ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` to the URL plus
  ``&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256(secret, "<ms>\\n<secret>")>``.
- Feishu / Lark bot: ``{"timestamp", "sign", "msg_type": "text", "content": {"text"}}``, the
  sign being base64 HMAC-SHA256 keyed with ``"<s>\\n<secret>"`` over an empty message.
- Generic webhook: the alert as JSON with ``X-Sitewatch-Timestamp`` and
  ``X-Sitewatch-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.

WeCom and DingTalk answer ``{"errcode": 0}``, Feishu ``{"code": 0}``: anything else fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from sitewatch.contract.signing import SIGNATURE_HEADER, webhook_signature
from sitewatch.server.db.models import ChannelKind

RULE_NAMES = {
    "zh": {
        "no_helmet": "未戴安全帽",
        "fall_edge": "临边危险",
        "restricted_zone": "闯入禁区",
        "post_unattended": "岗位脱岗",
        "party_member_helmet": "党员红帽",
        "person": "人员",
    },
    "en": {
        "no_helmet": "No helmet",
        "fall_edge": "Fall-risk edge",
        "restricted_zone": "Restricted zone",
        "post_unattended": "Post unattended",
        "party_member_helmet": "Party-member helmet",
        "person": "Person",
    },
}
SEVERITY_NAMES = {
    "zh": {"low": "低", "medium": "中", "high": "高", "critical": "严重"},
    "en": {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"},
}
LABELS = {
    "zh": {
        "title": "安全告警",
        "test": "测试消息",
        "site": "工地",
        "camera": "摄像头",
        "zone": "区域",
        "rule": "规则",
        "severity": "级别",
        "time": "时间",
        "link": "查看事件",
        "test_text": "这是一条来自 sitewatch 的测试消息，通道配置正确。",
    },
    "en": {
        "title": "Safety alert",
        "test": "Test message",
        "site": "Site",
        "camera": "Camera",
        "zone": "Zone",
        "rule": "Rule",
        "severity": "Severity",
        "time": "Time",
        "link": "Open the event",
        "test_text": "A test message from sitewatch: the channel works.",
    },
}
MAX_ERROR = 500
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """What one message says about one event (or a test)."""

    event_id: str
    site_id: str
    site_name: str
    camera_id: str
    rule: str
    severity: str
    started_at: datetime
    zone: str | None = None
    link: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    test: bool = False
    #: The event's snapshot (JPEG), for channels that carry pictures.
    snapshot_jpeg: bytes | None = None
    #: What the message is about (a NotificationKind value): event, digest, hazard_*.
    kind: str = "event"
    #: A title in place of "安全告警: <rule>" and lines after the usual ones (digests and
    #: the hazard loop), already in the channel's language.
    headline: str | None = None
    extra_lines: tuple[str, ...] = ()
    #: The camera's display name from its box (浇筑区); empty: the id is shown.
    camera_name: str = ""

    def local_time(self, zone: ZoneInfo) -> str:
        return self.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Target:
    kind: ChannelKind
    url: str
    secret: str | None
    language: str


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None
    #: The provider's errcode / code (or None), for the test button.
    provider_code: Any = None
    error: str | None = None


def _names(language: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    lang = language if language in LABELS else "zh"
    return LABELS[lang], RULE_NAMES[lang], SEVERITY_NAMES[lang]


def message_lines(alert: Alert, language: str, zone: ZoneInfo) -> tuple[str, list[str]]:
    """The title and the lines of a message in ``language`` (zh or en)."""
    labels, rules, severities = _names(language)
    rule = rules.get(alert.rule, alert.rule)
    title = alert.headline or f"{labels['test'] if alert.test else labels['title']}: {rule}"
    site = (
        alert.site_name
        if alert.site_name == alert.site_id
        else (f"{alert.site_name} ({alert.site_id})")
    )
    lines = [f"{labels['site']}: {site}"]
    if alert.camera_id:
        name = alert.camera_name
        camera = (
            f"{name} ({alert.camera_id})" if name and name != alert.camera_id else alert.camera_id
        )
        lines.append(f"{labels['camera']}: {camera}")
    if alert.zone:
        lines.append(f"{labels['zone']}: {alert.zone}")
    if alert.rule:  # camera messages are about no rule
        lines.append(f"{labels['rule']}: {rule}")
    lines += [
        f"{labels['severity']}: {severities.get(alert.severity, alert.severity)}",
        f"{labels['time']}: {alert.local_time(zone)}",
        *alert.extra_lines,
    ]
    if alert.test:
        lines.append(labels["test_text"])
    return title, lines


def _markdown(alert: Alert, language: str, zone: ZoneInfo) -> tuple[str, str]:
    labels, _, _ = _names(language)
    title, lines = message_lines(alert, language, zone)
    body = "\n".join(f"> {line}" for line in lines)
    text = f"### {title}\n{body}\n\n[{labels['link']}]({alert.link})"
    return title, text


def _plain(alert: Alert, language: str, zone: ZoneInfo) -> str:
    labels, _, _ = _names(language)
    title, lines = message_lines(alert, language, zone)
    return "\n".join([title, *lines, f"{labels['link']}: {alert.link}"])


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature (base64, not yet URL-encoded)."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's signature: the key is "<timestamp>\\n<secret>", the message is empty."""
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def build_request(
    target: Target, alert: Alert, zone: ZoneInfo, *, now: float | None = None
) -> Request:
    """The HTTP request that delivers ``alert`` to ``target``."""
    now = time.time() if now is None else now
    headers = {"Content-Type": "application/json; charset=utf-8"}
    url = target.url
    payload: dict[str, Any]
    if target.kind == ChannelKind.WECOM:
        _, text = _markdown(alert, target.language, zone)
        payload = {"msgtype": "markdown", "markdown": {"content": text}}
    elif target.kind == ChannelKind.DINGTALK:
        title, text = _markdown(alert, target.language, zone)
        payload = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        if target.secret:
            ms = int(now * 1000)
            sign = urllib.parse.quote_plus(dingtalk_sign(target.secret, ms))
            url += f"{'&' if '?' in url else '?'}timestamp={ms}&sign={sign}"
    elif target.kind == ChannelKind.FEISHU:
        payload = {"msg_type": "text", "content": {"text": _plain(alert, target.language, zone)}}
        if target.secret:
            seconds = int(now)
            payload = {
                "timestamp": str(seconds),
                "sign": feishu_sign(target.secret, seconds),
                **payload,
            }
    else:
        _, rules, _ = _names(target.language)
        seconds = int(now)
        payload = {
            **alert.fields,
            "kind": alert.kind,
            "event_id": alert.event_id,
            "site_id": alert.site_id,
            "site_name": alert.site_name,
            "camera_id": alert.camera_id,
            "camera_name": alert.camera_name or alert.camera_id,
            "zone": alert.zone,
            "rule": alert.rule,
            "rule_name": rules.get(alert.rule, alert.rule),
            "severity": alert.severity,
            "started_at": alert.started_at.isoformat(),
            "local_time": alert.local_time(zone),
            "timezone": zone.key,
            "link": alert.link,
            "title": message_lines(alert, target.language, zone)[0],
            "lines": list(alert.extra_lines),
            "test": alert.test,
            "sent_at": seconds,
        }
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    if target.kind == ChannelKind.WEBHOOK:
        headers["X-Sitewatch-Timestamp"] = str(int(now))
        if target.secret:
            headers[SIGNATURE_HEADER] = webhook_signature(target.secret, body)
    return Request(url=url, body=body, headers=headers)


_SECRET_PARAMS = re.compile(r"(?i)((?:sign|access_token|key|token|secret)=)[^&\s\"'<>]*")


def scrub(text: str, target: Target) -> str:
    """``text`` without the channel's secret, URL tokens or signatures, truncated."""
    if target.secret:
        text = text.replace(target.secret, "***")
        text = text.replace(urllib.parse.quote_plus(target.secret), "***")
    text = _SECRET_PARAMS.sub(r"\1***", text)
    return text[:MAX_ERROR]


def _provider_code(kind: ChannelKind, answer: Any) -> tuple[bool, Any]:
    if kind == ChannelKind.WEBHOOK:
        return True, None
    if not isinstance(answer, dict):
        return False, None
    if kind == ChannelKind.FEISHU:
        code = answer.get("code", answer.get("StatusCode"))
    else:
        code = answer.get("errcode")
    return code == 0 and not isinstance(code, bool), code


def send(
    target: Target,
    alert: Alert,
    zone: ZoneInfo,
    *,
    timeout_s: float,
    client: httpx.Client | None = None,
) -> SendResult:
    """Deliver ``alert``; never raises (a failure comes back with a scrubbed error)."""
    if target.kind == ChannelKind.EMAIL:
        from sitewatch.server.notify.email import send_email  # email imports this module

        return send_email(target, alert, zone, timeout_s=timeout_s)
    if target.kind == ChannelKind.MQTT:
        from sitewatch.server.notify.mqtt import send_mqtt  # mqtt imports this module

        return send_mqtt(target, alert, zone, timeout_s=timeout_s)
    try:
        request = build_request(target, alert, zone)
    except Exception as exc:  # a URL or a value that cannot be sent: a clear failure
        return SendResult(False, None, error=scrub(f"{type(exc).__name__}: {exc}", target))
    result = _post(target, request, timeout_s=timeout_s, client=client)
    if result.ok and target.kind == ChannelKind.WECOM and alert.snapshot_jpeg:
        # The picture follows as WeCom's image message; the alert went out either way,
        # so a failure here is logged and not retried (that would repeat the text).
        image = wecom_image(target, alert.snapshot_jpeg)
        picture = _post(target, image, timeout_s=timeout_s, client=client)
        if not picture.ok:
            logger.warning("WeCom snapshot not sent: %s", picture.error)
    return result


def wecom_image(target: Target, jpeg: bytes) -> Request:
    """WeCom's image message: the picture in base64 with its MD5 (at most 2 MB)."""
    payload = {
        "msgtype": "image",
        "image": {
            "base64": base64.b64encode(jpeg).decode(),
            "md5": hashlib.md5(jpeg, usedforsecurity=False).hexdigest(),  # WeCom's checksum
        },
    }
    return Request(
        url=target.url,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )


def _post(
    target: Target, request: Request, *, timeout_s: float, client: httpx.Client | None = None
) -> SendResult:
    try:
        if client is None:
            with httpx.Client(timeout=timeout_s, follow_redirects=False) as own:
                response = own.post(request.url, content=request.body, headers=request.headers)
        else:
            response = client.post(
                request.url, content=request.body, headers=request.headers, timeout=timeout_s
            )
    except Exception as exc:  # connection refused, timeout, a URL httpx cannot use
        return SendResult(False, None, error=scrub(f"{type(exc).__name__}: {exc}", target))
    try:
        answer: Any = response.json()
    except ValueError:
        answer = None
    if not 200 <= response.status_code < 300 or (
        target.kind != ChannelKind.WEBHOOK and response.status_code != 200
    ):
        text = response.text[:200]
        return SendResult(
            False,
            response.status_code,
            error=scrub(f"HTTP {response.status_code}: {text}", target),
        )
    ok, code = _provider_code(target.kind, answer)
    if not ok:
        text = response.text[:200]
        return SendResult(False, response.status_code, code, scrub(f"provider: {text}", target))
    return SendResult(True, response.status_code, code)
