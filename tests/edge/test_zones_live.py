"""Cameras and zones managed from the server, end to end (issue 17): a real ``sitewatch
server`` subprocess (SQLite) and a real :class:`edge.live.EdgeRunner` with the real
pipeline (COCO ONNX detector, tracker, rules) on barrier-walkway.mp4 (people walking,
paced at real time, looped). The box's YAML has no zones.

- The heartbeat fills the server's camera table (display name, frame size, last frame,
  zones version) and the site's display name; a reviewer's picture request brings a new
  picture (a JPEG with the people on it) at the next heartbeat.
- A reviewer saves a restricted polygon over the whole frame: within one sync interval
  the camera judges with it and restricted_zone events reach the server, carrying the
  zones version and the person's boxes over the clip (lead-in and after the start).
  The reset sends the camera back to its YAML (no zones): no restricted_zone any more.
- The box keeps the last version on disk: restarted while the server is down, it judges
  with it at once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml

from sitewatch.edge.config import load_config
from sitewatch.edge.live import EdgeRunner, EdgeTuning
from sitewatch.edge.site_zones import SITE_ZONES_NAME
from tests.conftest import shared_file
from tests.edge.live_central import RealCentral
from tests.edge.live_support import Spool, wait_for

pytestmark = pytest.mark.slow
SITE = "zones-site"
PASSWORD = "correct-horse-1"
SYNC_S = 0.5
EVERYWHERE = {"restricted": [{"name": "全场", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}]}
TUNING = EdgeTuning(
    heartbeat_s=0.5,
    retry_min_s=0.2,
    retry_max_s=1.0,
    metrics_port=None,
    picture_interval_s=300,
    shutdown_flush_s=10,
)


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCentral]:
    server = RealCentral(tmp_path_factory.mktemp("central"), site_id=SITE)
    server._cli("add-user", "--username", "rita", "--role", "reviewer", "--site", SITE,
                "--password", PASSWORD)  # fmt: skip
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reviewer(central: RealCentral) -> Iterator[httpx.Client]:
    client = httpx.Client(base_url=central.url, timeout=30)
    answer = client.post("/api/v1/auth/login", json={"username": "rita", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    yield client
    client.close()


def zones_site_config(
    folder: Path,
    central: RealCentral,
    camera_id: str,
    server_url: str = "",
    *,
    site_id: str = SITE,
    sync_s: float = SYNC_S,
) -> Path:
    """A box config without zones (restricted_zone on, quick), its token file beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "device.token").write_text(central.token + "\n")
    config: dict[str, Any] = {
        "site": {"id": site_id, "name": "演示工地"},
        "model": {"path": str(shared_file("models/yolov8n-coco-int8.onnx"))},
        "rules": {
            "no_helmet": {"enabled": False},
            "fall_edge": {"enabled": False},
            "post_unattended": {"enabled": False},
            "party_member_helmet": {"enabled": False},
            "restricted_zone": {"min_duration_s": 0.5, "end_after_s": 1.0, "cooldown_s": 1},
        },
        "cameras": [
            {
                "id": camera_id,
                "name": "大门",
                "source": str(shared_file("data/videos/barrier-walkway.mp4")),
                "loop": True,
                "detect_fps": 4,
            }
        ],
        "server": {
            "url": server_url or central.url,
            "token_file": "device.token",
            "timeout_s": 5,
            "zones_sync_interval_s": sync_s,
        },
        "clips": {"pre_s": 1, "post_s": 1},
        "outbox": {"path": "spool"},
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


class Box:
    """An EdgeRunner running in a thread for a ``with`` block."""

    def __init__(self, config: Path) -> None:
        self.runner = EdgeRunner(load_config(config), config_path=config, tuning=TUNING)
        self.thread = threading.Thread(target=self.runner.run, daemon=True)

    def __enter__(self) -> EdgeRunner:
        self.thread.start()
        return self.runner

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()


def _camera_row(central: RealCentral, camera_id: str) -> dict[str, Any] | None:
    rows = central._query(
        "SELECT name, width, height, last_frame_at, zones_version, picture_at, "
        "picture_persons, online FROM cameras WHERE site_id = ? AND camera_id = ?",
        SITE,
        camera_id,
    )
    if not rows:
        return None
    keys = ("name", "width", "height", "last_frame_at", "zones_version", "picture_at",
            "persons", "online")  # fmt: skip
    return dict(zip(keys, rows[0], strict=True))


def _restricted(central: RealCentral, camera_id: str) -> list[dict[str, Any]]:
    rows = central._query(
        "SELECT event_id, phase, zones_version, track_boxes, frame_wh, started_at FROM events "
        "WHERE camera_id = ? AND rule = 'restricted_zone'",
        camera_id,
    )
    keys = ("event_id", "phase", "zones_version", "track", "frame_wh", "started_at")
    out = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["event_id"] = str(uuid.UUID(str(item["event_id"])))
        for key in ("track", "frame_wh"):
            if isinstance(item[key], str):
                item[key] = json.loads(item[key])
        out.append(item)
    return out


def _save(reviewer: httpx.Client, camera_id: str, zones: dict[str, Any] | None) -> int:
    url = f"/api/v1/sites/{SITE}/cameras/{camera_id}/zones"
    answer = reviewer.post(url, json={"zones": zones}) if zones else reviewer.delete(url)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["version"])


