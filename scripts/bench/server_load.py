#!/usr/bin/env python3
"""Load benchmark of the server's ingest API with N concurrent simulated edge devices.

Starts ``sitewatch server run`` (uvicorn, one process) on 127.0.0.1 with a free port
against a fresh database (a temporary SQLite file, and/or a fresh schema on the
PostgreSQL server), registers N devices, and lets each device push event lifecycles
(start, update, end: three PUTs each, optionally a JPEG snapshot) as fast as the server
answers, for a bounded time. Prints sustained ingests per second and latency percentiles.

    .venv/bin/python -m scripts.bench.server_load --backend both --devices 16 --duration-s 15

Client and server share this machine's CPU, so the numbers are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np

from scripts.common import PROJECT_ROOT as ROOT
from sitewatch.server.db.session import Database, make_engine
from sitewatch.server.services import admin

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MAX_DEVICES, MAX_DURATION_S = 256, 120.0
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 2000 + b"\xff\xd9"


@dataclass
class Stats:
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, devices: int) -> list[str]:
    """Migrate the database and register ``devices`` devices; returns their tokens."""
    database = Database(make_engine(url))
    database.migrate()
    with database.session() as db:
        admin.create_site(db, actor=None, site_id="bench")
        tokens = [
            admin.create_device(db, actor=None, site_id="bench", name=f"dev-{i}").token
            for i in range(devices)
        ]
    database.dispose()
    return tokens


def start_server(url: str, data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        SITEWATCH_DATABASE_URL=url,
        SITEWATCH_DATA_DIR=str(data_dir),
        SITEWATCH_LOG_LEVEL="WARNING",
        SITEWATCH_ENABLE_UI="false",
    )
    command = [sys.executable, "-m", "sitewatch.cli", "server", "run", "--port", str(port)]
    command += ["--workers", str(workers)]
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def wait_healthy(base_url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base_url) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server at {base_url} not healthy within {timeout_s} s")


def lifecycle(camera: str) -> list[dict[str, object]]:
    event_id = str(uuid.uuid4())
    start = datetime.now(UTC)
    base: dict[str, object] = {
        "event_id": event_id,
        "site_id": "bench",
        "camera_id": camera,
        "rule": "no_helmet",
        "severity": "high",
        "track_id": 1,
        "helmet_state": "bare",
        "started_at": start.isoformat(),
        "bbox_xyxy": [1.0, 2.0, 30.0, 90.0],
    }
    update = dict(base, phase="update", updated_at=(start + timedelta(seconds=1)).isoformat())
    end = dict(base, phase="end", ended_at=(start + timedelta(seconds=2)).isoformat())
    return [dict(base, phase="start"), update, end]


async def device_loop(
    base_url: str, token: str, index: int, stop_at: float, snapshot: bool, stats: Stats
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0) as client:
        while time.monotonic() < stop_at:
            for body in lifecycle(f"cam-{index}"):
                await timed(client.put(f"/api/v1/events/{body['event_id']}", json=body), stats)
                if snapshot and body["phase"] == "start":
                    files = {"file": ("s.jpg", JPEG, "image/jpeg")}
                    url = f"/api/v1/events/{body['event_id']}/media/snapshot"
                    await timed(client.put(url, files=files), stats, kind="media")


async def timed(request: object, stats: Stats, kind: str = "event") -> None:
    begin = time.perf_counter()
    try:
        response = await request  # type: ignore[misc]
    except httpx.HTTPError as exc:
        stats.error(f"{kind}: {type(exc).__name__}")
        return
    if response.status_code >= 300:
        stats.error(f"{kind}: HTTP {response.status_code}")
        return
    stats.latencies_s.append(time.perf_counter() - begin)


async def run_load(base_url: str, tokens: list[str], duration_s: float, snapshot: bool) -> Stats:
    stats = Stats()
    stop_at = time.monotonic() + duration_s
    await asyncio.gather(
        *(device_loop(base_url, t, i, stop_at, snapshot, stats) for i, t in enumerate(tokens))
    )
    return stats


def bench(backend: str, url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-") as tmp:
        tokens = prepare(url, args.devices)
        port = free_port()
        server = start_server(url, Path(tmp), port, args.workers)
        base_url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_healthy(base_url))
            began = time.perf_counter()
            stats = asyncio.run(run_load(base_url, tokens, args.duration_s, args.snapshot))
            elapsed_s = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(backend, args, stats, elapsed_s)


def report(backend: str, args: argparse.Namespace, stats: Stats, elapsed_s: float) -> None:
    lat_ms = np.array(stats.latencies_s) * 1000.0
    done = len(lat_ms)
    p50, p95, p99 = (np.percentile(lat_ms, q) if done else float("nan") for q in (50, 95, 99))
    what = "event PUTs + snapshot uploads" if args.snapshot else "event PUTs"
    print(
        f"{backend:8s} workers={args.workers} devices={args.devices:3d} duration={elapsed_s:5.1f}s "
        f"ok={done} ({what}) -> {done / elapsed_s:7.1f} ingests/s, "
        f"latency p50={p50:6.1f} ms p95={p95:6.1f} ms p99={p99:6.1f} ms, "
        f"errors={stats.errors or 0}"
    )


def pg_schema_url(pg_url: str) -> tuple[str, str]:
    schema = f"sw_bench_{secrets.token_hex(4)}"
    options = quote(f"-c search_path={schema} -c timezone=UTC")
    separator = "&" if "?" in pg_url else "?"
    return schema, f"{pg_url}{separator}options={options}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--snapshot", action="store_true", help="also upload a JPEG per event")
    parser.add_argument("--pg-url", default=os.environ.get("SITEWATCH_TEST_PG_URL", DEFAULT_PG_URL))
    args = parser.parse_args()
    if not 1 <= args.devices <= MAX_DEVICES or not 1 <= args.duration_s <= MAX_DURATION_S:
        parser.error(f"--devices within 1..{MAX_DEVICES}, --duration-s within 1..{MAX_DURATION_S}")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="sitewatch-bench-db-") as tmp:
            bench("sqlite", f"sqlite:///{tmp}/bench.db", args)
    if args.backend in ("postgres", "both"):
        bench_postgres(args)


def bench_postgres(args: argparse.Namespace) -> None:
    from sqlalchemy import text

    schema, url = pg_schema_url(args.pg_url)
    engine = make_engine(args.pg_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        bench("postgres", url, args)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


if __name__ == "__main__":
    main()
