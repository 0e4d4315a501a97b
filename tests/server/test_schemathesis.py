"""Property-based run over the OpenAPI spec (in-process ASGI): no request may get a 5xx.

Requests carry an admin session cookie, its CSRF token and a device bearer token, so the
generated cases reach past authentication into the handlers. The example count per
operation is bounded to keep the whole run well under a minute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import update

from sitewatch.server.app import create_app
from sitewatch.server.db.models import Device, User
from sitewatch.server.db.session import Database
from tests.server import request_tally
from tests.server.conftest import (
    PASSWORD,
    event_json,
    fresh_database,
    make_settings,
    post_event,
)

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 10


class Fuzzed:
    def __init__(self, app: Any, database: Database, headers: dict[str, str]) -> None:
        self.app, self.database, self.headers = app, database, headers
        self.statuses: Counter[int] = Counter()

    def restore(self) -> None:
        """Undo what an earlier case may have done to the credentials (revoke, disable)."""
        with self.database.session() as db:
            db.execute(update(User).values(is_active=True))
            db.execute(update(Device).values(is_active=True))
            db.commit()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzzed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fuzzed]:
    from sitewatch.server.db.models import Role
    from sitewatch.server.services import admin

    database = fresh_database(request.param, request, tmp_path)
    app = create_app(make_settings(tmp_path), database=database)
    with database.session() as db:
        admin.create_site(db, actor=None, site_id="site-a")
        token = admin.create_device(db, actor=None, site_id="site-a", name="box").token
        admin.create_user(db, actor=None, username="root", password=PASSWORD, role=Role.ADMIN)
    client = TestClient(app)
    login = client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    device = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    for _ in range(3):
        post_event(device, event_json("site-a"))
    headers = {
        "Authorization": f"Bearer {token}",
        "X-CSRF-Token": login.json()["csrf_token"],
        "Cookie": f"sitewatch_session={login.cookies['sitewatch_session']}",
    }
    yield Fuzzed(app, database, headers)
    client.close()
    device.close()
    request_tally.add_app(app)
    database.dispose()


def _operations(fuzzed: Fuzzed) -> list[Any]:
    schema: Any = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    schema = schema.exclude(path="/api/v1/auth/logout")  # would end the fuzzing session
    return [result.ok() for result in schema.get_all_operations()]  # raises on a bad spec


def _fuzz(operation: Any, fuzzed: Fuzzed) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        fuzzed.restore()
        response = case.call(headers=fuzzed.headers)
        fuzzed.statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])

    run()


def test_no_server_errors(fuzzed: Fuzzed) -> None:
    """Every operation, a bounded number of generated requests each; collect all 5xx."""
    failures: list[str] = []
    operations = _operations(fuzzed)
    assert len(operations) > 20

    for operation in operations:
        try:
            _fuzz(operation, fuzzed)
        except Exception as exc:  # a 5xx (check failure) or an exception out of the app
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The credentials work: most answers are not authentication failures.
    answered = sum(fuzzed.statuses.values())
    assert sum(n for code, n in fuzzed.statuses.items() if code < 300) > answered // 5, (
        fuzzed.statuses
    )
