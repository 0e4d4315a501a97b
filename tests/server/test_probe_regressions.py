"""Regression tests for the defects the attack/fault probe found (issue 15), each replaying
the probe's request on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from sitewatch.server.app import create_app
from sitewatch.server.db.models import EventRecord, Role, User
from sitewatch.server.services import admin
from sitewatch.server.services.errors import Invalid
from tests.server.conftest import PASSWORD, ServerEnv, event_json, make_settings, post_event


def _raw_put(device: TestClient, body: dict[str, object], raw: str, ctype: str) -> int:
    answer = device.put(
        f"/api/v1/events/{body['event_id']}", content=raw, headers={"content-type": ctype}
    )
    return answer.status_code


def test_unauthenticated_body_is_refused_before_it_is_read(server_env: ServerEnv) -> None:
    """Defect 2: a 30 MB JSON body without a token got parsed before the 401."""
    anonymous = server_env.client()
    huge = b"[" + b"{}," * (10 * 1024 * 1024) + b"{}]"
    answer = anonymous.put(f"/api/v1/events/{uuid.uuid4()}", content=huge)
    assert answer.status_code == 401
    assert anonymous.post("/api/v1/admin/sites", content=huge).status_code == 401


def test_event_body_has_its_own_small_limit_chunked_too(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a", message="x" * 400)
    padded = json.dumps(body) + " " * (server_env.settings.max_event_bytes + 1)
    declared = device.put(f"/api/v1/events/{body['event_id']}", content=padded)
    assert declared.status_code == 413 and "limit" in declared.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        yield json.dumps(body).encode()
        for _ in range(100):
            yield b" " * 4096

    chunked = device.put(f"/api/v1/events/{body['event_id']}", content=chunks())
    assert chunked.status_code == 413
    assert post_event(device, body).status_code == 201


def test_times_outside_the_window_are_refused_and_old_rows_do_not_break_pages(
    server_env: ServerEnv, tmp_path
) -> None:
    """Defect 3: started_at 9999-12-31T16:00Z was stored and broke the site's pages."""
    app = create_app(
        make_settings(tmp_path / "w", event_max_age_days=400), database=server_env.database
    )
    device = TestClient(app)
    with server_env.database.session() as db:
        admin.ensure_site(db, actor=None, site_id="site-a")
        token = admin.create_device(db, actor=None, site_id="site-a", name="box-w").token
    device.headers["Authorization"] = f"Bearer {token}"
    now = datetime.now(UTC)
    for fields in (
        {"started_at": "9999-12-31T16:00:00Z"},
        {"started_at": (now - timedelta(days=500)).isoformat()},
        {"started_at": now.isoformat(), "ended_at": (now - timedelta(hours=1)).isoformat()},
    ):
        answer = post_event(device, event_json("site-a", **fields))
        assert answer.status_code == 422, (fields, answer.text)
    assert post_event(device, event_json("site-a", started_at=now.isoformat())).status_code == 201
    device.close()
    # A row that got in before the check: every page still answers.
    body = event_json("site-a", started_at=now.isoformat())
    post_event(server_env.device("site-a", name="box-2"), body)
    with server_env.database.session() as db:
        row = db.get(EventRecord, uuid.UUID(body["event_id"]))
        assert row is not None
        row.started_at = datetime(9999, 12, 31, 16, tzinfo=UTC)
        db.commit()
    reader = server_env.user("root", Role.ADMIN)
    for url in (
        "/api/v1/dashboard?tz=Etc/GMT-14",
        "/api/v1/dashboard?tz=Etc/GMT%2B12&date_to=9999-12-31",
        "/api/v1/events",
        f"/api/v1/events/{body['event_id']}",
    ):
        assert reader.get(url).status_code < 500, url


