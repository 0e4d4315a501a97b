"""A real ``sitewatch server run`` in a child process, for probes that must read the
server's own memory or kill it: set up through the CLI as an operator would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ADMIN_PASSWORD = "correct-horse-1"
#: The console script installed beside this interpreter, as an operator runs it.
SITEWATCH = str(Path(sys.executable).with_name("sitewatch"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SITEWATCH, "server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@dataclass
class ServerProcess:
    """One server process on a data folder; start and kill it as often as needed."""

    data_dir: Path
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "SITEWATCH_DATA_DIR": str(self.data_dir),
            "SITEWATCH_ENABLE_UI": "false",
            "SITEWATCH_PORT": str(self.port),
            "SITEWATCH_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        if self.database_url:
            env["SITEWATCH_DATABASE_URL"] = self.database_url
        return env

    def init(self, site_id: str) -> str:
        """Create the admin and one device of ``site_id``; return the device token."""
        cli({**self.env, "SITEWATCH_ADMIN_PASSWORD": ADMIN_PASSWORD}, "init")
        return cli(self.env, "add-device", "--site", site_id, "--name", "box-1").stdout.strip()

    def start(self, *args: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [SITEWATCH, "server", "run", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"server exited; see {self.data_dir}/server.log"
            assert time.monotonic() < deadline, "server did not answer /healthz in 60 s"
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                child.send_signal(signal.SIGKILL)
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def rss_bytes(self) -> int:
        """Resident memory of the server and its worker processes."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])

    def login(self) -> httpx.Client:
        client = httpx.Client(base_url=self.base, timeout=30)
        answer = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        return client


@contextmanager
def peak_rss(server: ServerProcess, every_s: float = 0.02) -> Iterator[list[int]]:
    """Sample the server's RSS while the block runs; the list ends as [idle, peak]."""
    idle = server.rss_bytes()
    peak = [idle]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], server.rss_bytes())
            except psutil.Error:
                return
            time.sleep(every_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result: list[int] = []
    try:
        yield result
    finally:
        done.set()
        sampler.join(5)
        result.extend([idle, peak[0]])
