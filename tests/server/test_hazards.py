"""The hazard loop end to end, with its audit trail."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sitewatch.server.db.models import Role
from tests.server.conftest import ServerEnv, event_json, let_deadline_pass, post_event


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
    assign = {"responsible": "Foreman Li", "deadline": "2099-05-03T00:00:00Z", "note": "rail"}
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
    broken_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # PNG is taken (as JPEG), if whole
    assert _evidence(reviewer, event_id, broken_png, "png") == 422
    cut = jpeg_bytes[:-10] + b"0123456789"  # the end of the picture replaced: not a JPEG
    assert _evidence(reviewer, event_id, cut, "higher rail") == 422
    assert reviewer.get(f"{base}/hazard").json()["status"] == "rejected"
    # a whole JPEG (bytes after its end marker are ignored by viewers and the check)
    assert _evidence(reviewer, event_id, jpeg_bytes + b"0123456789", "higher rail") == 200
    mine = reviewer.post(f"{base}/hazard/accept", json={"note": "ok"})
    assert mine.status_code == 403 and "another user" in mine.text  # not one's own evidence
    other = server_env.user("rev2", Role.REVIEWER, ["site-a"])
    accepted = other.post(f"{base}/hazard/accept", json={"note": "ok"})
    assert accepted.json()["status"] == "accepted" and accepted.json()["overdue"] is False
    photo = reviewer.get(f"{base}/media/evidence")
    assert photo.status_code == 200 and photo.content.endswith(b"0123456789")
    dismiss = {"verdict": "dismissed", "reason": "other"}
    assert reviewer.post(f"{base}/verdict", json=dismiss).status_code == 403  # admins correct

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
    assert {e["actor"] for e in entries} == {"user:rev", "user:rev2"}
    assert entries[0]["details"]["note"] == "ok"
    assert all(e["at"] for e in entries)


def test_overdue_and_reassignment(server_env: ServerEnv) -> None:
    event_id = _event(server_env)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    base = f"/api/v1/events/{event_id}"
    reviewer.post(f"{base}/verdict", json={"verdict": "confirmed"})
    past = {"responsible": "Li", "deadline": "2020-01-01T00:00:00Z"}
    refused = reviewer.post(f"{base}/hazard", json=past)
    assert refused.status_code == 422 and "in the past" in refused.text
    soon = {"responsible": "Li", "deadline": "2099-01-01T00:00:00Z"}
    assert reviewer.post(f"{base}/hazard", json=soon).json()["overdue"] is False
    let_deadline_pass(server_env.database, event_id)
    assert reviewer.get(f"{base}/hazard").json()["overdue"] is True
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


def test_an_admin_corrects_a_verdict_with_a_reason(server_env: ServerEnv) -> None:
    event_id = _event(server_env)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    admin = server_env.user("root", Role.ADMIN)
    url = f"/api/v1/events/{event_id}/verdict"
    assert reviewer.post(url, json={"verdict": "confirmed"}).status_code == 200
    deadline = {"responsible": "Li", "deadline": "2099-01-01T00:00:00Z"}
    assert reviewer.post(f"/api/v1/events/{event_id}/hazard", json=deadline).status_code == 200
    dismiss = {"verdict": "dismissed", "reason": "wrong_class"}
    assert reviewer.post(url, json=dismiss).status_code == 403
    assert admin.post(url, json=dismiss).status_code == 422  # the correction needs its why
    why = {**dismiss, "correction": "复核录像：是广告牌上的人像"}
    corrected = admin.post(url, json=why)
    assert corrected.status_code == 200 and corrected.json()["review_status"] == "dismissed"
    assert admin.get(f"/api/v1/events/{event_id}/hazard").status_code == 404  # loop ended
    entries = admin.get("/api/v1/audit", params={"object_id": event_id}).json()
    correction = next(e for e in entries if e["action"] == "event.verdict_correct")
    assert correction["details"]["correction"] == why["correction"]
    assert correction["details"]["from"] == "confirmed"
    assert "hazard.removed" in {e["action"] for e in entries}
    same = admin.post(url, json=dismiss)  # the same verdict again is no correction
    assert same.status_code == 200


def test_rectifiers_fix_what_is_theirs_and_deadlines_lie_ahead(
    server_env: ServerEnv, jpeg_bytes: bytes
) -> None:
    event_id = _event(server_env)
    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    fixer = server_env.user("wang", Role.RECTIFIER, ["site-a"])
    server_env.user("zhao", Role.RECTIFIER, ["site-b"])
    other_fixer = server_env.user("liu", Role.RECTIFIER, ["site-a"])
    base = f"/api/v1/events/{event_id}"
    assert fixer.post(f"{base}/verdict", json={"verdict": "confirmed"}).status_code == 403
    assert reviewer.post(f"{base}/verdict", json={"verdict": "confirmed"}).status_code == 200
    people = reviewer.get("/api/v1/sites/site-a/responsible-candidates").json()
    names = [p["username"] for p in people]
    assert names[:2] == ["liu", "wang"] and "zhao" not in names  # rectifiers of the site first
    wang = next(p["id"] for p in people if p["username"] == "wang")
    zhao_id = 1 + max(p["id"] for p in people)  # not a candidate (another site)
    elsewhere = {"responsible_user_id": zhao_id, "deadline": "2099-01-01T00:00:00Z"}
    assert reviewer.post(f"{base}/hazard", json=elsewhere).status_code == 422
    assign = {"responsible_user_id": wang, "deadline": "2099-01-01T00:00:00Z"}
    assigned = reviewer.post(f"{base}/hazard", json=assign).json()
    assert (assigned["responsible"], assigned["responsible_user_id"]) == ("wang", wang)
    assert fixer.post(f"{base}/hazard", json=assign).status_code == 403
    mine = fixer.get("/api/v1/hazards", params={"mine": True}).json()
    assert [h["event_id"] for h in mine] == [event_id]
    assert other_fixer.get("/api/v1/hazards", params={"mine": True}).json() == []
    photo = {"file": ("fixed.jpg", jpeg_bytes, "image/jpeg")}
    assert other_fixer.post(f"{base}/hazard/evidence", files=photo).status_code == 403
    assert fixer.post(f"{base}/hazard/evidence", files=photo).status_code == 200
    assert fixer.post(f"{base}/hazard/accept", json={}).status_code == 403
    assert reviewer.post(f"{base}/hazard/accept", json={}).status_code == 200
