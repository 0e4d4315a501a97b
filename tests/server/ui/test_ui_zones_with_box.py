"""Issue 17 end to end, as a safety officer does it: a real ``sitewatch server run``, a real
``sitewatch edge run`` process on a looping video of people walking (its YAML has no
zones), and real Chromium. A reviewer draws a restricted polygon by mouse on the camera's
picture and saves it; the running box raises restricted_zone within one sync interval
(plus the rule's 0.5 s), judged with the saved version. With the box stopped the zones
are reset; started again, the box takes the new version and reports it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_seed import PASSWORD, login

from sitewatch.edge.site_zones import SITE_ZONES_NAME
from tests.conftest import PROJECT_ROOT
from tests.edge.live_central import RealCentral
from tests.edge.live_support import wait_for
from tests.edge.test_zones_live import zones_site_config

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SITE = "zones-e2e"
CAMERA = "gate-cam"
SYNC_S = 1.0
#: The polygon clicked on the picture, in picture fractions (nearly the whole frame).
POLYGON = [(0.05, 0.05), (0.95, 0.05), (0.95, 0.95), (0.05, 0.95)]


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCentral]:
    server = RealCentral(tmp_path_factory.mktemp("central"), site_id=SITE)
    server._cli("add-user", "--username", "rita", "--role", "reviewer", "--site", SITE,
                "--password", PASSWORD)  # fmt: skip
    server.start()
    yield server
    server.stop()


class Box:
    """``sitewatch edge run`` as a process, with quick heartbeats and zone pulls."""

    def __init__(self, folder: Path, central: RealCentral) -> None:  # YAML without zones
        self.config = zones_site_config(folder, central, CAMERA, site_id=SITE, sync_s=SYNC_S)
        self.log = folder / "box.log"
        self.env = {
            **os.environ,
            "SITEWATCH_EDGE_HEARTBEAT_S": "0.5",
            "SITEWATCH_EDGE_RETRY_MIN_S": "0.2",
            "SITEWATCH_EDGE_RETRY_MAX_S": "1",
            "SITEWATCH_EDGE_METRICS_PORT": "0",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sitewatch.cli",
                    "edge",
                    "run",
                    "--config",
                    str(self.config),
                ],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def box(tmp_path: Path, central: RealCentral) -> Iterator[Box]:
    running = Box(tmp_path / "box", central)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from ui_harness import chromium_browser

    with chromium_browser() as chromium:
        yield chromium


def _api(central: RealCentral) -> httpx.Client:
    client = httpx.Client(base_url=central.url, timeout=30)
    answer = client.post("/api/v1/auth/login", json={"username": "rita", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def _camera(api: httpx.Client) -> dict[str, Any]:
    answer = api.get(f"/api/v1/sites/{SITE}/cameras/{CAMERA}")
    return answer.json() if answer.status_code == 200 else {}


def _restricted_events(api: httpx.Client) -> list[dict[str, Any]]:
    page = api.get("/api/v1/events", params={"rule": "restricted_zone", "page_size": 200})
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def test_zones_drawn_in_the_browser_reach_the_running_box(
    browser: Any, central: RealCentral, box: Box
) -> None:
    from playwright.sync_api import expect

    api = _api(central)
    wait_for(lambda: _camera(api).get("picture_url"), 90, "the camera's first picture", poll_s=0.5)
    assert _camera(api)["name"] == "大门"
    assert _restricted_events(api) == []  # no zones in the YAML: nothing restricted yet

    page = login(browser, central.url, "rita")
    page.set_viewport_size({"width": 1280, "height": 1600})  # the whole picture in view
    page.goto(f"/ui/cameras/{SITE}/{CAMERA}/zones")
    expect(page.locator("body")).to_have_attribute("data-zone-editor", "ready")
    page.wait_for_function("() => document.getElementById('picture').naturalWidth > 0")
    page.locator("#picture").scroll_into_view_if_needed()
    picture = page.locator("#picture").bounding_box()
    assert picture is not None
    assert picture["y"] >= 0 and picture["y"] + picture["height"] <= 1600, picture
    page.click("#tool-restricted")
    for x, y in [*POLYGON, POLYGON[0]]:  # a click on the first point closes the polygon
        page.mouse.click(picture["x"] + x * picture["width"], picture["y"] + y * picture["height"])
    page.locator("fieldset.shape[data-kind='restricted'][data-index='0'] input.shape-name").fill(
        "全场禁区"
    )
    saved_at = time.monotonic()
    page.click("#save")
    try:
        wait_for(lambda: api.get(f"/api/v1/sites/{SITE}/zones").json()["version"] == 1, 10, "save")
    except AssertionError:
        raise AssertionError(
            f"not saved: {page.locator('#message').inner_text()!r}; "
            f"{page.locator('fieldset.shape').all_inner_texts()}"
        ) from None
    zones = api.get(f"/api/v1/sites/{SITE}/zones").json()
    (drawn,) = zones["cameras"][CAMERA]["restricted"]
    assert drawn["name"] == "全场禁区"
    assert all(
        abs(p[0] - e[0]) < 0.01 and abs(p[1] - e[1]) < 0.01
        for p, e in zip(drawn["polygon"], POLYGON, strict=True)
    )

    wait_for(lambda: _restricted_events(api), 45, "a restricted_zone event from the box")
    took = time.monotonic() - saved_at
    first = _restricted_events(api)[0]
    assert first["zones_version"] == 1 and first["zone"] == "全场禁区"
    assert first["camera_id"] == CAMERA
    wait_for(lambda: _camera(api).get("zones_version") == 1, 10, "the box to report version 1")
    print(f"zones saved -> first restricted_zone on the server: {took:.1f} s")

    # The box goes offline; the zones are reset meanwhile; back, it takes version 2.
    box.stop()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#reset")
    wait_for(lambda: api.get(f"/api/v1/sites/{SITE}/zones").json()["version"] == 2, 10, "the reset")
    box.start()
    wait_for(lambda: _camera(api).get("zones_version") is None and _camera(api).get("online"),
             60, "the box back, judging with its YAML zones (version 2 has none)")  # fmt: skip
    kept = json.loads((box.config.parent / "spool" / SITE_ZONES_NAME).read_text("utf-8"))
    assert kept["version"] == 2 and kept["cameras"] == {}
    page.context.close()
    api.close()
