"""Review items (issue 18) in a real browser (Debian's chromium via Playwright) against a
real server: a burst of one track and rule is one item ×3; bulk confirm / dismiss (with
its reason); the keys j/k/x/c/d and the ? help; zone and severity filters; the queue;
390 px without sideways scrolling; Chinese and English."""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from ui_harness import live_server
from ui_media_files import make_event_media
from ui_seed import DAY, _push, event_body, login, seed_accounts

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)").expect

SCREENSHOT_DIR = Path(os.environ.get("SITEWATCH_UI_SCREENSHOTS", "/tmp/sitewatch-ui-shots"))


@dataclass
class Live:
    base_url: str
    events: dict[str, list[uuid.UUID]]


def _seed(client: httpx.Client, tokens: dict[str, str], media: dict[str, Path]) -> dict:
    a = tokens["site-a"]
    snap = {"snapshot": media["snapshot"]}

    def push(
        camera: str, track: int, seconds: float, rule: str = "no_helmet", **extra: Any
    ) -> uuid.UUID:
        body = event_body(
            "site-a", camera, rule, DAY + timedelta(seconds=seconds), track_id=track, **extra
        )
        return _push(client, a, body, snap)

    return {
        # three events of track 21 within a second, and another person
        "burst": [push("cam-keys", 21, s, confidence=c) for s, c in ((0, 0.6), (1, 0.9), (1, 0.7))],
        "keys_other": [push("cam-keys", 22, 600)],
        "bulk_two": [push("cam-bulk", 31, 0), push("cam-bulk", 31, 30)],
        "bulk_one": [push("cam-bulk", 32, 5)],
        "bulk_rest": [push("cam-bulk", 33, 900)],
        "crane_high": [
            push("cam-zone", 41, 0, rule="restricted_zone", zone="crane", severity="critical")
        ],
        "crane_low": [
            push("cam-zone", 42, 0, rule="restricted_zone", zone="crane", severity="low")
        ],
        "pit_high": [push("cam-zone", 43, 0, rule="restricted_zone", zone="pit", severity="high")],
        "q_first": [push("cam-queue", 51, -3000), push("cam-queue", 51, -2990)],
        "q_second": [push("cam-queue", 52, -2000)],
        "q_third": [push("cam-queue", 53, -1000)],
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-items")
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'ui.db'}",
        media_dir=root / "media",
        session_secret=SecretStr("items-" + uuid.uuid4().hex),
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media")
    tokens = seed_accounts(app)
    with live_server(app) as base_url:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            events = _seed(client, tokens, media)
        yield Live(base_url=base_url, events=events)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from ui_harness import chromium_browser

    with chromium_browser() as browser:
        yield browser


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _status(page: Any, event_id: uuid.UUID) -> tuple[str, str | None]:
    body = page.request.get(f"/api/v1/events/{event_id}").json()
    return body["review_status"], body.get("dismiss_reason")


def _items(page: Any) -> list[tuple[str, int]]:
    script = "rows => rows.map(r => [r.dataset.eventId, Number(r.dataset.count)])"
    return [(i, n) for i, n in page.eval_on_selector_all("tr.item-row", script)]


def _selected(page: Any) -> list[int]:
    script = (
        "rows => rows.map((r, i) => r.classList.contains('selected') ? i : -1).filter(i => i >= 0)"
    )
    return list(page.eval_on_selector_all("tr.item-row", script))


