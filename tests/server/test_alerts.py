"""Alerts (issue 16): channels, rules, the queue written with the event, delivery.

The chat providers cannot be reached from here: local HTTP receivers (http.server on
loopback, in a thread) check each request as the provider documents it: DingTalk's
timestamp + secret signature, Feishu's signature, WeCom's JSON, the webhook's HMAC header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sitewatch.server.app import create_app
from sitewatch.server.db.models import Notification, Role
from sitewatch.server.notify.worker import deliver_due
from tests.server.conftest import ServerEnv, event_json, make_settings, post_event

DING_SECRET = "SECdingtalk-secret-0123456789"
FEISHU_SECRET = "feishu-secret-abcdef"
HOOK_SECRET = "webhook-secret-xyz"
SECRETS = (DING_SECRET, FEISHU_SECRET, HOOK_SECRET)


@dataclass
class Received:
    kind: str
    path: str
    body: dict[str, Any]
    ok: bool
    why: str = ""


def _b64_hmac(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def check(kind: str, path: str, headers: Any, raw: bytes) -> tuple[bool, str, dict[str, Any]]:
    """Check a request as the provider would; (accepted, why not, JSON body)."""
    body = json.loads(raw)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    if kind == "wecom" and body.get("msgtype") == "image":
        image = body.get("image", {})
        try:
            picture = base64.b64decode(image.get("base64", ""), validate=True)
        except ValueError:
            return False, "bad base64", body
        ok = (
            set(body) == {"msgtype", "image"}
            and picture[:2] == b"\xff\xd8"
            and len(picture) <= 2 * 1024 * 1024
            and image.get("md5") == hashlib.md5(picture, usedforsecurity=False).hexdigest()
        )
        return ok, "" if ok else "bad wecom image", body
    if kind == "wecom":
        ok = (
            body.get("msgtype") == "markdown"
            and set(body) == {"msgtype", "markdown"}
            and isinstance(body["markdown"].get("content"), str)
            and query.get("key") == ["wecom-robot-key"]
        )
        return ok, "" if ok else "bad wecom body", body
    if kind == "dingtalk":
        ts, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600_000:
            return False, "timestamp", body
        expected = _b64_hmac(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode())
        if not hmac.compare_digest(sign, expected):
            return False, "sign not match", body
        ok = body.get("msgtype") == "markdown" and {"title", "text"} <= set(body["markdown"])
        return ok, "" if ok else "bad dingtalk body", body
    if kind == "feishu":
        ts = body.get("timestamp", "")
        if not isinstance(ts, str) or abs(int(ts) - time.time()) > 3600:
            return False, "timestamp", body
        expected = _b64_hmac(f"{ts}\n{FEISHU_SECRET}".encode(), b"")
        if body.get("sign") != expected:
            return False, "sign match fail", body
        ok = body.get("msg_type") == "text" and isinstance(body["content"].get("text"), str)
        return ok, "" if ok else "bad feishu body", body
    signature = headers.get("X-Sitewatch-Signature", "")
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(signature, expected) and headers.get("X-Sitewatch-Timestamp")
    return bool(ok), "" if ok else "bad signature", body


class Receiver:
    """Loopback HTTP server answering like WeCom / DingTalk / Feishu / a webhook."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def url(self, kind: str, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{kind}{query}"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                kind = urllib.parse.urlsplit(self.path).path.strip("/")
                ok, why, body = check(kind, self.path, self.headers, raw)
                owner.received.append(Received(kind, self.path, body, ok, why))
                if kind == "feishu":
                    answer = {"code": 0, "msg": "success"} if ok else {"code": 19021, "msg": why}
                elif kind == "webhook":
                    self.send_response(204 if ok else 401)
                    self.end_headers()
                    return
                else:
                    answer = {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 310000}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.kind == kind]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@dataclass
class Alerts:
    env: ServerEnv
    admin: TestClient
    receiver: Receiver
    channels: dict[str, int] = field(default_factory=dict)

    def channel(self, kind: str, secret: str | None = None, **extra: Any) -> int:
        query = "?key=wecom-robot-key" if kind == "wecom" else "?access_token=ding-token"
        body = {"name": f"{kind} robot", "kind": kind, "url": self.receiver.url(kind, query)}
        if secret:
            body["secret"] = secret
        body.update(extra)
        answer = self.admin.post("/api/v1/alerts/channels", json=body)
        assert answer.status_code == 201, answer.text
        self.channels[kind] = answer.json()["id"]
        return int(answer.json()["id"])

    def rule(self, channel_id: int, **fields: Any) -> None:
        answer = self.admin.post("/api/v1/alerts/rules", json={"channel_id": channel_id, **fields})
        assert answer.status_code == 201, answer.text

    def notifications(self) -> list[Notification]:
        with self.env.database.session() as db:
            return list(db.scalars(select(Notification).order_by(Notification.id)))

    def deliver(self, now: datetime | None = None) -> Any:
        return deliver_due(self.env.database, self.env.settings, now=now)

    def deliver_with_store(self) -> Any:
        """A round as the app's worker runs it, reading snapshots from its media store."""
        store = self.env.app.state.store
        return deliver_due(self.env.database, self.env.settings, store=store)


