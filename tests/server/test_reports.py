"""Event list filters and paging, dashboard numbers, CSV export, retention."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from sitewatch.server.db.models import Role
from sitewatch.server.services.retention import apply_retention
from tests.server.conftest import ServerEnv, event_json, let_deadline_pass, post_event


def _ingest(env: ServerEnv, specs: list[dict[str, object]]) -> list[str]:
    devices: dict[str, TestClient] = {}
    ids = []
    for spec in specs:
        spec = dict(spec)
        site = str(spec.pop("site_id", "site-a"))
        if site not in devices:
            devices[site] = env.device(site, name=f"box-{site}")
        body = event_json(site, **spec)
        assert post_event(devices[site], body).status_code == 201
        ids.append(str(body["event_id"]))
    return ids


def test_filters_and_paging(server_env: ServerEnv) -> None:
    ids = _ingest(
        server_env,
        [
            {"started_at": f"2026-05-0{day}T08:00:00Z", "camera_id": cam, "rule": rule}
            for day, cam, rule in [
                (1, "cam-1", "no_helmet"),
                (2, "cam-1", "fall_edge"),
                (3, "cam-2", "no_helmet"),
                (4, "cam-2", "restricted_zone"),
                (5, "cam-1", "no_helmet"),
            ]
        ],
    )
    admin = server_env.user("root", Role.ADMIN)
    pages = [
        admin.get("/api/v1/events", params={"page": p, "page_size": 2}).json() for p in (1, 2, 3)
    ]
    assert [len(p["items"]) for p in pages] == [2, 2, 1] and pages[0]["total"] == 5
    newest_first = [e["event_id"] for p in pages for e in p["items"]]
    assert newest_first == list(reversed(ids))

    def count(**params: object) -> int:
        return int(admin.get("/api/v1/events", params=params).json()["total"])

    assert count(camera_id="cam-1") == 3
    assert count(rule="no_helmet") == 3
    assert count(rule="no_helmet", camera_id="cam-2") == 1
    assert count(date_from="2026-05-02T00:00:00Z", date_to="2026-05-04T00:00:00Z") == 2
    assert count(status="open", review_status="pending") == 5
    assert admin.get("/api/v1/events", params={"page_size": 1000}).status_code == 422
    assert admin.get("/api/v1/events", params={"rule": "bogus"}).status_code == 422


def test_dashboard_numbers(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    ids = _ingest(
        server_env,
        [
            {"started_at": "2026-05-01T08:00:00Z", "rule": "no_helmet"},
            {"started_at": "2026-05-01T09:00:00Z", "rule": "no_helmet", "helmet_colour": "red"},
            {"started_at": "2026-05-01T23:30:00Z", "rule": "fall_edge"},
            {"started_at": "2026-05-02T01:00:00Z", "rule": "post_unattended", "track_id": None},
            {"started_at": "2026-05-02T02:00:00Z", "site_id": "site-b", "helmet_colour": "red"},
            # a sighting, not a hazard: listed with the events, not counted on the dashboard
            {"started_at": "2026-05-01T10:00:00Z", "rule": "person", "severity": "low"},
        ],
    )
    admin = server_env.user("root", Role.ADMIN)
    for event_id in ids[:3]:
        admin.post(f"/api/v1/events/{event_id}/verdict", json={"verdict": "confirmed"})
    admin.post(f"/api/v1/events/{ids[3]}/verdict", json={"verdict": "dismissed", "reason": "other"})
    admin.post(
        f"/api/v1/events/{ids[0]}/hazard",
        json={"responsible": "A", "deadline": "2099-01-01T00:00:00Z"},
    )
    let_deadline_pass(server_env.database, ids[0])
    admin.post(
        f"/api/v1/events/{ids[1]}/hazard",
        json={"responsible": "B", "deadline": "2099-01-01T00:00:00Z"},
    )

    done = f"/api/v1/events/{ids[2]}/hazard"
    admin.post(done, json={"responsible": "C", "deadline": "2099-01-01T00:00:00Z"})
    photo = {"file": ("fixed.jpg", jpeg_bytes, "image/jpeg")}
    site_reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    assert site_reviewer.post(f"{done}/evidence", files=photo).status_code == 200
    assert admin.post(f"{done}/accept", json={}).status_code == 200
    let_deadline_pass(server_env.database, ids[2])  # accepted in time, then the day passed

    data = admin.get("/api/v1/dashboard", params={"tz": "UTC"}).json()
    days = {(d["site_id"], d["day"]): d for d in data["days"]}
    assert set(days) == {
        ("site-a", "2026-05-01"),
        ("site-a", "2026-05-02"),
        ("site-b", "2026-05-02"),
    }
    may1 = days[("site-a", "2026-05-01")]
    assert may1["events"] == 3 and may1["events_by_rule"] == {"no_helmet": 2, "fall_edge": 1}
    assert (may1["confirmed"], may1["dismissed"], may1["pending"]) == (3, 0, 0)
    # Overdue: past the deadline and not yet fixed (the accepted one is not overdue).
    assert (may1["hazards"], may1["hazards_accepted"], may1["hazards_overdue"]) == (3, 1, 1)
    assert may1["red_helmet_events"] == 1 and may1["completion_rate"] == 1 / 3
    may2 = days[("site-a", "2026-05-02")]
    assert may2["completion_rate"] is None  # no rectification that day
    assert may2["events_by_rule"] == {"post_unattended": 1} and may2["dismissed"] == 1
    totals = {t["site_id"]: t for t in data["totals"]}
    assert totals["site-a"]["events"] == 4 and totals["site-b"]["red_helmet_events"] == 1
    # The server's zone (Asia/Shanghai, UTC+8) by default: 23:30Z on 1 May is 07:30 on 2 May.
    local = admin.get("/api/v1/dashboard").json()
    local_days = {(d["site_id"], d["day"]): d["events_by_rule"] for d in local["days"]}
    assert local_days == {
        ("site-a", "2026-05-01"): {"no_helmet": 2},
        ("site-a", "2026-05-02"): {"fall_edge": 1, "post_unattended": 1},
        ("site-b", "2026-05-02"): {"no_helmet": 1},
    }
    local_a = {d["day"]: d for d in local["days"] if d["site_id"] == "site-a"}
    may1_local, may2_local = local_a["2026-05-01"], local_a["2026-05-02"]
    assert (may1_local["hazards"], may1_local["hazards_overdue"]) == (2, 1)
    assert may1_local["confirmed"] == 2
    assert (may2_local["hazards_accepted"], may2_local["dismissed"]) == (1, 1)
    assert local["totals"] == data["totals"]  # the same events, only the days differ
    only_b = admin.get("/api/v1/dashboard", params={"site_id": "site-b"}).json()
    assert [t["site_id"] for t in only_b["totals"]] == ["site-b"]
    ranged = admin.get("/api/v1/dashboard", params={"date_from": "2026-05-02T00:00:00Z"}).json()
    assert sum(t["events"] for t in ranged["totals"]) == 2
    assert admin.get("/api/v1/events", params={"rule": "person"}).json()["total"] == 1


def test_dashboard_days_are_local_across_daylight_saving(server_env: ServerEnv) -> None:
    """Europe/Berlin: 29 March 2026 has 23 hours (CET to CEST at 01:00Z), 25 October 25
    hours (back at 01:00Z). Each event sits one minute either side of a local midnight."""
    _ingest(
        server_env,
        [
            {"started_at": started}
            for started in (
                "2026-03-28T22:59:00Z",  # 23:59 CET, 28 March
                "2026-03-28T23:00:00Z",  # 00:00 CET, 29 March
                "2026-03-29T21:59:00Z",  # 23:59 CEST, 29 March
                "2026-03-29T22:00:00Z",  # 00:00 CEST, 30 March
                "2026-10-24T21:59:00Z",  # 23:59 CEST, 24 October
                "2026-10-24T22:00:00Z",  # 00:00 CEST, 25 October
                "2026-10-25T22:59:00Z",  # 23:59 CET, 25 October
                "2026-10-25T23:00:00Z",  # 00:00 CET, 26 October
            )
        ],
    )
    admin = server_env.user("root", Role.ADMIN)

    def per_day(tz: str) -> dict[str, int]:
        answer = admin.get("/api/v1/dashboard", params={"tz": tz})
        assert answer.status_code == 200, answer.text
        return {d["day"]: d["events"] for d in answer.json()["days"]}

    assert per_day("Europe/Berlin") == {
        "2026-03-28": 1,
        "2026-03-29": 2,
        "2026-03-30": 1,
        "2026-10-24": 1,
        "2026-10-25": 2,
        "2026-10-26": 1,
    }
    assert per_day("UTC") == {"2026-03-28": 2, "2026-03-29": 2, "2026-10-24": 2, "2026-10-25": 2}
    assert per_day("Asia/Shanghai") == {
        "2026-03-29": 2,
        "2026-03-30": 2,
        "2026-10-25": 2,
        "2026-10-26": 2,
    }
    refused = admin.get("/api/v1/dashboard", params={"tz": "Mars/Olympus_Mons"})
    assert refused.status_code == 422 and "tz: unknown time zone" in refused.json()["detail"]
    assert admin.get("/api/v1/dashboard", params={"tz": "../../etc/passwd"}).status_code == 422


def test_csv_export(server_env: ServerEnv) -> None:
    ids = _ingest(
        server_env,
        [
            {"started_at": "2026-05-01T08:00:00Z", "message": '=HYPERLINK("http://x")'},
            {"started_at": "2026-05-02T08:00:00Z", "camera_id": "cam-9", "ended_at": None},
        ],
    )
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    reviewer.post(f"/api/v1/events/{ids[0]}/verdict", json={"verdict": "confirmed"})
    answer = reviewer.get("/api/v1/export/events.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["event_id"] for r in rows] == [ids[1], ids[0]]
    assert rows[1]["review_status"] == "confirmed" and rows[1]["reviewed_by"] == "rev"
    assert rows[1]["message"].startswith("'=")  # formula defused
    filtered = reviewer.get("/api/v1/export/events.csv", params={"camera_id": "cam-9"}).text
    assert len(list(csv.DictReader(io.StringIO(filtered)))) == 1


def test_retention_deletes_media_of_old_dismissed_events(
    server_env: ServerEnv, jpeg_bytes: bytes, mp4_bytes: bytes
) -> None:
    device = server_env.device("site-a")
    bodies = {
        name: event_json("site-a", started_at=started)
        for name, started in [
            ("old_dismissed", "2026-01-01T08:00:00Z"),
            ("old_confirmed", "2026-01-01T09:00:00Z"),
            ("new_dismissed", "2026-03-30T08:00:00Z"),
        ]
    }
    for body in bodies.values():
        post_event(device, body)
        url = f"/api/v1/events/{body['event_id']}/media"
        device.put(f"{url}/snapshot", files={"file": ("s.jpg", jpeg_bytes, "image/jpeg")})
        device.put(f"{url}/clip", files={"file": ("c.mp4", mp4_bytes, "video/mp4")})
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    dismiss = {"verdict": "dismissed", "reason": "not_a_person"}
    for name in ("old_dismissed", "new_dismissed"):
        reviewer.post(f"/api/v1/events/{bodies[name]['event_id']}/verdict", json=dismiss)
    reviewer.post(
        f"/api/v1/events/{bodies['old_confirmed']['event_id']}/verdict",
        json={"verdict": "confirmed"},
    )
    now = datetime(2026, 4, 1, tzinfo=UTC)
    with server_env.database.session() as db:
        report = apply_retention(db, store=server_env.app.state.store, days=30, now=now)
    assert (report.events, report.files_deleted) == (1, 2)
    assert report.bytes_freed == len(jpeg_bytes) + len(mp4_bytes)

    old = bodies["old_dismissed"]["event_id"]
    assert reviewer.get(f"/api/v1/events/{old}/media/clip").status_code == 404
    kept = reviewer.get(f"/api/v1/events/{old}").json()
    assert kept["review_status"] == "dismissed"  # the record stays
    assert all(m["deleted_at"] for m in kept["media"])
    for name in ("old_confirmed", "new_dismissed"):
        url = f"/api/v1/events/{bodies[name]['event_id']}/media/clip"
        assert reviewer.get(url).status_code == 200
    files = [p for p in server_env.settings.resolved_media_dir.rglob("*") if p.is_file()]
    assert len(files) == 4
    with server_env.database.session() as db:
        again = apply_retention(db, store=server_env.app.state.store, days=30, now=now)
    assert again.files_deleted == 0
