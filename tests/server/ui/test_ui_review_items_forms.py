"""Review items (issue 18) without a browser: the grouping in SQL on both back ends (the
gap rule, a different track, rule or camera splitting items, paging by items across a
page boundary), the zone and severity filters, and the bulk form with its refusals."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from ui_media_files import make_event_media
from ui_seed import DAY, PASSWORD, event_body, seed_accounts

from sitewatch.server.db.models import DismissReason, EventRecord, ReviewStatus, Role, User
from sitewatch.server.services import admin
from sitewatch.server.ui import queries, review_items
from tests.server.conftest import ServerEnv, event_json, post_event

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _push(
    env: ServerEnv, device: Any, start: datetime, end_s: float | None = 6, **fields: Any
) -> uuid.UUID:
    body = event_json(
        "site-a", started_at=start.isoformat(), phase="end" if end_s else "start", **fields
    )
    if end_s is not None:
        body["ended_at"] = (start + timedelta(seconds=end_s)).isoformat()
    answer = post_event(device, body)
    assert answer.status_code in (200, 201), answer.text
    return uuid.UUID(body["event_id"])


def _reviewer(env: ServerEnv) -> None:
    with env.database.session() as db:
        admin.create_user(
            db, actor=None, username="rev", password="password-1", role=Role.REVIEWER,
            site_ids=["site-a"],
        )  # fmt: skip


def _user(db: Session) -> User:
    user = db.scalar(select(User).where(User.username == "rev"))
    assert user is not None
    return user


def _items(
    env: ServerEnv, page: int = 1, size: int = 25, **filters: Any
) -> tuple[list[list[uuid.UUID]], review_items.ItemPage]:
    with env.database.session() as db:
        result = review_items.list_items(
            db, user=_user(db), filters=queries.EventFilters(**filters), page=page, now=NOW,
            tz=TZ, page_size=size,
        )  # fmt: skip
        return [[e.id for e in item.events] for item in result.items], result


def test_gap_rule_and_what_splits_items(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    _reviewer(server_env)
    # a burst: three events of track 7 within seconds (two in the same second)
    burst = [
        _push(server_env, device, T0, confidence=0.5),
        _push(server_env, device, T0 + timedelta(seconds=1), confidence=0.9),
        _push(server_env, device, T0 + timedelta(seconds=1), confidence=0.7),
    ]
    # 100 s after the burst's last end (07 s): still within the 120 s gap; no end time:
    # the start counts
    near = _push(server_env, device, T0 + timedelta(seconds=107), end_s=None)
    # 121 s after that one's start: a new item of the same track and rule
    far = _push(server_env, device, T0 + timedelta(seconds=228))
    other_rule = _push(server_env, device, T0 + timedelta(seconds=2), rule="fall_edge")
    other_track = _push(server_env, device, T0 + timedelta(seconds=2), track_id=8)
    other_camera = _push(server_env, device, T0 + timedelta(seconds=2), camera_id="cam-2")
    no_track = [
        _push(server_env, device, T0 + timedelta(seconds=3), track_id=None),
        _push(server_env, device, T0 + timedelta(seconds=3), track_id=None),
    ]
    groups, result = _items(server_env)
    expected = [
        [far], [other_rule], [other_track], [other_camera], [no_track[0]], [no_track[1]],
        [*burst, near],
    ]  # fmt: skip
    assert {frozenset(g) for g in groups} == {frozenset(g) for g in expected}
    assert len(groups) == len(expected)
    assert (result.total, result.events) == (7, 10)
    item = next(i for i in result.items if i.count == 4)
    assert item.best.id == burst[1]  # the highest confidence
    assert [e.id for e in item.events][:3] == sorted(burst[:1]) + sorted(burst[1:])
    assert item.first_start == T0 and item.last_end == T0 + timedelta(seconds=107)
    assert item.status == "pending" and item.pending == 4
    # newest first: the item whose latest event is newest leads
    assert groups[0] == [far]
    # a smaller gap splits the burst from the event 100 s later
    with server_env.database.session() as db:
        small = review_items.list_items(
            db, user=_user(db), filters=queries.EventFilters(), page=1, now=NOW, tz=TZ,
            gap_s=60,
        )  # fmt: skip
    assert sorted(i.count for i in small.items) == [1] * 7 + [3]


def test_paging_counts_items_not_events_across_a_page_boundary(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    _reviewer(server_env)
    # 7 items of 3 events each (tracks 1..7, 10 min apart), events interleaved in time
    # with a one-event item of track 100 between each
    expected: list[set[uuid.UUID]] = []
    for track in range(1, 8):
        start = T0 + timedelta(minutes=10 * track)
        expected.append({_push(server_env, device, start + timedelta(seconds=s), track_id=track)
                         for s in (0, 20, 40)})  # fmt: skip
        expected.append(
            {_push(server_env, device, start + timedelta(seconds=10), track_id=100 + track)}
        )
    page_1, first = _items(server_env, page=1, size=5)
    page_2, _ = _items(server_env, page=2, size=5)
    page_3, _ = _items(server_env, page=3, size=5)
    assert (first.total, first.events, first.pages) == (14, 28, 3)
    assert [len(g) for g in page_1] == [3, 1, 3, 1, 3]
    assert [len(g) for g in page_3] == [3, 1, 3, 1]
    shown = [set(g) for g in page_1 + page_2 + page_3]
    assert len(shown) == 14 and sorted(map(sorted, shown)) == sorted(map(sorted, expected))
    # a page past the end shows the last one
    _, clamped = _items(server_env, page=9, size=5)
    assert clamped.number == 3 and [len(i.events) for i in clamped.items] == [3, 1, 3, 1]
    # oldest first (the queue): the first item is track 1's
    with server_env.database.session() as db:
        oldest = review_items.list_items(
            db, user=_user(db), filters=queries.EventFilters(), page=1, now=NOW, tz=TZ,
            page_size=1, oldest_first=True,
        )  # fmt: skip
    assert {e.id for e in oldest.items[0].events} == expected[0]


def test_zone_and_severity_filters(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    _reviewer(server_env)
    crane = _push(server_env, device, T0, rule="restricted_zone", zone="crane", severity="medium")
    crane_hi = _push(server_env, device, T0 + timedelta(seconds=5), rule="restricted_zone",
                     zone="crane", severity="critical")  # fmt: skip
    pit = _push(
        server_env, device, T0, rule="restricted_zone", zone="pit", track_id=9, severity="low"
    )
    groups, _ = _items(server_env, zone="crane")
    assert groups == [[crane, crane_hi]]
    _, result = _items(server_env, zone="crane")
    assert result.items[0].severity == "critical"  # the worst of the item
    assert _items(server_env, severity="high")[0] == [[crane_hi]]
    assert sorted(map(len, _items(server_env, severity="low")[0])) == [1, 2]
    assert _items(server_env, zone="pit", severity="medium")[0] == []
    assert _items(server_env, zone="pit")[0] == [[pit]]
    with server_env.database.session() as db:
        assert queries.zone_options(db, _user(db)) == ["crane", "pit"]
    with pytest.raises(queries.FilterError):
        queries.parse_filters(site=None, camera=None, rule=None, status=None, date_from=None,
                              date_to=None, rules=[], severity="huge")  # fmt: skip


def test_bulk_verdicts_skip_judged_events_and_collect_refusals(server_env: ServerEnv) -> None:
    device = server_env.device("site-a")
    _reviewer(server_env)
    ids = [_push(server_env, device, T0 + timedelta(seconds=s)) for s in (0, 1, 2)]
    other_site = server_env.device("site-b")
    body = event_json("site-b", started_at=T0.isoformat())
    assert post_event(other_site, body).status_code == 201
    foreign = uuid.UUID(body["event_id"])
    with server_env.database.session() as db:
        user = _user(db)
        review_items.apply_verdict(db, user=user, items=[[ids[0]]], verdict=ReviewStatus.DISMISSED,
                                   reason=DismissReason.DUPLICATE)  # fmt: skip
        result = review_items.apply_verdict(
            db, user=user, items=[ids, [foreign], [uuid.uuid4()]], verdict=ReviewStatus.CONFIRMED
        )
        assert (result.items, result.events, result.unchanged) == (1, 2, 1)
        assert len(result.refused) == 2 and all("not found" in m for m in result.refused)
        states = {e.event_id: e.review_status for e in db.scalars(select(EventRecord))}
    assert states[ids[0]] == ReviewStatus.DISMISSED  # not corrected
    assert states[ids[1]] == states[ids[2]] == ReviewStatus.CONFIRMED
    assert states[foreign] == ReviewStatus.PENDING
    with pytest.raises(review_items.BulkError):
        review_items.parse_items(["not-a-uuid"])
    with pytest.raises(review_items.BulkError):
        review_items.parse_items([" "])


def test_ten_thousand_events_list_quickly(server_env: ServerEnv) -> None:
    """10,000 events in bursts of four: one page of items, timed (SQLite and PostgreSQL)."""
    server_env.site("site-a")
    _reviewer(server_env)
    rows = []
    for i in range(10_000):
        track = i // 4
        start = T0 + timedelta(seconds=i * 10 + track * 300)
        rows.append(
            {
                "event_id": uuid.uuid4(), "site_id": "site-a", "camera_id": f"cam-{track % 3}",
                "rule": "no_helmet", "severity": "high", "phase": "end", "track_id": track,
                "started_at": start, "ended_at": start + timedelta(seconds=6),
                "review_status": ReviewStatus.PENDING, "status": "ended",
            }
        )  # fmt: skip
    with server_env.database.session() as db:
        db.execute(insert(EventRecord), rows)
        db.commit()
    began = time.perf_counter()
    _, result = _items(server_env, page=40)
    took = time.perf_counter() - began
    assert (result.total, result.events) == (2500, 10_000)
    assert [i.count for i in result.items] == [4] * 25
    print(f"\n10,000 events on {server_env.backend}: a page of items in {took:.3f} s")
    assert took < 5.0


# -- the bulk form through the app -------------------------------------------------------


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict, Any]]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-items")
    settings = Settings(
        data_dir=root, media_dir=root / "media",
        session_secret=SecretStr("items-" + uuid.uuid4().hex),
    )  # fmt: skip
    app = create_app(settings)
    make_event_media(root / "source-media")
    tokens = seed_accounts(app)
    with TestClient(app, base_url="http://testserver") as client:
        yield client, tokens, app


def _put(client: TestClient, token: str, body: dict) -> uuid.UUID:
    answer = client.put(
        f"/api/v1/events/{body['event_id']}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    return uuid.UUID(body["event_id"])


def _login(client: TestClient, username: str, lang: str = "zh") -> str:
    client.cookies.clear()
    client.cookies.set("sitewatch_lang", lang)
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    return CSRF.search(client.get("/ui/events").text).group(1)  # type: ignore[union-attr]


def test_bulk_form_summary_refusals_and_csrf(app_client: tuple) -> None:
    client, tokens, _app = app_client
    a = tokens["site-a"]
    burst = [
        _put(
            client,
            a,
            event_body("site-a", "cam-x", "no_helmet", DAY + timedelta(seconds=s), track_id=4),
        )
        for s in (0, 1, 1)
    ]
    single = _put(
        client, a, event_body("site-a", "cam-x", "no_helmet", DAY + timedelta(hours=2), track_id=5)
    )
    csrf = _login(client, "rev-a")
    listing = client.get("/ui/events?camera=cam-x").text
    assert listing.count('class="event-row item-row') == 2 and "×3" in listing
    assert "共 2 项（4 条事件）" in listing
    item_values = re.findall(r'name="item" value="([^"]+)"', listing)
    assert sorted(len(v.split()) for v in item_values) == [1, 3]
    # a first verdict on one event of the burst, then the bulk confirm of both items
    answer = client.post(
        f"/ui/events/{burst[0]}/verdict",
        data={"verdict": "dismiss", "reason": "duplicate", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    form = {"action": "confirm", "item": item_values, "csrf_token": csrf,
            "back": "camera=cam-x&page=1&evil=1"}  # fmt: skip
    assert client.post("/ui/events/bulk", data={**form, "csrf_token": "x"}).status_code == 403
    answer = client.post("/ui/events/bulk", data=form, follow_redirects=False)
    assert answer.status_code == 303
    target = answer.headers["location"]
    assert target.startswith("/ui/events?camera=cam-x&page=1&done=confirm") and "evil" not in target
    page = client.get(target).text
    assert "已确认 2 项（3 条事件）；1 条未改（已有结论）" in page
    for event_id, status in (
        (burst[0], "dismissed"),
        (burst[1], "confirmed"),
        (single, "confirmed"),
    ):
        assert client.get(f"/api/v1/events/{event_id}").json()["review_status"] == status
    # dismiss needs a reason; a viewer is refused; English summary
    more = _put(client, a, event_body("site-a", "cam-y", "no_helmet", DAY, track_id=6))
    no_reason = client.post(
        "/ui/events/bulk", data={"action": "dismiss", "item": [str(more)], "csrf_token": csrf}
    )
    assert no_reason.status_code == 400 and "误报需要选择原因" in no_reason.text
    bad = {"action": "dismiss", "item": ["zz"], "reason": "other", "csrf_token": csrf}
    assert client.post("/ui/events/bulk", data=bad).status_code == 400
    csrf_en = _login(client, "rev-a", lang="en")
    answer = client.post(
        "/ui/events/bulk",
        data={
            "action": "dismiss",
            "reason": "other",
            "item": [str(more), str(burst[1])],
            "csrf_token": csrf_en,
        },
    )
    assert "Marked 1 items as false alarms (1 events); 1 unchanged (already judged)" in answer.text
    assert client.get(f"/api/v1/events/{more}").json()["dismiss_reason"] == "other"
    viewer_csrf = _login(client, "view-a")
    refused = client.post(
        "/ui/events/bulk",
        data={"action": "confirm", "item": [str(more)], "csrf_token": viewer_csrf},
    )
    assert refused.status_code == 403


def test_queue_walks_pending_items_and_keeps_filters(app_client: tuple) -> None:
    client, tokens, _app = app_client
    a = tokens["site-a"]
    first = [
        _put(
            client,
            a,
            event_body("site-a", "cam-q", "no_helmet", DAY + timedelta(seconds=s), track_id=1),
        )
        for s in (0, 2)
    ]
    second = _put(
        client,
        a,
        event_body("site-a", "cam-q", "fall_edge", DAY + timedelta(minutes=5), track_id=1),
    )
    _put(
        client,
        a,
        event_body("site-a", "cam-other", "no_helmet", DAY - timedelta(days=9), track_id=1),
    )
    csrf = _login(client, "rev-a")
    page = client.get("/ui/queue?camera=cam-q").text
    assert f'data-event-id="{first[0]}"' in page or f'data-event-id="{first[1]}"' in page
    assert "第 1 项，共 2 项待审核" in page and 'id="queue-count">×2<' in page
    skipped = client.get("/ui/queue?camera=cam-q&skip=1").text
    assert f'data-event-id="{second}"' in skipped
    assert "队列已清空" in client.get("/ui/queue?camera=cam-q&skip=2").text
    back = re.search(r'name="back" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/queue/verdict",
        data={
            "action": "confirm",
            "item": " ".join(map(str, first)),
            "back": back.replace("&amp;", "&"),
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith(
        "/ui/queue?camera=cam-q&skip=0"
    )
    page = client.get(answer.headers["location"]).text
    assert "已确认 1 项（2 条事件）" in page and f'data-event-id="{second}"' in page
    last = {"action": "dismiss", "reason": "other", "item": str(second), "back": "camera=cam-q"}
    client.post("/ui/queue/verdict", data={**last, "csrf_token": csrf})
    assert "队列已清空" in client.get("/ui/queue?camera=cam-q").text
