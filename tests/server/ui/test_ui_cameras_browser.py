"""The cameras page and the zone editor in a real browser (Debian's chromium via
Playwright) against a real server (issue 17). A box's device posts a heartbeat and a
picture (OpenCV JPEG with two people); a reviewer sees the camera online with its
picture, draws a restricted polygon and a fall-risk edge by mouse, names and saves them
(the API then has them where they were clicked); a bow-tie polygon is refused with the
reason at the shape; undo removes the last point; preview marks the person inside; a
save after someone else's is refused as a conflict; a viewer sees the zones read-only;
English behind the switch; 390 px wide without sideways scrolling."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from test_ui_cameras_forms import PERSONS, seed_cameras
from ui_harness import live_server
from ui_seed import login, seed_accounts

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)").expect

SCREENSHOT_DIR = Path(os.environ.get("SITEWATCH_UI_SCREENSHOTS", "/tmp/sitewatch-ui-shots"))
EDITOR = "/ui/cameras/site-a/pour-cam/zones"
ZONES_API = "/api/v1/sites/site-a/zones"
#: Where the polygon's corners are clicked (normalised): around the first person's feet
#: (0.5, 0.92), away from the second person's (0.13, 0.6).
POLYGON = [(0.4, 0.75), (0.62, 0.75), (0.62, 0.98), (0.4, 0.98)]
EDGE = [(0.7, 0.3), (0.95, 0.32)]
BOW_TIE = [(0.05, 0.05), (0.3, 0.3), (0.3, 0.05), (0.05, 0.3)]


@dataclass
class Live:
    base_url: str
    app: Any


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-cameras-server")
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'ui.db'}",
        media_dir=root / "media",
        session_secret=SecretStr("ui-cameras-" + uuid.uuid4().hex),
        notify_worker=False,
    )
    app = create_app(settings)
    tokens = seed_accounts(app)
    with live_server(app) as base_url:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            seed_cameras(client, tokens)
        yield Live(base_url, app)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from ui_harness import chromium_browser

    with chromium_browser() as browser:
        yield browser


def _watch(page: Any) -> list[str]:
    """Console errors (a CSP violation, a broken asset) and JavaScript errors of a page;
    the API's refusals (409, 422) are logged by chromium as failed loads: expected."""
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and "status of 4" not in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _no_horizontal_scroll(page: Any) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths}"


def _open_editor(page: Any) -> None:
    page.goto(EDITOR)
    page.wait_for_load_state("load")
    expect(page.locator("body")).to_have_attribute("data-zone-editor", "ready")
    page.wait_for_function("() => document.getElementById('picture').naturalWidth > 0")


def _click_at(page: Any, x: float, y: float) -> None:
    """A real mouse click on the picture at normalised (x, y)."""
    box = page.locator("#picture").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def _shape(page: Any, kind: str, index: int) -> Any:
    return page.locator(f"fieldset.shape[data-kind='{kind}'][data-index='{index}']")


def _zones(page: Any) -> dict[str, Any]:
    answer = page.request.get(ZONES_API)
    assert answer.ok, answer.text()
    body: dict[str, Any] = answer.json()
    return body


def _close(points: list[list[float]], expected: list[tuple[float, float]]) -> bool:
    return len(points) == len(expected) and all(
        abs(p[0] - e[0]) < 0.01 and abs(p[1] - e[1]) < 0.01
        for p, e in zip(points, expected, strict=True)
    )


def test_cameras_page_shows_the_camera(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    page.click("#nav-cameras")
    page.wait_for_url("**/ui/cameras")
    expect(page.locator("h1")).to_have_text("摄像头")
    site = page.locator("section.camera-site[data-site-id='site-a']")
    expect(site.locator("h2.site-name")).to_contain_text("一号工地 A")
    card = page.locator("article.camera-card[data-camera-id='pour-cam']")
    expect(card.locator(".camera-name")).to_contain_text("浇筑区")
    expect(card.locator(".camera-id")).to_have_text("pour-cam")
    expect(card.locator(".camera-state")).to_have_text("在线")
    expect(card.locator(".camera-since")).to_contain_text("+08:00")
    expect(card.locator(".camera-size")).to_have_text("640×360")
    expect(card.locator(".camera-last-event a")).to_contain_text("闯入禁区")
    page.wait_for_function(
        "() => document.querySelector(\"[data-camera-id='pour-cam'] img\").naturalWidth === 640"
    )
    dark = page.locator("article.camera-card[data-camera-id='dark-cam']")
    expect(dark.locator(".camera-state")).to_have_text("离线")
    expect(dark.locator(".camera-placeholder")).to_have_text("暂无画面")
    expect(page.locator("article.camera-card[data-camera-id='b-cam']")).to_have_count(0)
    expect(card.locator("a.camera-edit")).to_have_text("编辑区域")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _no_horizontal_scroll(page)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "cameras-390.png"), full_page=True)
    card.locator("a.camera-edit").click()
    page.wait_for_url(f"**{EDITOR}")
    assert problems == []
    page.context.close()


