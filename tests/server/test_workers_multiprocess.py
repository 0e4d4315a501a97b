"""Several server processes on one PostgreSQL database (issue 15): a real
``sitewatch server run --workers 2``, set up with ``sitewatch server init``, driven over
HTTP with a new connection per request so that both workers answer.

Each answer is traced to the worker process that holds its connection (psutil), so the
tests can insist that both processes took part: a per-process throttle or session
store would pass a test that happened to reach one worker only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from sitewatch.server.db.models import EventRecord
from sitewatch.server.db.session import Database
from tests.server.conftest import PG_URL, event_json, fresh_pg_schema
from tests.server.server_process import ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.postgres

SITE = "site-mp"
MAX_FAILURES = 4


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema (search_path), dropped afterwards."""
    with fresh_pg_schema("sw_mp") as schema:
        url = make_url(PG_URL).update_query_dict({"options": f"-c search_path={schema}"})
        yield url.render_as_string(hide_password=False)


class Cluster:
    """The running server, its device token and who answered what."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.server = server
        self.token = token

    def worker_of(self, response: httpx.Response) -> int:
        """The pid of the worker process holding the connection ``response`` came on."""
        assert self.server.process is not None
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        for child in psutil.Process(self.server.process.pid).children(recursive=True):
            for conn in child.net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == client_port:
                    return child.pid
        raise AssertionError(f"no worker holds the connection from port {client_port}")

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, int]:
        """One request on a connection of its own; the answer and the worker's pid."""
        with httpx.Client(base_url=self.server.base, timeout=30) as client:
            response = client.request(method, path, **kwargs)
            return response, self.worker_of(response)


@pytest.fixture(scope="module")
def cluster(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    server = ServerProcess(
        data_dir=tmp_path_factory.mktemp("multiprocess") / "data",
        database_url=pg_url,
        extra_env={
            "SITEWATCH_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
            "SITEWATCH_LOGIN_WINDOW_S": "600",
        },
    )
    token = server.init(SITE)
    try:
        server.start("--workers", "2")
        yield Cluster(server, token)
    finally:
        server.kill()


def _login(cluster: Cluster, password: str) -> tuple[httpx.Response, int]:
    return cluster.request(
        "POST", "/api/v1/auth/login", json={"username": "admin", "password": password}
    )


def test_a_session_works_on_every_worker(cluster: Cluster) -> None:
    answer, _ = _login(cluster, ADMIN_PASSWORD)
    assert answer.status_code == 200, answer.text
    cookie = "; ".join(f"{name}={value}" for name, value in answer.cookies.items())
    headers = {"Cookie": cookie, "X-CSRF-Token": answer.json()["csrf_token"]}
    pids = set()
    for _ in range(30):
        me, pid = cluster.request("GET", "/api/v1/auth/me", headers=headers)
        assert me.status_code == 200 and me.json()["username"] == "admin", me.text
        pids.add(pid)
        if len(pids) == 2:
            break
    assert len(pids) == 2, "one worker answered every request"

    logout, _ = cluster.request("POST", "/api/v1/auth/logout", headers=headers)
    assert logout.status_code == 204, logout.text
    pids = set()
    for _ in range(30):
        me, pid = cluster.request("GET", "/api/v1/auth/me", headers=headers)
        assert me.status_code == 401, me.text  # ended for every process
        pids.add(pid)
        if len(pids) == 2:
            break
    assert len(pids) == 2


def test_the_same_event_posted_to_both_workers_at_once_is_one_event(
    cluster: Cluster, pg_url: str
) -> None:
    headers = {"Authorization": f"Bearer {cluster.token}"}
    senders = 8
    pids: set[int] = set()
    for _ in range(3):
        body = event_json(SITE, started_at=datetime.now(UTC).isoformat())
        start = threading.Barrier(senders)
        answers: list[tuple[int, int]] = []

        def send(
            body: dict[str, Any] = body,
            start: threading.Barrier = start,
            answers: list[tuple[int, int]] = answers,
        ) -> None:
            with httpx.Client(base_url=cluster.server.base, timeout=30) as client:
                client.get("/healthz")  # connect first, then all send together
                start.wait(10)
                url = f"/api/v1/events/{body['event_id']}"
                response = client.put(url, json=body, headers=headers)
                answers.append((response.status_code, cluster.worker_of(response)))

        threads = [threading.Thread(target=send) for _ in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        codes = sorted(code for code, _ in answers)
        assert codes == [200] * (senders - 1) + [201], codes
        pids |= {pid for _, pid in answers}

    database = Database.from_url(pg_url)
    try:
        with database.session() as db:
            assert db.scalar(select(func.count()).select_from(EventRecord)) == 3
    finally:
        database.dispose()
    assert len(pids) == 2, "one worker answered every request"


def test_the_login_throttle_holds_across_workers(cluster: Cluster) -> None:
    """Runs last: afterwards 127.0.0.1 may not log in for the window."""
    codes = []
    for _ in range(3 * MAX_FAILURES):
        answer, _ = _login(cluster, "wrong password")
        codes.append(answer.status_code)
        if answer.status_code == 429:
            break
    # With a throttle per process, failures spread over two workers would allow more.
    assert codes == [401] * MAX_FAILURES + [429], codes

    pids = set()
    for _ in range(30):
        answer, pid = _login(cluster, ADMIN_PASSWORD)  # even the right password waits
        assert answer.status_code == 429 and "try again" in answer.json()["detail"], answer.text
        pids.add(pid)
        if len(pids) == 2:
            break
    assert len(pids) == 2, "one worker answered every request"


def test_data_dir_holds_one_session_key(cluster: Cluster) -> None:
    """The key that signs session cookies was made once, before the workers started."""
    keys = list(Path(cluster.server.data_dir).glob("session.key"))
    assert len(keys) == 1
