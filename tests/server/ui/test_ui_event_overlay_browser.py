"""Issue 17 in a real browser (Debian's chromium via Playwright) against a real server: the
event page draws the zone and the person's box over the snapshot and over the playing clip
(at the right place on screen, labels in the page's language, hidden by 原图), and the
camera's display name shows in the list, on the event page and in the CSV."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from test_ui_event_overlay_forms import TRACK, ZONE_A, seed_overlay
from ui_harness import csv_rows_by_code, live_server
from ui_media_files import CLIP_WH, PERSON_XYXY, make_event_media
from ui_seed import login, seed_accounts

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)").expect

W, H = CLIP_WH


@dataclass
class Live:
    base_url: str
    events: dict[str, uuid.UUID]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-overlay")
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'ui.db'}",
        media_dir=root / "media",
        session_secret=SecretStr("overlay-" + uuid.uuid4().hex),
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media")  # a 2 s clip: 30 frames at 15 fps
    tokens = seed_accounts(app)
    with live_server(app) as base_url:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            events = seed_overlay(client, tokens, media)
        yield Live(base_url, events)


def _open(browser: Any, live: Live, lang: str = "zh", width: int = 1440) -> tuple[Any, list]:
    page = login(browser, live.base_url, "rev-a", lang=lang)
    page.set_viewport_size({"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"/ui/events/{live.events['zone']}")
    page.wait_for_selector("#snapshot-overlay rect.person-box")
    return page, problems


def _rect(page: Any, selector: str) -> dict[str, float]:
    box: dict[str, float] = page.eval_on_selector(
        selector,
        "e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height}; }",
    )
    return box


def _on_screen(media: dict[str, float], x: float, y: float) -> tuple[float, float]:
    """Where frame pixel (x, y) is on screen in a media element showing the frame fitted
    ("contain": scaled to fit, centred)."""
    scale = min(media["w"] / W, media["h"] / H)
    left = media["x"] + (media["w"] - W * scale) / 2
    top = media["y"] + (media["h"] - H * scale) / 2
    return left + x * scale, top + y * scale


def _check_box_on_screen(page: Any, media_selector: str, box_selector: str, xyxy: Any) -> None:
    media, box = _rect(page, media_selector), _rect(page, box_selector)
    x1, y1 = _on_screen(media, xyxy[0], xyxy[1])
    x2, y2 = _on_screen(media, xyxy[2], xyxy[3])
    assert abs(box["x"] - x1) < 2 and abs(box["y"] - y1) < 2, (box, x1, y1)
    assert abs(box["x"] + box["w"] - x2) < 2 and abs(box["y"] + box["h"] - y2) < 2, (box, x2, y2)


def _seek(page: Any, seconds: float) -> None:
    page.evaluate(
        """s => new Promise(done => {
             const v = document.getElementById('clip');
             v.addEventListener('seeked', () => requestAnimationFrame(done), {once: true});
             v.currentTime = s;
           })""",
        seconds,
    )


def test_snapshot_shows_the_zone_and_the_box_and_the_plain_picture(
    browser: Any, live: Live
) -> None:
    page, problems = _open(browser, live)
    svg = "#snapshot-overlay"
    current = page.locator(f"{svg} g.zone.current")
    expect(current).to_have_count(1)
    assert current.get_attribute("data-name") == "禁区A"
    expected = " ".join(f"{x * W:g},{y * H:g}" for x, y in ZONE_A["polygon"])
    assert current.locator("polygon").get_attribute("points") == expected
    expect(current.locator("text.zone-label")).to_have_text("禁区A")
    other = page.locator(f"{svg} g.zone[data-name='禁区B']")
    assert "current" not in (other.get_attribute("class") or "")
    assert float(other.evaluate("g => getComputedStyle(g).opacity")) < 0.6
    assert page.locator(f"{svg} g.zone.edge[data-name='临边1'] .edge-band polyline").count() == 1
    box = page.locator(f"{svg} rect.person-box")
    x1, y1, x2, y2 = PERSON_XYXY
    assert [float(box.get_attribute(k) or "nan") for k in ("x", "y", "width", "height")] == [
        x1, y1, x2 - x1, y2 - y1,
    ]  # fmt: skip
    expect(page.locator(f"{svg} text.person-label")).to_have_text("闯入禁区 #9")
    # on screen: the box and the zone's corners sit where the frame's pixels are shown
    _check_box_on_screen(page, "#snapshot", f"{svg} rect.person-box", PERSON_XYXY)
    zone_xyxy = (0.1 * W, 0.1 * H, 0.5 * W, 0.5 * H)
    _check_box_on_screen(page, "#snapshot", f"{svg} g.zone.current polygon", zone_xyxy)

    # 原图 hides the drawing (snapshot and clip), 显示标注 brings it back
    expect(page.locator("#overlay-switch")).to_be_visible()
    page.click("#overlay-off")
    expect(page.locator(svg)).to_be_hidden()
    expect(page.locator("#clip-overlay")).to_be_hidden()
    assert page.get_attribute("#overlay-off", "aria-pressed") == "true"
    assert page.is_visible("#snapshot")
    page.click("#overlay-on")
    expect(page.locator(f"{svg} rect.person-box")).to_be_visible()
    expect(page.locator("#camera-name")).to_have_text("浇筑区 pour-cam")
    expect(page.locator("#camera-name small.id")).to_have_text("pour-cam")
    expect(page.locator("#zone-name")).to_have_text("禁区A")
    assert problems == []
    page.context.close()


def test_the_clip_overlay_follows_the_video(browser: Any, live: Live) -> None:
    page, problems = _open(browser, live)
    page.wait_for_function("() => document.getElementById('clip').readyState >= 2")
    person = "#clip-overlay g.person"
    # clip time = track time + 5 s (the clip starts clips.pre_s before started_at)
    for clip_s, index in ((0.1, 0), (1.05, 2), (1.9, 4)):
        _seek(page, clip_s)
        t, *xyxy = TRACK[index]
        assert page.get_attribute(person, "data-t") == f"{t:g}", clip_s
        rect = page.locator(f"{person} rect.person-box")
        assert float(rect.get_attribute("x") or "nan") == xyxy[0], clip_s
        assert float(rect.get_attribute("width") or "nan") == xyxy[2] - xyxy[0]
        _check_box_on_screen(page, "#clip", f"{person} rect.person-box", xyxy)
    expect(page.locator(f"{person} text.person-label")).to_have_text("闯入禁区 #9")
    assert page.locator("#clip-overlay g.zone.current[data-name='禁区A']").count() == 1
    # while playing, the box moves with the video
    _seek(page, 0.0)
    page.evaluate("document.getElementById('clip').play()")
    page.wait_for_function(
        "() => document.querySelector('#clip-overlay g.person').dataset.t !== '-5'"
    )
    page.evaluate("document.getElementById('clip').pause()")
    page.click("#overlay-off")
    expect(page.locator("#clip-overlay")).to_be_hidden()
    assert problems == []
    page.context.close()


def test_english_labels_at_phone_width(browser: Any, live: Live) -> None:
    page, problems = _open(browser, live, lang="en", width=390)
    expect(page.locator("#snapshot-overlay text.person-label")).to_have_text("Restricted zone #9")
    expect(page.locator("#overlay-on")).to_have_text("Show drawing")
    expect(page.locator("#overlay-off")).to_have_text("Plain picture")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _check_box_on_screen(page, "#snapshot", "#snapshot-overlay rect.person-box", PERSON_XYXY)
    label = _rect(page, "#snapshot-overlay text.person-label")
    assert 8 < label["h"] < 24  # readable on a phone, whatever the frame's resolution
    page.click("#overlay-off")
    expect(page.locator("#snapshot-overlay")).to_be_hidden()
    assert problems == []
    page.context.close()


def test_camera_display_name_in_the_list_and_the_csv(browser: Any, live: Live) -> None:
    page = login(browser, live.base_url, "rev-a")
    row = page.locator(f"tr[data-event-id='{live.events['zone']}']")
    expect(row.locator("td.camera-name")).to_have_text("浇筑区 pour-cam")
    expect(row.locator("td.site-name")).to_have_text("一号工地 A")
    page.select_option("select[name=camera]", label="浇筑区")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**camera=pour-cam**")
    text = page.request.get(page.get_attribute("#csv-export", "href")).text().lstrip("\ufeff")
    rows = csv_rows_by_code(text)
    assert {r["camera_name"] for r in rows} == {"浇筑区"}
    assert {r["camera_id"] for r in rows} == {"pour-cam"}
    assert str(live.events["zone"]) in {r["event_id"] for r in rows}
    page.context.close()
