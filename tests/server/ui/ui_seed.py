"""Seed data of the browser tests, through the core's services and its ingest API.

Sites ``site-a`` and ``site-b``; users ``rev-a`` (reviewer, site A), ``view-a`` (viewer,
site A), ``rev-b`` (reviewer, site B); events pushed by each site's device with a real
JPEG snapshot, clean snapshot, face thumbnail and H.264 MP4 clip.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from ui_media_files import CLIP_WH, PERSON_XYXY

PASSWORD = "correct horse battery"
DAY = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


@dataclass
class Seeded:
    base_url: str
    media: dict[str, Path]
    #: Named events: "a_helmet" (full media), "a_edge", "a_zone", "a_overdue", "b_helmet".
    events: dict[str, uuid.UUID] = field(default_factory=dict)


def event_body(site: str, camera: str, rule: str, started: datetime, **extra: Any) -> dict:
    body = {
        "event_id": str(uuid.uuid4()),
        "phase": "end",
        "site_id": site,
        "camera_id": camera,
        "rule": rule,
        "severity": "high",
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=6)).isoformat(),
        **extra,
    }
    return body


def _push(client: httpx.Client, token: str, body: dict, media: dict[str, Path]) -> uuid.UUID:
    headers = {"Authorization": f"Bearer {token}"}
    event_id = body["event_id"]
    answer = client.put(f"/api/v1/events/{event_id}", json=body, headers=headers)
    assert answer.status_code in (200, 201), answer.text
    for kind, path in media.items():
        content_type = "video/mp4" if path.suffix == ".mp4" else "image/jpeg"
        files = {"file": (path.name, path.read_bytes(), content_type)}
        answer = client.put(f"/api/v1/events/{event_id}/media/{kind}", files=files, headers=headers)
        assert answer.status_code == 200, answer.text
    return uuid.UUID(event_id)


def seed_accounts(app: Any) -> dict[str, str]:
    """Sites, users and one device per site through the core's admin services."""
    from sitewatch.server.db.models import Role
    from sitewatch.server.services import admin

    with app.state.db.session() as db:
        admin.create_site(db, actor=None, site_id="site-a", name="一号工地 A")
        admin.create_site(db, actor=None, site_id="site-b", name="二号工地 B")
        for username, role, site in (
            ("rev-a", Role.REVIEWER, "site-a"),
            ("view-a", Role.VIEWER, "site-a"),
            ("rev-b", Role.REVIEWER, "site-b"),
            # accepts evidence others uploaded (nobody accepts their own, by default)
            ("lead-a", Role.REVIEWER, "site-a"),
        ):
            admin.create_user(
                db, actor=None, username=username, password=PASSWORD, role=role, site_ids=[site]
            )
        return {
            site: admin.create_device(db, actor=None, site_id=site, name="edge-1").token
            for site in ("site-a", "site-b")
        }


def seed_events(client: httpx.Client, tokens: dict[str, str], media: dict[str, Path]) -> dict:
    """The named events, pushed through the ingest API by each site's device."""
    device_media = {k: media[k] for k in ("snapshot", "snapshot_clean", "clip", "face")}
    person = {
        "track_id": 7,
        "helmet_state": "bare",
        "helmet_colour": None,
        "role": "worker",
        "bbox_xyxy": list(PERSON_XYXY),
        "frame_wh": list(CLIP_WH),
        "confidence": 0.81,
    }
    a, b = tokens["site-a"], tokens["site-b"]
    return {
        "a_helmet": _push(
            client, a, event_body("site-a", "cam-gate", "no_helmet", DAY, **person),
            device_media,
        ),
        "a_edge": _push(
            client, a,
            event_body("site-a", "cam-roof", "fall_edge", DAY + timedelta(hours=1),
                        track_id=3, role="party_member", helmet_state="helmet",
                        helmet_colour="red", distance=0.8, distance_unit="m"),
            {"snapshot": media["snapshot"]},
        ),
        "a_overdue": _push(
            client, a,
            event_body("site-a", "cam-gate", "restricted_zone", DAY - timedelta(days=1),
                        track_id=11, zone="crane"),
            {"snapshot": media["snapshot"]},
        ),
        "b_helmet": _push(
            client, b, event_body("site-b", "cam-b1", "no_helmet", DAY, track_id=5),
            {"snapshot": media["snapshot"], "clip": media["clip"]},
        ),
    }  # fmt: skip


def make_overdue(app: Any, event_id: uuid.UUID) -> None:
    """Confirm an event and assign it through the core's services, then let its deadline
    pass (moved two days into the past in the database: a deadline cannot be set there)."""
    from sqlalchemy import select

    from sitewatch.server.db.models import ReviewStatus, User
    from sitewatch.server.services import events, hazards

    with app.state.db.session() as db:
        reviewer = db.scalar(select(User).where(User.username == "rev-a"))
        assert reviewer is not None
        events.set_verdict(db, user=reviewer, event_id=event_id, verdict=ReviewStatus.CONFIRMED)
        hazards.assign_hazard(
            db,
            user=reviewer,
            event_id=event_id,
            responsible="张工",
            deadline=datetime.now(UTC) + timedelta(days=1),
        )
        hazard = events.get_event(db, user=reviewer, event_id=event_id).hazard
        assert hazard is not None
        hazard.deadline = datetime.now(UTC) - timedelta(days=2)
        db.commit()


def login(browser: Any, base_url: str, username: str, lang: str = "zh") -> Any:
    """A new browser context logged in as ``username`` through the login form."""
    context = browser.new_context(base_url=base_url, locale="zh-CN")
    if lang != "zh":
        context.add_cookies([{"name": "sitewatch_lang", "value": lang, "url": base_url}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/ui/events")
    assert "/ui/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/ui/events")
    return page


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_login(client: Any, username: str, *, page: str = "/ui/events") -> str:
    """Log in through the login form (no browser); the session's CSRF token, read from
    ``page``."""
    client.cookies.clear()
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return CSRF.search(client.get(page).text).group(1)  # type: ignore[union-attr]
