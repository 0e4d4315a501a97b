"""The UI's own queries (hazard-state filters, overdue, local-day date filters,
party-member presence, CSV rows) on both back ends: SQLite and the real PostgreSQL
(``server_env`` of tests/server)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from ui_harness import csv_rows_by_code

from sitewatch.server.db.models import ReviewStatus, Role, User
from sitewatch.server.services import admin, events, hazards
from sitewatch.server.ui import queries
from sitewatch.server.ui.csv_rows import csv_chunks
from tests.server.conftest import ServerEnv, event_json, post_event

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
DAY_1 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)


def _seed(env: ServerEnv) -> dict[str, uuid.UUID]:
    device_a, device_b = env.device("site-a"), env.device("site-b")
    bodies = {
        "open": event_json("site-a", started_at=DAY_1.isoformat()),
        "late": event_json("site-a", started_at=DAY_1.isoformat(), camera_id="cam-2"),
        "party_1": event_json(
            "site-a", started_at=DAY_2.isoformat(), role="party_member", track_id=3
        ),
        "party_2": event_json(
            "site-a", started_at=(DAY_2 + timedelta(hours=1)).isoformat(),
            role="party_member", track_id=3, rule="fall_edge",
        ),
        "other_site": event_json("site-b", started_at=DAY_1.isoformat(), role="party_member"),
    }  # fmt: skip
    for name, body in bodies.items():
        device = device_b if name == "other_site" else device_a
        assert post_event(device, body).status_code in (200, 201)
    with env.database.session() as db:
        admin.create_user(
            db, actor=None, username="rev", password="password-1", role=Role.REVIEWER,
            site_ids=["site-a"],
        )  # fmt: skip
    return {name: uuid.UUID(body["event_id"]) for name, body in bodies.items()}


def _reviewer(db: Session) -> User:
    user = db.scalar(select(User).where(User.username == "rev"))
    assert user is not None
    return user


def _ids(env: ServerEnv, tz: ZoneInfo = SHANGHAI, **filters: str) -> set[uuid.UUID]:
    with env.database.session() as db:
        parsed = queries.parse_filters(
            site=filters.get("site"), camera=filters.get("camera"), rule=filters.get("rule"),
            status=filters.get("status"), date_from=filters.get("date_from"),
            date_to=filters.get("date_to"), rules=["no_helmet", "fall_edge"],
        )  # fmt: skip
        page = queries.list_events(db, user=_reviewer(db), filters=parsed, page=1, now=NOW, tz=tz)
        return {e.event_id for e in page.rows}


def test_hazard_state_and_overdue_filters(server_env: ServerEnv) -> None:
    ids = _seed(server_env)
    with server_env.database.session() as db:
        user = _reviewer(db)
        for name in ("open", "late"):
            events.set_verdict(db, user=user, event_id=ids[name], verdict=ReviewStatus.CONFIRMED)
        # Assigned with deadlines ahead of the real clock, then moved around the test's NOW
        # (a deadline in the past cannot be given).
        ahead = datetime.now(UTC) + timedelta(days=1)
        for name, who, deadline in (
            ("open", "a", NOW + timedelta(1)),
            ("late", "b", NOW - timedelta(1)),
        ):
            hazard = hazards.assign_hazard(
                db, user=user, event_id=ids[name], responsible=who, deadline=ahead
            )
            hazard.deadline = deadline
        db.commit()
    everything = {ids[n] for n in ("open", "late", "party_1", "party_2")}
    assert _ids(server_env) == everything  # never site-b's event
    assert _ids(server_env, status="overdue") == {ids["late"]}
    assert _ids(server_env, status="assigned") == {ids["open"], ids["late"]}
    assert _ids(server_env, status="confirmed") == {ids["open"], ids["late"]}
    assert _ids(server_env, status="pending") == {ids["party_1"], ids["party_2"]}
    assert _ids(server_env, status="pending", rule="fall_edge") == {ids["party_2"]}
    assert _ids(server_env, camera="cam-2") == {ids["late"]}
    day = DAY_2.date().isoformat()
    assert _ids(server_env, date_from=day, date_to=day) == {ids["party_1"], ids["party_2"]}
    assert _ids(server_env, site="site-b") == set()


def test_party_presence_counts_events_and_distinct_people(server_env: ServerEnv) -> None:
    _seed(server_env)
    with server_env.database.session() as db:
        presence = queries.party_presence(
            db, user=_reviewer(db), site=None, start=date(2026, 4, 30), end=date(2026, 5, 3),
            tz=SHANGHAI,
        )  # fmt: skip
    assert set(presence) == {("site-a", DAY_2.date())}
    entry = presence[("site-a", DAY_2.date())]
    assert entry.events == 2 and len(entry.persons) == 1  # one track seen twice


def test_csv_rows_follow_the_filters(server_env: ServerEnv) -> None:
    ids = _seed(server_env)
    with server_env.database.session() as db:
        user_id = _reviewer(db).id
    filters = queries.parse_filters(
        site=None, camera=None, rule="fall_edge", status=None, date_from=None, date_to=None,
        rules=["fall_edge"],
    )  # fmt: skip
    text = "".join(
        csv_chunks(server_env.database, user_id=user_id, filters=filters, now=NOW, tz=SHANGHAI)
    )
    rows = csv_rows_by_code(text)
    assert [r["event_id"] for r in rows] == [str(ids["party_2"])]
    assert rows[0]["role"] == "党员" and rows[0]["review_status"] == "待审核"
    # local time in the page's zone, for Excel (issue 18): 09:00Z is 17:00 in Shanghai
    assert rows[0]["started_at"] == "2026-05-02 17:00:00"


def _push_at(env: ServerEnv, *instants: str, **fields: object) -> list[uuid.UUID]:
    device = env.device("site-a", name="box-at")
    with env.database.session() as db:
        admin.create_user(
            db, actor=None, username="rev", password="password-1", role=Role.REVIEWER,
            site_ids=["site-a"],
        )  # fmt: skip
    bodies = [event_json("site-a", started_at=at, **fields) for at in instants]
    for body in bodies:
        assert post_event(device, body).status_code == 201
    return [uuid.UUID(body["event_id"]) for body in bodies]


def test_date_filters_are_local_days(server_env: ServerEnv) -> None:
    """A day runs from local midnight to local midnight; both ends of a range included."""
    last_of_1, first_of_2, last_of_2, first_of_3 = _push_at(
        server_env,
        "2026-05-01T15:59:59Z",  # 23:59:59 on 1 May in Shanghai
        "2026-05-01T16:00:00Z",  # 00:00:00 on 2 May
        "2026-05-02T15:59:59.999Z",  # 23:59:59.999 on 2 May
        "2026-05-02T16:00:00Z",  # 00:00:00 on 3 May
    )
    assert _ids(server_env, date_from="2026-05-02", date_to="2026-05-02") == {
        first_of_2,
        last_of_2,
    }
    assert _ids(server_env, date_to="2026-05-01") == {last_of_1}
    assert _ids(server_env, date_from="2026-05-03") == {first_of_3}
    # the same events in UTC days: all four fall on 1 or 2 May
    utc = ZoneInfo("UTC")
    assert _ids(server_env, utc, date_from="2026-05-01", date_to="2026-05-01") == {
        last_of_1,
        first_of_2,
    }
    assert _ids(server_env, utc, date_from="2026-05-03") == set()


def test_date_filters_follow_daylight_saving(server_env: ServerEnv) -> None:
    """Europe/Berlin's 29 March 2026 is 23 hours long: 23:00Z on the 28th to 22:00Z."""
    before, first, last, after = _push_at(
        server_env,
        "2026-03-28T22:59:59Z",  # 23:59:59 CET on 28 March
        "2026-03-28T23:00:00Z",  # 00:00 CET on 29 March
        "2026-03-29T21:59:59Z",  # 23:59:59 CEST on 29 March
        "2026-03-29T22:00:00Z",  # 00:00 CEST on 30 March
    )
    berlin = ZoneInfo("Europe/Berlin")
    assert _ids(server_env, berlin, date_from="2026-03-29", date_to="2026-03-29") == {first, last}
    assert _ids(server_env, berlin, date_to="2026-03-28") == {before}
    assert _ids(server_env, berlin, date_from="2026-03-30") == {after}


def test_party_presence_is_counted_on_local_days(server_env: ServerEnv) -> None:
    _push_at(server_env, "2026-05-01T23:30:00Z", role="party_member", track_id=4)
    with server_env.database.session() as db:
        user = _reviewer(db)

        def days(tz: ZoneInfo) -> set[tuple[str, date]]:
            may = (date(2026, 5, 1), date(2026, 5, 2))
            found = queries.party_presence(
                db, user=user, site="site-a", start=may[0], end=may[1], tz=tz
            )
            return set(found)

        assert days(SHANGHAI) == {("site-a", date(2026, 5, 2))}  # 07:30 on 2 May
        assert days(ZoneInfo("UTC")) == {("site-a", date(2026, 5, 1))}
        only_1_may = queries.party_presence(
            db, user=user, site=None, start=date(2026, 5, 1), end=date(2026, 5, 1), tz=SHANGHAI
        )
        assert only_1_may == {}
