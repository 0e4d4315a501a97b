"""The alerts page's forms in process (the real app, SQLite; no browser): channels, their
test button, rules, refusals in the page's language, admins only, and the event page's
notifications before and after delivery (issue 16)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from ui_harness import free_port
from ui_media_files import make_event_media
from ui_seed import DAY, PASSWORD, event_body, form_login, seed_accounts, seed_events

URL_RULE_ZH = "地址须以 http://、https://、smtp://、smtps://、mqtt:// 或 mqtts:// 开头"
URL_RULE_EN = "The URL starts with http://, https://, smtp://, smtps://, mqtt:// or mqtts://"

ADMIN = "admin-1"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict, Any]]:
    from sitewatch.server.app import create_app
    from sitewatch.server.db.models import Role
    from sitewatch.server.services import admin
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-alerts")
    settings = Settings(
        data_dir=root,
        media_dir=root / "media",
        session_secret=SecretStr("alerts-" + uuid.uuid4().hex),
        notify_worker=False,  # the tests deliver with deliver_due themselves
        alert_timeout_s=2.0,
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media", clip_frames=20)
    tokens = seed_accounts(app)
    with app.state.db.session() as db:
        admin.create_user(db, actor=None, username=ADMIN, password=PASSWORD, role=Role.ADMIN)
    with TestClient(app, base_url="http://testserver") as client:
        seed_events(client, tokens, media)
        app.state.test_device_tokens = tokens
        yield client, tokens, app


_login = form_login


def _channel(client: TestClient, csrf: str, **fields: str) -> int:
    data = {"kind": "webhook", "language": "zh", "enabled": "on", "csrf_token": csrf, **fields}
    answer = client.post("/ui/alerts/channels", data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/alerts?done=channel_created#channels"
    page = client.get("/ui/alerts").text
    ids = re.findall(r'data-channel-id="(\d+)"', page)
    return int(ids[-1])


def _card(page: str, channel_id: int) -> str:
    start = page.index(f'id="channel-{channel_id}"')
    return page[start : page.index("</article>", start)]


def _no_raw_error(text: str) -> None:
    assert "Traceback" not in text and '{"detail"' not in text and "Value error" not in text


def test_channel_is_listed_masked_and_edited(ui: tuple) -> None:
    client = ui[0]
    csrf = _login(client, ADMIN)
    url = "https://hooks.example.com/robot/send?access_token=TOKEN123"
    channel_id = _channel(client, csrf, name="值班群", url=url, secret="s3cret-value")
    page = client.get("/ui/alerts?done=channel_created")
    assert page.status_code == 200 and "通道已添加" in page.text
    card = _card(page.text, channel_id)
    assert "https://hooks.example.com/robot/send?***" in card
    assert "TOKEN123" not in page.text and "s3cret-value" not in page.text
    assert "Webhook" in card and "已设置" in card and "中文" in card
    base = f"/ui/alerts/channels/{channel_id}"
    # an empty secret keeps it; a new name and language are saved
    client.post(base, data={"name": "夜班群", "language": "en", "secret": "", "csrf_token": csrf})
    card = _card(client.get("/ui/alerts").text, channel_id)
    assert "夜班群" in card and "已设置" in card and "英文" in card
    client.post(base, data={"remove_secret": "on", "csrf_token": csrf})
    card = _card(client.get("/ui/alerts").text, channel_id)
    assert "未设置" in card
    client.post(f"{base}/enabled", data={"enabled": "", "csrf_token": csrf})
    card = _card(client.get("/ui/alerts").text, channel_id)
    assert 'class="channel-enabled">否<' in card and "启用</button>" in card
    bad = client.post(base, data={"url": "smtp://mail.example.com", "csrf_token": csrf})
    assert bad.status_code == 422
    assert "该类型通道的地址须以 http:// 或 https:// 开头" in _card(bad.text, channel_id)
    _no_raw_error(bad.text)


def test_bad_channel_input_is_refused_in_chinese_and_english(ui: tuple) -> None:
    client = ui[0]
    csrf = _login(client, ADMIN)
    data = {"name": "坏地址", "kind": "webhook", "url": "ftp://x.example.com/", "csrf_token": csrf}
    bad = client.post("/ui/alerts/channels", data=data)
    assert bad.status_code == 422
    errors = re.search(r'id="channel-new-errors"[^>]*>(.*?)</ul>', bad.text, re.S)
    assert errors is not None and URL_RULE_ZH in errors[1]
    assert 'value="坏地址"' in bad.text  # what was typed stays in the form
    _no_raw_error(bad.text)
    email = client.post(
        "/ui/alerts/channels", data={**data, "kind": "email", "url": "http://x.io/a"}
    )
    assert email.status_code == 422 and "邮件地址格式不正确" in email.text
    empty = client.post("/ui/alerts/channels", data={**data, "name": " ", "url": "https://x.io/"})
    assert empty.status_code == 422 and "<strong>名称</strong>: 必填" in empty.text
    english = client.post("/ui/alerts/channels?lang=en", data=data)
    assert URL_RULE_EN in english.text
    assert "Alert channels" in english.text


def test_rules_hours_and_weekdays(ui: tuple) -> None:
    client = ui[0]
    csrf = _login(client, ADMIN)
    channel_id = _channel(client, csrf, name="规则通道", url="https://rules.example.com/hook")
    rule = {"channel_id": str(channel_id), "site_id": "site-a", "csrf_token": csrf}
    for hours, reason in (
        ({"active_from": "25:00", "active_to": "06:00"}, "须为 HH:MM 格式的当地时间"),
        ({"active_from": "22:00"}, "开始时间和结束时间须同时填写"),
        ({"active_from": "08:00", "active_to": "08:00"}, "开始时间和结束时间不能相同"),
    ):
        bad = client.post("/ui/alerts/rules", data={**rule, **hours})
        assert bad.status_code == 422, hours
        errors = re.search(r'id="rule-new-errors"[^>]*>(.*?)</ul>', bad.text, re.S)
        assert errors is not None and reason in errors[1], bad.text
        _no_raw_error(bad.text)
    missing_site = client.post("/ui/alerts/rules", data={**rule, "site_id": "nowhere"})
    assert missing_site.status_code == 404 and "工地不存在" in missing_site.text
    good = client.post(
        "/ui/alerts/rules",
        data={
            **rule,
            "rule": "fall_edge",
            "min_severity": "high",
            "active_from": "22:00",
            "active_to": "06:00",
            "weekdays": ["3", "1"],
            "escalation": "on",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    page = client.get("/ui/alerts").text
    row = re.findall(r'<tr class="rule-row" data-rule-id="(\d+)">(.*?)</tr>', page, re.S)[-1]
    assert "规则通道" in row[1] and "一号工地 A" in row[1] and "临边危险" in row[1]
    assert "22:00–06:00" in row[1] and "周一、周三" in row[1] and ">高<" in row[1]
    deleted = client.post(f"/ui/alerts/rules/{row[0]}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 200 and "规则已删除" in deleted.text
    assert f'data-rule-id="{row[0]}"' not in deleted.text


def test_test_button_shows_the_provider_error(ui: tuple) -> None:
    client = ui[0]
    csrf = _login(client, ADMIN)
    closed = f"http://127.0.0.1:{free_port()}/hook"
    channel_id = _channel(client, csrf, name="关闭端口", url=closed)
    answer = client.post(f"/ui/alerts/channels/{channel_id}/test", data={"csrf_token": csrf})
    assert answer.status_code == 200
    result = re.search(rf'id="test-result-{channel_id}"[^>]*>(.*?)</p>', answer.text, re.S)
    assert result is not None and "测试消息发送失败" in result[1] and "ConnectError" in result[1]
    missing = client.post("/ui/alerts/channels/999999/test", data={"csrf_token": csrf})
    assert missing.status_code == 404


def test_only_admins_and_only_with_the_csrf_token(ui: tuple) -> None:
    client = ui[0]
    for username in ("rev-a", "view-a"):
        csrf = _login(client, username)
        page = client.get("/ui/alerts")
        assert page.status_code == 403 and "只有管理员" in page.text
        assert 'href="/ui/alerts"' not in page.text
        data = {"name": "x", "kind": "webhook", "url": "https://x.io/", "csrf_token": csrf}
        assert client.post("/ui/alerts/channels", data=data).status_code == 403
    csrf = _login(client, ADMIN)
    assert 'href="/ui/alerts"' in client.get("/ui/events").text
    no_token = client.post("/ui/alerts/channels", data={"name": "x", "kind": "webhook"})
    assert no_token.status_code == 403
    client.cookies.clear()
    anonymous = client.get("/ui/alerts", follow_redirects=False)
    assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]


def test_event_page_shows_delivery_and_used_channel_stays(ui: tuple) -> None:
    from sitewatch.server.notify.worker import deliver_due

    client, tokens, app = ui
    csrf = _login(client, ADMIN)
    channel_id = _channel(client, csrf, name="送达通道", url="https://deliver.example.com/hook")
    rule = {"channel_id": str(channel_id), "site_id": "site-b", "csrf_token": csrf}
    assert client.post("/ui/alerts/rules", data=rule).status_code == 200
    body = event_body("site-b", "cam-b2", "no_helmet", DAY + timedelta(hours=3))
    headers = {"Authorization": f"Bearer {tokens['site-b']}"}
    assert client.put(f"/api/v1/events/{body['event_id']}", json=body, headers=headers).is_success
    event_page = f"/ui/events/{body['event_id']}"
    _login(client, "rev-b")  # a reviewer of the site sees the event's notifications
    page = client.get(event_page).text
    assert 'id="notifications"' in page and "送达通道" in page
    assert 'data-status="pending">待发送' in page

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="robot down")

    with httpx.Client(transport=httpx.MockTransport(refuse)) as failing:
        deliver_due(app.state.db, app.state.settings, client=failing)
    page = client.get(event_page).text
    row = re.search(r'<tr class="notification-row[^"]*">(.*?)</tr>', page, re.S)
    assert row is not None and "待发送" in row[1] and "下次尝试" in row[1]
    assert '<td class="num">1</td>' in row[1] and "500" in row[1]

    def accept(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    later = app.state.settings.alert_retry_max_s + 1
    with httpx.Client(transport=httpx.MockTransport(accept)) as ok:
        from sitewatch.server.db.types import utcnow

        deliver_due(
            app.state.db, app.state.settings, client=ok, now=utcnow() + timedelta(seconds=later)
        )
    page = client.get(f"{event_page}?lang=en").text
    row = re.search(r'<tr class="notification-row[^"]*">(.*?)</tr>', page, re.S)
    assert row is not None and 'data-status="sent">Sent' in row[1]
    assert '<td class="num">2</td>' in row[1] and "+08:00" in row[1]
    assert "Notifications" in page
    # the hazard loop's messages about the event show too
    csrf = _login(client, "rev-b")
    client.post(f"{event_page}/verdict", data={"verdict": "confirm", "csrf_token": csrf})
    client.post(
        f"{event_page}/rectification",
        data={"assignee": "赵工", "deadline": "2030-01-01", "csrf_token": csrf},
    )
    page = client.get(event_page).text
    kinds = re.findall(
        r'<tr class="notification-row[^"]*">\s*<td>[^\n]*</td>\s*<td>([^<]+)</td>', page
    )
    assert kinds[0] == "事件告警" and {"整改下发", "整改提醒"} <= set(kinds[1:]), kinds
    # the other site's reviewer cannot open the event (and so not its notifications)
    _login(client, "rev-a")
    assert client.get(event_page).status_code == 404
    csrf = _login(client, ADMIN)
    kept = client.post(f"/ui/alerts/channels/{channel_id}/delete", data={"csrf_token": csrf})
    assert kept.status_code == 409
    reason = f"该通道已有 {len(kinds)} 条通知记录，不能删除；请改为停用"
    assert reason in _card(kept.text, channel_id)
    _no_raw_error(kept.text)
