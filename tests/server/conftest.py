"""Server test harness: one app per test on a fresh database, SQLite or PostgreSQL.

``server_env`` is parametrised over both back ends. SQLite copies a migrated template
file per test; PostgreSQL migrates a schema of its own once per run (dropped at the end)
and truncates every table before each test. PostgreSQL tests skip with the reason when
the server at 127.0.0.1:5432 cannot be reached (override with SITEWATCH_TEST_PG_URL).
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from sitewatch.server.app import create_app
from sitewatch.server.db.models import Role
from sitewatch.server.db.session import Database, make_engine
from sitewatch.server.db.tables import Base
from sitewatch.server.services import admin
from sitewatch.server.settings import Settings
from tests.server import request_tally

PG_URL = os.environ.get(
    "SITEWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PASSWORD = "correct-horse-1"


def _pg_database(schema: str) -> Database:
    options = f"-c search_path={schema} -c timezone=UTC"
    return Database(make_engine(PG_URL, pool_size=5, connect_args={"options": options}))


@contextmanager
def fresh_pg_schema(prefix: str = "sw_test") -> Iterator[str]:
    """A new empty PostgreSQL schema, dropped afterwards; skips the test if PostgreSQL
    is unreachable."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
    try:
        admin_engine = make_engine(PG_URL, connect_args={"connect_timeout": 3})
        with admin_engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {str(exc).splitlines()[0]}")
    try:
        yield schema
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema migrated to head, dropped after the run."""
    with fresh_pg_schema() as schema:
        database = _pg_database(schema)
        database.migrate()
        database.dispose()
        yield schema


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    database = Database.from_url(f"sqlite:///{path}")
    database.migrate()
    database.dispose()
    return path


def fresh_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "sitewatch.db"
        shutil.copy(template, target)
        return Database.from_url(f"sqlite:///{target}")
    schema: str = request.getfixturevalue("pg_schema")
    database = _pg_database(schema)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return database


@dataclass
class ServerEnv:
    """An app on a fresh database plus helpers to make sites, devices and users."""

    app: FastAPI
    settings: Settings
    database: Database
    backend: str
    clients: list[TestClient] = field(default_factory=list)

    def client(self, headers: dict[str, str] | None = None) -> TestClient:
        client = TestClient(self.app, headers=headers)
        self.clients.append(client)
        return client

    def site(self, site_id: str) -> None:
        with self.database.session() as db:
            admin.ensure_site(db, actor=None, site_id=site_id)

    def device(self, site_id: str, name: str = "box-1") -> TestClient:
        """A client carrying the bearer token of a new device of ``site_id``."""
        self.site(site_id)
        with self.database.session() as db:
            new = admin.create_device(db, actor=None, site_id=site_id, name=name)
        client = self.client({"Authorization": f"Bearer {new.token}"})
        client.device_id = new.device.id
        return client

    def user(self, username: str, role: Role, sites: list[str] | None = None) -> TestClient:
        """A logged-in client; its ``X-CSRF-Token`` header is set (pop it to test CSRF)."""
        for site_id in sites or []:
            self.site(site_id)
        with self.database.session() as db:
            admin.create_user(
                db,
                actor=None,
                username=username,
                password=PASSWORD,
                role=role,
                site_ids=sites or [],
            )
        client = self.client()
        answer = client.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        return client


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "migrate_on_start": False,
        "enable_ui": False,
        "max_snapshot_bytes": 64 * 1024,
        "max_face_bytes": 64 * 1024,
        "max_evidence_bytes": 64 * 1024,
        "max_clip_bytes": 512 * 1024,
        # The fixtures' events are dated 2026-05-01: keep them inside the accepted window
        # whenever the tests run (the window itself is tested with its default).
        "event_max_age_days": 36500,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerEnv]:
    database = fresh_database(request.param, request, tmp_path)
    settings = make_settings(tmp_path)
    app = create_app(settings, database=database)
    env = ServerEnv(app=app, settings=settings, database=database, backend=request.param)
    yield env
    for client in env.clients:
        client.close()
    request_tally.add_app(app)
    database.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in request_tally.summary():
        terminalreporter.write_line(line)


def event_json(site_id: str, **fields: Any) -> dict[str, Any]:
    """An ingest body (``edge.events.Event`` as JSON) with a new event id."""
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "phase": "start",
        "site_id": site_id,
        "camera_id": "cam-1",
        "rule": "no_helmet",
        "severity": "high",
        "track_id": 7,
        "helmet_state": "bare",
        "started_at": datetime(2026, 5, 1, 8, 0, tzinfo=UTC).isoformat(),
        "bbox_xyxy": [10.0, 20.0, 110.0, 300.0],
        "frame_wh": [1280, 720],
    }
    body.update(fields)
    return body


def post_event(device: TestClient, body: dict[str, Any]) -> Any:
    return device.put(f"/api/v1/events/{body['event_id']}", json=body)


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A real JPEG encoded by OpenCV (64x48, a gradient)."""
    image = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    ok, encoded = cv2.imencode(".jpg", cv2.merge([image, image, image]))
    assert ok
    return encoded.tobytes()


def write_clip(target: str | io.BytesIO, codec: str = "libx264", **options: str) -> None:
    """10 frames of 64x48 as an MP4 encoded with ``codec`` (FFmpeg muxer ``options``)."""
    import av

    with av.open(target, mode="w", format="mp4", options=options) as container:
        stream = container.add_stream(codec, rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(10):
            frame = np.full((48, 64, 3), index * 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="session")
def mp4_bytes() -> bytes:
    """A real H.264 MP4 clip written with PyAV's libx264, as the edge writes its clips
    (the server refuses other codecs)."""
    buffer = io.BytesIO()
    write_clip(buffer)
    return buffer.getvalue()


def let_deadline_pass(database: Database, event_id: str, *, days_ago: float = 2.0) -> None:
    """Move a hazard's deadline into the past, as if time had passed (nobody may set a
    deadline in the past)."""
    from sitewatch.server.db.models import Hazard

    with database.session() as db:
        hazard = db.scalar(select(Hazard).where(Hazard.event_id == uuid.UUID(event_id)))
        assert hazard is not None, f"event {event_id} has no hazard"
        hazard.deadline = datetime.now(UTC) - timedelta(days=days_ago)
        db.commit()
