"""The review pages in process (the real app, SQLite, media folder; no browser): forms
and their refusals, filters, paging, CSV, dashboard numbers, media ranges, redirects,
times and days in the server's zone (Asia/Shanghai by default)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from ui_harness import csv_rows_by_code
from ui_media_files import make_event_media
from ui_seed import DAY, PASSWORD, event_body, form_login, seed_accounts, seed_events

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EVIDENCE_LIMIT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict, dict, Any]]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-forms")
    settings = Settings(
        data_dir=root,
        media_dir=root / "media",
        session_secret=SecretStr("forms-" + uuid.uuid4().hex),
        max_evidence_bytes=EVIDENCE_LIMIT_BYTES,
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media", clip_frames=20)
    tokens = seed_accounts(app)
    with TestClient(app, base_url="http://testserver") as client:
        events = seed_events(client, tokens, media)
        app.state.test_device_tokens = tokens
        yield client, events, media, app


_login = form_login


def _status(client: TestClient, event_id: uuid.UUID) -> str:
    page = client.get(f"/ui/events/{event_id}")
    return re.search(r'id="event-status">([^<]+)<', page.text).group(1)  # type: ignore[union-attr]


def test_login_needs_its_csrf_token_and_never_redirects_away(ui: tuple) -> None:
    client = ui[0]
    client.cookies.clear()
    refused = client.post("/ui/login", data={"username": "rev-a", "password": PASSWORD})
    assert refused.status_code == 403
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    wrong = client.post(
        "/ui/login", data={"username": "rev-a", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    token = CSRF.search(wrong.text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/login",
        data={"username": "rev-a", "password": PASSWORD, "csrf_token": token, "next": "//x.io"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/ui/events"
    switch = client.get("/ui/lang/en?next=https://x.io/", follow_redirects=False)
    assert switch.headers["location"] == "/ui/events"


def test_dismiss_needs_a_reason_and_keeps_it(ui: tuple) -> None:
    client, events = ui[0], ui[1]
    csrf = _login(client, "rev-a")
    url = f"/ui/events/{events['a_edge']}/verdict"
    no_reason = client.post(url, data={"verdict": "dismiss", "csrf_token": csrf})
    assert no_reason.status_code == 422
    answer = client.post(
        url, data={"verdict": "dismiss", "reason": "helmet_present", "csrf_token": csrf}
    )
    assert answer.status_code == 200  # followed the 303 back to the event page
    assert _status(client, events["a_edge"]) == "误报"
    assert "已戴安全帽" in client.get(f"/ui/events/{events['a_edge']}").text


def test_rejected_evidence_reopens_the_hazard(ui: tuple) -> None:
    client, events, media = ui[0], ui[1], ui[2]
    event_id = events["a_overdue"]
    csrf = _login(client, "rev-a")
    base = f"/ui/events/{event_id}"
    client.post(f"{base}/verdict", data={"verdict": "confirm", "csrf_token": csrf})
    bad_day = client.post(
        f"{base}/rectification",
        data={"assignee": "王工", "deadline": "next week", "csrf_token": csrf},
    )
    assert bad_day.status_code == 422 and "整改期限" in bad_day.text
    client.post(
        f"{base}/rectification",
        data={"assignee": "王工", "deadline": "2030-01-01", "csrf_token": csrf},
    )
    png = client.post(
        f"{base}/evidence",
        data={"csrf_token": csrf},
        files={"photo": ("fix.jpg", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/jpeg")},
    )
    assert png.status_code == 422  # a PNG is taken, but this one is broken
    big = client.post(
        f"{base}/evidence",
        data={"csrf_token": csrf},
        files={"photo": ("fix.jpg", b"\xff\xd8\xff" + b"0" * EVIDENCE_LIMIT_BYTES, "image/jpeg")},
    )
    assert big.status_code == 413
    assert _status(client, event_id) == "整改中"
    photo = media["evidence"].read_bytes()
    client.post(
        f"{base}/evidence",
        data={"csrf_token": csrf, "note": "围栏已修复"},
        files={"photo": ("fix.jpg", photo, "image/jpeg")},
    )
    assert client.get(f"{base}/media/evidence").content == photo
    silent = client.post(f"{base}/acceptance", data={"decision": "reject", "csrf_token": csrf})
    assert silent.status_code == 422
    client.post(
        f"{base}/acceptance", data={"decision": "reject", "note": "照片不清", "csrf_token": csrf}
    )
    page = client.get(base).text
    assert "验收驳回" in page and 'id="evidence-form"' in page
    # the deadline day means the end of that local day, shown (and audited) in local time
    assert 'id="rect-deadline">2030-01-01 23:59:59 +08:00' in page
    assert "整改期限：2030-01-01 23:59:59 +08:00" in page


def test_filters_paging_and_csv(ui: tuple) -> None:
    client, app = ui[0], ui[3]
    from sitewatch.contract.events import Event, RuleKind
    from sitewatch.server.db.models import Device
    from sitewatch.server.services.events import upsert_event

    with app.state.db.session() as db:
        device = db.query(Device).filter(Device.site_id == "site-b").one()
        for i in range(27):
            start = DAY - timedelta(days=3, minutes=i)
            event = Event(
                site_id="site-b", camera_id="cam-b2", rule=RuleKind.NO_HELMET, started_at=start
            )
            upsert_event(db, event=event, device=device)
    _login(client, "rev-b")
    first = client.get("/ui/events?camera=cam-b2")
    assert first.text.count('class="event-row') == 25 and 'rel="next"' in first.text
    second = client.get("/ui/events?camera=cam-b2&page=2")
    assert second.text.count('class="event-row') == 2 and 'rel="prev"' in second.text
    assert client.get("/ui/events?date_from=2026-13-01").status_code == 400
    assert client.get("/ui/events?status=lost").status_code == 400
    day = (DAY - timedelta(days=3)).date().isoformat()
    answer = client.get(f"/ui/events.csv?camera=cam-b2&date_from={day}&date_to={day}")
    rows = csv_rows_by_code(answer.text)
    assert answer.headers["content-type"].startswith("text/csv")
    assert len(rows) == 27 and {r["site_id"] for r in rows} == {"site-b"}
    assert client.get("/ui/events.csv?site=site-a").text.count("\n") == 1  # header only


def test_dashboard_counts_rules_verdicts_and_party_members(ui: tuple) -> None:
    client = ui[0]
    _login(client, "view-a")
    page = client.get("/ui/dashboard?site=site-a&date_from=2026-11-20&date_to=2026-11-20")
    table = re.search(r'<table id="table-daily">(.*?)</table>', page.text, re.S)
    assert table is not None
    row = re.search(r'<tr data-key="2026-11-20">(.*?)</tr>', table.group(1), re.S)
    assert row is not None
    raw_cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in raw_cells]
    # day, 5 rules (confirmed hazards), hazards, pending, false alarms
    assert cells == ["2026-11-20", "0", "0", "0", "0", "0", "0", "1", "1"], cells
    # a_edge (a red-helmet party member) was dismissed above: no presence left
    party = re.search(r'<table id="table-party">(.*?)</table>', page.text, re.S)
    assert party is not None and "<td>一号工地 A</td>" not in party.group(1)
    assert client.get("/ui/dashboard?date_from=2020-01-01&date_to=2026-01-01").status_code == 400


def test_media_is_served_with_ranges_and_only_when_logged_in(ui: tuple) -> None:
    client, events, media = ui[0], ui[1], ui[2]
    _login(client, "view-a")
    url = f"/ui/events/{events['a_helmet']}/media/clip"
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == media["clip"].read_bytes()[:100]
    assert part.headers["content-type"] == "video/mp4"
    assert client.get(f"/ui/events/{events['a_helmet']}/media/evidence").status_code == 404
    assert client.get("/ui/static/..%2Fi18n.py").status_code == 404
    client.cookies.clear()
    assert client.get(url, follow_redirects=False).status_code == 303


def test_text_from_devices_is_escaped(ui: tuple) -> None:
    client, app = ui[0], ui[3]
    body = event_body("site-a", "cam-x", "restricted_zone", DAY, zone="<b>z</b>")
    body["message"] = "<script>alert(1)</script>"
    token = app.state.test_device_tokens["site-a"]
    answer = client.put(
        f"/api/v1/events/{body['event_id']}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    _login(client, "rev-a")
    page = client.get(f"/ui/events/{body['event_id']}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert "&lt;b&gt;z&lt;/b&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_times_and_days_are_local(ui: tuple) -> None:
    """Shanghai (UTC+8): 15:59:59Z is 23:59:59 on the 16th, 16:00Z midnight of the 17th."""
    client, app = ui[0], ui[3]
    token = app.state.test_device_tokens["site-b"]
    ids = []
    for started in ("2026-11-16T15:59:59+00:00", "2026-11-16T16:00:00+00:00"):
        body = event_body("site-b", "cam-b3", "no_helmet", datetime.fromisoformat(started))
        answer = client.put(
            f"/api/v1/events/{body['event_id']}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 201, answer.text
        ids.append(body["event_id"])
    late_16th, midnight_17th = ids
    _login(client, "rev-b")
    api_time = client.get(f"/api/v1/events/{midnight_17th}").json()["started_at"]
    assert api_time.startswith("2026-11-16T16:00:00") and api_time.endswith(("Z", "+00:00"))

    def listed(query: str) -> list[str]:
        page = client.get(f"/ui/events?camera=cam-b3&{query}")
        assert page.status_code == 200, page.text
        return re.findall(r'data-event-id="([^"]+)"', page.text)

    assert listed("date_from=2026-11-17&date_to=2026-11-17") == [midnight_17th]
    assert listed("date_to=2026-11-16") == [late_16th]
    assert listed("date_from=2026-11-16&date_to=2026-11-17") == [midnight_17th, late_16th]
    page = client.get("/ui/events?camera=cam-b3").text
    assert "2026-11-17 00:00:00 +08:00" in page and "2026-11-16 23:59:59 +08:00" in page
    assert "UTC" not in page
    event_page = client.get(f"/ui/events/{midnight_17th}").text
    assert "2026-11-17 00:00:00 +08:00" in event_page  # started
    assert "2026-11-17 00:00:06 +08:00" in event_page  # ended
    answer = client.get("/ui/events.csv?camera=cam-b3&date_from=2026-11-17&date_to=2026-11-17")
    rows = csv_rows_by_code(answer.text)
    assert [(r["event_id"], r["started_at"], r["ended_at"]) for r in rows] == [
        (midnight_17th, "2026-11-17 00:00:00", "2026-11-17 00:00:06")
    ]
    dashboard = client.get("/ui/dashboard?site=site-b&date_from=2026-11-16&date_to=2026-11-16")
    assert "Asia/Shanghai" in dashboard.text
    table = re.search(r'<table id="table-daily">(.*?)</table>', dashboard.text, re.S)
    assert table is not None, dashboard.text
    row = re.search(r'<tr data-key="2026-11-16">(.*?)</tr>', table.group(1), re.S)
    assert row is not None, dashboard.text
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert cells[6] == "0" and cells[7] == "1"  # pending, not a hazard: only 23:59:59
    assert client.get("/ui/events?date_to=9999-12-31").status_code == 400
    assert client.get("/ui/dashboard?date_from=0001-01-01").status_code == 400