def test_draw_by_mouse_undo_save_refusals_and_preview(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    _open_editor(page)
    expect(page.locator("#zones-source")).to_have_attribute("data-source", "none")
    before = _zones(page)["version"]

    # A restricted polygon: four clicks, then a click on the first point closes it.
    page.click("#tool-restricted")
    for x, y in POLYGON:
        _click_at(page, x, y)
    _click_at(page, *POLYGON[0])
    restricted = _shape(page, "restricted", 0)
    expect(restricted.locator(".shape-points")).to_contain_text("4 个点")
    expect(page.locator("svg#overlay g.z-restricted polygon")).to_have_count(1)
    restricted.locator("input.shape-name").fill("塔吊禁区")

    # A fall-risk edge: two points; a third one taken back by Ctrl+Z and by the button.
    page.click("#tool-edge")
    for x, y in EDGE:
        _click_at(page, x, y)
    _click_at(page, 0.9, 0.5)
    edge = _shape(page, "edge", 0)
    expect(edge.locator(".shape-points")).to_contain_text("3 个点")
    page.keyboard.press("Control+z")
    expect(edge.locator(".shape-points")).to_contain_text("2 个点")
    _click_at(page, 0.9, 0.6)
    expect(edge.locator(".shape-points")).to_contain_text("3 个点")
    page.click("#undo")
    expect(edge.locator(".shape-points")).to_contain_text("2 个点")
    page.click("#finish")
    edge.locator("input.shape-name").fill("西侧临边")
    edge.locator("input.shape-dist").fill("0.04")
    expect(page.locator("svg#overlay g.z-edge polyline.z-band")).to_have_count(1)

    # A restricted polygon of two points is refused in the browser, at the shape.
    page.click("#tool-restricted")
    _click_at(page, 0.1, 0.1)
    _click_at(page, 0.2, 0.1)
    page.click("#save")
    short = _shape(page, "restricted", 1)
    expect(short.locator(".shape-errors")).to_contain_text("点数太少：至少需要 3 个点")
    expect(page.locator("#message")).to_have_text("请先修正标出的问题。")
    assert _zones(page)["version"] == before
    short.locator("button.shape-select").click()
    page.click("#delete-shape")
    expect(page.locator("fieldset.shape")).to_have_count(2)

    page.click("#save")
    expect(page.locator("#message")).to_have_text(
        f"已保存，区域版本 {before + 1}。盒子下次同步时生效。"
    )
    zones = _zones(page)
    assert zones["version"] == before + 1
    cam = zones["cameras"]["pour-cam"]
    assert [z["name"] for z in cam["restricted"]] == ["塔吊禁区"]
    assert _close(cam["restricted"][0]["polygon"], POLYGON), cam["restricted"][0]["polygon"]
    assert [e["name"] for e in cam["edges"]] == ["西侧临边"]
    assert _close(cam["edges"][0]["polyline"], EDGE), cam["edges"][0]["polyline"]
    assert cam["edges"][0]["danger_distance"] == pytest.approx(0.04)

    # A bow-tie is refused by the server with the reason at that shape (in Chinese).
    page.click("#tool-restricted")
    for x, y in BOW_TIE:
        _click_at(page, x, y)
    page.click("#finish")
    bow = _shape(page, "restricted", 1)
    bow.locator("input.shape-name").fill("蝴蝶")
    page.click("#save")
    expect(bow.locator(".shape-errors")).to_contain_text("多边形自相交")
    expect(_shape(page, "restricted", 0).locator(".shape-errors li")).to_have_count(0)
    expect(page.locator("#message")).to_have_text("区域未保存：请修正标出的问题。")
    expect(page.locator("svg#overlay g.z-restricted.has-error")).to_have_count(1)
    assert _zones(page)["version"] == before + 1

    # Drag a point of the bow-tie to make it a proper quadrilateral? Delete it instead.
    bow.locator("button.shape-select").click()
    page.click("#delete-shape")

    # Preview: the person whose feet are in 塔吊禁区 is marked, the other one is not.
    page.click("#preview")
    expect(page.locator("svg#overlay g.person")).to_have_count(len(PERSONS))
    caught = page.locator("svg#overlay g.person.caught")
    expect(caught).to_have_count(1)
    assert caught.get_attribute("data-person") == "0"
    expect(caught.locator("text")).to_have_text("塔吊禁区")
    expect(page.locator("#preview-summary")).to_contain_text("2 人，其中 1 人")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "zone-editor.png"), full_page=True)

    # Drag the polygon's first corner: selected, dragged, saved where it was dropped.
    _click_at(page, 0.5, 0.86)  # inside the polygon: selects it
    expect(_shape(page, "restricted", 0)).to_have_class("shape shape-restricted selected")
    box = page.locator("#picture").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 0.4 * box["width"], box["y"] + 0.75 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    page.click("#save")
    expect(page.locator("#message")).to_contain_text(f"区域版本 {before + 2}")
    moved = _zones(page)["cameras"]["pour-cam"]["restricted"][0]["polygon"]
    assert _close(moved, [(0.35, 0.7), *POLYGON[1:]]), moved

    # Someone else saves meanwhile: this page's next save is a conflict.
    other = page.context.new_page()
    _open_editor(other)
    other.click("#save")
    expect(other.locator("#message")).to_contain_text(f"区域版本 {before + 3}")
    other.close()
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("有人在你打开页面后修改了本工地的区域")
    expect(page.locator("#message a#reload")).to_have_text("重新加载")
    assert _zones(page)["version"] == before + 3

    # The picture request reaches the server (the box is told with its next heartbeat).
    page.click("#reload")
    expect(page.locator("body")).to_have_attribute("data-zone-editor", "ready")
    page.click("#picture-request")
    expect(page.locator("#message")).to_have_text("已请求新画面，盒子下次心跳后上传。")
    assert problems == []
    page.context.close()


