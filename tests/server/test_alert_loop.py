"""Alerts beyond one message per event (issue 16): rule hours and weekdays in the site's
zone, digests in a storm with the per-channel limit held, the hazard loop's messages
(assigned, reminder, escalation when overdue, evidence), and the queue in /metrics.

Receivers are the local HTTP receivers of test_alerts (they check each provider's
format and signature); time is moved by giving ``deliver_due`` its ``now``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sitewatch.server.db.models import AlertRule, NotificationKind, Role
from sitewatch.server.notify.routing import active_at, next_active
from tests.server.conftest import event_json, post_event
from tests.server.test_alerts import HOOK_SECRET, Alerts, alerts, receiver

__all__ = ["alerts", "receiver"]  # fixtures used here
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _rule(**fields: Any) -> AlertRule:
    return AlertRule(channel_id=1, min_severity="low", escalation=False, **fields)


def test_hours_and_weekdays_are_read_as_local_windows() -> None:
    day = _rule(active_from="07:00", active_to="19:00")
    night = _rule(active_from="22:00", active_to="06:00")
    workdays = _rule(weekdays="1,2,3,4,5")
    wednesday_noon = datetime(2026, 12, 2, 12, 0, tzinfo=SHANGHAI)
    assert active_at(day, wednesday_noon) and not active_at(night, wednesday_noon)
    assert active_at(night, wednesday_noon.replace(hour=23)) and active_at(
        night, wednesday_noon.replace(hour=5, minute=59)
    )
    assert not active_at(day, wednesday_noon.replace(hour=19))  # the end is excluded
    assert active_at(workdays, wednesday_noon)
    assert not active_at(workdays, wednesday_noon + timedelta(days=3))  # Saturday
    # quiet hours delay to the next active minute, across midnight and the weekend
    assert next_active(day, wednesday_noon.replace(hour=21, minute=30)) == datetime(
        2026, 12, 3, 7, 0, tzinfo=SHANGHAI
    )
    saturday = datetime(2026, 12, 5, 9, 15, tzinfo=SHANGHAI)
    assert next_active(workdays, saturday) == datetime(2026, 12, 7, 0, 0, tzinfo=SHANGHAI)
    assert next_active(day, wednesday_noon) == wednesday_noon


def test_rules_route_only_in_their_hours_in_the_site_zone(alerts: Alerts) -> None:
    admin = alerts.admin
    assert (
        admin.patch("/api/v1/admin/sites/site-a", json={"timezone": "Asia/Tokyo"}).status_code
        == 200
    )
    # event_json starts at 2026-05-01 08:00 UTC: 17:00 in Tokyo, 16:00 on the server's clock
    open_now = alerts.channel("webhook", HOOK_SECRET)
    alerts.rule(open_now, site_id="site-a", active_from="16:30", active_to="18:00")
    closed = alerts.channel("wecom")
    alerts.rule(closed, site_id="site-a", active_from="20:00", active_to="16:30")
    post_event(alerts.env.device("site-a"), event_json("site-a"))
    assert [n.channel_id for n in alerts.notifications()] == [open_now]
    # refused with the reason: a half window, an empty one, a bad clock, a bad zone
    bad = [
        ({"active_from": "07:00"}, "both or neither"),
        ({"active_from": "07:00", "active_to": "07:00"}, "must differ"),
        ({"active_from": "7h", "active_to": "19:00"}, "HH:MM"),
        ({"weekdays": "1,8"}, "weekdays"),
    ]
    for fields, reason in bad:
        answer = admin.post("/api/v1/alerts/rules", json={"channel_id": open_now, **fields})
        assert answer.status_code == 422 and reason in answer.text, answer.text
    answer = admin.patch("/api/v1/admin/sites/site-a", json={"timezone": "Mars/Olympus"})
    assert answer.status_code == 422 and "unknown time zone" in answer.text
    rules = admin.get("/api/v1/alerts/rules").json()
    assert {r["active_from"] is not None for r in rules} == {True}


def test_a_storm_becomes_one_digest_and_the_channel_limit_holds(alerts: Alerts) -> None:
    """200 events of one site and rule in a minute: the first five go one by one, the
    rest wait for one digest at the window's end; never more than the limit a minute."""
    settings = alerts.env.settings
    settings.alert_digest_after, settings.alert_rate_per_minute = 5, 3
    channel = alerts.channel("webhook", HOOK_SECRET)
    alerts.rule(channel)
    device = alerts.env.device("site-a")
    for _ in range(200):
        assert post_event(device, event_json("site-a")).status_code == 201
    post_event(device, event_json("site-a", rule="fall_edge", zone="edge-1"))
    rows = alerts.notifications()
    events = [n for n in rows if n.kind == NotificationKind.EVENT]
    digests = [n for n in rows if n.kind == NotificationKind.DIGEST]
    assert len(events) == 201 and len(digests) == 1
    assert sum(n.status == "digested" for n in events) == 195
    assert {n.digest_id for n in events if n.status == "digested"} == {digests[0].id}
    start = datetime.now(UTC)
    sent_per_minute = []
    for minute in range(4):  # the limit (3 a minute) spreads the six single alerts
        done = alerts.deliver(start + timedelta(minutes=minute, seconds=1))
        sent_per_minute.append(done.sent)
    assert sent_per_minute == [3, 3, 0, 0]  # five no_helmet + one fall_edge
    assert len(alerts.receiver.received) == 6
    alerts.deliver(start + timedelta(minutes=11))  # the window closed: the digest goes
    digest = alerts.receiver.received[-1].body
    assert alerts.receiver.received[-1].ok and digest["kind"] == "digest"
    assert digest["count"] == 195 and digest["site_id"] == "site-a"
    assert "10 分钟内另有 195 起未戴安全帽" in digest["lines"][0]
    assert "/ui/events?site=site-a&rule=no_helmet" in digest["link"]
    alerts.deliver(start + timedelta(minutes=30))
    assert len(alerts.receiver.received) == 7  # once each, nothing more
    # the storm goes on (the ingest clock is still in its first minute): a new digest
    post_event(device, event_json("site-a"))
    rows = alerts.notifications()
    assert rows[-1].status == "digested" and rows[-1].digest_id not in (None, digests[0].id)
    assert [n.status for n in rows if n.id == rows[-1].digest_id] == ["pending"]


def _confirmed_event(alerts: Alerts) -> tuple[str, Any]:
    body = event_json("site-a")
    assert post_event(alerts.env.device("site-a"), body).status_code == 201
    reviewer = alerts.env.user("rev", Role.REVIEWER, ["site-a"])
    event_id = str(body["event_id"])
    answer = reviewer.post(f"/api/v1/events/{event_id}/verdict", json={"verdict": "confirmed"})
    assert answer.status_code == 200
    return event_id, reviewer


def _kinds(received: list[Any]) -> list[str]:
    return [r.body["kind"] for r in received]


def test_hazard_loop_tells_reminds_escalates_and_reports_evidence(
    alerts: Alerts, jpeg_bytes: bytes
) -> None:
    team = alerts.channel("webhook", HOOK_SECRET)
    alerts.rule(team)
    boss = alerts.channel("feishu", "feishu-secret-abcdef")
    alerts.rule(boss, escalation=True)
    event_id, reviewer = _confirmed_event(alerts)
    start = datetime.now(UTC)
    alerts.deliver(start)
    assert _kinds(alerts.receiver.of("webhook")) == ["event"]
    assert alerts.receiver.of("feishu") == []  # escalation channels hear of nothing else
    deadline = start + timedelta(hours=6)
    assign = {"responsible": "班组长 李", "deadline": deadline.isoformat(), "note": "加装护栏"}
    assert reviewer.post(f"/api/v1/events/{event_id}/hazard", json=assign).status_code == 200
    alerts.deliver(start + timedelta(seconds=5))
    told = alerts.receiver.of("webhook")[-1].body
    assert told["kind"] == "hazard_assigned" and told["responsible"] == "班组长 李"
    assert "整改通知" in told["title"] and any("加装护栏" in line for line in told["lines"])
    alerts.deliver(start + timedelta(hours=3))  # before the reminder (2 h ahead)
    assert _kinds(alerts.receiver.of("webhook")) == ["event", "hazard_assigned"]
    alerts.deliver(start + timedelta(hours=4, minutes=1))
    reminder = alerts.receiver.of("webhook")[-1].body
    assert reminder["kind"] == "hazard_reminder" and "整改提醒" in reminder["title"]
    assert alerts.receiver.of("feishu") == []
    alerts.deliver(start + timedelta(hours=6, minutes=1))
    escalated = alerts.receiver.of("feishu")
    assert len(escalated) == 1 and escalated[0].ok
    assert "整改逾期" in escalated[0].body["content"]["text"]
    assert _kinds(alerts.receiver.of("webhook")) == ["event", "hazard_assigned", "hazard_reminder"]
    photo = {"file": ("fixed.jpg", jpeg_bytes, "image/jpeg")}
    answer = reviewer.post(f"/api/v1/events/{event_id}/hazard/evidence", files=photo)
    assert answer.status_code == 200
    alerts.deliver(start + timedelta(hours=6, minutes=2))
    evidence = alerts.receiver.of("webhook")[-1].body
    assert evidence["kind"] == "hazard_evidence" and evidence["hazard_status"] == "rectified"


def test_fixed_or_moved_hazards_cancel_their_reminders(alerts: Alerts, jpeg_bytes: bytes) -> None:
    alerts.rule(alerts.channel("webhook", HOOK_SECRET))
    event_id, reviewer = _confirmed_event(alerts)
    start = datetime.now(UTC)
    base = f"/api/v1/events/{event_id}/hazard"
    first = {"responsible": "Li", "deadline": (start + timedelta(hours=6)).isoformat()}
    later = {"responsible": "Wang", "deadline": (start + timedelta(days=2)).isoformat()}
    assert reviewer.post(base, json=first).status_code == 200
    assert reviewer.post(base, json=later).status_code == 200  # the deadline moved
    alerts.deliver(start + timedelta(hours=7))  # the first deadline's steps are void now
    sent = _kinds(alerts.receiver.received)
    assert sent == ["event", "hazard_assigned", "hazard_assigned"]
    cancelled = [n for n in alerts.notifications() if n.status == "cancelled"]
    assert {n.kind for n in cancelled} == {"hazard_reminder", "hazard_overdue"}
    assert all("deadline changed" in (n.last_error or "") for n in cancelled)
    photo = {"file": ("fixed.jpg", jpeg_bytes, "image/jpeg")}
    assert reviewer.post(f"{base}/evidence", files=photo).status_code == 200
    alerts.deliver(start + timedelta(days=3))  # fixed in time: no reminder, no escalation
    assert _kinds(alerts.receiver.received)[3:] == ["hazard_evidence"]
    left = [n for n in alerts.notifications() if n.status == "pending"]
    assert left == []


@pytest.mark.parametrize("server_env", ["sqlite"], indirect=True)
def test_metrics_report_the_queue_and_deliveries(alerts: Alerts) -> None:
    alerts.rule(alerts.channel("webhook", HOOK_SECRET))
    alerts.rule(alerts.channel("wecom"))
    post_event(alerts.env.device("site-a"), event_json("site-a"))
    app = alerts.env.app
    from sitewatch.server.notify.worker import deliver_due

    deliver_due(
        alerts.env.database, alerts.env.settings, metrics=app.state.metrics, limit=1
    )  # one of the two
    text = alerts.env.client().get("/metrics").text
    assert 'sitewatch_notifications{kind="event",status="sent"} 1.0' in text
    assert 'sitewatch_notifications{kind="event",status="pending"} 1.0' in text
    assert 'sitewatch_alert_deliveries_total{kind="event",outcome="sent"} 1.0' in text
    assert "sitewatch_alert_delay_seconds_count 1.0" in text


def test_wecom_gets_the_snapshot_as_an_image_message(alerts: Alerts, jpeg_bytes: bytes) -> None:
    alerts.rule(alerts.channel("wecom"))
    device = alerts.env.device("site-a")
    body = event_json("site-a")
    post_event(device, body)
    files = {"file": ("snapshot.jpg", jpeg_bytes, "image/jpeg")}
    answer = device.put(f"/api/v1/events/{body['event_id']}/media/snapshot", files=files)
    assert answer.status_code in (200, 201), answer.text
    alerts.deliver_with_store()
    got = alerts.receiver.of("wecom")
    assert [r.body["msgtype"] for r in got] == ["markdown", "image"]
    assert all(r.ok for r in got), [r.why for r in got]
    assert base64.b64decode(got[1].body["image"]["base64"]) == jpeg_bytes