@pytest.fixture
def alerts(server_env: ServerEnv, receiver: Receiver) -> Alerts:
    admin = server_env.user("root", Role.ADMIN)
    server_env.site("site-a")
    server_env.site("site-b")
    return Alerts(server_env, admin, receiver)


def all_channels(alerts: Alerts) -> None:
    for kind, secret in (
        ("wecom", None),
        ("dingtalk", DING_SECRET),
        ("feishu", FEISHU_SECRET),
        ("webhook", HOOK_SECRET),
    ):
        alerts.rule(alerts.channel(kind, secret))


def test_each_provider_format_and_signature(alerts: Alerts) -> None:
    all_channels(alerts)
    device = alerts.env.device("site-a")
    body = event_json("site-a", zone="edge-3")
    assert post_event(device, body).status_code in (200, 201)
    assert len(alerts.notifications()) == 4
    done = alerts.deliver()
    assert (done.sent, done.failed, done.retried) == (4, 0, 0), done.errors
    got = {r.kind: r for r in alerts.receiver.received}
    assert sorted(got) == ["dingtalk", "feishu", "webhook", "wecom"]
    assert all(r.ok for r in got.values()), [r.why for r in got.values()]
    # Chinese by default: rule, severity, local time (UTC 08:00 is 16:00 in Shanghai), link.
    text = got["wecom"].body["markdown"]["content"]
    assert "未戴安全帽" in text and "摄像头: cam-1" in text and "级别: 高" in text
    assert "2026-05-01 16:00:00" in text and "edge-3" in text
    assert f"http://127.0.0.1:8000/ui/events/{body['event_id']}" in text
    assert "未戴安全帽" in got["dingtalk"].body["markdown"]["title"]
    assert "未戴安全帽" in got["feishu"].body["content"]["text"]
    hook = got["webhook"].body
    assert hook["event_id"] == body["event_id"] and hook["rule"] == "no_helmet"
    assert hook["local_time"] == "2026-05-01 16:00:00" and hook["site_id"] == "site-a"
    assert hook["link"].endswith(f"/ui/events/{body['event_id']}")
    assert all(n.status == "sent" and n.attempts == 1 for n in alerts.notifications())
    # Delivered once: another round sends nothing.
    assert alerts.deliver().claimed == 0 and len(alerts.receiver.received) == 4


def test_english_channel(alerts: Alerts) -> None:
    alerts.rule(alerts.channel("wecom", language="en"))
    post_event(alerts.env.device("site-a"), event_json("site-a", rule="fall_edge"))
    alerts.deliver()
    text = alerts.receiver.of("wecom")[0].body["markdown"]["content"]
    assert "Fall-risk edge" in text and "Camera: cam-1" in text


def test_one_alert_per_event_not_per_update(alerts: Alerts) -> None:
    alerts.rule(alerts.channel("wecom"))
    device = alerts.env.device("site-a")
    body = event_json("site-a")
    post_event(device, body)
    post_event(device, body)  # the start re-sent
    later = datetime(2026, 5, 1, 8, 1, tzinfo=UTC).isoformat()
    post_event(device, {**body, "phase": "update", "updated_at": later})
    post_event(device, {**body, "phase": "end", "ended_at": later})
    assert len(alerts.notifications()) == 1
    alerts.deliver()
    assert len(alerts.receiver.received) == 1


def test_rules_by_site_rule_and_severity(alerts: Alerts) -> None:
    wecom = alerts.channel("wecom")
    hook = alerts.channel("webhook", HOOK_SECRET)
    alerts.rule(wecom, site_id="site-a", rule="no_helmet")
    alerts.rule(hook, min_severity="critical")
    alerts.rule(hook, site_id="site-b", camera_id="gate")
    dev_a, dev_b = alerts.env.device("site-a"), alerts.env.device("site-b")
    cases = [
        (dev_a, event_json("site-a"), {wecom}),
        (dev_a, event_json("site-a", rule="fall_edge"), set()),
        (dev_a, event_json("site-a", severity="critical"), {wecom, hook}),
        (dev_b, event_json("site-b"), set()),
        (dev_b, event_json("site-b", camera_id="gate", severity="low"), {hook}),
    ]
    for device, body, expected in cases:
        assert post_event(device, body).status_code in (200, 201)
        with alerts.env.database.session() as db:
            got = set(
                db.scalars(
                    select(Notification.channel_id).where(
                        Notification.event_id == uuid.UUID(body["event_id"])
                    )
                )
            )
        assert got == expected, body


