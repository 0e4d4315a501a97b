"""Health, metrics, migrations, settings, media keys, logging and the CLI."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from sitewatch.cli import app as cli_app
from sitewatch.server.app import create_app
from sitewatch.server.db.session import Database
from sitewatch.server.db.tables import Base
from sitewatch.server.logging_setup import JsonLineFormatter
from sitewatch.server.media import JPEG, LocalMediaStore, MediaError, check_key, receive_upload
from sitewatch.server.settings import SettingsError, load_settings
from tests.server.conftest import ServerEnv, event_json, make_settings, post_event


def test_healthz_and_metrics(server_env: ServerEnv) -> None:
    client = server_env.client()
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "ok", health
    assert health["disk"]["media"]["free_bytes"] > 0
    if server_env.backend == "sqlite":
        assert health["disk"]["database"]["total_bytes"] > 0
    device = server_env.device("site-a")
    body = event_json("site-a")
    post_event(device, body)
    post_event(device, body)
    text = client.get("/metrics").text
    assert 'sitewatch_ingest_total{kind="event",outcome="created"} 1.0' in text
    assert 'sitewatch_ingest_total{kind="event",outcome="updated"} 1.0' in text
    assert 'route="/api/v1/events/{event_id}"' in text  # templated, not one label per id
    assert "sitewatch_http_request_duration_seconds_bucket" in text
    assert client.get("/openapi.json").json()["info"]["title"] == "sitewatch server"


def test_healthz_reports_an_unreachable_database(tmp_path: Path) -> None:
    database = Database.from_url("postgresql+psycopg://postgres@127.0.0.1:1/none")
    app = create_app(make_settings(tmp_path), database=database)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["database"] == "unreachable"


def test_migrations_match_the_models(server_env: ServerEnv) -> None:
    with server_env.database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_settings_file_env_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("retention_days: 7\nport: 9000\nmax_clip_bytes: 1000\n")
    monkeypatch.setenv("SITEWATCH_PORT", "9100")
    settings = load_settings(config, max_clip_bytes=2000)
    assert (settings.retention_days, settings.port, settings.max_clip_bytes) == (7, 9100, 2000)
    assert settings.resolved_database_url.startswith("sqlite:///")
    config.write_text("retention_dayz: 7\n")
    with pytest.raises(SettingsError, match="retention_dayz"):
        load_settings(config)
    config.write_text("port: [1\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(config)
    config.write_text("retention_days: 0\n")
    with pytest.raises(SettingsError, match="retention_days"):
        load_settings(config)


def test_timezone_setting_is_checked_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SITEWATCH_TIMEZONE", raising=False)
    assert load_settings(data_dir=tmp_path).timezone == "Asia/Shanghai"  # the default
    monkeypatch.setenv("SITEWATCH_TIMEZONE", "Europe/Berlin")
    assert load_settings(data_dir=tmp_path).zone.key == "Europe/Berlin"
    monkeypatch.setenv("SITEWATCH_TIMEZONE", "Asia/Shanghia")
    with pytest.raises(SettingsError, match=r"SITEWATCH_TIMEZONE.*'Asia/Shanghia'"):
        load_settings(data_dir=tmp_path)
    answer = CliRunner().invoke(
        cli_app, ["server", "run"], env={"SITEWATCH_DATA_DIR": str(tmp_path)}
    )
    message = " ".join(answer.output.split())  # the console may wrap long lines
    assert answer.exit_code == 2 and "timezone (SITEWATCH_TIMEZONE): unknown time zone" in message


def test_generated_session_secret_is_kept(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = settings.resolved_session_secret()
    assert first == settings.resolved_session_secret() and len(first) > 40
    assert (settings.data_dir / "session.key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "key", ["../x.jpg", "/etc/passwd", "a/../../b.jpg", "a\\b.jpg", ".hidden", "a//b", "", "a/./b"]
)
def test_unsafe_media_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalMediaStore(tmp_path / "media")
    with pytest.raises(MediaError):
        store.open(key)
    with pytest.raises(MediaError):
        check_key(key)


def test_receive_upload_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(MediaError) as too_big:
        receive_upload(
            io.BytesIO(b"\xff\xd8\xff" + b"x" * 5000),
            staging_dir=staging,
            max_bytes=1000,
            allowed=(JPEG,),
            what="snapshot",
        )
    assert too_big.value.status == 413
    with pytest.raises(MediaError) as wrong:
        receive_upload(
            io.BytesIO(b"GIF89a..."),
            staging_dir=staging,
            max_bytes=1000,
            allowed=(JPEG,),
            what="snapshot",
        )
    assert wrong.value.status == 415 and "snapshot" in str(wrong.value)
    assert list(staging.iterdir()) == []


def test_json_log_lines() -> None:
    record = logging.LogRecord("server.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.event_id = "abc"
    line = json.loads(JsonLineFormatter().format(record))
    assert (line["msg"], line["level"], line["event_id"]) == ("hello world", "INFO", "abc")


def test_cli_init_add_device_add_user_retention(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SITEWATCH_DATA_DIR": str(tmp_path / "data"), "SITEWATCH_ADMIN_PASSWORD": "admin-pass-1"}
    init = runner.invoke(cli_app, ["server", "init"], env=env)
    assert init.exit_code == 0, init.output
    again = runner.invoke(cli_app, ["server", "init"], env=env)
    assert again.exit_code == 0 and "exists already" in again.output
    device = runner.invoke(
        cli_app, ["server", "add-device", "--site", "s1", "--name", "b1"], env=env
    )
    assert device.exit_code == 0, device.output
    token = device.stdout.strip().splitlines()[-1]
    assert token.startswith("swd_")
    dup = runner.invoke(cli_app, ["server", "add-device", "--site", "s1", "--name", "b1"], env=env)
    assert dup.exit_code == 1 and "already" in dup.output
    user = runner.invoke(
        cli_app,
        ["server", "add-user", "--username", "v", "--role", "viewer", "--site", "s1"],
        env={**env, "SITEWATCH_USER_PASSWORD": "viewer-pass"},
    )
    assert user.exit_code == 0, user.output
    bad_role = runner.invoke(
        cli_app,
        ["server", "add-user", "--username", "x", "--role", "boss", "--password", "12345678"],
        env=env,
    )
    assert bad_role.exit_code == 1 and "admin, reviewer, viewer" in bad_role.output
    retention = runner.invoke(cli_app, ["server", "retention", "--days", "5"], env=env)
    assert retention.exit_code == 0 and "0 file(s)" in retention.output

    from fastapi.testclient import TestClient

    settings = load_settings(data_dir=tmp_path / "data", enable_ui=False)
    with TestClient(create_app(settings)) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "admin-pass-1"}
        )
        assert login.status_code == 200
        device_client = TestClient(client.app, headers={"Authorization": f"Bearer {token}"})
        assert post_event(device_client, event_json("s1")).status_code == 201


@pytest.mark.postgres
def test_postgres_url_options_are_kept_and_utc_added(pg_schema: str) -> None:
    from urllib.parse import quote

    from sqlalchemy import text

    from sitewatch.server.db.session import make_engine
    from tests.server.conftest import PG_URL

    engine = make_engine(f"{PG_URL}?options={quote(f'-c search_path={pg_schema}')}")
    with engine.connect() as conn:
        assert conn.execute(text("SHOW search_path")).scalar() == pg_schema
        assert conn.execute(text("SHOW timezone")).scalar() == "UTC"
    engine.dispose()


def test_cli_commands_take_data_dir_and_unlock_a_user(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "box-data")]
    env = {
        "SITEWATCH_DATA_DIR": str(tmp_path / "elsewhere"),
        "SITEWATCH_ADMIN_PASSWORD": "pw-12345",
    }
    assert runner.invoke(cli_app, ["server", "init", *data], env=env).exit_code == 0
    user = ["--username", "li", "--role", "reviewer", "--site", "s1", "--password", "pw-678910"]
    made = runner.invoke(cli_app, ["server", "add-user", *user, *data], env=env)
    assert made.exit_code == 0, made.output
    assert (tmp_path / "box-data" / "sitewatch.db").exists()
    assert not (tmp_path / "elsewhere").exists()  # --data-dir won over the environment
    settings = load_settings(data_dir=tmp_path / "box-data", enable_ui=False)
    app = create_app(settings)
    for _ in range(settings.login_max_failures):
        app.state.login_throttle.failed("user:li")
    unlock = runner.invoke(cli_app, ["server", "unlock-user", "--username", "li", *data], env=env)
    assert unlock.exit_code == 0 and "10 failed login(s) cleared" in unlock.output
    missing = runner.invoke(cli_app, ["server", "unlock-user", "--username", "zz", *data], env=env)
    assert missing.exit_code == 1 and "not found" in missing.output
