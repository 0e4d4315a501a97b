"""The alerts page in a real browser (Debian's chromium via Playwright) against a real
server (issue 16): an admin adds a webhook channel whose test button reaches a local HTTP
receiver, then a closed port; adds rules; bad input is refused in Chinese; reviewers get
403; English; 390 px wide; the event page shows the delivery state after deliver_due."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from ui_harness import free_port, live_server
from ui_media_files import make_event_media
from ui_seed import DAY, PASSWORD, event_body, login, seed_accounts, seed_events

URL_RULE_ZH = "地址须以 http://、https://、smtp://、smtps://、mqtt:// 或 mqtts:// 开头"

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)").expect

SCREENSHOT_DIR = Path(os.environ.get("SITEWATCH_UI_SCREENSHOTS", "/tmp/sitewatch-ui-shots"))
ADMIN = "admin-ui"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1: records each POST and answers 200."""
    got: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            got.append(Received(self.path, dict(self.headers.items()), body))
            answer = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="alert-receiver", daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", got)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Live:
    base_url: str
    app: Any
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from sitewatch.server.app import create_app
    from sitewatch.server.db.models import Role
    from sitewatch.server.services import admin
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-alerts-server")
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'ui.db'}",
        media_dir=root / "media",
        session_secret=SecretStr("ui-alerts-" + uuid.uuid4().hex),
        notify_worker=False,  # the test runs deliver_due itself
        alert_timeout_s=3.0,
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media", clip_frames=20)
    tokens = seed_accounts(app)
    with app.state.db.session() as db:
        admin.create_user(db, actor=None, username=ADMIN, password=PASSWORD, role=Role.ADMIN)
    with live_server(app) as base_url:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            seed_events(client, tokens, media)
        yield Live(base_url, app, tokens)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from ui_harness import chromium_browser

    with chromium_browser() as browser:
        yield browser


#: Chromium logs the 422 page of a refused form as a failed load: expected here.
REFUSED = "the server responded with a status of 422"


def _watch(page: Any) -> list[str]:
    """Console errors (a CSP violation, a broken asset) and JavaScript errors of a page."""
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and REFUSED not in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _card(page: Any, name: str) -> Any:
    return page.locator("article.channel", has=page.locator("h3.channel-name", has_text=name))


def _no_horizontal_scroll(page: Any) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths}"


def test_admin_manages_channels_and_rules(browser: Any, live: Live, receiver: Receiver) -> None:
    page = login(browser, live.base_url, ADMIN)
    problems = _watch(page)
    page.click("#nav-alerts")
    page.wait_for_url("**/ui/alerts")
    expect(page.locator("h1")).to_have_text("告警通道与规则")

    # A webhook channel at the local receiver: listed with its kind, URL and secret state.
    page.fill("#channel-form input[name=name]", "现场值班")
    page.select_option("#channel-form select[name=kind]", "webhook")
    page.fill("#channel-form input[name=url]", receiver.url)
    page.fill("#channel-form input[name=secret]", "hook-secret-1")
    page.click("#channel-form button[type=submit]")
    expect(page.locator(".flash")).to_have_text("通道已添加")
    card = _card(page, "现场值班")
    expect(card.locator(".channel-kind")).to_have_text("Webhook")
    expect(card.locator(".channel-url")).to_have_text(receiver.url)
    expect(card.locator(".channel-secret")).to_have_text("已设置")
    expect(card.locator(".channel-enabled")).to_have_text("是")
    assert "hook-secret-1" not in page.content()

    # The test button really reaches the receiver, and the page says so.
    card.locator(".test-form button").click()
    result = _card(page, "现场值班").locator(".test-result")
    expect(result).to_have_text("测试消息已发送（HTTP 200）")
    assert result.get_attribute("data-ok") == "true"
    assert len(receiver.received) == 1 and receiver.received[0].path == "/hook"
    assert isinstance(receiver.received[0].body, dict)

    # Pointed at a closed port, the test shows the failure.
    card = _card(page, "现场值班")
    card.locator("details.edit summary").click()
    closed = f"http://127.0.0.1:{free_port()}/hook"
    card.locator(".edit-form input[name=url]").fill(closed)
    card.locator(".edit-form button[type=submit]").click()
    expect(page.locator(".flash")).to_have_text("通道已保存")
    expect(_card(page, "现场值班").locator(".channel-secret")).to_have_text("已设置")
    _card(page, "现场值班").locator(".test-form button").click()
    result = _card(page, "现场值班").locator(".test-result")
    expect(result).to_contain_text("测试消息发送失败")
    expect(result).to_contain_text("ConnectError")
    assert result.get_attribute("data-ok") == "false"
    assert len(receiver.received) == 1
    card = _card(page, "现场值班")
    card.locator("details.edit summary").click()
    card.locator(".edit-form input[name=url]").fill(receiver.url)
    card.locator(".edit-form button[type=submit]").click()
    expect(page.locator(".flash")).to_have_text("通道已保存")

    # A bad URL is refused next to the form, in Chinese, and what was typed stays.
    page.fill("#channel-form input[name=name]", "坏地址")
    page.fill("#channel-form input[name=url]", "ftp://files.example.com/x")
    page.click("#channel-form button[type=submit]")
    errors = page.locator("#channel-new-errors")
    expect(errors).to_contain_text(URL_RULE_ZH)
    expect(page.locator("#channel-form input[name=name]")).to_have_value("坏地址")
    assert _card(page, "坏地址").count() == 0

    # A rule with night hours on weekdays; a bad hour range is refused in Chinese.
    page.select_option("#rule-form select[name=site_id]", "site-b")
    page.fill("#rule-form input[name=active_from]", "08:00")
    page.fill("#rule-form input[name=active_to]", "08:00")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#rule-new-errors")).to_contain_text("开始时间和结束时间不能相同")
    page.fill("#rule-form input[name=active_to]", "")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#rule-new-errors")).to_contain_text("开始时间和结束时间须同时填写")
    page.select_option("#rule-form select[name=site_id]", "site-b")
    page.select_option("#rule-form select[name=rule]", "no_helmet")
    page.select_option("#rule-form select[name=min_severity]", "medium")
    page.fill("#rule-form input[name=active_from]", "22:00")
    page.fill("#rule-form input[name=active_to]", "06:00")
    for day in ("1", "2", "3", "4", "5"):
        page.check(f"#rule-form input[name=weekdays][value='{day}']")
    page.click("#rule-form button[type=submit]")
    expect(page.locator(".flash")).to_have_text("规则已添加")
    row = page.locator("tr.rule-row").last
    expect(row.locator(".rule-channel")).to_have_text("现场值班")
    expect(row.locator(".rule-hours")).to_have_text("22:00–06:00")
    expect(row.locator(".rule-days")).to_have_text("周一、周二、周三、周四、周五")
    expect(row).to_contain_text("二号工地 B")
    expect(row).to_contain_text("未戴安全帽")
    # and an all-day rule for site A, used by the event page test
    page.select_option("#rule-form select[name=site_id]", "site-a")
    page.click("#rule-form button[type=submit]")
    expect(page.locator(".flash")).to_have_text("规则已添加")
    expect(page.locator("tr.rule-row")).to_have_count(2)
    expect(page.locator("tr.rule-row").last.locator(".rule-hours")).to_have_text("全天")

    # 390 px wide (a phone): nothing scrolls the page sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/ui/alerts")
    _no_horizontal_scroll(page)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "alerts-390.png"), full_page=True)

    # English.
    page.click("a.lang-switch")
    expect(page.locator("h1")).to_have_text("Alert channels and rules")
    expect(page.locator("#nav-alerts")).to_have_text("Alerts")
    card = _card(page, "现场值班")
    expect(card.locator(".test-form button")).to_have_text("Send a test")
    expect(card.locator(".channel-secret")).to_have_text("Set")
    expect(page.locator("tr.rule-row").last.locator(".rule-hours")).to_have_text("All day")
    page.fill("#channel-form input[name=name]", "bad")
    page.fill("#channel-form input[name=url]", "ftp://files.example.com/x")
    page.click("#channel-form button[type=submit]")
    expect(page.locator("#channel-new-errors")).to_contain_text("The URL starts with http://")
    _no_horizontal_scroll(page)
    assert problems == []
    page.context.close()