def test_viewer_sees_the_zones_read_only(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "view-a")
    problems = _watch(page)
    page.goto("/ui/cameras")
    card = page.locator("article.camera-card[data-camera-id='pour-cam']")
    expect(card.locator("a.camera-edit")).to_have_text("查看区域")
    card.locator("a.camera-edit").click()
    expect(page.locator("body")).to_have_attribute("data-zone-editor", "ready")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("#toolbar")).to_have_count(0)
    expect(page.locator("#save")).to_have_count(0)
    expect(page.locator("#reset")).to_have_count(0)
    expect(page.locator("svg#overlay g.z-restricted polygon")).to_have_count(1)
    expect(page.locator("svg#overlay g.z-edge")).to_have_count(1)
    expect(_shape(page, "restricted", 0).locator("input.shape-name")).to_be_disabled()
    expect(_shape(page, "restricted", 0).locator("input.shape-name")).to_have_value("塔吊禁区")
    page.wait_for_function("() => document.getElementById('picture').naturalWidth > 0")
    version = _zones(page)["version"]
    _click_at(page, 0.1, 0.1)  # clicks change nothing
    page.keyboard.press("Control+z")
    expect(page.locator("fieldset.shape")).to_have_count(2)
    page.click("#preview")  # previewing changes nothing either, so viewers may
    expect(page.locator("svg#overlay g.person.caught")).to_have_count(1)
    assert _zones(page)["version"] == version
    assert problems == []
    page.context.close()


CAL_IMAGE = [(0.1, 0.9), (0.9, 0.9), (0.7, 0.5), (0.3, 0.5)]
CAL_GROUND = [(0, 0), (10, 0), (10, 10), (0, 10)]


