"""The cameras page and the zone editor's page in process (the real app, SQLite; no
browser): who sees which cameras, their state, the editor's start data, read-only for
viewers, English, and that the editor script's texts and its mapping of the API's
reasons cover what the API really says (issue 17)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from ui_seed import DAY, event_body, form_login, seed_accounts

from sitewatch.server.services.cameras import check_zones
from sitewatch.server.services.errors import Invalid
from sitewatch.server.ui.i18n import EN, ZH

SCRIPT = Path(__file__).parents[3] / "server" / "ui" / "static" / "zone_editor.js"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ZONE_DATA = re.compile(r'<script type="application/json" id="zone-data">(.*?)</script>', re.S)

#: The people on the seeded picture (normalised [x1, y1, x2, y2]): the first one's feet
#: are at (0.5, 0.92), the second one's at (0.13, 0.6).
PERSONS = [[0.46, 0.45, 0.54, 0.92], [0.1, 0.3, 0.16, 0.6]]
PICTURE_WH = (640, 360)


def picture_jpeg() -> bytes:
    """A camera picture from OpenCV: ground, a slab edge and two people-like figures."""
    width, height = PICTURE_WH
    frame = np.full((height, width, 3), (90, 110, 120), np.uint8)
    frame[: height // 3] = (200, 170, 140)
    cv2.line(
        frame, (int(0.7 * width), int(0.3 * height)), (width, int(0.3 * height)), (0, 140, 255), 4
    )
    for x1, y1, x2, y2 in PERSONS:
        top_left = (int(x1 * width), int(y1 * height))
        bottom_right = (int(x2 * width), int(y2 * height))
        cv2.rectangle(frame, top_left, bottom_right, (40, 60, 200), -1)
        cv2.circle(frame, (int((x1 + x2) / 2 * width), top_left[1]), 8, (0, 0, 230), -1)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(data.tobytes())


def seed_cameras(client: httpx.Client | TestClient, tokens: dict[str, str]) -> uuid.UUID:
    """Site A's box reports 浇筑区 (pour-cam, online, with a picture and two people) and
    a camera dark for a day; site B's box one camera. Returns pour-cam's event."""
    now = datetime.now(UTC)
    a = {"Authorization": f"Bearer {tokens['site-a']}"}
    b = {"Authorization": f"Bearer {tokens['site-b']}"}
    beat = {
        "site_name": "演示工地",
        "cameras": [
            {
                "camera_id": "pour-cam",
                "name": "浇筑区",
                "online": True,
                "fps": 12.5,
                "width": PICTURE_WH[0],
                "height": PICTURE_WH[1],
                "last_frame_at": now.isoformat(),
            },
            {
                "camera_id": "dark-cam",
                "name": "北门",
                "online": False,
                "fps": 0,
                "last_frame_at": (now - timedelta(days=1)).isoformat(),
            },
        ],
    }
    answer = client.post("/api/v1/heartbeat", json=beat, headers=a)
    assert answer.status_code == 200, answer.text
    beat_b = {"cameras": [{"camera_id": "b-cam", "name": "二号塔吊", "online": True}]}
    assert client.post("/api/v1/heartbeat", json=beat_b, headers=b).status_code == 200
    answer = client.put(
        "/api/v1/cameras/pour-cam/picture",
        files={"file": ("pour-cam.jpg", picture_jpeg(), "image/jpeg")},
        data={"persons": json.dumps(PERSONS)},
        headers=a,
    )
    assert answer.status_code == 204, answer.text
    body = event_body("site-a", "pour-cam", "restricted_zone", DAY, zone="crane")
    answer = client.put(f"/api/v1/events/{body['event_id']}", json=body, headers=a)
    assert answer.status_code in (200, 201), answer.text
    return uuid.UUID(body["event_id"])


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, uuid.UUID]]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-cameras")
    settings = Settings(
        data_dir=root,
        media_dir=root / "media",
        session_secret=SecretStr("cameras-" + uuid.uuid4().hex),
        notify_worker=False,
    )
    app = create_app(settings)
    tokens = seed_accounts(app)
    with TestClient(app, base_url="http://testserver") as client:
        event = seed_cameras(client, tokens)
        yield client, event


_login = form_login


def _card(page: str, camera: str) -> str:
    start = page.index(f'data-camera-id="{camera}"')
    return page[start : page.index("</article>", start)]


def _editor_data(page: str) -> dict[str, Any]:
    found = ZONE_DATA.search(page)
    assert found, "no #zone-data on the editor page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_cameras_page_lists_the_sites_cameras(ui: tuple[TestClient, uuid.UUID]) -> None:
    client, event = ui
    _login(client, "rev-a")
    answer = client.get("/ui/cameras")
    assert answer.status_code == 200
    page = answer.text
    assert 'id="nav-cameras"' in page and ">摄像头<" in page
    assert "一号工地 A" in page  # an admin-given site name stays (not the box's 演示工地)
    assert "b-cam" not in page and "二号塔吊" not in page  # site B is not rev-a's
    pour = _card(page, "pour-cam")
    assert "浇筑区" in pour and 'class="muted camera-id">pour-cam<' in pour
    assert 'data-state="online"' in pour and ">在线<" in pour
    assert "12.5" in pour and "640×360" in pour
    assert re.search(r'<img src="/api/v1/sites/site-a/cameras/pour-cam/picture\?t=\d+"', pour)
    assert f'href="/ui/events/{event}"' in pour and "闯入禁区" in pour
    assert "+08:00" in pour  # times in the page's zone
    assert 'href="/ui/cameras/site-a/pour-cam/zones"' in pour and "编辑区域" in pour
    dark = _card(page, "dark-cam")
    assert 'data-state="offline"' in dark and ">离线<" in dark and "离线自" in dark
    assert "暂无画面" in dark and "<img" not in dark


def test_viewers_see_view_links_and_other_sites_stay_hidden(
    ui: tuple[TestClient, uuid.UUID],
) -> None:
    client, _ = ui
    _login(client, "view-a")
    page = client.get("/ui/cameras").text
    assert "查看区域" in _card(page, "pour-cam") and "编辑区域" not in page
    editor = client.get("/ui/cameras/site-a/pour-cam/zones")
    assert editor.status_code == 200
    assert 'id="save"' not in editor.text and 'id="toolbar"' not in editor.text
    assert 'id="read-only"' in editor.text
    assert _editor_data(editor.text)["canEdit"] is False
    _login(client, "rev-b")
    page = client.get("/ui/cameras").text
    assert "二号塔吊" in page and "pour-cam" not in page
    refused = client.get("/ui/cameras/site-a/pour-cam/zones")
    assert refused.status_code in (403, 404) and "浇筑区" not in refused.text
    assert client.get("/ui/cameras/site-b/nope/zones").status_code == 404
    client.cookies.clear()
    answer = client.get("/ui/cameras", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_editor_page_starts_from_the_servers_zones(ui: tuple[TestClient, uuid.UUID]) -> None:
    client, _ = ui
    csrf = _login(client, "rev-a")
    data = _editor_data(client.get("/ui/cameras/site-a/pour-cam/zones").text)
    assert data["canEdit"] is True and data["csrf"] == csrf
    assert data["api"] == "/api/v1/sites/site-a/cameras/pour-cam"
    assert data["source"] == "none" and data["zones"] == {}
    assert data["persons"] == PERSONS
    assert data["text"]["err.self_intersection"].startswith("多边形自相交")
    zones = {"restricted": [{"name": "塔吊禁区", "polygon": [[0.4, 0.7], [0.6, 0.7], [0.6, 1.0]]}]}
    headers = {"X-CSRF-Token": csrf}
    saved = client.post(
        "/api/v1/sites/site-a/cameras/pour-cam/zones",
        json={"zones": zones, "base_version": data["baseVersion"]},
        headers=headers,
    )
    assert saved.status_code == 200, saved.text
    data = _editor_data(client.get("/ui/cameras/site-a/pour-cam/zones").text)
    assert data["source"] == "server" and data["baseVersion"] == saved.json()["version"]
    assert data["zones"]["restricted"][0]["name"] == "塔吊禁区"
    page = client.get("/ui/cameras").text
    pour = _card(page, "pour-cam")
    assert "盒子配置（YAML）" in pour  # the box has not applied it yet
    assert f"（待盒子应用版本 {saved.json()['version']}）" in pour
    english = client.get("/ui/cameras/site-a/pour-cam/zones?lang=en")
    assert "Zone editor" in english.text and "Restricted zone" in english.text
    text = _editor_data(english.text)["text"]
    assert text["err.self_intersection"].startswith("The polygon crosses itself")
    assert text["role.party_member"] == "Party member"
    reset = client.delete(
        "/api/v1/sites/site-a/cameras/pour-cam/zones",
        params={"base_version": data["baseVersion"]},
        headers=headers,
    )
    assert reset.status_code == 200
    assert _editor_data(client.get("/ui/cameras/site-a/pour-cam/zones").text)["source"] == "none"


def test_cameras_page_in_english(ui: tuple[TestClient, uuid.UUID]) -> None:
    client, _ = ui
    _login(client, "rev-a")
    page = client.get("/ui/cameras?lang=en").text
    assert "<h1>Cameras</h1>" in page
    pour = _card(page, "pour-cam")
    assert ">Online<" in pour and "Edit zones" in pour and "Last event" in pour
    assert ">Offline<" in _card(page, "dark-cam") and "No picture yet" in page


# -- the editor script's texts and reasons ---------------------------------------------------

#: Keys the script builds at run time: prefix -> the values they are built with.
DYNAMIC = {
    "kind.": ("restricted", "edge", "post", "calibration"),
    "hint.draw.": ("restricted", "edge", "post", "calibration"),
}


def test_every_text_of_the_script_is_in_both_catalogues() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    used = {k for k in re.findall(r'tr\("([a-z_.]+)"', script) if not k.endswith(".")}
    used |= set(re.findall(r'"(err\.[a-z_]+)"', script))
    for prefix, values in DYNAMIC.items():
        assert f'tr("{prefix}" +' in script
        used |= {prefix + v for v in values}
    assert 'tr("role." + role)' in script  # role texts come from the role.* keys
    assert len(used) > 40
    missing = sorted(key for key in used if f"zed.{key}" not in ZH or f"zed.{key}" not in EN)
    assert missing == []


def _script_reasons() -> list[tuple[re.Pattern[str], str]]:
    """The script's REASONS table ([/regex/flags, "key"]) as Python patterns."""
    script = SCRIPT.read_text(encoding="utf-8")
    table = script[script.index("var REASONS") : script.index("];", script.index("var REASONS"))]
    found = re.findall(r'\[/(.+?)/(i?), "(err\.[a-z_]+)"\]', table)
    assert len(found) > 10
    return [(re.compile(p, re.I if f else 0), key) for p, f, key in found]