def test_receiver_down_then_back_delivers_once(alerts: Alerts) -> None:
    alerts.rule(alerts.channel("dingtalk", DING_SECRET))
    alerts.rule(alerts.channel("webhook", HOOK_SECRET))
    body = event_json("site-a")
    post_event(alerts.env.device("site-a"), body)
    alerts.receiver.stop()
    now = datetime.now(UTC)
    done = alerts.deliver(now)
    assert (done.sent, done.retried) == (0, 2)
    rows = alerts.notifications()
    assert all(n.status == "pending" and n.attempts == 1 and n.last_error for n in rows)
    for n in rows:  # neither the secret nor DingTalk's signature in the stored error
        assert not any(s in (n.last_error or "") for s in SECRETS)
        assert "sign=" not in (n.last_error or "").replace("sign=***", "")
        assert "ding-token" not in (n.last_error or "")
    assert alerts.deliver(now + timedelta(seconds=1)).claimed == 0  # backing off
    alerts.receiver.start()  # the same port again
    done = alerts.deliver(now + timedelta(seconds=6))
    assert done.sent == 2, done.errors
    assert alerts.deliver(now + timedelta(hours=1)).claimed == 0
    assert len(alerts.receiver.received) == 2 and all(r.ok for r in alerts.receiver.received)
    answer = alerts.admin.get(f"/api/v1/events/{body['event_id']}/notifications").json()
    assert [(n["status"], n["attempts"], n["last_error"]) for n in answer] == [
        ("sent", 2, None),
        ("sent", 2, None),
    ]


def test_failed_after_max_attempts_and_wrong_secret(alerts: Alerts) -> None:
    alerts.rule(alerts.channel("feishu", "not-the-secret"))
    body = event_json("site-a")
    post_event(alerts.env.device("site-a"), body)
    now = datetime.now(UTC)
    for step in range(alerts.env.settings.alert_max_attempts):
        alerts.deliver(now + timedelta(hours=step))
    (row,) = alerts.notifications()
    assert row.status == "failed" and row.attempts == alerts.env.settings.alert_max_attempts
    assert "19021" in (row.last_error or "") and "not-the-secret" not in (row.last_error or "")
    assert alerts.deliver(now + timedelta(days=1)).claimed == 0


def test_rate_limit_per_channel(alerts: Alerts) -> None:
    alerts.env.settings.alert_rate_per_minute = 3
    alerts.rule(alerts.channel("wecom"))
    device = alerts.env.device("site-a")
    for _ in range(5):
        post_event(device, event_json("site-a"))
    now = datetime.now(UTC)
    assert alerts.deliver(now).sent == 3
    assert alerts.deliver(now + timedelta(seconds=30)).claimed == 0  # still in the minute
    assert alerts.deliver(now + timedelta(seconds=61)).sent == 2
    assert len(alerts.receiver.received) == 5


def test_secrets_never_in_answers(alerts: Alerts) -> None:
    channel = alerts.channel("dingtalk", DING_SECRET)
    for answer in (
        alerts.admin.get("/api/v1/alerts/channels"),
        alerts.admin.get(f"/api/v1/alerts/channels/{channel}"),
        alerts.admin.patch(f"/api/v1/alerts/channels/{channel}", json={"name": "钉钉"}),
        alerts.admin.patch(f"/api/v1/alerts/channels/{channel}", json={"secret": "SECnew-one"}),
        alerts.admin.get("/api/v1/audit"),
    ):
        assert answer.status_code == 200, answer.text
        assert DING_SECRET not in answer.text and "ding-token" not in answer.text
        assert "SECnew-one" not in answer.text
    shown = alerts.admin.get(f"/api/v1/alerts/channels/{channel}").json()
    assert shown["secret_set"] is True and "secret" not in shown and shown["name"] == "钉钉"
    cleared = alerts.admin.patch(f"/api/v1/alerts/channels/{channel}", json={"secret": None})
    assert cleared.json()["secret_set"] is False