def test_calibration_and_an_edge_in_metres(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    _open_editor(page)
    # A point clicked twice first: refused by the server at the calibration.
    page.click("#tool-calibration")
    for x, y in [(0.1, 0.9), (0.1, 0.9), (0.5, 0.7), (0.7, 0.5)]:
        _click_at(page, x, y)
    calibration = _shape(page, "calibration", 0)
    expect(calibration.locator(".shape-points")).to_contain_text("4 个点")
    for i, (gx, gy) in enumerate(CAL_GROUND):
        calibration.locator("input.ground-x").nth(i).fill(str(gx))
        calibration.locator("input.ground-y").nth(i).fill(str(gy))
    page.click("#save")
    expect(calibration.locator(".shape-errors")).to_contain_text("三点共线")
    # Redrawn properly, with an edge whose danger distance is in metres.
    page.click("#tool-calibration")
    for x, y in CAL_IMAGE:
        _click_at(page, x, y)
    expect(page.locator("svg#overlay g.z-calibration circle")).to_have_count(4)
    page.click("#tool-edge")
    _click_at(page, 0.35, 0.6)
    _click_at(page, 0.65, 0.6)
    page.click("#finish")
    edge = _shape(page, "edge", 1)
    expect(edge.locator("select.shape-unit")).to_have_value("m")
    edge.locator("input.shape-name").fill("楼板临边")
    edge.locator("input.shape-dist").fill("2")
    expect(page.locator("svg#overlay g.z-edge text", has_text="楼板临边")).to_have_text(
        "楼板临边 · 2 m"
    )
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("已保存")
    cam = _zones(page)["cameras"]["pour-cam"]
    assert _close(cam["calibration"]["image_points"], CAL_IMAGE), cam["calibration"]
    assert cam["calibration"]["ground_points_m"] == [list(map(float, g)) for g in CAL_GROUND]
    metres = [e for e in cam["edges"] if e["name"] == "楼板临边"]
    assert len(metres) == 1 and metres[0]["danger_distance_m"] == 2.0
    assert metres[0].get("danger_distance") is None
    assert problems == []
    page.context.close()


def test_english_phone_width_and_reset(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a", lang="en")
    problems = _watch(page)
    page.goto("/ui/cameras")
    expect(page.locator("h1")).to_have_text("Cameras")
    expect(page.locator("#nav-cameras")).to_have_text("Cameras")
    card = page.locator("article.camera-card[data-camera-id='pour-cam']")
    expect(card.locator(".camera-state")).to_have_text("Online")
    expect(card.locator("a.camera-edit")).to_have_text("Edit zones")
    expect(
        page.locator("article.camera-card[data-camera-id='dark-cam'] .camera-state")
    ).to_have_text("Offline")
    page.set_viewport_size({"width": 390, "height": 844})
    _open_editor(page)
    _no_horizontal_scroll(page)
    expect(page.locator("#tool-restricted")).to_have_text("Restricted zone")
    expect(page.locator("#save")).to_have_text("Save")
    expect(_shape(page, "edge", 0).locator("legend")).to_contain_text("Edge 1")
    page.click("#tool-post")
    _click_at(page, 0.1, 0.1)
    page.click("#save")
    expect(_shape(page, "post", 0).locator(".shape-errors")).to_contain_text(
        "Too few points: at least 3"
    )
    _no_horizontal_scroll(page)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "zone-editor-390-en.png"), full_page=True)

    # Back to the box's YAML zones, after a confirm.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#reset")
    page.wait_for_url("**/zones?done=reset")
    expect(page.locator("#reset-done")).to_be_visible()
    expect(page.locator("#zones-source")).to_have_attribute("data-source", "none")
    expect(page.locator("fieldset.shape")).to_have_count(0)
    assert "pour-cam" not in _zones(page)["cameras"]
    assert problems == []
    page.context.close()


def test_a_post_with_its_own_staffing_hours(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    problems = _watch(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    _open_editor(page)
    page.click("#tool-post")
    corners = [(0.1, 0.2), (0.3, 0.2), (0.3, 0.4)]
    for x, y in [*corners, corners[0]]:  # a click on the first point closes it
        _click_at(page, x, y)
    post = _shape(page, "post", 0)
    post.locator("input.shape-name").fill("夜间门岗")
    post.locator("input.shape-hours-from").fill("23:00")
    post.locator("input.shape-hours-to").fill("20:00")
    page.click("#save")
    expect(post.locator(".shape-errors")).to_contain_text("值守结束时间须晚于开始时间")
    post.locator("input.shape-hours-from").fill("20:00")
    post.locator("input.shape-hours-to").fill("")
    page.click("#save")
    expect(post.locator(".shape-errors")).to_contain_text("值守时间须同时填写开始和结束")
    post.locator("input.shape-hours-to").fill("23:30")
    before = _zones(page)["version"]
    page.click("#save")
    page.wait_for_function(
        f"() => fetch('{ZONES_API}').then(r => r.json()).then(z => z.version > {before})"
    )
    (saved,) = _zones(page)["cameras"]["pour-cam"]["posts"]
    assert saved["name"] == "夜间门岗"
    assert [(h["start"], h["end"]) for h in saved["hours"]] == [("20:00:00", "23:30:00")]
    _open_editor(page)  # loaded back into the form
    expect(_shape(page, "post", 0).locator("input.shape-hours-to")).to_have_value("23:30")
    assert problems == []
    page.context.close()