def test_reviewer_gets_403(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    assert page.locator("#nav-alerts").count() == 0
    answer = page.goto("/ui/alerts")
    assert answer is not None and answer.status == 403
    expect(page.locator("h1")).to_have_text("无权访问")
    expect(page.locator("main")).to_contain_text("只有管理员可以管理告警通道和规则。")
    page.context.close()


def _route_camera_to(live: Live, receiver: Receiver, camera: str) -> None:
    """A channel "事件通道" at the receiver and a rule sending it site A's ``camera``, through
    the API's own functions (the admin pages are tested above)."""
    from sqlalchemy import select

    from sitewatch.server.api import alerts
    from sitewatch.server.db.models import ChannelKind, User

    with live.app.state.db.session() as db:
        admin = db.scalar(select(User).where(User.username == ADMIN))
        assert admin is not None
        channel = alerts.create_channel(
            alerts.ChannelIn(name="事件通道", kind=ChannelKind.WEBHOOK, url=receiver.url), admin, db
        )
        rule = alerts.RuleIn(channel_id=channel.id, site_id="site-a", camera_id=camera)
        alerts.create_rule(rule, admin, db)


def test_event_page_shows_the_delivery(browser: Any, live: Live, receiver: Receiver) -> None:
    from sitewatch.server.notify.worker import deliver_due

    _route_camera_to(live, receiver, "cam-notify")
    body = event_body("site-a", "cam-notify", "no_helmet", DAY + timedelta(hours=5))
    headers = {"Authorization": f"Bearer {live.tokens['site-a']}"}
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        answer = client.put(f"/api/v1/events/{body['event_id']}", json=body, headers=headers)
        assert answer.status_code in (200, 201), answer.text
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    page.goto(f"/ui/events/{body['event_id']}")
    # (the first test's all-day site-A rule, when it ran, adds a second row)
    rows = page.locator("#notifications tr.notification-row", has_text="事件通道")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".notify-status")).to_contain_text("待发送")
    expect(rows.first.locator("td.num")).to_have_text("0")
    before = len(receiver.received)
    done = deliver_due(live.app.state.db, live.app.state.settings)
    assert done.sent >= 1 and done.failed == 0, done
    assert len(receiver.received) > before
    assert body["event_id"] in json.dumps([r.body for r in receiver.received[before:]])
    page.reload()
    row = page.locator("#notifications tr.notification-row", has_text="事件通道")
    expect(row).to_contain_text("Webhook")
    expect(row).to_contain_text("事件告警")
    expect(row.locator(".notify-status")).to_have_text("已发送")
    expect(row.locator("td.num")).to_have_text("1")
    expect(row.locator(".notify-sent")).to_contain_text("+08:00")
    expect(row.locator(".notify-error")).to_have_text("—")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _no_horizontal_scroll(page)
    page.screenshot(path=str(SCREENSHOT_DIR / "event-notifications-390.png"), full_page=True)
    assert problems == []
    page.context.close()