def test_test_button(alerts: Alerts) -> None:
    good = alerts.channel("dingtalk", DING_SECRET)
    answer = alerts.admin.post(f"/api/v1/alerts/channels/{good}/test")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "status_code": 200, "provider_code": 0, "error": None}
    (got,) = alerts.receiver.received
    assert got.ok and "测试消息" in got.body["markdown"]["text"]
    bad = alerts.channel("dingtalk", "wrong-secret")
    answer = alerts.admin.post(f"/api/v1/alerts/channels/{bad}/test").json()
    assert answer["ok"] is False and answer["provider_code"] == 310000
    alerts.receiver.stop()
    answer = alerts.admin.post(f"/api/v1/alerts/channels/{good}/test").json()
    assert answer["ok"] is False and answer["status_code"] is None and answer["error"]
    assert DING_SECRET not in answer["error"] and "ding-token" not in answer["error"]


def test_admins_only_and_csrf(alerts: Alerts) -> None:
    channel = alerts.channel("wecom")
    alerts.rule(channel, site_id="site-a")
    reviewer = alerts.env.user("rita", Role.REVIEWER, ["site-a"])
    outsider = alerts.env.user("otto", Role.VIEWER, ["site-b"])
    assert reviewer.get("/api/v1/alerts/channels").status_code == 403
    assert reviewer.post(f"/api/v1/alerts/channels/{channel}/test").status_code == 403
    assert reviewer.post("/api/v1/alerts/rules", json={"channel_id": channel}).status_code == 403
    assert reviewer.delete(f"/api/v1/alerts/channels/{channel}").status_code == 403
    csrf = alerts.admin.headers.pop("X-CSRF-Token")
    assert alerts.admin.delete(f"/api/v1/alerts/channels/{channel}").status_code == 403
    alerts.admin.headers["X-CSRF-Token"] = csrf
    body = event_json("site-a")
    post_event(alerts.env.device("site-a"), body)
    url = f"/api/v1/events/{body['event_id']}/notifications"
    assert [n["status"] for n in reviewer.get(url).json()] == ["pending"]
    assert outsider.get(url).status_code == 404
    # A channel with notifications is kept (disable it); its rules go with it otherwise.
    assert alerts.admin.delete(f"/api/v1/alerts/channels/{channel}").status_code == 409
    other = alerts.channel("webhook")
    alerts.rule(other)
    assert alerts.admin.delete(f"/api/v1/alerts/channels/{other}").status_code == 204
    assert [r["channel_id"] for r in alerts.admin.get("/api/v1/alerts/rules").json()] == [channel]


def test_disabled_channel_gets_nothing(alerts: Alerts) -> None:
    channel = alerts.channel("wecom")
    alerts.rule(channel)
    device = alerts.env.device("site-a")
    post_event(device, event_json("site-a"))
    alerts.admin.patch(f"/api/v1/alerts/channels/{channel}", json={"enabled": False})
    post_event(device, event_json("site-a"))
    alerts.deliver()
    assert alerts.receiver.received == []
    (row,) = alerts.notifications()
    assert row.status == "failed" and "disabled" in (row.last_error or "")


def test_worker_thread_runs_with_the_app(
    server_env: ServerEnv, receiver: Receiver, tmp_path: Any
) -> None:
    settings = make_settings(tmp_path, notify_poll_s=0.05)
    app = create_app(settings, database=server_env.database)
    alerts = Alerts(server_env, server_env.user("root", Role.ADMIN), receiver)
    alerts.rule(alerts.channel("webhook", HOOK_SECRET))
    device = server_env.device("site-a")
    with TestClient(app):
        worker = app.state.notify_worker
        assert worker.running
        post_event(device, event_json("site-a"))
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not worker.running
    assert len(receiver.received) == 1 and receiver.received[0].ok
    assert [n.status for n in alerts.notifications()] == ["sent"]


def test_concurrent_workers_send_each_once(alerts: Alerts) -> None:
    """Four delivery workers at once (SKIP LOCKED on PostgreSQL, conditional UPDATE on
    SQLite): every notification reaches the receiver exactly once."""
    alerts.env.settings.alert_digest_after = 0  # eight alerts of one rule: no digest here
    alerts.rule(alerts.channel("webhook", HOOK_SECRET))
    alerts.rule(alerts.channel("wecom"))
    device = alerts.env.device("site-a")
    for _ in range(8):
        post_event(device, event_json("site-a"))
    now = datetime.now(UTC)
    threads = [threading.Thread(target=alerts.deliver, args=(now,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(alerts.receiver.received) == 16
    paths = [
        (r.kind, r.body.get("event_id") or r.body["markdown"]["content"])
        for r in alerts.receiver.received
    ]
    assert len(set(paths)) == 16
    assert all(n.status == "sent" and n.attempts == 1 for n in alerts.notifications())
