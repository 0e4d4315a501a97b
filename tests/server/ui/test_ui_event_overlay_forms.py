"""Issue 17 in process (the real app, SQLite, media folder; no browser): the data the event
page draws from (zones the event was judged with, the person's box and track), escaped in
its JSON block; camera and site display names in the list, its filter, the event page and
the CSV (ids kept in their own columns)."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from ui_harness import csv_rows_by_code
from ui_media_files import CLIP_WH, PERSON_XYXY, make_event_media
from ui_seed import DAY, event_body, form_login, seed_accounts

DATA_BLOCK = re.compile(
    r'<script type="application/json" id="event-overlay-data">(.*?)</script>', re.S
)

CAMERA, CAMERA_NAME = "pour-cam", "浇筑区"
ZONE_A = {"name": "禁区A", "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}
ZONE_B = {"name": "禁区B", "polygon": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]]}
EDGE = {"name": "临边1", "polyline": [[0.05, 0.9], [0.95, 0.9]], "danger_distance": 0.05}
#: The person over the 2 s test clip, which starts 5 s before started_at (the box's
#: default clips.pre_s): track times -5.0 .. -3.0 are clip times 0.0 .. 2.0.
TRACK = [[-5.0 + 0.5 * i, 20.0 + 40 * i, 60.0, 60.0 + 40 * i, 140.0] for i in range(5)]


def heartbeat(client: Any, token: str, cameras: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.post("/api/v1/heartbeat", json={"cameras": cameras}, headers=headers)
    assert answer.status_code == 200, answer.text


def push(client: Any, token: str, body: dict[str, Any], media: dict[str, Path]) -> uuid.UUID:
    headers = {"Authorization": f"Bearer {token}"}
    event_id = body["event_id"]
    answer = client.put(f"/api/v1/events/{event_id}", json=body, headers=headers)
    assert answer.status_code in (200, 201), answer.text
    for kind, path in media.items():
        content_type = "video/mp4" if path.suffix == ".mp4" else "image/jpeg"
        files = {"file": (path.name, path.read_bytes(), content_type)}
        answer = client.put(f"/api/v1/events/{event_id}/media/{kind}", files=files, headers=headers)
        assert answer.status_code == 200, answer.text
    return uuid.UUID(event_id)


def seed_overlay(
    client: httpx.Client | TestClient, tokens: dict[str, str], media: dict[str, Path]
) -> dict[str, uuid.UUID]:
    """Camera pour-cam (浇筑区) of site A with YAML zones reported by a heartbeat, and a
    restricted_zone event in 禁区A with a snapshot, a clip, its box and its track (the
    track sent unsorted); plus an event whose zones are unknown and one with no zone."""
    a = tokens["site-a"]
    yaml_zones = {"restricted": [ZONE_A, ZONE_B], "edges": [EDGE]}
    heartbeat(client, a, [{"camera_id": CAMERA, "online": True, "name": CAMERA_NAME,
                           "yaml_zones": yaml_zones}])  # fmt: skip
    person = {
        "track_id": 9,
        "zone": ZONE_A["name"],
        "bbox_xyxy": list(PERSON_XYXY),
        "frame_wh": list(CLIP_WH),
        "track": TRACK,
    }
    return {
        "zone": push(
            client, a,
            event_body("site-a", CAMERA, "restricted_zone", DAY + timedelta(hours=2), **person),
            {"snapshot": media["snapshot"], "clip": media["clip"]},
        ),
        "unknown_zones": push(
            client, a,
            event_body("site-a", "cam-dark", "restricted_zone", DAY + timedelta(hours=3),
                       track_id=4, zone="禁区C", bbox_xyxy=list(PERSON_XYXY),
                       frame_wh=list(CLIP_WH)),
            {"snapshot": media["snapshot"]},
        ),
        "no_zone": push(
            client, a,
            event_body("site-a", CAMERA, "no_helmet", DAY + timedelta(hours=4), track_id=5),
            {"snapshot": media["snapshot"]},
        ),
    }  # fmt: skip


@pytest.fixture(scope="module")
def ui(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict, dict, dict]]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-overlay-forms")
    settings = Settings(
        data_dir=root,
        media_dir=root / "media",
        session_secret=SecretStr("overlay-" + uuid.uuid4().hex),
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media", clip_frames=20)
    tokens = seed_accounts(app)
    with TestClient(app, base_url="http://testserver") as client:
        events = seed_overlay(client, tokens, media)
        yield client, events, tokens, media


_login = form_login


def _data(page: str) -> dict[str, Any]:
    found = DATA_BLOCK.search(page)
    assert found is not None, "no overlay data block on the page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_the_event_page_carries_what_it_draws(ui: tuple) -> None:
    client, events = ui[0], ui[1]
    _login(client, "rev-a")
    page = client.get(f"/ui/events/{events['zone']}").text
    data = _data(page)
    assert data["frame_wh"] == list(CLIP_WH) and data["bbox"] == list(PERSON_XYXY)
    assert data["track"] == TRACK and data["clip_offset_s"] == 5.0
    assert data["zone"] == "禁区A" and data["zones_version"] is None
    zones = data["zones"]
    assert [z["name"] for z in zones["restricted"]] == ["禁区A", "禁区B"]
    assert zones["restricted"][0]["points"] == ZONE_A["polygon"]
    assert zones["edges"] == [
        {"name": "临边1", "points": EDGE["polyline"], "danger_distance": 0.05,
         "danger_distance_m": None}
    ]  # fmt: skip
    assert zones["posts"] == []
    assert data["labels"]["person"] == "闯入禁区 #9" and data["labels"]["restricted"] == "禁区"
    assert '<script src="/ui/static/event_overlay.js" defer></script>' in page
    assert 'id="overlay-on"' in page and "显示标注" in page and "原图" in page
    assert 'id="zones-unknown"' not in page
    english = _data(client.get(f"/ui/events/{events['zone']}?lang=en").text)
    assert english["labels"]["person"] == "Restricted zone #9"
    assert english["labels"]["edge"] == "Fall-risk edge"
    script = client.get("/ui/static/event_overlay.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "event-overlay-data" in script.text


def test_unknown_zones_are_said_and_no_zone_says_nothing(ui: tuple) -> None:
    client, events = ui[0], ui[1]
    _login(client, "rev-a")
    unknown = client.get(f"/ui/events/{events['unknown_zones']}").text
    assert 'id="zones-unknown"' in unknown
    data = _data(unknown)
    assert data["zones"] == {"restricted": [], "edges": [], "posts": []}
    assert data["track"] == [] and data["bbox"] == list(PERSON_XYXY)
    plain = client.get(f"/ui/events/{events['no_zone']}").text
    assert 'id="zones-unknown"' not in plain and _data(plain)["zone"] is None


def test_zone_names_are_escaped_in_the_data_block(ui: tuple) -> None:
    client, tokens = ui[0], ui[2]
    nasty = "</script><img src=x onerror=alert(1)>&'"
    zones = {"restricted": [{"name": nasty, "polygon": ZONE_A["polygon"]}]}
    heartbeat(client, tokens["site-a"], [{"camera_id": "cam-x", "online": True,
                                          "name": "<b>x</b>", "yaml_zones": zones}])  # fmt: skip
    body = event_body("site-a", "cam-x", "restricted_zone", DAY, zone=nasty, track_id=1)
    event_id = push(client, tokens["site-a"], body, {"snapshot": ui[3]["snapshot"]})
    _login(client, "rev-a")
    page = client.get(f"/ui/events/{event_id}").text
    assert "<img src=x" not in page and "<b>x</b>" not in page
    data = _data(page)
    assert data["zone"] == nasty and data["zones"]["restricted"][0]["name"] == nasty
    assert html.escape("<b>x</b>") in page  # the camera's name, as text


def test_display_names_in_list_filter_event_page_and_csv(ui: tuple) -> None:
    client, events = ui[0], ui[1]
    _login(client, "rev-a")
    listing = client.get("/ui/events?camera=pour-cam").text
    row = re.search(
        rf'data-event-id="{events["zone"]}">(.*?)</tr>', listing, re.S
    )  # fmt: skip
    assert row is not None
    assert re.search(r'class="camera-name">浇筑区 <small class="id">pour-cam</small>', row.group(1))
    assert '<td class="site-name">一号工地 A</td>' in row.group(1)
    assert re.search(r'<option value="pour-cam" selected>浇筑区</option>', listing)
    assert re.search(r'<option value="cam-dark" >cam-dark</option>', listing)  # no name: id
    page = client.get(f"/ui/events/{events['zone']}").text
    assert re.search(r'id="camera-name">浇筑区 <small class="id">pour-cam</small>', page)
    assert re.search(r'id="site-name">一号工地 A <small class="id">site-a</small>', page)
    assert 'id="zone-name">禁区A<' in page
    answer = client.get("/ui/events.csv?camera=pour-cam")
    text = answer.text.lstrip("\ufeff")
    header = text.splitlines()[0].split(",")
    assert header[:5] == ["事件编号", "工地编号", "工地", "摄像头编号", "摄像头"]
    rows = {r["event_id"]: r for r in csv_rows_by_code(text)}
    zone_row = rows[str(events["zone"])]
    assert zone_row["camera_name"] == "浇筑区" and zone_row["camera_id"] == "pour-cam"
    assert zone_row["site_name"] == "一号工地 A" and zone_row["site_id"] == "site-a"
    assert zone_row["zone"] == "禁区A"
    dark = client.get("/ui/events.csv?camera=cam-dark").text.lstrip("\ufeff")
    (dark_row,) = csv_rows_by_code(dark)
    assert dark_row["camera_name"] == "cam-dark"  # no name reported: the id


def test_a_formula_in_a_camera_name_is_defused_in_the_csv(ui: tuple) -> None:
    client, tokens = ui[0], ui[2]
    heartbeat(client, tokens["site-a"], [{"camera_id": "cam-f", "online": True,
                                          "name": "=HYPERLINK(1)"}])  # fmt: skip
    body = event_body("site-a", "cam-f", "no_helmet", DAY)
    push(client, tokens["site-a"], body, {})
    _login(client, "rev-a")
    text = client.get("/ui/events.csv?camera=cam-f").text.lstrip("\ufeff")
    (row,) = csv_rows_by_code(text)
    assert row["camera_name"] == "'=HYPERLINK(1)"


def test_overlay_data_keeps_only_usable_numbers() -> None:
    from sitewatch.server.db.models import EventRecord
    from sitewatch.server.ui.views import overlay_data

    event = EventRecord(
        bbox_xyxy=[1, 2, "x", 4],
        frame_wh=[0, 10],
        track_boxes=[[2.0, 1, 1, 2, 2], [1.0, 1, 1, 2, 2], [3.0, 1, 1], [float("nan"), 1, 1, 2, 2]],
        zone="z",
    )
    zones = {"restricted": [{"name": "z", "polygon": [[0, 0], [1, 0], "bad", [1, 1]]}, "junk"]}
    data = overlay_data(event, zones)
    assert data["bbox"] is None and data["frame_wh"] is None
    assert data["track"] == [[1.0, 1, 1, 2, 2], [2.0, 1, 1, 2, 2]]
    assert data["zones"]["restricted"] == [
        {"name": "z", "points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]}
    ]
    assert overlay_data(EventRecord(), None)["zones"] == {
        "restricted": [],
        "edges": [],
        "posts": [],
    }
