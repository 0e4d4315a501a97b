"""The real central server for the live edge tests: ``sitewatch server`` in a subprocess
with its own SQLite database and media folder; a device registered with
``sitewatch server add-device``. What arrived is read back from its database and media
store (read-only), so the tests see exactly what the server kept."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PROJECT_ROOT
from tests.rtsp_server import free_port


class RealCentral:
    kind = "real sitewatch server (SQLite)"

    def __init__(self, folder: Path, *, site_id: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.site_id = site_id
        self.port = free_port()
        self.env = {
            **os.environ,
            "SITEWATCH_DATA_DIR": str(folder),
            "SITEWATCH_HOST": "127.0.0.1",
            "SITEWATCH_PORT": str(self.port),
            "SITEWATCH_LOG_LEVEL": "WARNING",
            "SITEWATCH_MIGRATE_ON_START": "false",  # add-device below migrates the database
        }
        self.env.pop("SITEWATCH_DATABASE_URL", None)
        self.env.pop("SITEWATCH_CONFIG", None)
        self.token = self._cli("add-device", "--site", site_id, "--name", "edge-1").strip()
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "server.log"

    def _cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sitewatch.cli", "server", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sitewatch server {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> None:
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "sitewatch.cli", "server", "run"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /healthz")
            time.sleep(0.2)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        db = self.folder / "sitewatch.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return list(conn.execute(sql, params))

    def events(self) -> dict[str, str]:
        rows = self._query("SELECT event_id, phase FROM events WHERE site_id = ?", self.site_id)
        return {str(uuid.UUID(str(eid))): phase for eid, phase in rows}

    def _db_id(self, event_id: str) -> str:
        rows = self._query("SELECT event_id FROM events")
        for (stored,) in rows:
            if str(uuid.UUID(str(stored))) == event_id:
                return str(stored)
        return event_id

    def media(self, event_id: str) -> dict[str, bytes]:
        rows = self._query(
            "SELECT kind, stored_name FROM media WHERE event_id = ?", self._db_id(event_id)
        )
        kinds = [kind for kind, _ in rows]
        assert len(kinds) == len(set(kinds)), f"duplicate media rows for {event_id}: {kinds}"
        return {kind: (self.folder / "media" / name).read_bytes() for kind, name in rows}

    def media_rows(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM media")[0][0])

    def last_heartbeat(self) -> dict[str, Any] | None:
        rows = self._query("SELECT last_heartbeat FROM devices WHERE site_id = ?", self.site_id)
        if not rows or rows[0][0] is None:
            return None
        value = rows[0][0]
        return value if isinstance(value, dict) else json.loads(value)
