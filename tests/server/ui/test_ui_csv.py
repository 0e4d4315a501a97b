"""Issue 18: the event list's CSV in the page's language: translated headers and values,
Excel-friendly local times, rounded numbers, every note of the hazard loop, the BOM,
ids in their own columns, formulas defused."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from ui_harness import csv_rows_by_code
from ui_media_files import make_event_media
from ui_seed import DAY, PASSWORD, seed_accounts, seed_events

from sitewatch.server.db.models import DismissReason, ReviewStatus, User
from sitewatch.server.db.types import utcnow
from sitewatch.server.ui import queries
from sitewatch.server.ui.csv_rows import CSV_COLUMNS, csv_chunks


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict, Any]]:
    from sitewatch.server.app import create_app
    from sitewatch.server.services.events import set_verdict
    from sitewatch.server.services.hazards import assign_hazard
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-csv")
    settings = Settings(
        data_dir=root, media_dir=root / "media", session_secret=SecretStr(uuid.uuid4().hex)
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media", clip_frames=10)
    tokens = seed_accounts(app)
    with TestClient(app, base_url="http://testserver") as client:
        events = seed_events(client, tokens, media)
        with app.state.db.session() as db:
            rev = db.query(User).filter(User.username == "rev-a").one()
            lead = db.query(User).filter(User.username == "lead-a").one()
            lead.display_name = "李组长"
            set_verdict(
                db, user=rev, event_id=events["a_overdue"], verdict=ReviewStatus.DISMISSED,
                reason=DismissReason.OUTSIDE_ZONE, note="=HYPERLINK(1)",
            )  # fmt: skip
            set_verdict(
                db, user=rev, event_id=events["a_edge"], verdict=ReviewStatus.CONFIRMED,
                note="临边无护栏",
            )  # fmt: skip
            hazard = assign_hazard(
                db, user=rev, event_id=events["a_edge"], responsible="张三",
                deadline=utcnow() + timedelta(days=3), note="加装护栏",
            )  # fmt: skip
            # evidence and acceptance as the services leave them (no photo needed here)
            hazard.evidence_note, hazard.evidence_by_id = "护栏已装", rev.id
            hazard.evidence_at = hazard.decided_at = utcnow()
            hazard.decision_note, hazard.decided_by_id = "合格", lead.id
            db.commit()
        yield client, events, app


def _login(client: TestClient, username: str) -> None:
    import re

    client.cookies.clear()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text)
    data = {"username": username, "password": PASSWORD, "csrf_token": token.group(1), "next": ""}  # type: ignore[union-attr]
    assert client.post("/ui/login", data=data, follow_redirects=False).status_code == 303


def test_the_chinese_csv(ui: tuple) -> None:
    client, events = ui[0], ui[1]
    _login(client, "rev-a")
    answer = client.get("/ui/events.csv?site=site-a")
    assert answer.text.startswith("\ufeff")  # the BOM, for Excel
    header = next(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert header[:5] == ["事件编号", "工地编号", "工地", "摄像头编号", "摄像头"]
    assert "开始时间（Asia/Shanghai）" in header and "验收意见" in header
    assert not any(h.isascii() for h in header)  # no code left in a Chinese header
    rows = {r["event_id"]: r for r in csv_rows_by_code(answer.text)}
    edge = rows[str(events["a_edge"])]
    assert edge["site_id"] == "site-a" and edge["site_name"] == "一号工地 A"
    assert edge["rule"] == "临边危险" and edge["role"] == "党员" and edge["status"] == "整改中"
    assert edge["helmet_colour"] == "红色" and edge["distance"] == "0.8 米"
    assert edge["review_note"] == "临边无护栏" and edge["reviewed_by"] == "rev-a"
    assert edge["hazard_responsible"] == "张三" and edge["hazard_note"] == "加装护栏"
    assert edge["evidence_note"] == "护栏已装" and edge["evidence_by"] == "rev-a"
    assert edge["decision_note"] == "合格" and edge["decided_by"] == "李组长"
    for column in ("started_at", "reviewed_at", "hazard_deadline", "evidence_at", "decided_at"):
        value = edge[column]
        assert len(value) == 19 and value[10] == " " and "+" not in value, (column, value)
    dismissed = rows[str(events["a_overdue"])]
    assert dismissed["review_status"] == "误报" and dismissed["dismiss_reason"] == "不在区域内"
    assert dismissed["review_note"] == "'=HYPERLINK(1)"  # defused, kept
    assert dismissed["zone"] == "crane" and dismissed["track_id"] == "11"
    helmet = rows[str(events["a_helmet"])]
    assert helmet["confidence"] == "0.81" and helmet["helmet_state"] == "未戴"
    assert helmet["started_at"] == DAY.astimezone(queries_zone()).strftime("%Y-%m-%d %H:%M:%S")


def queries_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def test_the_english_csv(ui: tuple) -> None:
    app, events = ui[2], ui[1]
    with app.state.db.session() as db:
        user_id = db.query(User).filter(User.username == "rev-a").one().id
    filters = queries.EventFilters(None, None, None, None, None, None)
    text = "".join(
        csv_chunks(
            app.state.db, user_id=user_id, filters=filters, now=utcnow(), tz=queries_zone(),
            lang="en",
        )
    )  # fmt: skip
    assert text.startswith("\ufeff")
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header[:3] == ["Event ID", "Site ID", "Site"] and "Started (Asia/Shanghai)" in header
    assert len(header) == len(CSV_COLUMNS)
    rows = {r["event_id"]: r for r in csv_rows_by_code(text)}
    edge = rows[str(events["a_edge"])]
    assert edge["distance"] == "0.8 m" and edge["role"] == "Party member"
    assert edge["decision_note"] == "合格"
    assert rows[str(events["a_overdue"])]["dismiss_reason"] == "Outside the zone"


def test_lang_en_gives_the_english_csv_through_the_route(ui: tuple) -> None:
    client = ui[0]
    _login(client, "rev-a")
    text = client.get("/ui/events.csv?lang=en").text
    assert text.lstrip("\ufeff").startswith("Event ID,Site ID,Site")
