#!/usr/bin/env python3
"""Response times of the review pages with a realistic amount of data (issue 18).

Fills a fresh database (a temporary SQLite file, and/or a fresh schema on the
PostgreSQL server) with N events across M sites over the last ``--days`` days: verdicts
(about half confirmed, a fifth dismissed), rectifications in every state with deadlines
(some overdue), party members and red helmets, and media rows (snapshot for every event,
a clip for half; no files: the pages only read the rows). Then times, through the real
app (FastAPI's TestClient, in process), the median of ``--repeat`` requests after one
warm-up request of: the event list, the list filtered to "overdue", an event page, the
dashboard (default two weeks, and the whole period) and one dashboard CSV, as an admin
(all sites) and as a reviewer of one site. Prints one table; the aim is under 1 s each.

    .venv/bin/python -m scripts.bench.review_pages --backend both --events 10000 --sites 50
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import insert, text

from sitewatch.contract.events import RuleKind
from sitewatch.server.app import create_app
from sitewatch.server.db.models import (
    DismissReason,
    EventRecord,
    EventStatus,
    Hazard,
    HazardStatus,
    Media,
    MediaKind,
    ReviewStatus,
    Role,
)
from sitewatch.server.db.session import Database, make_engine
from sitewatch.server.localtime import local_day
from sitewatch.server.services import admin
from sitewatch.server.settings import Settings

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "bench-password-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HAZARD_RULES = [r.value for r in RuleKind if r.is_hazard]
BATCH = 2000
AIM_S = 1.0


@dataclass(frozen=True)
class Timing:
    backend: str
    user: str
    page: str
    median_s: float
    min_s: float
    max_s: float
    size: int


@contextmanager
def sqlite_database() -> Iterator[Database]:
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as folder:
        database = Database(make_engine(f"sqlite:///{Path(folder) / 'bench.db'}"))
        database.migrate()
        try:
            yield database
        finally:
            database.dispose()


@contextmanager
def postgres_database(url: str) -> Iterator[Database]:
    """A fresh schema of its own on the PostgreSQL server, dropped afterwards."""
    schema = f"sw_bench_{secrets.token_hex(4)}"
    owner = make_engine(url, connect_args={"connect_timeout": 5})
    with owner.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    options = f"-c search_path={schema} -c timezone=UTC"
    database = Database(make_engine(url, connect_args={"options": options}))
    try:
        database.migrate()
        yield database
    finally:
        database.dispose()
        with owner.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        owner.dispose()


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def fill(database: Database, *, events: int, sites: int, days: int, now: datetime) -> str:
    """Sites, two users, ``events`` events with verdicts, rectifications and media rows;
    returns the id of an event of the first site (confirmed, with a rectification)."""
    rng = random.Random(18)
    site_ids = [f"site-{n:03d}" for n in range(sites)]
    with database.session() as db:
        for number, site in enumerate(site_ids):
            admin.create_site(db, actor=None, site_id=site, name=f"{number + 1} 号工地")
        admin.create_user(db, actor=None, username="bench-admin", password=PASSWORD,
                          role=Role.ADMIN)  # fmt: skip
        admin.create_user(db, actor=None, username="bench-rev", password=PASSWORD,
                          role=Role.REVIEWER, site_ids=[site_ids[0]])  # fmt: skip
    event_rows: list[dict[str, Any]] = []
    hazard_rows: list[dict[str, Any]] = []
    media_rows: list[dict[str, Any]] = []
    sample = ""
    for number in range(events):
        site = site_ids[0] if number < 10 else rng.choice(site_ids)
        started = now - timedelta(seconds=rng.uniform(0, days * 86400))
        rule = "person" if rng.random() < 0.05 else rng.choice(HAZARD_RULES)
        roll = rng.random()
        review = (
            ReviewStatus.PENDING
            if roll < 0.3
            else ReviewStatus.DISMISSED
            if roll < 0.5
            else ReviewStatus.CONFIRMED
        )
        event_id = uuid.uuid4()
        camera = f"cam-{rng.randrange(4)}"
        party = rng.random() < 0.06
        event_rows.append(
            {
                "event_id": event_id, "site_id": site, "camera_id": camera, "rule": rule,
                "severity": "high", "phase": "end", "status": EventStatus.ENDED,
                "track_id": rng.randrange(1, 500), "helmet_state": "helmet",
                "helmet_colour": "red" if party or rng.random() < 0.03 else "white",
                "role": "party_member" if party else "worker",
                "worker_id": f"W{rng.randrange(300)}" if rng.random() < 0.3 else None,
                "confidence": 0.8, "bbox_xyxy": [10.0, 20.0, 110.0, 300.0],
                "frame_wh": [1280, 720], "started_at": started,
                "ended_at": started + timedelta(seconds=8), "received_at": started,
                "last_received_at": started, "review_status": review,
                "dismiss_reason": DismissReason.WRONG_CLASS
                if review == ReviewStatus.DISMISSED else None,
                "reviewed_at": started + timedelta(hours=1)
                if review != ReviewStatus.PENDING else None,
            }
        )  # fmt: skip
        for kind, type_, size in (
            (MediaKind.SNAPSHOT, "image/jpeg", 90_000),
            (MediaKind.CLIP, "video/mp4", 2_400_000),
        ):
            if kind == MediaKind.CLIP and rng.random() < 0.5:
                continue
            media_rows.append(
                {
                    "event_id": event_id, "kind": kind, "content_type": type_,
                    "stored_name": f"{site}/{event_id}/{kind.value}.bin",
                    "size_bytes": size, "sha256": "0" * 64, "created_at": started,
                }
            )  # fmt: skip
        if review == ReviewStatus.CONFIRMED and rule != "person" and rng.random() < 0.8:
            status = rng.choice(list(HazardStatus))
            deadline = started + timedelta(days=3)
            decided = (
                deadline + timedelta(days=rng.uniform(-2.5, 2))
                if status in (HazardStatus.ACCEPTED, HazardStatus.REJECTED)
                else None
            )
            hazard_rows.append(
                {
                    "event_id": event_id, "site_id": site, "responsible": "张工",
                    "deadline": deadline, "status": status, "decided_at": decided,
                    "evidence_at": decided, "created_at": started + timedelta(hours=1),
                    "updated_at": decided or started,
                }
            )  # fmt: skip
            if site == site_ids[0] and not sample:
                sample = str(event_id)
    with database.session() as db:
        for table, rows in ((EventRecord, event_rows), (Hazard, hazard_rows), (Media, media_rows)):
            for batch in _batches(rows):
                db.execute(insert(table), batch)
        db.commit()
    if database.engine.dialect.name == "postgresql":
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return sample or str(event_rows[0]["event_id"])


def _login(client: TestClient, username: str) -> None:
    token = CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/ui/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": ""},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"login of {username} failed: {answer.status_code}")


def _time(client: TestClient, url: str, repeat: int) -> tuple[list[float], int]:
    answer = client.get(url)  # warm-up (template compilation, caches)
    if answer.status_code != 200:
        raise RuntimeError(f"GET {url}: {answer.status_code} {answer.text[:300]}")
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - begin)
        assert answer.status_code == 200, (url, answer.status_code)
    return times, len(answer.content)


def run_backend(backend: str, database: Database, args: argparse.Namespace) -> list[Timing]:
    now = datetime.now(UTC)
    began = time.perf_counter()
    sample = fill(database, events=args.events, sites=args.sites, days=args.days, now=now)
    print(f"[{backend}] filled {args.events} events, {args.sites} sites in "
          f"{time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="sw-bench-app-") as folder:
        settings = Settings(
            data_dir=Path(folder),
            media_dir=Path(folder) / "media",
            session_secret=SecretStr("bench-" + secrets.token_hex(8)),
            migrate_on_start=False,
            log_level="WARNING",
        )
        app = create_app(settings, database=database)
        today = local_day(now, settings.zone)
        whole = f"date_from={(today - timedelta(days=args.days)).isoformat()}&date_to={today}"
        pages = [
            ("event list", "/ui/events"),
            ("list: overdue", "/ui/events?status=overdue"),
            ("event page", f"/ui/events/{sample}"),
            ("dashboard (14 d)", "/ui/dashboard"),
            (f"dashboard ({args.days + 1} d)", f"/ui/dashboard?{whole}"),
            (f"dashboard CSV ({args.days + 1} d)", f"/ui/dashboard.csv?chart=ranking&{whole}"),
        ]
        timings = []
        for user in ("bench-admin", "bench-rev"):
            with TestClient(app, base_url="http://bench") as client:
                _login(client, user)
                for name, url in pages:
                    times, size = _time(client, url, args.repeat)
                    timings.append(Timing(backend, user, name, statistics.median(times),
                                          min(times), max(times), size))  # fmt: skip
    return timings


def print_table(timings: list[Timing], args: argparse.Namespace) -> None:
    print(f"\n{args.events} events, {args.sites} sites, {args.days} days; median of "
          f"{args.repeat} requests after one warm-up (TestClient, in process)")  # fmt: skip
    header = f"{'backend':<9}{'user':<13}{'page':<24}{'median ms':>10}{'min':>8}{'max':>8}"
    print(header + f"{'KiB':>8}  aim")
    print("-" * (len(header) + 13))
    for t in timings:
        verdict = "ok" if t.median_s < AIM_S else "SLOW"
        print(
            f"{t.backend:<9}{t.user:<13}{t.page:<24}{t.median_s * 1000:>10.0f}"
            f"{t.min_s * 1000:>8.0f}{t.max_s * 1000:>8.0f}{t.size / 1024:>8.0f}  {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--days", type=int, default=60, help="the events' period, up to now")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    if not (1 <= args.sites <= 1000 and 1 <= args.events <= 1_000_000 and 1 <= args.days <= 365):
        parser.error("--sites 1..1000, --events 1..1000000, --days 1..365")
    timings: list[Timing] = []
    if args.backend in ("sqlite", "both"):
        with sqlite_database() as database:
            timings += run_backend("sqlite", database, args)
    if args.backend in ("postgres", "both"):
        with postgres_database(args.pg_url) as database:
            timings += run_backend("postgres", database, args)
    print_table(timings, args)
    return 1 if any(t.median_s >= AIM_S for t in timings) else 0


if __name__ == "__main__":
    raise SystemExit(main())
