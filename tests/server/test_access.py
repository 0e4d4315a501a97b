"""Logins, CSRF, roles and site scoping."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from sitewatch.server.db.models import Role
from tests.server.conftest import PASSWORD, ServerEnv, event_json, post_event

USER_READS = [
    "/api/v1/events",
    "/api/v1/hazards",
    "/api/v1/dashboard",
    "/api/v1/audit",
    "/api/v1/export/events.csv",
    "/api/v1/auth/me",
    "/api/v1/admin/users",
]


def _two_sites(env: ServerEnv, jpeg_bytes: bytes) -> dict[str, str]:
    """One event with a snapshot on each of site-a and site-b; returns their ids."""
    ids = {}
    for site in ("site-a", "site-b"):
        device = env.device(site, name=f"box-{site}")
        body = event_json(site)
        post_event(device, body)
        device.put(
            f"/api/v1/events/{body['event_id']}/media/snapshot",
            files={"file": ("s.jpg", jpeg_bytes, "image/jpeg")},
        )
        ids[site] = body["event_id"]
    return ids


def test_nothing_without_login(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    ids = _two_sites(server_env, jpeg_bytes)
    anonymous = server_env.client()
    for path in [*USER_READS, f"/api/v1/events/{ids['site-a']}/media/snapshot"]:
        assert anonymous.get(path).status_code == 401, path
    # A device token is not a login.
    device = server_env.device("site-a", name="other")
    assert device.get("/api/v1/events").status_code == 401
    forged = server_env.client()
    forged.cookies.set("sitewatch_session", "forged.signature")
    assert forged.get("/api/v1/events").status_code == 401


def test_login_refuses_wrong_password_and_inactive_users(server_env: ServerEnv) -> None:
    admin = server_env.user("root", Role.ADMIN)
    client = server_env.client()
    wrong = client.post("/api/v1/auth/login", json={"username": "root", "password": "nope"})
    assert wrong.status_code == 401 and "sitewatch_session" not in wrong.cookies
    nobody = client.post("/api/v1/auth/login", json={"username": "ghost", "password": PASSWORD})
    assert nobody.status_code == 401
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    (rev_row,) = [u for u in admin.get("/api/v1/admin/users").json() if u["username"] == "rev"]
    patched = admin.patch(f"/api/v1/admin/users/{rev_row['id']}", json={"is_active": False})
    assert patched.status_code == 200
    assert reviewer.get("/api/v1/events").status_code == 401  # session ends at once
    again = client.post("/api/v1/auth/login", json={"username": "rev", "password": PASSWORD})
    assert again.status_code == 401


def test_login_cookie_is_httponly_and_logout_ends_session(server_env: ServerEnv) -> None:
    server_env.user("root", Role.ADMIN)
    client = server_env.client()
    answer = client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    cookie_header = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie_header and "samesite=lax" in cookie_header
    csrf = answer.json()["csrf_token"]
    assert client.post("/api/v1/auth/logout").status_code == 403  # CSRF needed here too
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_state_changes_without_csrf_are_refused(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    ids = _two_sites(server_env, jpeg_bytes)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    token = reviewer.headers.pop("X-CSRF-Token")
    url = f"/api/v1/events/{ids['site-a']}/verdict"
    assert reviewer.post(url, json={"verdict": "confirmed"}).status_code == 403
    wrong = reviewer.post(url, json={"verdict": "confirmed"}, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    # A form post needs the csrf_token field (or the header).
    evidence = f"/api/v1/events/{ids['site-a']}/hazard/evidence"
    files = {"file": ("e.jpg", jpeg_bytes, "image/jpeg")}
    assert reviewer.post(evidence, files=files, data={"note": "fixed"}).status_code == 403
    ok = reviewer.post(url, json={"verdict": "confirmed"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200
    with_field = reviewer.post(evidence, files=files, data={"csrf_token": token, "note": "x"})
    assert with_field.status_code == 404  # past CSRF: no rectification assigned yet
    admin = server_env.user("root", Role.ADMIN)
    admin.headers.pop("X-CSRF-Token")
    assert admin.post("/api/v1/admin/sites", json={"id": "site-c"}).status_code == 403


def test_viewer_can_read_but_not_change(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    ids = _two_sites(server_env, jpeg_bytes)
    viewer = server_env.user("view", Role.VIEWER, ["site-a"])
    event = ids["site-a"]
    assert viewer.get(f"/api/v1/events/{event}").status_code == 200
    assert viewer.get(f"/api/v1/events/{event}/media/snapshot").status_code == 200
    attempts = [
        (f"/api/v1/events/{event}/verdict", {"verdict": "confirmed"}),
        (f"/api/v1/events/{event}/verdict", {"verdict": "dismissed", "reason": "other"}),
        (
            f"/api/v1/events/{event}/hazard",
            {"responsible": "Li", "deadline": "2026-06-01T00:00:00Z"},
        ),
        (f"/api/v1/events/{event}/hazard/accept", {}),
        ("/api/v1/admin/sites", {"id": "site-z"}),
        ("/api/v1/admin/devices", {"site_id": "site-a", "name": "sneaky"}),
        (
            "/api/v1/admin/users",
            {"username": "x", "password": "12345678", "role": "admin", "sites": []},
        ),
    ]
    for path, body in attempts:
        answer = viewer.post(path, json=body)
        assert answer.status_code in (403, 404), (path, answer.status_code)
    stored = viewer.get(f"/api/v1/events/{event}").json()
    assert stored["review_status"] == "pending" and stored["hazard"] is None


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.VIEWER])
def test_users_see_only_their_sites(server_env: ServerEnv, jpeg_bytes: bytes, role: Role) -> None:
    ids = _two_sites(server_env, jpeg_bytes)
    user: TestClient = server_env.user(f"u-{role.value}", role, ["site-a"])
    listed = user.get("/api/v1/events").json()
    assert [e["event_id"] for e in listed["items"]] == [ids["site-a"]]
    assert user.get("/api/v1/events", params={"site_id": "site-b"}).json()["total"] == 0
    other = ids["site-b"]
    assert user.get(f"/api/v1/events/{other}").status_code == 404
    assert user.get(f"/api/v1/events/{other}/media/snapshot").status_code == 404
    assert user.get(f"/api/v1/events/{other}/hazard").status_code == 404
    verdict = user.post(f"/api/v1/events/{other}/verdict", json={"verdict": "confirmed"})
    assert verdict.status_code == 404
    csv_text = user.get("/api/v1/export/events.csv").text
    assert ids["site-a"] in csv_text and other not in csv_text
    sites = {row["site_id"] for row in user.get("/api/v1/dashboard").json()["totals"]}
    assert sites == {"site-a"}
    admin = server_env.user("root", Role.ADMIN)
    assert admin.get("/api/v1/events").json()["total"] == 2


def test_admin_registers_devices_and_revokes_them(server_env: ServerEnv) -> None:
    admin = server_env.user("root", Role.ADMIN)
    assert (
        admin.post("/api/v1/admin/sites", json={"id": "site-n", "name": "North"}).status_code == 201
    )
    assert admin.post("/api/v1/admin/sites", json={"id": "site-n"}).status_code == 409
    created = admin.post("/api/v1/admin/devices", json={"site_id": "site-n", "name": "box"})
    assert created.status_code == 201
    token, device_id = created.json()["token"], created.json()["device"]["id"]
    dup = admin.post("/api/v1/admin/devices", json={"site_id": "site-n", "name": "box"})
    assert dup.status_code == 409
    assert (
        admin.post("/api/v1/admin/devices", json={"site_id": "nowhere", "name": "b"}).status_code
        == 404
    )
    assert token not in str(admin.get("/api/v1/admin/devices").json())  # shown once only
    device = server_env.client({"Authorization": f"Bearer {token}"})
    assert post_event(device, event_json("site-n")).status_code == 201
    assert admin.post(f"/api/v1/admin/devices/{device_id}/revoke").status_code == 200
    assert post_event(device, event_json("site-n")).status_code == 401
    user = admin.post(
        "/api/v1/admin/users",
        json={
            "username": "rev-n",
            "password": "password-9",
            "role": "reviewer",
            "sites": ["site-n"],
        },
    )
    assert user.status_code == 201 and user.json()["sites"] == ["site-n"]
    missing_site = admin.post(
        "/api/v1/admin/users",
        json={"username": "rev-x", "password": "password-9", "role": "viewer", "sites": ["zz"]},
    )
    assert missing_site.status_code == 404
    assert (
        admin.patch(f"/api/v1/admin/users/{uuid.uuid4().int % 10**6 + 1000}", json={}).status_code
        == 404
    )


def test_repeated_failed_logins_are_throttled(server_env: ServerEnv) -> None:
    server_env.user("root", Role.ADMIN)
    client = server_env.client()
    limit = server_env.settings.login_max_failures
    for _ in range(limit):
        wrong = client.post("/api/v1/auth/login", json={"username": "root", "password": "x"})
        assert wrong.status_code == 401
    refused = client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    assert refused.status_code == 429 and "try again" in refused.json()["detail"]


def test_one_persons_typos_do_not_lock_out_a_shared_address(server_env: ServerEnv) -> None:
    """A site office behind one NAT address: the user who mistyped is paused, the others
    (the admin too) log in; the address as a whole has its own, higher limit; an admin
    ends a pause at once."""
    server_env.user("root", Role.ADMIN)
    server_env.user("clerk", Role.REVIEWER, ["site-a"])
    office = server_env.client()
    limit = server_env.settings.login_max_failures
    for _ in range(limit):
        wrong = office.post("/api/v1/auth/login", json={"username": "clerk", "password": "x"})
        assert wrong.status_code == 401
    paused = office.post("/api/v1/auth/login", json={"username": "clerk", "password": PASSWORD})
    assert paused.status_code == 429 and 0 < int(paused.headers["Retry-After"]) <= 301
    root = office.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    assert root.status_code == 200  # same address, not locked out
    admin = server_env.client()
    admin.cookies.update(root.cookies)
    admin.headers["X-CSRF-Token"] = root.json()["csrf_token"]
    (clerk,) = [u for u in admin.get("/api/v1/admin/users").json() if u["username"] == "clerk"]
    unlocked = admin.post(f"/api/v1/admin/users/{clerk['id']}/unlock")
    assert unlocked.status_code == 200 and unlocked.json() == {"failures_cleared": limit}
    again = office.post("/api/v1/auth/login", json={"username": "clerk", "password": PASSWORD})
    assert again.status_code == 200
    audit = admin.get("/api/v1/audit", params={"object_id": str(clerk["id"])}).json()
    assert "user.unlock" in {a["action"] for a in audit}
    per_address = server_env.settings.login_max_failures_per_address
    assert per_address > limit
    for n in range(per_address):  # many names from one address: the address pauses
        office.post("/api/v1/auth/login", json={"username": f"guess-{n}", "password": "x"})
    blocked = office.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    assert blocked.status_code == 429


def test_throttle_window_passes() -> None:
    from sitewatch.server.throttle import LoginThrottle, TooManyAttempts

    throttle = LoginThrottle(max_failures=2, window_s=10.0, max_keys=3)
    throttle.failed("user:a", now=0.0)
    throttle.failed("user:a", now=1.0)
    with pytest.raises(TooManyAttempts):
        throttle.check("user:a", now=5.0)
    throttle.check("user:a", now=10.5)  # the first failure left the window
    throttle.check("user:b", now=5.0)
    for key in ("k1", "k2", "k3", "k4"):
        throttle.failed(key, now=0.0)
    assert len(throttle._failures) == 3  # bounded
