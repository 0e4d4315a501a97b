"""Ingest API: idempotent upserts, site checks, media checks, heartbeats."""

from __future__ import annotations

import json
import uuid

from fastapi.testclient import TestClient

from sitewatch.server.db.models import Role
from tests.server.conftest import ServerEnv, event_json, post_event


def _reader(env: ServerEnv, site: str = "site-a") -> TestClient:
    return env.user(f"admin-{uuid.uuid4().hex[:6]}", Role.ADMIN, [site])


def test_same_event_twice_is_stored_once_then_ended(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a")
    first = post_event(device, body)
    again = post_event(device, body)
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (again.status_code, again.json()["created"]) == (200, False)
    reader = _reader(server_env)
    assert reader.get("/api/v1/events").json()["total"] == 1

    ended = dict(body, phase="end", ended_at="2026-05-01T08:00:12+00:00", severity="critical")
    assert post_event(device, ended).status_code == 200
    stored = reader.get(f"/api/v1/events/{body['event_id']}").json()
    assert (stored["status"], stored["phase"], stored["severity"]) == ("ended", "end", "critical")

    late_start = post_event(device, body)  # a retried start arriving after the end
    assert late_start.status_code == 200 and late_start.json()["applied"] is False
    stored = reader.get(f"/api/v1/events/{body['event_id']}").json()
    assert stored["status"] == "ended" and stored["ended_at"].startswith("2026-05-01T08:00:12")
    assert reader.get("/api/v1/events").json()["total"] == 1


def test_update_changes_fields(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a")
    post_event(device, body)
    update = dict(body, phase="update", updated_at="2026-05-01T08:00:05Z", message="still bare")
    assert post_event(device, update).json() == {
        "event_id": body["event_id"],
        "created": False,
        "applied": True,
    }
    stored = _reader(server_env).get(f"/api/v1/events/{body['event_id']}").json()
    assert stored["message"] == "still bare" and stored["status"] == "open"


def test_device_cannot_post_for_another_site(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    device_a = server_env.device("site-a")
    device_b = server_env.device("site-b", name="box-b")
    refused = post_event(device_a, event_json("site-b"))
    assert refused.status_code == 403 and "site-b" in refused.json()["detail"]

    body_b = event_json("site-b")
    assert post_event(device_b, body_b).status_code == 201
    # Same id, own site in the body: still another site's event.
    assert post_event(device_a, dict(body_b, site_id="site-a")).status_code == 403
    upload = device_a.put(
        f"/api/v1/events/{body_b['event_id']}/media/snapshot",
        files={"file": ("s.jpg", jpeg_bytes, "image/jpeg")},
    )
    assert upload.status_code == 403


def test_path_id_must_match_body_and_body_is_validated(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a")
    mismatch = device.put(f"/api/v1/events/{uuid.uuid4()}", json=body)
    assert mismatch.status_code == 422 and "differs" in mismatch.json()["detail"]
    bad_rule = device.put(f"/api/v1/events/{body['event_id']}", json=dict(body, rule="nope"))
    assert bad_rule.status_code == 422
    traversal = device.put(
        f"/api/v1/events/{body['event_id']}", json=dict(body, snapshot="../../etc/passwd")
    )
    assert traversal.status_code == 422
    assert device.put("/api/v1/events/not-a-uuid", json=body).status_code == 422


def test_no_token_or_bad_token_is_refused(server_env: ServerEnv) -> None:
    server_env.device("site-a")
    body = event_json("site-a")
    anonymous = server_env.client()
    assert post_event(anonymous, body).status_code == 401
    forged = server_env.client({"Authorization": "Bearer swd_not-a-real-token"})
    assert post_event(forged, body).status_code == 401
    assert forged.post("/api/v1/heartbeat", json={}).status_code == 401
    basic = server_env.client({"Authorization": "Basic dXNlcjpwYXNz"})
    assert post_event(basic, body).status_code == 401


def test_media_upload_is_checked_and_idempotent(
    server_env: ServerEnv, jpeg_bytes: bytes, mp4_bytes: bytes
) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a")
    post_event(device, body)
    url = f"/api/v1/events/{body['event_id']}/media"
    first = device.put(f"{url}/snapshot", files={"file": ("a.jpg", jpeg_bytes, "image/jpeg")})
    again = device.put(f"{url}/snapshot", files={"file": ("b.jpg", jpeg_bytes, "image/jpeg")})
    assert first.status_code == 200 and first.json()["changed"] is True
    assert again.status_code == 200 and again.json()["changed"] is False
    clip = device.put(f"{url}/clip", files={"file": ("c.mp4", mp4_bytes, "video/mp4")})
    assert clip.status_code == 200 and clip.json()["content_type"] == "video/mp4"

    # The name and declared type lie: the bytes decide.
    wrong = device.put(f"{url}/clip", files={"file": ("c.mp4", jpeg_bytes, "video/mp4")})
    assert wrong.status_code == 415
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    assert (
        device.put(f"{url}/face", files={"file": ("f.jpg", png, "image/jpeg")}).status_code == 415
    )
    big = b"\xff\xd8\xff\xe0" + b"\x00" * (server_env.settings.max_snapshot_bytes + 1)
    oversized = device.put(f"{url}/snapshot", files={"file": ("a.jpg", big, "image/jpeg")})
    assert oversized.status_code == 413
    empty = device.put(f"{url}/face", files={"file": ("f.jpg", b"", "image/jpeg")})
    assert empty.status_code in (400, 415)

    media_root = server_env.settings.resolved_media_dir
    stored = sorted(p.name for p in media_root.rglob("*") if p.is_file())
    assert len(stored) == 2 and not any(n.endswith(".part") for n in stored), stored
    reader = _reader(server_env)
    download = reader.get(f"{url}/snapshot")
    assert download.status_code == 200 and download.content == jpeg_bytes
    ranged = reader.get(f"{url}/clip", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == mp4_bytes[:100]
    for path in media_root.rglob("clip-*.mp4"):
        path.unlink()  # lost behind the server's back
    missing = reader.get(f"{url}/clip")
    assert missing.status_code == 404 and "missing" in missing.json()["detail"]


def test_media_for_unknown_event_and_bad_kind(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    device = server_env.device("site-a")
    files = {"file": ("a.jpg", jpeg_bytes, "image/jpeg")}
    unknown = device.put(f"/api/v1/events/{uuid.uuid4()}/media/snapshot", files=files)
    assert unknown.status_code == 404
    body = event_json("site-a")
    post_event(device, body)
    for kind in ("evidence", "..%2F..%2Fetc", "snapshot%00"):
        answer = device.put(f"/api/v1/events/{body['event_id']}/media/{kind}", files=files)
        assert answer.status_code in (404, 422), (kind, answer.status_code)
    assert device.put(
        "/api/v1/events/../../etc/passwd/media/snapshot", files=files
    ).status_code in (
        404,
        405,
    )


def test_client_file_name_never_reaches_the_disk(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a")
    post_event(device, body)
    evil = {"file": ("../../../../tmp/evil.jpg", jpeg_bytes, "image/jpeg")}
    assert (
        device.put(f"/api/v1/events/{body['event_id']}/media/snapshot", files=evil).status_code
        == 200
    )
    root = server_env.settings.resolved_media_dir
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 1
    assert files[0].relative_to(root).parts[:2] == ("site-a", body["event_id"])
    assert "evil" not in files[0].name


def test_body_larger_than_any_limit_is_refused_before_parsing(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a")
    post_event(device, body)
    huge = b"\xff\xd8\xff" + b"\x00" * (server_env.settings.max_clip_bytes + 128 * 1024)
    answer = device.put(
        f"/api/v1/events/{body['event_id']}/media/clip",
        files={"file": ("c.mp4", huge, "video/mp4")},
    )
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]


def test_heartbeat_is_recorded(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    beat = {
        "cameras": [{"camera_id": "cam-1", "online": True, "since": None, "fps": 4.5}],
        "queue_depth": 3,
        "version": "0.1.0",
    }
    reply = device.post("/api/v1/heartbeat", json=beat)
    assert reply.status_code == 200
    assert reply.json() == {"site_config_version": 0, "pictures_wanted": []}
    assert device.post("/api/v1/heartbeat", json={"queue_depth": -1}).status_code == 422
    admin = server_env.user("root", Role.ADMIN)
    (listed,) = admin.get("/api/v1/admin/devices").json()
    assert listed["last_heartbeat"]["queue_depth"] == 3
    assert listed["last_heartbeat"]["cameras"][0]["fps"] == 4.5
    assert listed["last_seen_at"] is not None


def test_values_the_database_cannot_store_are_refused(server_env: ServerEnv) -> None:
    """Found by the schemathesis run: these used to reach the database and fail with 500."""
    device = server_env.device("site-a")
    bad_fields: list[dict[str, object]] = [
        {"track_id": 2**64},
        {"message": "nul\x00byte"},
        {"started_at": "9999-12-31T23:00:00-05:00"},
        {"started_at": "0001-01-01T00:30:00+05:00"},
    ]
    for fields in bad_fields:
        answer = post_event(device, event_json("site-a", **fields))
        assert answer.status_code == 422, (fields, answer.text)
    nan = event_json("site-a")
    raw = device.put(
        f"/api/v1/events/{nan['event_id']}",
        content=json.dumps(dict(nan, distance=float("nan"))),
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 422
    admin = server_env.user("root", Role.ADMIN)
    assert admin.get("/api/v1/events", params={"camera_id": "a\x00b"}).status_code == 422
    assert admin.patch(f"/api/v1/admin/users/{2**63}", json={}).status_code == 422
    assert (
        admin.get("/api/v1/events", params={"date_from": "9999-12-31T23:00:00-05:00"}).status_code
        == 422
    )
    assert admin.get("/api/v1/events").json()["total"] == 0
