"""The rectification loop with roles (issue 18) in a real browser (Debian's chromium via
Playwright) against a real server, in Chinese and English, at 1440 and 390 px: a
reviewer assigns a hazard to a rectifier picked from the site's people, the rectifier
finds it in "my hazards" on a phone and uploads a PNG photo, judges and accepts nothing;
the uploader cannot accept their own evidence, another reviewer does; an admin corrects
a verdict with a reason; a deadline in the past is refused in the page's language."""

from __future__ import annotations

import io
import itertools
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr
from ui_harness import chromium_browser, live_server
from ui_media_files import make_event_media
from ui_seed import DAY, PASSWORD, event_body, seed_accounts

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)").expect

SCREENSHOT_DIR = Path(os.environ.get("SITEWATCH_UI_SCREENSHOTS", "/tmp/sitewatch-ui-shots"))
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
_MINUTES = itertools.count(1)

TEXT = {
    "zh": {
        "mine": "我的整改",
        "rectifier": "整改责任人",
        "candidate": "赵师傅（整改责任人）",
        "other": "其他（无账号）",
        "assigned": "整改中",
        "rectified": "待验收",
        "accepted": "已验收",
        "dismissed": "误报",
        "own": "整改证据由您上传：须由其他用户验收。",
        "own_refused": "整改证据由您本人上传，须由其他用户验收",
        "past": "整改期限不能早于今天",
        "corrected": "更正审核结论",
        "removed": "撤销整改",
        "overdue": "逾期",
    },
    "en": {
        "mine": "My hazards",
        "rectifier": "Rectifier",
        "candidate": "赵师傅 (Rectifier)",
        "other": "Other (no account)",
        "assigned": "Being rectified",
        "rectified": "Awaiting acceptance",
        "accepted": "Accepted",
        "dismissed": "False alarm",
        "own": "You uploaded this evidence: another user must accept it.",
        "own_refused": "You uploaded this evidence: another user must accept it",
        "past": "The deadline cannot be before today",
        "corrected": "Verdict corrected",
        "removed": "Rectification withdrawn",
        "overdue": "Overdue",
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real server with ui_seed's sites and users, a rectifier per site and an admin."""
    from sitewatch.server.app import create_app
    from sitewatch.server.db.models import Role
    from sitewatch.server.services import admin
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-rectifier")
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'ui.db'}",
        media_dir=root / "media",
        session_secret=SecretStr("ui-rect-" + uuid.uuid4().hex),
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media", clip_frames=20)
    tokens = seed_accounts(app)
    with app.state.db.session() as db:
        for username, role, sites, name in (
            ("fix-a", Role.RECTIFIER, ["site-a"], "赵师傅"),
            ("fix-b", Role.RECTIFIER, ["site-b"], "钱师傅"),
            ("boss", Role.ADMIN, [], "总管理员"),
        ):
            admin.create_user(
                db, actor=None, username=username, password=PASSWORD, role=role,
                site_ids=sites, display_name=name,
            )  # fmt: skip
    photo = root / "fixed.png"
    buffer = io.BytesIO()
    Image.new("RGB", (240, 160), (30, 140, 70)).save(buffer, format="PNG")
    photo.write_bytes(buffer.getvalue())
    with live_server(app) as base_url:
        yield {
            "base_url": base_url,
            "tokens": tokens,
            "snapshot": media["snapshot"],
            "png": photo,
            "app": app,
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def push_event(server: dict[str, Any], site: str = "site-a") -> uuid.UUID:
    """A new pending event of ``site`` with a snapshot, through the ingest API."""
    body = event_body(site, "cam-gate", "no_helmet", DAY + timedelta(minutes=next(_MINUTES)))
    headers = {"Authorization": f"Bearer {server['tokens'][site]}"}
    with httpx.Client(base_url=server["base_url"], timeout=30) as client:
        answer = client.put(f"/api/v1/events/{body['event_id']}", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
        snapshot = server["snapshot"]
        files = {"file": (snapshot.name, snapshot.read_bytes(), "image/jpeg")}
        answer = client.put(
            f"/api/v1/events/{body['event_id']}/media/snapshot", files=files, headers=headers
        )
        assert answer.status_code == 200, answer.text
    return uuid.UUID(body["event_id"])


def _problem(problems: list[str], message: Any) -> None:
    """A console error (a CSP violation, a broken image); the favicon is not this page's."""
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        problems.append(f"{message.text} ({message.location.get('url')})")


def login(
    browser: Any, server: dict[str, Any], username: str, lang: str, viewport: dict[str, int]
) -> Any:
    context = browser.new_context(base_url=server["base_url"], locale="zh-CN", viewport=viewport)
    if lang != "zh":
        context.add_cookies([{"name": "sitewatch_lang", "value": lang, "url": server["base_url"]}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda m: _problem(problems, m))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    page.goto("/ui/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/ui/events")
    return page


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"


def confirm(page: Any, event_id: uuid.UUID) -> None:
    page.goto(f"/ui/events/{event_id}")
    page.click("#confirm-form button[type=submit]")
    expect(page.locator("#assign-form")).to_be_visible()


def assign_from_select(page: Any, person_text: str) -> None:
    select = page.locator("#assign-form select[name=responsible_user]")
    value = select.locator("option", has_text=person_text).get_attribute("value")
    select.select_option(value)
    expect(page.locator("#other-assignee")).to_be_hidden()  # a user chosen: no name to type
    page.click("#assign-form button[type=submit]")
    expect(page.locator("#rect-assignee")).to_be_visible()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_rectifier_loop_on_a_phone(browser: Any, server: dict[str, Any], lang: str) -> None:
    text = TEXT[lang]
    event_id = push_event(server)
    other_site = push_event(server, "site-b")

    # A reviewer at 1440 px: confirm, then pick the rectifier from the site's people.
    reviewer = login(browser, server, "rev-a", lang, DESKTOP)
    confirm(reviewer, event_id)
    options = reviewer.eval_on_selector_all(
        "#assign-form select[name=responsible_user] option", "os => os.map(o => o.textContent)"
    )
    assert options[0] == text["candidate"] and options[-1] == text["other"]
    assert not any("钱师傅" in o for o in options)  # site B's rectifier is not offered
    reviewer.select_option("#assign-form select[name=responsible_user]", "")
    expect(reviewer.locator("#other-assignee")).to_be_visible()  # "other": type a name
    assign_from_select(reviewer, text["candidate"])
    expect(reviewer.locator("#rect-assignee")).to_have_text("赵师傅")
    expect(reviewer.locator("#rect-assignee-role")).to_have_text(text["rectifier"])
    expect(reviewer.locator("#event-status")).to_have_text(text["assigned"])
    assert reviewer.problems == []
    reviewer.context.close()

    # The rectifier on a phone: my hazards, a card, no horizontal scroll, the evidence.
    fixer = login(browser, server, "fix-a", lang, PHONE)
    no_horizontal_scroll(fixer)
    fixer.click("#nav-my-hazards")
    fixer.wait_for_url("**/ui/my-hazards")
    expect(fixer.locator("h1")).to_have_text(text["mine"])
    card = fixer.locator(f"li.hazard-card[data-event-id='{event_id}']")
    expect(card).to_be_visible()
    expect(card.locator(".status")).to_have_text(text["assigned"])
    no_horizontal_scroll(fixer)
    box = card.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    card.locator("a.hazard-link").click()
    fixer.wait_for_url(f"**/ui/events/{event_id}")
    no_horizontal_scroll(fixer)
    photo_input = fixer.locator("#evidence-form input[name=photo]")
    assert photo_input.get_attribute("capture") == "environment"
    accept = photo_input.get_attribute("accept") or ""
    assert {"image/jpeg", "image/png", "image/heic"} <= set(accept.split(","))
    for absent in ("#confirm-form", "#dismiss-form", "#assign-form", "#correct-form"):
        assert fixer.locator(absent).count() == 0
    fixer.set_input_files("#evidence-form input[name=photo]", str(server["png"]))
    fixer.fill("#evidence-form textarea[name=note]", "fixed / 已整改")
    fixer.click("#evidence-form button[type=submit]")
    expect(fixer.locator("#event-status")).to_have_text(text["rectified"])
    fixer.wait_for_function(
        "() => { const i = document.querySelector('#evidence-list img');"
        " return i && i.complete && i.naturalWidth === 240; }"
    )
    assert fixer.locator("#review-form").count() == 0  # a rectifier accepts nothing
    assert fixer.locator("form").count() == 1  # only logout
    no_horizontal_scroll(fixer)
    assert fixer.problems == []
    # and cannot see another site's event
    assert fixer.goto(f"/ui/events/{other_site}").status == 404
    fixer.context.close()

    # Another reviewer accepts what the rectifier uploaded.
    lead = login(browser, server, "lead-a", lang, PHONE)
    lead.goto(f"/ui/events/{event_id}")
    lead.click("#review-form button[value=accept]")
    expect(lead.locator("#event-status")).to_have_text(text["accepted"])
    lead.context.close()


@pytest.mark.parametrize(("lang", "viewport"), [("zh", DESKTOP), ("en", PHONE)])
def test_uploader_cannot_accept_and_admin_corrects(
    browser: Any, server: dict[str, Any], lang: str, viewport: dict[str, int]
) -> None:
    text = TEXT[lang]
    event_id = push_event(server)
    reviewer = login(browser, server, "rev-a", lang, viewport)
    confirm(reviewer, event_id)
    reviewer.select_option("#assign-form select[name=responsible_user]", "")
    reviewer.fill("#other-assignee", "外包李工")
    reviewer.click("#assign-form button[type=submit]")
    expect(reviewer.locator("#rect-assignee")).to_have_text("外包李工")
    # the reviewer uploads the evidence for the crew without an account ...
    reviewer.set_input_files("#evidence-form input[name=photo]", str(server["png"]))
    reviewer.click("#evidence-form button[type=submit]")
    expect(reviewer.locator("#event-status")).to_have_text(text["rectified"])
    # ... and so cannot accept it: no button, a line saying why, a page if forced
    expect(reviewer.locator("#accept-by-other")).to_have_text(text["own"])
    assert reviewer.locator("#review-form button[value=accept]").count() == 0
    assert reviewer.locator("#review-form button[value=reject]").count() == 1
    no_horizontal_scroll(reviewer)
    csrf = reviewer.get_attribute("#review-form input[name=csrf_token]", "value")
    forced = reviewer.request.post(
        f"/ui/events/{event_id}/acceptance", form={"decision": "accept", "csrf_token": csrf}
    )
    assert forced.status == 403
    assert forced.headers["content-type"].startswith("text/html")
    assert text["own_refused"] in forced.text()
    reviewer.context.close()

    lead = login(browser, server, "lead-a", lang, viewport)
    lead.goto(f"/ui/events/{event_id}")
    assert lead.locator("#accept-by-other").count() == 0
    lead.click("#review-form button[value=accept]")
    expect(lead.locator("#event-status")).to_have_text(text["accepted"])
    assert lead.locator("#correct-form").count() == 0  # reviewers do not correct
    lead.context.close()

    # An admin corrects the verdict (confirmed -> false alarm) with a reason.
    boss = login(browser, server, "boss", lang, viewport)
    boss.goto(f"/ui/events/{event_id}")
    expect(boss.locator("#correct-form")).to_be_visible()
    no_horizontal_scroll(boss)
    boss.select_option("#correct-form select[name=verdict]", "dismiss")
    boss.select_option("#correct-form select[name=reason]", "other")
    boss.fill("#correct-form textarea[name=correction]", "复核录像：并非隐患")
    boss.click("#correct-form button[type=submit]")
    expect(boss.locator("#event-status")).to_have_text(text["dismissed"])
    actions = boss.eval_on_selector_all(
        "#audit-table td[data-action]", "cells => cells.map(c => c.dataset.action)"
    )
    assert actions[-2:] == ["hazard.removed", "event.verdict_correct"]
    row = boss.locator(
        "#audit-table tr", has=boss.locator("td[data-action='event.verdict_correct']")
    )
    expect(row.locator("td[data-action]")).to_have_text(text["corrected"])
    expect(row).to_contain_text("复核录像：并非隐患")
    removed = boss.locator("#audit-table td[data-action='hazard.removed']")
    expect(removed).to_have_text(text["removed"])
    assert boss.problems == []
    boss.context.close()


@pytest.mark.parametrize(("lang", "viewport"), [("zh", PHONE), ("en", DESKTOP)])
def test_a_deadline_in_the_past_is_refused(
    browser: Any, server: dict[str, Any], lang: str, viewport: dict[str, int]
) -> None:
    event_id = push_event(server)
    page = login(browser, server, "rev-a", lang, viewport)
    confirm(page, event_id)
    deadline = page.locator("#assign-form input[name=deadline]")
    today = deadline.get_attribute("min") or ""
    local_today = datetime.now(UTC).astimezone().date()
    assert abs((datetime.fromisoformat(today).date() - local_today).days) <= 1
    past = (datetime.fromisoformat(today) - timedelta(days=3)).date().isoformat()
    deadline.fill(past)
    # the browser itself holds the form back (min=today) ...
    assert page.evaluate(
        "document.querySelector('#assign-form [name=deadline]').validity.rangeUnderflow"
    )
    page.click("#assign-form button[type=submit]")
    assert page.url.split("#")[0].endswith(f"/ui/events/{event_id}")  # not sent
    # ... and the server refuses it when sent anyway, in the page's language
    page.evaluate("document.querySelector('#assign-form [name=deadline]').removeAttribute('min')")
    page.click("#assign-form button[type=submit]")
    page.wait_for_url(f"**/ui/events/{event_id}/rectification")
    expect(page.locator("main")).to_contain_text(TEXT[lang]["past"])
    assert "in the past" not in page.content()
    page.goto(f"/ui/events/{event_id}")
    assert page.locator("#rect-assignee").count() == 0
    page.context.close()


def test_my_hazards_earliest_first_overdue_marked(browser: Any, server: dict[str, Any]) -> None:
    """Earliest deadline first; an overdue card is highlighted (zh, 1440 and 390 px)."""
    from sqlalchemy import select

    from sitewatch.server.db.models import Hazard

    later, sooner, late = push_event(server), push_event(server), push_event(server)
    page = login(browser, server, "rev-a", "zh", DESKTOP)
    for event_id, days in ((later, 6), (sooner, 1), (late, 2)):
        confirm(page, event_id)
        day = (datetime.now(UTC) + timedelta(days=days)).date().isoformat()
        page.fill("#assign-form input[name=deadline]", day)
        assign_from_select(page, TEXT["zh"]["candidate"])
    page.context.close()
    with server["app"].state.db.session() as db:  # the deadline passes (not settable)
        hazard = db.scalar(select(Hazard).where(Hazard.event_id == late))
        assert hazard is not None
        hazard.deadline = datetime.now(UTC) - timedelta(days=1)
        db.commit()
    for viewport in (DESKTOP, PHONE):
        page = login(browser, server, "fix-a", "zh", viewport)
        page.click("#nav-my-hazards")
        page.wait_for_url("**/ui/my-hazards")
        ids = page.eval_on_selector_all(
            "li.hazard-card", "cards => cards.map(c => c.dataset.eventId)"
        )
        assert ids.index(str(late)) < ids.index(str(sooner)) < ids.index(str(later))
        overdue = page.locator(f"li.hazard-card.overdue[data-event-id='{late}']")
        expect(overdue.locator(".badge.overdue")).to_have_text(TEXT["zh"]["overdue"])
        colour = overdue.evaluate("c => getComputedStyle(c).borderTopColor")
        assert colour == "rgb(198, 40, 40)"  # var(--red)
        assert page.locator(f"li.hazard-card.overdue[data-event-id='{sooner}']").count() == 0
        no_horizontal_scroll(page)
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOT_DIR / f"my-hazards-{viewport['width']}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.problems == []
        page.context.close()
