"""The dashboards' numbers (issue 18) through the real app on SQLite and PostgreSQL:
hazards per day by rule, rectification and on-time rates, the overdue ranking,
party-member presence without dismissed events, the site ranking, the CSVs (BOM,
headers in the page's language), and agreement with the event list after verdicts."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sitewatch.server.app import create_app
from sitewatch.server.db.models import (
    DismissReason,
    EventRecord,
    EventStatus,
    Hazard,
    HazardStatus,
    ReviewStatus,
    Role,
    User,
)
from sitewatch.server.db.session import Database
from sitewatch.server.services import admin, events
from tests.server.conftest import fresh_database, make_settings

PASSWORD = "dashboard-pass-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Local days in Asia/Shanghai (the default zone): 08:00Z is 16:00 the same day.
D1 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
D2, D3 = D1 + timedelta(days=1), D1 + timedelta(days=2)
RANGE = "date_from=2026-05-01&date_to=2026-05-03"
RULES = ["no_helmet", "fall_edge", "restricted_zone", "post_unattended", "party_member_helmet"]


@dataclass
class Env:
    client: TestClient
    database: Database
    ids: dict[str, uuid.UUID]


def _event(db: Any, name: str, site: str, rule: str, started: datetime, **extra: Any) -> uuid.UUID:
    event_id = uuid.uuid4()
    db.add(
        EventRecord(
            event_id=event_id, site_id=site, camera_id=extra.pop("camera_id", "cam-1"),
            rule=rule, severity="high", phase="end", status=EventStatus.ENDED,
            track_id=extra.pop("track_id", 1), started_at=started, **extra,
        )
    )  # fmt: skip
    return event_id


def _hazard(
    db: Any, event_id: uuid.UUID, site: str, status: HazardStatus, deadline: datetime,
    decided: datetime | None = None,
) -> None:  # fmt: skip
    db.add(
        Hazard(
            event_id=event_id, site_id=site, responsible="张工", deadline=deadline,
            status=status, decided_at=decided,
        )
    )  # fmt: skip


def _seed(database: Database) -> dict[str, uuid.UUID]:
    now = datetime.now(UTC)
    with database.session() as db:
        admin.create_site(db, actor=None, site_id="s1", name="Alpha 一号")
        admin.create_site(db, actor=None, site_id="s2", name="Beta 二号")
        admin.create_user(db, actor=None, username="boss", password=PASSWORD, role=Role.ADMIN)
        admin.create_user(
            db, actor=None, username="rev1", password=PASSWORD, role=Role.REVIEWER,
            site_ids=["s1"],
        )  # fmt: skip
        ids = {
            "on_time_1": _event(db, "", "s1", "no_helmet", D1),
            "late": _event(db, "", "s1", "no_helmet", D1 + timedelta(hours=1)),
            "on_time_2": _event(db, "", "s1", "no_helmet", D1 + timedelta(hours=2)),
            "overdue_3d": _event(db, "", "s1", "fall_edge", D2),
            "overdue_1d": _event(db, "", "s1", "restricted_zone", D2 + timedelta(hours=1)),
            "plain": _event(db, "", "s1", "no_helmet", D2 + timedelta(hours=2)),
            "pending": _event(db, "", "s1", "no_helmet", D3),
            "red_false": _event(db, "", "s1", "no_helmet", D3 + timedelta(hours=1),
                                role="party_member", helmet_colour="red", track_id=4),
            "party_seen": _event(db, "", "s1", "person", D3 + timedelta(hours=2),
                                 role="party_member", track_id=9),
            "red_hazard": _event(db, "", "s1", "fall_edge", D3 + timedelta(hours=3),
                                 helmet_colour="red", worker_id="W1"),
            "b_overdue": _event(db, "", "s2", "no_helmet", D1),
            "b_false": _event(db, "", "s2", "no_helmet", D1 + timedelta(hours=1)),
            "before": _event(db, "", "s1", "no_helmet", D1 - timedelta(days=1)),
        }  # fmt: skip
        db.commit()
        boss = db.scalar(select(User).where(User.username == "boss"))
        assert boss is not None
        confirmed = ["on_time_1", "late", "on_time_2", "overdue_3d", "overdue_1d", "plain",
                     "red_hazard", "b_overdue", "before"]  # fmt: skip
        for name in confirmed:
            events.set_verdict(db, user=boss, event_id=ids[name], verdict=ReviewStatus.CONFIRMED)
        for name in ("red_false", "b_false"):
            events.set_verdict(
                db, user=boss, event_id=ids[name], verdict=ReviewStatus.DISMISSED,
                reason=DismissReason.WRONG_CLASS,
            )  # fmt: skip
        day = timedelta(days=1)
        _hazard(db, ids["on_time_1"], "s1", HazardStatus.ACCEPTED, now - day, now - 2 * day)
        _hazard(db, ids["late"], "s1", HazardStatus.ACCEPTED, now - 3 * day, now - day)
        _hazard(db, ids["on_time_2"], "s1", HazardStatus.ACCEPTED, now + day, now)
        _hazard(db, ids["overdue_3d"], "s1", HazardStatus.ASSIGNED, now - 3.1 * day)
        _hazard(db, ids["overdue_1d"], "s1", HazardStatus.REJECTED, now - 1.5 * day)
        _hazard(db, ids["b_overdue"], "s2", HazardStatus.ASSIGNED, now - 5.2 * day)
        _hazard(db, ids["before"], "s1", HazardStatus.ASSIGNED, now - 9 * day)
        db.commit()
    return ids


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    database = fresh_database(request.param, request, tmp_path)
    settings = make_settings(tmp_path, enable_ui=True)
    app = create_app(settings, database=database)
    ids = _seed(database)
    with TestClient(app, base_url="http://testserver") as client:
        yield Env(client, database, ids)
    database.dispose()


def _login(client: TestClient, username: str) -> str:
    client.cookies.clear()
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return CSRF.search(client.get("/ui/dashboard").text).group(1)  # type: ignore[union-attr]


def _text(cell: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>|\s+", " ", cell)).strip()


def table(page: str, name: str) -> dict[str, list[str]]:
    """The rows (by ``data-key``) of the dashboard table ``name``, cells as text."""
    match = re.search(rf'<table id="table-{name}">(.*?)</table>', page, re.S)
    assert match is not None, f"no table {name}"
    rows = re.findall(r'<tr data-key="([^"]*)">(.*?)</tr>', match.group(1), re.S)
    return {key: [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
            for key, body in rows}  # fmt: skip


def listed(client: TestClient, query: str) -> set[str]:
    """Event ids the event list shows for ``query`` (all on one page here)."""
    page = client.get(f"/ui/events?{query}")
    assert page.status_code == 200, page.text
    return set(re.findall(r'data-event-id="([^"]+)"', page.text))


def test_rates_on_time_and_ranking(env: Env) -> None:
    _login(env.client, "boss")
    page = env.client.get(f"/ui/dashboard?{RANGE}&lang=en")
    assert page.status_code == 200
    rates = table(page.text, "rates")
    # site, hazards, assigned, accepted, rate, accepted on time, on-time rate
    assert rates["s1"] == ["Alpha 一号", "7", "5", "3", "60.0%", "2", "66.7%"]
    assert rates["s2"] == ["Beta 二号", "1", "1", "0", "0.0%", "0", "—"]
    assert rates["total"] == ["Total", "8", "6", "3", "50.0%", "2", "66.7%"]
    # the chart draws the same rates (a <title> per bar)
    assert (
        'data-key="rect_rate" data-value="0.6" data-text="60.0%">'
        "<title>Alpha 一号 · Rectified: 60.0% (3/5)" in page.text
    )
    ranking = table(page.text, "ranking")
    assert list(ranking) == ["s1", "s2"]
    # rank, site, hazards, per day, pending, false alarms, rate, on time, overdue
    assert ranking["s1"] == ["1", "Alpha 一号", "7", "2.33", "1", "1", "60.0%", "66.7%", "2"]
    assert ranking["s2"] == ["2", "Beta 二号", "1", "0.33", "0", "1", "0.0%", "—", "1"]
    stats = re.search(r'id="stat-on-time"><span class="stat-n">([^<]+)<', page.text)
    assert stats is not None and stats.group(1) == "66.7%"


def test_overdue_is_ranked_by_days_and_links_to_events(env: Env) -> None:
    _login(env.client, "boss")
    page = env.client.get(f"/ui/dashboard?{RANGE}&lang=en").text
    overdue = table(page, "overdue")
    ids = env.ids
    assert list(overdue) == [str(ids["b_overdue"]), str(ids["overdue_3d"]), str(ids["overdue_1d"])]
    assert [row[:3] for row in overdue.values()] == [
        ["1", "5", "Beta 二号"], ["2", "3", "Alpha 一号"], ["3", "1", "Alpha 一号"],
    ]  # fmt: skip
    assert f'<a href="/ui/events/{ids["overdue_3d"]}">' in page
    # the event that started before the range is overdue too, but not in this range
    assert str(ids["before"]) not in overdue
    assert set(overdue) == listed(env.client, f"status=overdue&{RANGE}")
    # one site only: a reviewer of s1 sees s1's
    _login(env.client, "rev1")
    mine = table(env.client.get(f"/ui/dashboard?{RANGE}").text, "overdue")
    assert list(mine) == [str(ids["overdue_3d"]), str(ids["overdue_1d"])]


def test_party_presence_leaves_out_false_alarms(env: Env) -> None:
    _login(env.client, "boss")
    page = env.client.get(f"/ui/dashboard?{RANGE}").text
    party = table(page, "party")
    # red_false (red helmet, party member) was dismissed: only the sighting and the
    # confirmed red-helmet hazard, two persons (a track and a worker)
    assert party == {"s1|2026-05-03": ["Alpha 一号", "2026-05-03", "2", "2"],
                     "total": ["合计", "", "2", "2"]}  # fmt: skip
    assert (
        'data-key="2026-05-03" data-value="2"><title>Alpha 一号 · 2026-05-03: 2 条事件，2 人'
        in page
    )


def test_counts_agree_with_the_event_list_after_verdicts(env: Env) -> None:
    client, ids = env.client, env.ids
    csrf = _login(client, "boss")

    def check() -> dict[str, list[str]]:
        page = client.get(f"/ui/dashboard?{RANGE}").text
        daily = table(page, "daily")
        for day in ("2026-05-01", "2026-05-02", "2026-05-03"):
            query = f"date_from={day}&date_to={day}"
            row = daily[day]
            for number, rule in enumerate(RULES, start=1):
                shown = listed(client, f"status=confirmed&rule={rule}&{query}")
                assert int(row[number]) == len(shown), (day, rule, row)
                bar = re.search(rf'<g class="col" data-key="{day}">.*?</g>', page, re.S)
                assert bar is not None
                drawn = re.search(rf'data-key="{rule}" data-value="(\d+)"', bar.group(0))
                assert (int(drawn.group(1)) if drawn else 0) == len(shown), (day, rule)
            assert int(row[6]) == len(
                listed(client, f"status=confirmed&{query}") - {str(ids["party_seen"])}
            )
            pending = listed(client, f"status=pending&{query}") - {str(ids["party_seen"])}
            assert int(row[7]) == len(pending)
            assert int(row[8]) == len(listed(client, f"status=dismissed&{query}"))
        hazards = re.search(r'id="stat-hazards"[^>]*><span class="stat-n">(\d+)<', page)
        assert hazards is not None
        assert int(hazards.group(1)) == len(listed(client, f"status=confirmed&{RANGE}"))
        return daily

    daily = check()
    # rules..., hazards, pending, false alarms; s1's three and s2's b_overdue, b_false
    assert daily["2026-05-01"][1:] == ["4", "0", "0", "0", "0", "4", "0", "1"]
    assert daily["2026-05-02"][1:] == ["1", "1", "1", "0", "0", "3", "0", "0"]
    assert daily["2026-05-03"][1:] == ["0", "1", "0", "0", "0", "1", "1", "1"]
    # verdicts: the pending event confirmed, a confirmed one corrected to a false alarm
    for event_id, form in (
        (ids["pending"], {"verdict": "confirm"}),
        (ids["plain"], {"verdict": "dismiss", "reason": "wrong_class",
                        "correction": "looked again"}),
    ):  # fmt: skip
        answer = client.post(
            f"/ui/events/{event_id}/verdict",
            data={**form, "csrf_token": csrf},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
    daily = check()
    assert daily["2026-05-02"][1:] == ["0", "1", "1", "0", "0", "2", "0", "1"]
    assert daily["2026-05-03"][1:] == ["1", "1", "0", "0", "0", "2", "0", "1"]


def test_csv_has_a_bom_and_the_pages_language(env: Env) -> None:
    client = env.client
    _login(client, "boss")
    page = client.get(f"/ui/dashboard?{RANGE}").text
    for name in ("daily", "rates", "overdue", "party", "ranking"):
        href = re.search(rf'id="csv-{name}" href="([^"]+)"', page)
        assert href is not None
        answer = client.get(html.unescape(href.group(1)))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        shown = table(page, name)
        assert len(rows) == 1 + len(shown)
        assert [r for r in rows[1:]] == list(shown.values())
    zh = client.get(f"/ui/dashboard.csv?chart=rates&{RANGE}").content.decode("utf-8-sig")
    assert zh.splitlines()[0] == "工地,确认隐患,已下发整改,已验收,整改完成率,按期验收,按期整改率"
    en = client.get(f"/ui/dashboard.csv?chart=rates&{RANGE}&lang=en").content.decode("utf-8-sig")
    assert en.splitlines()[0].startswith("Site,Hazards,Assigned,Accepted,")
    assert client.get("/ui/dashboard.csv?chart=nope").status_code == 400
    assert client.get("/ui/dashboard?date_from=2026-05-03&date_to=2026-05-01").status_code == 400
