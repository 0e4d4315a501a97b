"""The review UI in a real browser (Debian's chromium via Playwright) against a real
server: log in, filter, watch the clip, judge, run the hazard loop; roles and sites."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ui_seed import PASSWORD, Seeded, login

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)").expect

SCREENSHOT_DIR = Path(os.environ.get("SITEWATCH_UI_SCREENSHOTS", "/tmp/sitewatch-ui-shots"))


def _row_ids(page: Any) -> set[str]:
    return set(
        page.eval_on_selector_all("tr.event-row", "rows => rows.map(r => r.dataset.eventId)")
    )


def _image_width(page: Any, selector: str) -> int:
    """The natural width of an image once it has loaded (0 would mean a broken image)."""
    script = "s => { const i = document.querySelector(s); return i && i.complete && i; }"
    page.wait_for_function(script, arg=selector)
    return int(page.evaluate("s => document.querySelector(s).naturalWidth", selector))


def _check_clip_plays(page: Any) -> None:
    """The clip loads (readyState >= 2), plays (currentTime advances), seeks, no error."""
    page.wait_for_function("() => document.getElementById('clip').readyState >= 2")
    page.evaluate("document.getElementById('clip').play()")
    page.wait_for_function("() => document.getElementById('clip').currentTime > 0.4")
    page.evaluate("document.getElementById('clip').pause()")
    page.evaluate(
        """() => new Promise(done => {
             const v = document.getElementById('clip');
             v.addEventListener('seeked', done, {once: true});
             v.currentTime = 1.5;
           })"""
    )
    assert abs(page.evaluate("document.getElementById('clip').currentTime") - 1.5) < 0.2
    assert page.evaluate("document.getElementById('clip').error") is None
    assert page.is_hidden("#clip-error")


def test_reviewer_judges_and_runs_the_hazard_loop(browser: Any, seeded: Seeded) -> None:
    page = login(browser, seeded.base_url, "rev-a")
    problems: list[str] = []  # console errors (a CSP violation, a broken image) and JS errors
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    ev = seeded.events
    assert _row_ids(page) == {str(ev["a_helmet"]), str(ev["a_edge"]), str(ev["a_overdue"])}
    assert page.is_visible("img[alt='快照']")
    # started 08:30Z, shown in the server's zone (Asia/Shanghai) with the offset
    started = page.locator(f"tr[data-event-id='{ev['a_helmet']}'] td a").nth(1)
    expect(started).to_have_text("2026-11-20 16:30:00 +08:00")

    # Filter by rule, then by camera + status: the list and the CSV link follow.
    page.select_option("select[name=rule]", "fall_edge")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**rule=fall_edge**")
    assert _row_ids(page) == {str(ev["a_edge"])}
    page.goto("/ui/events?camera=cam-gate&status=pending")
    assert _row_ids(page) == {str(ev["a_helmet"])}
    csv_text = page.request.get(page.get_attribute("#csv-export", "href")).text()
    assert csv_text.lstrip("\ufeff").startswith("事件编号,工地编号")
    assert str(ev["a_helmet"]) in csv_text and str(ev["a_overdue"]) not in csv_text

    # Open the event: clip, snapshot, box overlay, face, details.
    page.click(f"tr[data-event-id='{ev['a_helmet']}'] td a >> nth=1")
    page.wait_for_url(f"**/ui/events/{ev['a_helmet']}")
    _check_clip_plays(page)
    assert _image_width(page, "#snapshot") == 320
    assert _image_width(page, "#face") == 48
    assert page.get_attribute("#boxes rect.bbox", "width") == "50.0"
    expect(page.locator("#track-id")).to_have_text("7")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "event-page.png"), full_page=True)

    # Verdict, rectification, evidence, acceptance; each step shows on the page.
    page.fill("#confirm-form textarea[name=note]", "工人未戴安全帽")
    page.click("#confirm-form button[type=submit]")
    expect(page.locator("#event-status")).to_have_text("确认隐患")
    page.select_option("#assign-form select[name=responsible_user]", "")  # other (no account)
    page.fill("#assign-form input[name=assignee]", "李班长")
    page.click("#assign-form button[type=submit]")
    expect(page.locator("#rect-assignee")).to_have_text("李班长")
    expect(page.locator("#event-status")).to_have_text("整改中")
    page.set_input_files("#evidence-form input[name=photo]", str(seeded.media["evidence"]))
    page.fill("#evidence-form textarea[name=note]", "已佩戴安全帽")
    page.click("#evidence-form button[type=submit]")
    expect(page.locator("#event-status")).to_have_text("待验收")
    assert _image_width(page, "#evidence-list img") == 320
    page.context.close()
    page = login(browser, seeded.base_url, "lead-a")  # another reviewer accepts
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"/ui/events/{ev['a_helmet']}")
    page.click("#review-form button[value=accept]")
    expect(page.locator("#event-status")).to_have_text("已验收")
    actions = page.eval_on_selector_all(
        "#audit-table td[data-action]", "cells => cells.map(c => c.textContent)"
    )
    assert actions == ["审核结论", "下发整改", "提交整改证据", "验收通过"]
    assert page.locator("form").count() == 1  # only logout is left
    assert problems == []
    page.context.close()


def test_overdue_hazard_is_highlighted_and_counted(browser: Any, seeded: Seeded) -> None:
    page = login(browser, seeded.base_url, "rev-a", lang="en")
    overdue = seeded.events["a_overdue"]
    row = page.locator(f"tr[data-event-id='{overdue}']")
    assert "overdue" in (row.get_attribute("class") or "")
    assert row.locator(".badge.overdue").inner_text() == "Overdue"
    expect(page.locator("#overdue-link")).to_have_text("Overdue 1")
    page.click("#overdue-link")
    page.wait_for_url("**status=overdue")
    assert _row_ids(page) == {str(overdue)}
    page.goto(f"/ui/events/{overdue}")
    assert page.is_visible("#overdue-badge")
    page.goto("/ui/dashboard?date_from=2026-11-19&date_to=2026-11-20")
    expect(page.locator(".page-head .muted")).to_have_text("Days in local time (Asia/Shanghai)")
    expect(page.locator("#stat-overdue .stat-n")).to_have_text("1")
    assert page.locator(f"#table-overdue tr[data-key='{overdue}']").count() == 1
    page.context.close()


def test_viewer_sees_everything_but_changes_nothing(browser: Any, seeded: Seeded) -> None:
    page = login(browser, seeded.base_url, "view-a")
    event_id = seeded.events["a_edge"]
    page.goto(f"/ui/events/{event_id}")
    expect(page.locator("#event-status")).to_have_text("待审核")
    assert page.locator("form").count() == 1  # only the logout button
    assert page.locator("form[action='/ui/logout']").count() == 1
    csrf = page.get_attribute("form[action='/ui/logout'] input[name=csrf_token]", "value")
    url = f"/ui/events/{event_id}/verdict"
    forged = page.request.post(url, form={"verdict": "confirm", "csrf_token": csrf})
    assert forged.status == 403
    no_csrf = page.request.post(url, form={"verdict": "confirm"})
    assert no_csrf.status == 403
    page.reload()
    expect(page.locator("#event-status")).to_have_text("待审核")
    page.context.close()


def test_users_of_one_site_cannot_see_another(browser: Any, seeded: Seeded) -> None:
    page = login(browser, seeded.base_url, "rev-b")
    assert _row_ids(page) == {str(seeded.events["b_helmet"])}
    other = seeded.events["a_helmet"]
    assert page.goto(f"/ui/events/{other}").status == 404
    assert page.request.get(f"/ui/events/{other}/media/clip").status == 404
    assert page.request.get(f"/ui/events/{other}/media/snapshot").status == 404
    page.goto("/ui/events?site=site-a")
    assert _row_ids(page) == set()
    page.context.close()


def test_login_language_and_logout(browser: Any, seeded: Seeded) -> None:
    context = browser.new_context(base_url=seeded.base_url)
    page = context.new_page()
    page.goto("/ui/login")
    page.fill("input[name=username]", "rev-a")
    page.fill("input[name=password]", PASSWORD + "x")
    page.click("#login-form button[type=submit]")
    expect(page.locator("[role=alert]")).to_have_text("用户名或密码错误")
    page.click("a.lang-switch")
    expect(page.locator("h1")).to_have_text("Log in")
    page.fill("input[name=username]", "rev-a")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Events")
    page.click("form[action='/ui/logout'] button")
    page.wait_for_url("**/ui/login")
    page.goto("/ui/events")
    assert "/ui/login" in page.url
    context.close()


def test_api_docs_render_offline(browser: Any, seeded: Seeded) -> None:
    """Swagger UI and ReDoc work without internet: their assets come from the server."""
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(f"{seeded.base_url}/docs")
    # generous timeouts: the 1.5 MB bundle parses slowly on a busy 2-core machine
    title = page.locator(".swagger-ui .info .title")
    expect(title).to_contain_text("sitewatch server", timeout=30_000)
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=30_000)
    assert page.locator(".opblock").count() > 10
    page.goto(f"{seeded.base_url}/redoc")
    expect(page.locator("h1").first).to_contain_text("sitewatch server", timeout=30_000)
    # ReDoc's "powered by" logo comes from its CDN (cosmetic); every asset the pages need
    # is served by the server itself, and none of those failed
    assert [url for url in failed if url.startswith(seeded.base_url)] == []
    page.close()
