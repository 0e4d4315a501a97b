"""Fixtures of the browser tests: one real server (uvicorn in a thread, temp SQLite and
media folder) seeded through the core's services and ingest API, and Debian's chromium."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parent))

from ui_harness import chromium_browser, live_server
from ui_media_files import make_event_media
from ui_seed import Seeded, make_overdue, seed_accounts, seed_events


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    from sitewatch.server.app import create_app
    from sitewatch.server.settings import Settings

    root = tmp_path_factory.mktemp("ui-server")
    settings = Settings(
        data_dir=root,
        database_url=f"sqlite:///{root / 'ui.db'}",
        media_dir=root / "media",
        session_secret=SecretStr("ui-test-secret-" + uuid.uuid4().hex),
    )
    app = create_app(settings)
    media = make_event_media(root / "source-media")
    tokens = seed_accounts(app)
    with live_server(app) as base_url:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            events = seed_events(client, tokens, media)
        make_overdue(app, events["a_overdue"])
        yield Seeded(base_url=base_url, media=media, events=events)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser
