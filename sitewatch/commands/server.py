"""``sitewatch server``: run the central server and administer it from the shell.

Settings come from SITEWATCH_* environment variables and an optional YAML file
(``--config`` or SITEWATCH_CONFIG); see server/settings.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sitewatch.server.settings import Settings

server_app = typer.Typer(
    help="The central server: ingest, review UI, hazard loop.", invoke_without_command=True
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Server settings YAML file.")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (database, media); overrides the settings."),
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    from sitewatch.server.settings import SettingsError, load_settings

    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        err_console.print(f"[red]✗[/red] {exc}", markup=False)
        raise typer.Exit(2) from exc


def _fail(message: str) -> None:
    err_console.print(f"✗ {message}", style="red", markup=False)
    raise typer.Exit(1)


@server_app.callback()
def main(ctx: typer.Context) -> None:
    """Without a sub-command: ``sitewatch server run``."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(run)


@server_app.command("run")
def run(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (use >1 with PostgreSQL).")
    ] = 1,
) -> None:
    """Serve the API and the review UI with uvicorn (migrates the database first)."""
    import os

    import uvicorn

    from sitewatch.server.app import UVICORN_OPTIONS, create_app
    from sitewatch.server.db.session import Database
    from sitewatch.server.logging_setup import configure_logging

    settings = _settings(config, host=host, port=port, data_dir=data_dir)
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    if workers == 1:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            **UVICORN_OPTIONS,
        )
        return
    database = Database.from_url(settings.resolved_database_url)
    database.migrate()  # once, before the workers start
    database.dispose()
    settings.resolved_session_secret()  # create the shared key file before the workers race
    os.environ["SITEWATCH_MIGRATE_ON_START"] = "false"
    if config is not None:
        os.environ["SITEWATCH_CONFIG"] = str(config)
    if data_dir is not None:
        os.environ["SITEWATCH_DATA_DIR"] = str(data_dir)
    os.environ["SITEWATCH_HOST"], os.environ["SITEWATCH_PORT"] = settings.host, str(settings.port)
    uvicorn.run(
        "sitewatch.server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        **UVICORN_OPTIONS,
    )


def _password(given: str | None, what: str) -> str:
    if given:
        return given
    if not sys.stdin.isatty():
        _fail(f"{what}: give --password or set SITEWATCH_ADMIN_PASSWORD (no terminal to ask)")
    password: str = typer.prompt(f"{what}", hide_input=True, confirmation_prompt=True)
    return password


@server_app.command("init")
def init(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    admin_user: Annotated[str, typer.Option(help="Username of the first admin.")] = "admin",
    password: Annotated[
        str | None,
        typer.Option(envvar="SITEWATCH_ADMIN_PASSWORD", help="Admin password (else asked)."),
    ] = None,
) -> None:
    """Create or upgrade the database (Alembic) and the first admin user."""
    from sqlalchemy import select

    from sitewatch.server.db.models import Role, User
    from sitewatch.server.db.session import Database
    from sitewatch.server.services import admin
    from sitewatch.server.services.errors import ServiceError

    settings = _settings(config, data_dir=data_dir)
    database = Database.from_url(settings.resolved_database_url)
    database.migrate()
    console.print(f"database ready: {database.engine.url.render_as_string()}", markup=False)
    with database.session() as db:
        if db.scalar(select(User).where(User.username == admin_user)) is not None:
            console.print(f"admin {admin_user!r} exists already; left unchanged", markup=False)
            return
        try:
            admin.create_user(
                db,
                actor=None,
                username=admin_user,
                password=_password(password, f"password for {admin_user}"),
                role=Role.ADMIN,
            )
        except ServiceError as exc:
            _fail(exc.message)
    console.print(f"admin user {admin_user!r} created", markup=False)


@server_app.command("add-device")
def add_device(
    site: Annotated[str, typer.Option(help="Site id the device posts for.")],
    name: Annotated[str, typer.Option(help="Device name, unique within the site.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register an edge device (creating the site if needed); prints its token ONCE."""
    from sitewatch.server.db.session import Database
    from sitewatch.server.services import admin
    from sitewatch.server.services.errors import ServiceError

    settings = _settings(config, data_dir=data_dir)
    database = Database.from_url(settings.resolved_database_url)
    database.migrate()
    with database.session() as db:
        try:
            admin.ensure_site(db, actor=None, site_id=site)
            new = admin.create_device(db, actor=None, site_id=site, name=name)
        except ServiceError as exc:
            _fail(exc.message)
            return
    err_console.print(
        f"device {name!r} registered for site {site!r}. Token (shown once, keep it safe):",
        markup=False,
    )
    typer.echo(new.token)


@server_app.command("add-user")
def add_user(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, reviewer or viewer.")] = "reviewer",
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Site the user sees (repeat).")
    ] = None,
    password: Annotated[
        str | None, typer.Option(envvar="SITEWATCH_USER_PASSWORD", help="Password (else asked).")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user scoped to sites (admins see every site)."""
    from sitewatch.server.db.models import Role
    from sitewatch.server.db.session import Database
    from sitewatch.server.services import admin
    from sitewatch.server.services.errors import ServiceError

    try:
        user_role = Role(role)
    except ValueError:
        _fail(f"--role must be one of {', '.join(r.value for r in Role)}, got {role!r}")
        return
    settings = _settings(config, data_dir=data_dir)
    database = Database.from_url(settings.resolved_database_url)
    database.migrate()
    with database.session() as db:
        try:
            for site_id in site or []:
                admin.ensure_site(db, actor=None, site_id=site_id)
            admin.create_user(
                db,
                actor=None,
                username=username,
                password=_password(password, f"password for {username}"),
                role=user_role,
                site_ids=site or [],
            )
        except ServiceError as exc:
            _fail(exc.message)
    console.print(f"user {username!r} ({role}) created", markup=False)


@server_app.command("unlock-user")
def unlock_user(
    username: Annotated[str, typer.Option(help="Login name to let log in again at once.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Clear a user's failed logins (the pause after too many wrong passwords)."""
    from sitewatch.server.db.session import Database
    from sitewatch.server.services import admin
    from sitewatch.server.services.errors import ServiceError

    settings = _settings(config, data_dir=data_dir)
    database = Database.from_url(settings.resolved_database_url)
    database.migrate()
    with database.session() as db:
        try:
            cleared = admin.unlock_user(db, actor=None, username=username)
        except ServiceError as exc:
            _fail(exc.message)
            return
    console.print(f"user {username!r} unlocked ({cleared} failed login(s) cleared)", markup=False)


@server_app.command("retention")
def retention(
    days: Annotated[int | None, typer.Option(help="Override retention_days.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete media files of dismissed events older than N days (records are kept)."""
    from sitewatch.server.db.session import Database
    from sitewatch.server.media import LocalMediaStore
    from sitewatch.server.services.retention import apply_retention

    settings = _settings(config, data_dir=data_dir)
    database = Database.from_url(settings.resolved_database_url)
    database.migrate()
    store = LocalMediaStore(settings.resolved_media_dir)
    with database.session() as db:
        report = apply_retention(db, store=store, days=days or settings.retention_days)
    console.print(
        f"retention (before {report.cutoff.isoformat()}): {report.files_deleted} file(s) "
        f"of {report.events} event(s) deleted, {report.bytes_freed} bytes freed",
        markup=False,
    )
    from sitewatch.server.services.workers import purge_face_data  # issue 6: worker face data

    with database.session() as db:
        purged = purge_face_data(db, days=settings.face_retention_days)
    console.print(
        f"face retention ({settings.face_retention_days} days): {purged} worker(s) removed",
        markup=False,
    )