def test_only_the_creating_device_updates_and_identity_is_fixed(server_env: ServerEnv) -> None:
    """Defect 4: another device of the site rewrote a confirmed hazard unaudited."""
    creator = server_env.device("site-a")
    other = server_env.device("site-a", name="box-2")
    body = event_json("site-a")
    assert post_event(creator, body).status_code == 201
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    verdict = reviewer.post(
        f"/api/v1/events/{body['event_id']}/verdict", json={"verdict": "confirmed"}
    )
    assert verdict.status_code == 200, verdict.text
    hijack = dict(
        body,
        phase="update",
        rule="person",
        severity="low",
        camera_id="cam-9",
        updated_at="2026-05-01T08:00:05Z",
    )
    assert post_event(other, hijack).status_code == 403
    assert post_event(creator, hijack).status_code == 409
    stored = reviewer.get(f"/api/v1/events/{body['event_id']}").json()
    assert (stored["rule"], stored["camera_id"], stored["severity"]) == (
        "no_helmet",
        "cam-1",
        "high",
    )
    changed = dict(body, phase="update", severity="low", updated_at="2026-05-01T08:00:05Z")
    assert post_event(creator, changed).status_code == 200
    entries = reviewer.get("/api/v1/audit", params={"object_id": body["event_id"]}).json()
    updates = [e for e in entries if e["action"] == "event.device_update"]
    assert updates and updates[0]["details"]["changed"]["severity"] == ["high", "low"]


def test_password_reset_role_change_and_disable_end_sessions(server_env: ServerEnv) -> None:
    """Defect 5: the old cookie worked for 12 h after a password reset."""
    root = server_env.user("root", Role.ADMIN)
    for change in ({"password": "another-pass-9"}, {"role": "viewer"}, {"is_active": False}):
        victim = server_env.user(f"u{uuid.uuid4().hex[:6]}", Role.REVIEWER)
        assert victim.get("/api/v1/auth/me").status_code == 200
        with server_env.database.session() as db:
            me = victim.get("/api/v1/auth/me").json()["username"]
            user_id = db.query(User).filter_by(username=me).one().id
        assert root.patch(f"/api/v1/admin/users/{user_id}", json=change).status_code == 200
        assert victim.get("/api/v1/auth/me").status_code == 401, change


def test_surrogates_and_non_finite_numbers_are_4xx(server_env: ServerEnv) -> None:
    """Defect 6: a lone surrogate or NaN gave a 500 with a traceback."""
    anonymous = server_env.client()
    login = anonymous.post(
        "/api/v1/auth/login",
        content='{"username": "\\ud800", "password": "x"}',
        headers={"content-type": "application/json"},
    )
    assert login.status_code == 422
    device = server_env.device("site-a")
    body = event_json("site-a")
    raw = json.dumps(body).replace('"bbox_xyxy"', '"confidence": NaN, "bbox_xyxy"')
    assert _raw_put(device, body, raw, "application/json") == 422
    raw = json.dumps(body).replace('"bbox_xyxy"', '"confidence": Infinity, "bbox_xyxy"')
    assert _raw_put(device, body, raw, "application/json") == 422
    body = event_json("site-a", message="\ud800")
    assert _raw_put(device, body, json.dumps(body), "application/json") == 422


def test_nul_refused_on_every_json_content_type(server_env: ServerEnv) -> None:
    """Defect 7: Application/JSON or +json let a NUL through to PostgreSQL (DataError)."""
    device = server_env.device("site-a")
    for ctype in (
        "Application/JSON",
        "application/vnd.api+json",
        "APPLICATION/JSON; charset=utf-8",
    ):
        body = event_json("site-a", zone="a\x00b")
        assert _raw_put(device, body, json.dumps(body), ctype) == 422, ctype


def test_one_id_rule_where_ids_are_created(server_env: ServerEnv) -> None:
    """Defect 8: ids the API took but the media store refused ('_x', '..', '工地-1')."""
    root = server_env.user("root", Role.ADMIN)
    for bad in ("_site", "-site", ".site", "..", "a..b", "工地-1"):
        assert root.post("/api/v1/admin/sites", json={"id": bad}).status_code == 422, bad
        with server_env.database.session() as db:
            try:
                admin.create_site(db, actor=None, site_id=bad)
            except Invalid:
                pass
            else:
                raise AssertionError(f"service took site id {bad!r}")
    assert root.post("/api/v1/admin/sites", json={"id": "site-1.b"}).status_code == 201
    with server_env.database.session() as db:
        try:
            admin.create_device(db, actor=None, site_id="site-1.b", name="box..1")
        except Invalid:
            pass
        else:
            raise AssertionError("service took device name 'box..1'")


def test_the_gate_lets_a_login_through_without_a_session(server_env: ServerEnv) -> None:
    anonymous = server_env.client()
    assert (
        anonymous.post(
            "/api/v1/auth/login", json={"username": "x", "password": PASSWORD}
        ).status_code
        == 401
    )
