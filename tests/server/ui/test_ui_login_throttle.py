"""The login pause as a person meets it in the UI: a page in the UI's language that says
when to try again (not the API's JSON), with Retry-After; other users log in meanwhile."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from ui_seed import PASSWORD, seed_accounts

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LIMIT = 3


@pytest.fixture
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-throttle")
    settings = Settings(
        data_dir=root,
        media_dir=root / "media",
        session_secret=SecretStr("throttle-" + uuid.uuid4().hex),
        login_max_failures=LIMIT,
    )
    app = create_app(settings)
    seed_accounts(app)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def _try(client: TestClient, username: str, password: str, lang: str = "") -> httpx.Response:
    page = client.get(f"/ui/login{lang}")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post(
        f"/ui/login{lang}",
        data={"username": username, "password": password, "csrf_token": token, "next": ""},
        follow_redirects=False,
    )


def test_a_paused_login_gets_a_page_that_says_when(client: TestClient) -> None:
    for _ in range(LIMIT):
        assert _try(client, "rev-a", "wrong").status_code == 401
    paused = _try(client, "rev-a", PASSWORD)
    assert paused.status_code == 429
    text = paused.text
    assert "登录失败次数过多，请在 5 分钟后再试" in text and '{"detail"' not in text
    assert 0 < int(paused.headers["Retry-After"]) <= 300
    english = _try(client, "rev-a", PASSWORD, "?lang=en")
    assert "Too many failed logins: try again in 5 min" in english.text
    other = _try(client, "rev-b", PASSWORD)
    assert other.status_code == 303
