"""Defect 9 of issue 15: a full disk. The SQLite database and the media live on a small
tmpfs the test mounts (root only; skipped otherwise): uploads and events answer 507 with
Retry-After (never a 500), /healthz reports the disk, and once space is freed the box's
retries land and nothing acknowledged is lost. PostgreSQL's disk_full is checked by its
SQLSTATE (a PostgreSQL whose disk fills is out of this test's reach)."""

from __future__ import annotations

import errno
import io
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.exc import DataError, OperationalError

from sitewatch.server.app import create_app
from sitewatch.server.db.models import EventRecord
from sitewatch.server.db.session import Database
from sitewatch.server.faults import fault_answer
from sitewatch.server.services import admin
from tests.server import request_tally
from tests.server.conftest import event_json, make_settings

MIB = 1024 * 1024
SITE = "site-a"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """A file that takes all but ``leave`` bytes of ``folder``'s filesystem."""
    filler = folder / "filler.bin"
    with filler.open("ab") as out:
        while (free := shutil.disk_usage(folder).free) > leave:
            try:
                out.write(b"\xff" * min(MIB, free - leave))
                out.flush()
            except OSError:
                break
    return filler


def noise_jpeg(side: int) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_a_full_disk_answers_507_and_loses_nothing(
    small_disk: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = small_disk / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "sitewatch.db")
    database = Database.from_url(f"sqlite:///{data / 'sitewatch.db'}")
    settings = make_settings(
        small_disk, data_dir=data, min_free_disk_bytes=1 * MIB, max_snapshot_bytes=4 * MIB
    )
    with database.session() as db:
        admin.ensure_site(db, actor=None, site_id=SITE)
        token = admin.create_device(db, actor=None, site_id=SITE, name="box-1").token
    app = create_app(settings, database=database)
    box = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    acknowledged: list[str] = []

    def send_event() -> tuple[int, dict[str, object]]:
        body = event_json(SITE)
        answer = box.put(f"/api/v1/events/{body['event_id']}", json=body)
        assert answer.status_code in (201, 507), answer.text
        if answer.status_code == 201:
            acknowledged.append(str(body["event_id"]))
        else:
            assert answer.headers["Retry-After"].isdigit()
            assert "Traceback" not in answer.text and "sqlite" not in answer.text.lower()
        return answer.status_code, body

    def send_snapshot(event_id: str, jpeg: bytes) -> int:
        url = f"/api/v1/events/{event_id}/media/snapshot"
        answer = box.put(url, files={"file": ("s.jpg", jpeg, "image/jpeg")})
        assert answer.status_code in (200, 507), answer.text
        if answer.status_code == 507:
            assert answer.headers["Retry-After"].isdigit()
        return answer.status_code

    try:
        health = box.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["disk"]["media"]["free_bytes"] > 8 * MIB
        assert send_event()[0] == 201

        # Under the reserve: media are refused before writing, events still go in.
        filler = fill(small_disk, leave=512 * 1024)
        health = box.get("/healthz")
        assert health.status_code == 503 and health.json()["disk"]["media"]["free_bytes"] < MIB
        assert send_snapshot(acknowledged[0], noise_jpeg(64)) == 507
        assert send_event()[0] == 201

        # No reserve: the write itself runs out of space (ENOSPC) mid-upload.
        monkeypatch.setattr(settings, "min_free_disk_bytes", 0)
        fill(small_disk, leave=100 * 1024)
        big = noise_jpeg(900)
        assert len(big) > 200 * 1024
        assert send_snapshot(acknowledged[0], big) == 507
        assert not list((data / "media" / ".incoming").glob("*.part")), "a partial upload stayed"

        # Nothing left: SQLite itself cannot write (SQLITE_FULL).
        fill(small_disk, leave=0)
        refused = None
        for _ in range(200):
            status, body = send_event()
            if status == 507:
                refused = body
                break
        assert refused is not None, "200 events went into a full disk"

        filler.unlink()
        assert box.get("/healthz").status_code == 200
        again = box.put(f"/api/v1/events/{refused['event_id']}", json=refused)
        assert again.status_code == 201, again.text
        acknowledged.append(str(refused["event_id"]))
        assert send_snapshot(acknowledged[0], big) == 200
    finally:
        box.close()
        request_tally.add_app(app)
        database.dispose()

    database = Database.from_url(f"sqlite:///{data / 'sitewatch.db'}")
    try:
        with database.session() as db:
            for event_id in acknowledged:
                assert db.get(EventRecord, uuid.UUID(event_id)) is not None, event_id
    finally:
        database.dispose()


def _status(exc: BaseException) -> int | None:
    answer = fault_answer(exc)
    return None if answer is None else answer.status


def test_faults_are_told_apart_from_bugs() -> None:
    full = OperationalError("INSERT", {}, psycopg.errors.DiskFull("could not extend file"))
    gone = OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
    bad = DataError("INSERT", {}, psycopg.errors.NumericValueOutOfRange("out of range"))
    assert _status(full) == 507
    assert _status(gone) == 503
    assert _status(bad) is None  # a bug of the server: a 500, logged with its traceback
    assert _status(OSError(errno.ENOSPC, "No space left on device")) == 507
    assert _status(FileNotFoundError(errno.ENOENT, "gone")) is None
    assert _status(ValueError("a bug")) is None