def test_a_burst_is_one_item_and_the_keys_work(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    page.goto("/ui/events?camera=cam-keys")
    burst = live.events["burst"]
    # newest first: the other person (10 min later), then the burst as one item ×3
    assert _items(page) == [(str(live.events["keys_other"][0]), 1), (str(burst[1]), 3)]
    row = page.locator("tr.item-row[data-count='3']")
    expect(row.locator(".item-count")).to_have_text("×3")
    expect(page.locator("#event-total")).to_have_text("共 2 项（4 条事件）")
    assert row.locator("li.member").count() == 3 and not row.locator("li.member").first.is_visible()
    row.locator("details.members summary").click()
    expect(row.locator("li.member").first).to_be_visible()
    # the snapshot shown is the highest confidence one's
    assert (
        row.locator("td.thumb img").get_attribute("src") == f"/ui/events/{burst[1]}/media/snapshot"
    )

    page.keyboard.press("?")
    expect(page.locator("#kbd-help")).to_be_visible()
    expect(page.locator("#kbd-help-title")).to_have_text("键盘快捷键")
    page.keyboard.press("Escape")
    expect(page.locator("#kbd-help")).to_be_hidden()
    assert _selected(page) == [1]  # a click in a row selects it
    page.locator("h1").click()
    page.keyboard.press("k")
    assert _selected(page) == [0]
    page.keyboard.press("k")
    assert _selected(page) == [0]
    page.keyboard.press("j")
    assert _selected(page) == [1]
    # typing in a field: no shortcut
    page.focus("input[name=date_from]")
    page.keyboard.press("k")
    assert _selected(page) == [1]
    page.locator("h1").click()
    page.keyboard.press("x")
    assert row.locator("input.item-pick").is_checked()
    expect(page.locator("#bulk-selected")).to_have_text("已选 1 项")
    page.keyboard.press("x")
    assert not row.locator("input.item-pick").is_checked()
    # d opens the dismiss reason (for the selected row, nothing ticked)
    page.keyboard.press("d")
    expect(page.locator("#bulk-reason")).to_be_visible()
    expect(page.locator("#bulk-reason")).to_be_focused()
    page.locator("h1").click()
    page.keyboard.press("c")  # confirms the ticked item: the burst's three events
    page.wait_for_url("**done=confirm**")
    expect(page.locator(".flash")).to_have_text("已确认 1 项（3 条事件）")
    assert [_status(page, e)[0] for e in burst] == ["confirmed"] * 3
    assert _status(page, live.events["keys_other"][0])[0] == "pending"
    # Enter / o opens the selected item's event
    page.locator("h1").click()
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_url(f"**/ui/events/{live.events['keys_other'][0]}")
    assert problems == []
    page.context.close()


def test_bulk_confirm_of_two_items_and_dismiss_asks_the_reason(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    ev = live.events
    page.goto("/ui/events?camera=cam-bulk")
    assert len(_items(page)) == 3
    page.check("tr.item-row[data-count='2'] input.item-pick")  # bulk_two's item
    page.check(f"tr[data-event-id='{ev['bulk_one'][0]}'] input.item-pick")
    expect(page.locator("#bulk-selected")).to_have_text("已选 2 项")
    page.click("#bulk-confirm")
    page.wait_for_url("**done=confirm**")
    expect(page.locator(".flash")).to_have_text("已确认 2 项（3 条事件）")
    for event_id in [*ev["bulk_two"], *ev["bulk_one"]]:
        assert _status(page, event_id) == ("confirmed", None)
    assert "camera=cam-bulk" in page.url  # the filters are kept
    # dismiss: the reason is asked for before anything is posted
    rest = ev["bulk_rest"][0]
    page.check(f"tr[data-event-id='{rest}'] input.item-pick")
    page.click("#bulk-dismiss summary")
    expect(page.locator("#bulk-reason")).to_be_visible()
    url = page.url
    page.click("#bulk-dismiss-submit")
    assert page.evaluate("document.getElementById('bulk-reason').validity.valueMissing")
    assert page.url == url and _status(page, rest) == ("pending", None)
    page.select_option("#bulk-reason", "helmet_present")
    page.click("#bulk-dismiss-submit")
    page.wait_for_url("**done=dismiss**")
    expect(page.locator(".flash")).to_have_text("已标为误报 1 项（1 条事件）")
    assert _status(page, rest) == ("dismissed", "helmet_present")
    # everything judged: selecting all and confirming changes nothing, says so
    page.check("#bulk-all")
    page.click("#bulk-confirm")
    page.wait_for_url("**n_unchanged=4**")
    expect(page.locator(".flash")).to_have_text("已确认 0 项（0 条事件）；4 条未改（已有结论）")
    assert _status(page, rest) == ("dismissed", "helmet_present")
    assert problems == []
    page.context.close()


def test_zone_and_severity_filters_in_the_form_url_and_csv(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a", lang="en")
    ev = live.events
    page.goto("/ui/events?camera=cam-zone")
    assert len(_items(page)) == 3
    page.select_option("select[name=zone]", "crane")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**zone=crane**")
    assert {i for i, _ in _items(page)} == {str(ev["crane_high"][0]), str(ev["crane_low"][0])}
    page.select_option("select[name=severity]", label="High or higher")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**severity=high**")
    assert [i for i, _ in _items(page)] == [str(ev["crane_high"][0])]
    href = page.get_attribute("#csv-export", "href") or ""
    assert "zone=crane" in href and "severity=high" in href
    rows = list(csv.reader(io.StringIO(page.request.get(href).text().lstrip("\ufeff"))))
    assert len(rows) == 2 and str(ev["crane_high"][0]) in rows[1]
    page.goto("/ui/events?camera=cam-zone&severity=high")
    assert {i for i, _ in _items(page)} == {str(ev["crane_high"][0]), str(ev["pit_high"][0])}
    assert "severity=high" in (page.get_attribute("#queue-link", "href") or "")
    page.context.close()


def test_the_queue_walks_the_pending_items_and_ends(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    ev = live.events
    page.goto("/ui/events?camera=cam-queue")
    page.click("#queue-link")
    page.wait_for_url("**/ui/queue?camera=cam-queue")
    # oldest first: track 51's two events
    expect(page.locator("#queue-progress")).to_have_text("第 1 项，共 3 项待审核")
    expect(page.locator("#queue-count")).to_have_text("×2")
    assert page.get_attribute("#queue-item", "data-event-id") in {str(e) for e in ev["q_first"]}
    assert page.locator("#queue-snapshot").is_visible()
    page.click("#queue-confirm")
    page.wait_for_url("**done=confirm**")
    expect(page.locator(".flash")).to_have_text("已确认 1 项（2 条事件）")
    assert page.get_attribute("#queue-item", "data-event-id") == str(ev["q_second"][0])
    page.locator("h1").click()
    page.keyboard.press("s")  # skip
    page.wait_for_url("**skip=1**")
    assert page.get_attribute("#queue-item", "data-event-id") == str(ev["q_third"][0])
    page.keyboard.press("d")
    expect(page.locator("#queue-reason")).to_be_focused()
    page.select_option("#queue-reason", "not_a_person")
    page.click("#queue-dismiss-submit")
    page.wait_for_url("**done=dismiss**")
    expect(page.locator("#queue-empty")).to_have_text("队列已清空")
    expect(page.locator("#queue-skipped")).to_contain_text("跳过了 1 项")
    assert _status(page, ev["q_third"][0]) == ("dismissed", "not_a_person")
    assert _status(page, ev["q_second"][0]) == ("pending", None)
    assert [_status(page, e)[0] for e in ev["q_first"]] == ["confirmed"] * 2
    page.click("#queue-restart")
    assert page.get_attribute("#queue-item", "data-event-id") == str(ev["q_second"][0])
    assert problems == []
    page.context.close()


def test_english_and_390_px_without_sideways_scrolling(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a", lang="en")
    page.set_viewport_size({"width": 390, "height": 844})
    width = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    page.goto("/ui/events")
    expect(page.locator("#nav-queue")).to_have_text("Review queue")
    expect(page.locator("#bulk-confirm")).to_have_text("Confirm hazard")
    scroll, client = page.evaluate(width)
    assert scroll <= client, (scroll, client)
    assert page.locator("table.items thead").is_hidden()  # rows are cards
    card = page.locator("tr.item-row").first.bounding_box()
    assert card is not None and card["width"] <= 390
    page.screenshot(path=str(SCREENSHOT_DIR / "review-items-390.png"), full_page=True)
    page.keyboard.press("?")
    expect(page.locator("#kbd-help-title")).to_have_text("Keyboard shortcuts")
    scroll, client = page.evaluate(width)
    assert scroll <= client
    page.keyboard.press("Escape")
    page.goto("/ui/queue")
    expect(page.locator("h1")).to_have_text("Review queue")
    scroll, client = page.evaluate(width)
    assert scroll <= client, (scroll, client)
    page.screenshot(path=str(SCREENSHOT_DIR / "queue-390.png"), full_page=True)
    page.context.close()
