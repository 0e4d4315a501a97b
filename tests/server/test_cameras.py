"""Cameras and zones on the server (issue 17): the camera table from heartbeats, pictures,
versioned zones validated as the box validates them, the box's pull, roles, and events
carrying their zones version and track boxes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from sitewatch.server.db.models import EventRecord, Role
from sitewatch.server.notify.camera_watch import check_cameras
from tests.server.conftest import ServerEnv, event_json, post_event
from tests.server.test_alerts import HOOK_SECRET, Alerts, alerts, receiver

__all__ = ["alerts", "receiver"]  # fixtures used here

SQUARE = {"name": "塔吊下方", "polygon": [[0.2, 0.2], [0.6, 0.2], [0.6, 0.8], [0.2, 0.8]]}
EDGE = {"name": "西侧临边", "polyline": [[0.1, 0.9], [0.9, 0.9]], "danger_distance": 0.05}


def _beat(device: TestClient, **camera: Any) -> Any:
    status = {
        "camera_id": "pour-cam",
        "online": True,
        "name": "浇筑区",
        "fps": 5.0,
        "width": 1280,
        "height": 720,
        "last_frame_at": "2026-12-04T10:00:00+00:00",
        **camera,
    }
    beat = {"cameras": [status], "site_name": "演示工地", "version": "t"}
    answer = device.post("/api/v1/heartbeat", json=beat)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _picture(device: TestClient, jpeg: bytes, persons: str | None = None) -> Any:
    data = {"persons": persons} if persons is not None else {}
    files = {"file": ("pic.jpg", jpeg, "image/jpeg")}
    return device.put("/api/v1/cameras/pour-cam/picture", files=files, data=data)


def test_heartbeats_fill_the_camera_table_and_the_site_name(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    assert _beat(device) == {"site_config_version": 0, "pictures_wanted": []}
    viewer = server_env.user("v", Role.VIEWER, ["site-a"])
    (camera,) = viewer.get("/api/v1/sites/site-a/cameras").json()
    assert camera["name"] == "浇筑区" and camera["width"] == 1280 and camera["fps"] == 5.0
    assert camera["state"] == "offline"  # its last frame is long ago (offline setting)
    admin = server_env.user("root", Role.ADMIN)
    (site,) = [s for s in admin.get("/api/v1/admin/sites").json() if s["id"] == "site-a"]
    assert site["name"] == "演示工地"
    admin.patch("/api/v1/admin/sites/site-a", json={"name": "一号工地"})
    _beat(device)
    (site,) = [s for s in admin.get("/api/v1/admin/sites").json() if s["id"] == "site-a"]
    assert site["name"] == "一号工地"  # an admin's name is not overwritten by the box
    other = server_env.user("o", Role.VIEWER, ["site-b"])
    assert other.get("/api/v1/sites/site-a/cameras").status_code == 404


def test_pictures_on_request(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    device = server_env.device("site-a")
    _beat(device)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    base = "/api/v1/sites/site-a/cameras/pour-cam"
    assert reviewer.get(f"{base}/picture").status_code == 404  # none yet
    assert reviewer.post(f"{base}/picture-request").status_code == 202
    assert _beat(device)["pictures_wanted"] == ["pour-cam"]
    assert _picture(device, jpeg_bytes, "[[0.3, 0.3, 0.4, 0.7]]").status_code == 204
    assert _beat(device)["pictures_wanted"] == []
    picture = reviewer.get(f"{base}/picture")
    assert picture.status_code == 200 and picture.content == jpeg_bytes
    assert reviewer.get(base).json()["picture_persons"] == [[0.3, 0.3, 0.4, 0.7]]
    assert _picture(device, b"not a jpeg at all").status_code == 415
    assert _picture(device, jpeg_bytes, "[[0.5, 0.5, 0.4, 0.7]]").status_code == 422
    assert _picture(device, jpeg_bytes, "{oops").status_code == 422
    unknown = device.put(
        "/api/v1/cameras/no-such-cam/picture", files={"file": ("p.jpg", jpeg_bytes, "image/jpeg")}
    )
    assert unknown.status_code == 404


def test_zones_are_versioned_validated_and_pulled_by_the_box(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    _beat(device)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    zones_url = "/api/v1/sites/site-a/cameras/pour-cam/zones"
    saved = reviewer.post(zones_url, json={"zones": {"restricted": [SQUARE]}, "base_version": 0})
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    both = {"restricted": [SQUARE], "edges": [EDGE]}
    assert reviewer.post(zones_url, json={"zones": both, "base_version": 1}).json()["version"] == 2
    stale = reviewer.post(zones_url, json={"zones": {"restricted": []}, "base_version": 1})
    assert stale.status_code == 409 and "reload" in stale.text
    # the box: 200 with the zones, 204 once it has them, told by the heartbeat
    pulled = device.get("/api/v1/site-config", params={"since_version": 0}).json()
    assert pulled["version"] == 2
    assert pulled["cameras"]["pour-cam"]["edges"][0]["name"] == "西侧临边"
    assert device.get("/api/v1/site-config", params={"since_version": 2}).status_code == 204
    assert _beat(device, zones_version=1)["site_config_version"] == 2
    history = reviewer.get("/api/v1/sites/site-a/zones/history").json()
    assert [(h["version"], h["actor"]) for h in history] == [(2, "user:rev"), (1, "user:rev")]
    audit = reviewer.get("/api/v1/audit", params={"object_id": "site-a/pour-cam"}).json()
    assert {a["action"] for a in audit} == {"zones.save"}
    reset = reviewer.delete(zones_url, params={"base_version": 2})
    assert reset.status_code == 200 and reset.json() == {**reset.json(), "cameras": {}}
    assert reset.json()["version"] == 3


def test_bad_geometry_is_refused_with_the_reason_and_where(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    _beat(device)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    url = "/api/v1/sites/site-a/cameras/pour-cam/zones"
    bow_tie = {"name": "交叉", "polygon": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]}
    two_points = {"name": "太少", "polygon": [[0.1, 0.1], [0.5, 0.5]]}
    flat = {
        "image_points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.1]],
        "ground_points_m": [[0, 0], [10, 0], [10, 10], [0, 10]],
    }
    metres_uncalibrated = {**EDGE, "danger_distance": None, "danger_distance_m": 1.5}
    cases = [
        ({"restricted": [SQUARE, bow_tie]}, "restricted.1", "Self-intersection"),
        ({"restricted": [two_points]}, "restricted.0.polygon", "at least 3"),
        ({"calibration": flat}, "calibration", "collinear"),
        ({"edges": [metres_uncalibrated]}, "edges", "calibration"),
        ({"restricted": [{**SQUARE, "polygon": [[1.5, 0], [0, 1], [1, 1]]}]}, "restricted.0", "1"),
        ({"doors": []}, "doors", "Extra inputs"),
    ]
    for zones, where, why in cases:
        answer = reviewer.post(url, json={"zones": zones})
        assert answer.status_code == 422, (zones, answer.text)
        detail = answer.json()["detail"]
        assert where in detail and why in detail, (where, why, detail)
    assert reviewer.get("/api/v1/sites/site-a/zones").json()["version"] == 0  # nothing saved


def test_viewers_read_and_reviewers_of_the_site_edit(server_env: ServerEnv) -> None:
    _beat(server_env.device("site-a"))
    url = "/api/v1/sites/site-a/cameras/pour-cam/zones"
    body = {"zones": {"restricted": [SQUARE]}}
    viewer = server_env.user("v", Role.VIEWER, ["site-a"])
    assert viewer.post(url, json=body).status_code == 403
    assert viewer.get("/api/v1/sites/site-a/zones").status_code == 200
    outsider = server_env.user("rev-b", Role.REVIEWER, ["site-b"])
    assert outsider.post(url, json=body).status_code == 404
    assert server_env.user("root", Role.ADMIN).post(url, json=body).status_code == 200


def test_preview_says_who_the_unsaved_zones_catch(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    device = server_env.device("site-a")
    _beat(device)
    inside, near_edge, away = [0.3, 0.3, 0.4, 0.7], [0.7, 0.5, 0.8, 0.88], [0.85, 0.1, 0.95, 0.3]
    assert _picture(device, jpeg_bytes, str([inside, near_edge, away])).status_code == 204
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    url = "/api/v1/sites/site-a/cameras/pour-cam/zones/preview"
    answer = reviewer.post(url, json={"restricted": [SQUARE], "edges": [EDGE]})
    assert answer.status_code == 200, answer.text
    people = answer.json()
    assert [p["inside"] for p in people] == [["塔吊下方"], [], []]
    assert [sorted(p["near_edges"]) for p in people] == [[], ["西侧临边"], []]
    bad = reviewer.post(url, json={"restricted": [{"name": "x", "polygon": [[0, 0]]}]})
    assert bad.status_code == 422


def test_events_keep_their_zones_version_and_track(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    track = [[-1.0, 10, 20, 110, 300], [0.0, 12, 20, 112, 300], [1.5, 20, 22, 120, 302]]
    body = event_json("site-a", zones_version=4, track=track[:2])
    assert post_event(device, body).status_code == 201
    ended = {**body, "phase": "end", "ended_at": "2026-05-01T08:00:09+00:00", "track": track}
    assert post_event(device, ended).status_code == 200
    late = {**body, "phase": "update", "track": [*track, [3.0, 30, 22, 130, 302]]}
    assert post_event(device, late).json()["applied"] is False  # stale, but its boxes count
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    with server_env.database.session() as db:
        row = db.get(EventRecord, uuid.UUID(body["event_id"]))
        assert row is not None and row.zones_version == 4 and row.phase == "end"
        assert row.track_boxes is not None and len(row.track_boxes) == 4
    assert reviewer.get(f"/api/v1/events/{body['event_id']}").status_code == 200
    too_long = event_json("site-a", track=[[0.0, 1, 1, 2, 2]] * 1201)
    assert post_event(device, too_long).status_code == 422


def test_a_dark_camera_raises_the_offline_alarm_once_and_the_all_clear(
    alerts: Alerts,
) -> None:
    hook = alerts.channel("webhook", HOOK_SECRET)
    alerts.rule(hook, site_id="site-a")
    helmet_only = alerts.channel("wecom")
    alerts.rule(helmet_only, rule="no_helmet")  # hears of hazards, not of cameras
    device = alerts.env.device("site-a")
    now = datetime.now(UTC)
    _beat(device, last_frame_at=now.isoformat())
    policy, after = alerts.env.settings.alert_policy, timedelta(minutes=10)
    assert check_cameras(alerts.env.database, now=now, offline_after=after, policy=policy) == 0
    later = now + timedelta(minutes=11)  # no frame (the box's heartbeats stopped too)
    assert check_cameras(alerts.env.database, now=later, offline_after=after, policy=policy) == 1
    assert check_cameras(alerts.env.database, now=later, offline_after=after, policy=policy) == 0
    alerts.deliver(later)
    (dark,) = alerts.receiver.received
    assert dark.ok and dark.body["kind"] == "camera_offline"
    assert dark.body["camera_name"] == "浇筑区" and "摄像头离线: 浇筑区" in dark.body["title"]
    assert any("已离线 11 分钟" in line for line in dark.body["lines"]), dark.body["lines"]
    back = datetime.now(UTC)  # frames again (and its box reports again)
    _beat(device, last_frame_at=back.isoformat())
    assert check_cameras(alerts.env.database, now=back, offline_after=after, policy=policy) == 1
    alerts.deliver(back + timedelta(seconds=1))
    assert [r.body["kind"] for r in alerts.receiver.received] == ["camera_offline", "camera_online"]
    assert alerts.receiver.of("wecom") == []
