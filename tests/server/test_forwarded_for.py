"""Defect 12 of the issue-15 probe: X-Forwarded-For was believed from 127.0.0.1 (uvicorn's
default), so a client on the box could rotate the header and never meet the login throttle.
The server is reached over real HTTP here, served with the commands' uvicorn options."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sitewatch.server.app import create_app
from sitewatch.server.settings import Settings, SettingsError, load_settings
from tests.server.conftest import ServerEnv, make_settings
from tests.server.live_server import serving

MAX_FAILURES = 3


def _failed_logins(base: str, forwarded_for: list[str]) -> list[int]:
    """One wrong password per address, each for a new user name (only the address key
    can trip the throttle), each on a new connection."""
    codes = []
    for n, address in enumerate(forwarded_for):
        answer = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"username": f"nobody-{n}", "password": "wrong-password"},
            headers={"X-Forwarded-For": address},
            timeout=30,
        )
        codes.append(answer.status_code)
    return codes


def test_forwarded_for_is_ignored_without_trusted_proxies(
    server_env: ServerEnv, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, login_max_failures_per_address=MAX_FAILURES)
    app = create_app(settings, database=server_env.database)
    rotating = [f"203.0.113.{n}" for n in range(MAX_FAILURES + 2)]
    with serving(app) as base:
        codes = _failed_logins(base, rotating)
    # All came from 127.0.0.1 whatever the header says: the throttle holds.
    assert codes[:MAX_FAILURES] == [401] * MAX_FAILURES
    assert codes[MAX_FAILURES:] == [429, 429]


def test_a_configured_proxy_is_believed_and_its_clients_are_throttled_apart(
    server_env: ServerEnv, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, login_max_failures_per_address=MAX_FAILURES, trusted_proxies=["127.0.0.0/8"]
    )
    app = create_app(settings, database=server_env.database)
    with serving(app) as base:
        attacker = _failed_logins(base, ["198.51.100.7"] * (MAX_FAILURES + 1))
        # Another client behind the same proxy is not locked out by the first one.
        neighbour = _failed_logins(base, ["198.51.100.8"])
    assert attacker == [401] * MAX_FAILURES + [429]
    assert neighbour == [401]


def test_a_malformed_trusted_proxy_is_a_clear_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("trusted_proxies: ['10.0.0.0/33']\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"trusted_proxies.*10\.0\.0\.0/33"):
        load_settings(config)
    assert Settings(trusted_proxies=["10.0.0.5", "fd00::/8"]).trusted_proxies