def _split(detail: str) -> list[tuple[str, str]]:
    """The script's splitProblems for the API's string detail."""
    parts = re.split(r"; (?=[a-z_]+(?:\.\w+)*: |zone names must be unique)", detail)
    out = []
    for part in parts:
        m = re.match(r"^([a-z_]+(?:\.\w+)*): (.*)$", part, re.S)
        out.append((m.group(1), m.group(2)) if m else ("", part))
    return out


BOW_TIE = [[0.1, 0.1], [0.4, 0.4], [0.4, 0.1], [0.1, 0.4]]
SQUARE = [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3], [0.1, 0.3]]
CAL_OK = {
    "image_points": [[0.1, 0.9], [0.9, 0.9], [0.7, 0.5], [0.3, 0.5]],
    "ground_points_m": [[0, 0], [10, 0], [10, 10], [0, 10]],
}


BAD_CALIBRATION = {**CAL_OK, "image_points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.5, 0.1]]}
FOLDED = {**CAL_OK, "ground_points_m": [[0, 0], [10, 0], [0, 10], [10, 10]]}
TWICE = {
    "restricted": [{"name": "x", "polygon": SQUARE}],
    "posts": [{"name": "x", "polygon": SQUARE}],
}
TWO_POINTS = [[0.1, 0.1], [0.2, 0.2]]
REFUSED = [
    ({"restricted": [{"name": "a", "polygon": SQUARE}, {"name": "b", "polygon": BOW_TIE}]},
     "restricted.1", "err.self_intersection"),
    ({"posts": [{"name": "p", "polygon": TWO_POINTS}]}, "posts.0.polygon", "err.too_few"),
    ({"restricted": [{"name": "z", "polygon": [[0.1, 0.1], [0.1, 0.1], [0.3, 0.3]]}]},
     "restricted.0", "err.invalid_polygon"),
    ({"edges": [{"name": "e", "polyline": TWO_POINTS}]}, "edges.0", "err.one_distance"),
    ({"edges": [{"name": "e", "polyline": [[0.1, 0.1], [0.1, 0.1]], "danger_distance": 0.1}]},
     "edges.0", "err.zero_length"),
    ({"edges": [{"name": "e", "polyline": TWO_POINTS, "danger_distance_m": 2}]},
     "edges", "err.needs_calibration"),
    ({"calibration": BAD_CALIBRATION}, "calibration", "err.collinear"),
    ({"calibration": FOLDED}, "calibration", "err.fold"),
    (TWICE, "", "err.duplicate"),
    ({"restricted": [{"name": "", "polygon": SQUARE}]}, "restricted.0.name", "err.name_required"),
    ({"posts": [{"name": "p", "polygon": SQUARE, "max_unattended_s": 0}]},
     "posts.0.max_unattended_s", "err.positive"),
]  # fmt: skip


@pytest.mark.parametrize(("zones", "where", "key"), REFUSED)
def test_the_scripts_reasons_cover_the_apis_messages(
    zones: dict[str, Any], where: str, key: str
) -> None:
    with pytest.raises(Invalid) as refused:
        check_zones(zones)
    problems = _split(refused.value.message)
    reasons = _script_reasons()
    paths = [p for p, _ in problems]
    assert where in paths, (where, refused.value.message)
    message = problems[paths.index(where)][1]
    first = next((k for pattern, k in reasons if pattern.search(message)), "err.other")
    assert first == key, (message, first)