def test_cameras_pictures_and_a_live_zones_swap(
    central: RealCentral, reviewer: httpx.Client, tmp_path: Path
) -> None:
    config = zones_site_config(tmp_path / "edge", central, "gate")
    with Box(config) as runner:
        worker = runner.workers[0]
        wait_for(lambda: (_camera_row(central, "gate") or {}).get("width"), 30, "the camera row")
        row = _camera_row(central, "gate")
        assert row is not None
        assert (row["name"], row["width"], row["height"]) == ("大门", 586, 480)
        assert row["last_frame_at"] is not None and row["zones_version"] is None
        assert central._query("SELECT name FROM sites WHERE id = ?", SITE) == [("演示工地",)]
        beat = central.last_heartbeat()
        assert beat is not None and beat["site_name"] == "演示工地"
        assert beat["cameras"][0]["yaml_zones"] == {"restricted": [], "edges": [], "posts": []}

        # the first picture comes after the first heartbeat; a request brings a new one
        wait_for(lambda: (_camera_row(central, "gate") or {}).get("picture_at"), 20, "a picture")
        first = (_camera_row(central, "gate") or {})["picture_at"]
        asked = reviewer.post(f"/api/v1/sites/{SITE}/cameras/gate/picture-request")
        assert asked.status_code == 202, asked.text
        wait_for(
            lambda: (_camera_row(central, "gate") or {})["picture_at"] != first,
            10,
            "the requested picture (picture_interval_s is 300 s)",
        )
        picture = reviewer.get(f"/api/v1/sites/{SITE}/cameras/gate/picture")
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        image = cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (480, 586)
        assert runner.pictures is not None and runner.pictures.sent >= 2
        persons = json.loads(json.dumps((_camera_row(central, "gate") or {})["persons"]))
        persons = json.loads(persons) if isinstance(persons, str) else persons
        assert all(0 <= v <= 1 for box in persons for v in box)
        assert _restricted(central, "gate") == []  # the YAML has no zones

        # a polygon saved on the server: the camera takes it within one sync interval
        version = _save(reviewer, "gate", EVERYWHERE)
        saved_at = time.monotonic()
        wait_for(lambda: worker.zones_version == version, 10, "the camera on the new zones")
        assert time.monotonic() - saved_at < SYNC_S + 1.5
        assert (runner.zones_sync and runner.zones_sync.version) == version
        kept = json.loads((runner.outbox.root / SITE_ZONES_NAME).read_text())
        assert kept["version"] == version and "gate" in kept["cameras"]
        wait_for(lambda: _restricted(central, "gate"), 20, "restricted_zone on the server")
        wait_for(
            lambda: (_camera_row(central, "gate") or {}).get("zones_version") == version,
            10,
            "the heartbeat's zones version",
        )

        # reset: back to the YAML (no zones), the open events end, no new ones
        reset = _save(reviewer, "gate", None)
        wait_for(lambda: worker.zones_version is None, 10, "the camera back on its YAML")
        assert runner.zones_sync is not None and runner.zones_sync.version == reset
        wait_for(
            lambda: all(e["phase"] == "end" for e in _restricted(central, "gate")),
            15,
            "every restricted_zone event ended",
        )
        seen = {e["event_id"] for e in _restricted(central, "gate")}
        time.sleep(3.0)
        assert {e["event_id"] for e in _restricted(central, "gate")} == seen
        wait_for(
            lambda: (central.last_heartbeat() or {}).get("site_config_version") == reset,
            10,
            "the heartbeat's site_config_version",
        )
        time.sleep(2.5)  # the clip windows (post_s 1) pass: the complete tracks go out
        wait_for(lambda: runner.outbox.depth() == 0, 20, "the outbox drained")

    events = _restricted(central, "gate")
    assert events and {e["zones_version"] for e in events} == {version}
    for event in events:
        track = event["track"]
        assert track, event
        width, height = event["frame_wh"]
        times = [box[0] for box in track]
        assert times == sorted(times)
        assert all(t >= -1.01 for t in times)  # pre_s before started_at at the earliest
        assert all(0 <= box[1] <= box[3] <= width and 0 <= box[2] <= box[4] <= height
                   for box in track)  # fmt: skip
    # the lead-in (the person was tracked before the zone existed) and after the start
    assert any(box[0] < 0 for e in events for box in e["track"])
    assert any(box[0] >= 0.5 for e in events for box in e["track"])


def test_kept_zones_are_used_after_a_restart_with_the_server_down(
    central: RealCentral, reviewer: httpx.Client, tmp_path: Path
) -> None:
    config = zones_site_config(tmp_path / "edge", central, "yard")
    with Box(config) as runner:
        wait_for(lambda: _camera_row(central, "yard"), 30, "the camera row")
        version = _save(reviewer, "yard", EVERYWHERE)
        wait_for(lambda: runner.workers[0].zones_version == version, 10, "the new zones")
    _save(reviewer, "yard", None)  # the box misses this one: it is offline from now on

    offline = zones_site_config(tmp_path / "edge", central, "yard", server_url="http://127.0.0.1:9")
    box = Box(offline)
    worker = box.runner.workers[0]
    assert worker.zones_version == version and worker.zones.restricted[0].name == "全场"
    with box as runner:

        def spooled_restricted() -> list[dict[str, Any]]:
            bodies = Spool(runner.outbox.root)._query("SELECT body FROM items WHERE kind = 'event'")
            events = [json.loads(body) for (body,) in bodies]
            return [e for e in events if e["rule"] == "restricted_zone"]

        wait_for(spooled_restricted, 20, "restricted_zone judged with the kept zones")
        assert {e["zones_version"] for e in spooled_restricted()} == {version}
        assert runner.zones_sync is not None and runner.zones_sync.failures >= 1
