"""The hazard loop end to end, with its audit trail."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sitewatch.server.db.models import Role
from tests.server.conftest import ServerEnv, event_json, post_event


def _event(env: ServerEnv) -> str:
    device = env.device("site-a")
    body = event_json("site-a")
    assert post_event(device, body).status_code == 201
    return str(body["event_id"])


def _evidence(client: TestClient, event_id: str, photo: bytes, note: str) -> int:
    answer = client.post(
        f"/api/v1/events/{event_id}/hazard/evidence",
        files={"file": ("fixed.jpg", photo, "image/jpeg")},
        data={"note": note},
    )
    return answer.status_code


def test_hazard_lifecycle_with_audit_log(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    event_id = _event(server_env)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    base = f"/api/v1/events/{event_id}"
    assign = {"responsible": "Foreman Li", "deadline": "2026-05-03T00:00:00Z", "note": "rail"}
    assert reviewer.post(f"{base}/hazard", json=assign).status_code == 409  # not confirmed yet
    assert reviewer.post(f"{base}/verdict", json={"verdict": "confirmed"}).status_code == 200
    assigned = reviewer.post(f"{base}/hazard", json=assign)
    assert assigned.status_code == 200 and assigned.json()["status"] == "assigned"
    assert reviewer.post(f"{base}/hazard/accept", json={}).status_code == 409  # no evidence yet

    assert _evidence(reviewer, event_id, jpeg_bytes, "guard rail installed") == 200
    assert reviewer.get(f"{base}/hazard").json()["status"] == "rectified"
    assert _evidence(reviewer, event_id, jpeg_bytes, "again") == 409
    assert reviewer.post(f"{base}/hazard/reject", json={}).status_code == 422  # needs a why
    rejected = reviewer.post(f"{base}/hazard/reject", json={"note": "rail too low"})
    assert rejected.json()["status"] == "rejected"
    not_jpeg = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    assert _evidence(reviewer, event_id, not_jpeg, "png") == 415
    cut = jpeg_bytes[:-10] + b"0123456789"  # the end of the picture replaced: not a JPEG
    assert _evidence(reviewer, event_id, cut, "higher rail") == 422
    assert reviewer.get(f"{base}/hazard").json()["status"] == "rejected"
    # a whole JPEG (bytes after its end marker are ignored by viewers and the check)
    assert _evidence(reviewer, event_id, jpeg_bytes + b"0123456789", "higher rail") == 200
    accepted = reviewer.post(f"{base}/hazard/accept", json={"note": "ok"})
    assert accepted.json()["status"] == "accepted" and accepted.json()["overdue"] is False
    photo = reviewer.get(f"{base}/media/evidence")
    assert photo.status_code == 200 and photo.content.endswith(b"0123456789")
    dismiss = {"verdict": "dismissed", "reason": "other"}
    assert reviewer.post(f"{base}/verdict", json=dismiss).status_code == 409

    entries = reviewer.get("/api/v1/audit", params={"object_id": event_id}).json()
    actions = [e["action"] for e in reversed(entries)]
    assert actions == [
        "event.verdict",
        "hazard.assign",
        "hazard.evidence",
        "hazard.reject",
        "hazard.evidence",
        "hazard.accept",
    ]
    assert {e["actor"] for e in entries} == {"user:rev"}
    assert entries[0]["details"]["note"] == "ok"
    assert all(e["at"] for e in entries)


def test_overdue_and_reassignment(server_env: ServerEnv) -> None:
    event_id = _event(server_env)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    base = f"/api/v1/events/{event_id}"
    reviewer.post(f"{base}/verdict", json={"verdict": "confirmed"})
    past = {"responsible": "Li", "deadline": "2020-01-01T00:00:00Z"}
    assert reviewer.post(f"{base}/hazard", json=past).json()["overdue"] is True
    overdue = reviewer.get("/api/v1/hazards", params={"overdue": True}).json()
    assert [h["event_id"] for h in overdue] == [event_id]
    later = {"responsible": "Wang", "deadline": "2099-01-01T00:00:00Z"}
    moved = reviewer.post(f"{base}/hazard", json=later).json()
    assert (moved["responsible"], moved["overdue"]) == ("Wang", False)
    assert reviewer.get("/api/v1/hazards", params={"overdue": True}).json() == []


def test_verdict_rules(server_env: ServerEnv) -> None:
    event_id = _event(server_env)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    url = f"/api/v1/events/{event_id}/verdict"
    assert reviewer.post(url, json={"verdict": "dismissed"}).status_code == 422
    confirm_with_reason = {"verdict": "confirmed", "reason": "other"}
    assert reviewer.post(url, json=confirm_with_reason).status_code == 422
    body = {"verdict": "dismissed", "reason": "helmet_present", "note": "cap under helmet"}
    answer = reviewer.post(url, json=body).json()
    assert (answer["review_status"], answer["dismiss_reason"]) == ("dismissed", "helmet_present")
    assert answer["reviewed_at"] is not None
    bad_reason = {"verdict": "dismissed", "reason": "because"}
    assert reviewer.post(url, json=bad_reason).status_code == 422
