"""``sitewatch demo``: the whole system on embedded defaults, in one command.

A central server on SQLite with a local media folder, and an edge box watching a sample
video (played at its own speed, as a camera would deliver it) that pushes its events,
snapshots and clips to that server. Everything lives in one data folder, so a second run
reuses the database, the admin and the device.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from sitewatch.resources import config_file, shared_root

if TYPE_CHECKING:
    import uvicorn

    from sitewatch.server.db.session import Database
    from sitewatch.server.settings import Settings

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole
logger = logging.getLogger(__name__)

DEMO_CONFIG = config_file("demo-site.yaml")
DEVICE_NAME = "demo-edge"


def demo(
    video: Annotated[
        Path | None,
        typer.Option(help="Video to watch (default: the demo config's sample video)."),
    ] = None,
    config: Annotated[Path, typer.Option(help="Site config to start from.")] = DEMO_CONFIG,
    data_dir: Annotated[Path, typer.Option(help="Folder for DB, media, spool.")] = Path(
        "sitewatch-demo"
    ),
    port: Annotated[int, typer.Option(help="Port of the demo server on 127.0.0.1.")] = 8000,
    serve: Annotated[
        bool, typer.Option(help="Keep the server (and review UI) running after the video.")
    ] = False,
    max_wait_s: Annotated[
        float, typer.Option(help="Give up waiting for the upload after this long.")
    ] = 120.0,
    mqtt: Annotated[
        str | None,
        typer.Option(help="Also publish the box's events to this MQTT broker (HOST[:PORT])."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option(help="Also POST the box's events to this local webhook URL.")
    ] = None,
) -> None:
    """Run server + edge on a sample video; print the events the server received."""
    from sitewatch.edge.config import ConfigError, load_config, resolve_path
    from sitewatch.server.settings import Settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        site = load_config(config)
    except ConfigError as exc:
        err_console.print(f"✗ {exc}", markup=False)
        raise typer.Exit(2) from None
    camera = site.cameras[0]
    source = video or resolve_path(camera.source, config_path=config.resolve())
    if video is None and not source.is_file():
        # an installed package's demo config: its sample video is in the shared data sets
        source = shared_root() / "data" / "videos" / Path(camera.source).name
    if not source.is_file():
        err_console.print(f"✗ video not found: {source}", markup=False)
        raise typer.Exit(2)

    try:
        alerts = _alerts(mqtt, webhook)
    except ValueError as exc:
        err_console.print(f"✗ {exc}", markup=False)
        raise typer.Exit(2) from None
    data_dir = data_dir.resolve()
    settings = Settings(data_dir=data_dir, port=port, enable_ui=True)
    database, password, token = _prepare_server(settings, site.site.id)
    edge_config = _write_edge_config(config, data_dir, source.resolve(), port, token, alerts)
    server_thread, server = _start_server(settings, database)
    try:
        _run_edge(edge_config, max_wait_s=max_wait_s)
        _print_summary(database, site.site.id, port)
        if password:
            console.print(f"review UI: http://127.0.0.1:{port}/ui/  admin / {password}")
            console.print(f"(password also in {data_dir / 'admin-password.txt'})", markup=False)
        if serve:
            console.print("serving; Ctrl-C to stop")
            while server_thread.is_alive():
                server_thread.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        server_thread.join(10.0)
        database.dispose()


def _prepare_server(settings: Settings, site_id: str) -> tuple[Database, str | None, str]:
    """Migrate the DB; create the admin, the site and the device once (kept in data_dir)."""
    from sqlalchemy import select

    from sitewatch.server.db.models import Role, Site, User
    from sitewatch.server.db.session import Database
    from sitewatch.server.services import admin

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database.from_url(settings.resolved_database_url)
    database.migrate()
    password_file = settings.data_dir / "admin-password.txt"
    token_file = settings.data_dir / "device.token"
    with database.session() as db:
        if db.scalar(select(User).where(User.username == "admin")) is None:
            password = secrets.token_urlsafe(12)
            admin.create_user(db, actor=None, username="admin", password=password, role=Role.ADMIN)
            password_file.write_text(password + "\n")
        if db.get(Site, site_id) is None:
            admin.create_site(db, actor=None, site_id=site_id, name="demo site")
        if not token_file.exists():
            new = admin.create_device(db, actor=None, site_id=site_id, name=DEVICE_NAME)
            token_file.write_text(new.token + "\n")
            token_file.chmod(0o600)
    password_text = password_file.read_text().strip() if password_file.exists() else None
    return database, password_text, token_file.read_text().strip()


def _alerts(mqtt: str | None, webhook: str | None) -> dict[str, dict[str, object]]:
    """The ``alerts:`` section for ``--mqtt HOST[:PORT]`` and ``--webhook URL``."""
    alerts: dict[str, dict[str, object]] = {}
    if mqtt:
        host, _, port = mqtt.partition(":")
        if not host or (port and not port.isdigit()):
            raise ValueError(f"--mqtt {mqtt!r}: give HOST or HOST:PORT")
        alerts["mqtt"] = {"enabled": True, "host": host, "port": int(port or 1883)}
    if webhook:
        alerts["webhook"] = {"enabled": True, "url": webhook}
    return alerts


def _write_edge_config(
    base: Path,
    data_dir: Path,
    video: Path,
    port: int,
    token: str,
    alerts: dict[str, dict[str, object]] | None = None,
) -> Path:
    """The demo site config, pointed at the video, the local server and the data folder."""
    raw = yaml.safe_load(base.read_text(encoding="utf-8"))
    model = raw.setdefault("model", {})
    model_path = Path(model.get("path", "models/sitewatch-det.onnx"))
    if not model_path.is_absolute() and (base.parent.parent / model_path).exists():
        model["path"] = str((base.parent.parent / model_path).resolve())
    raw["cameras"] = raw["cameras"][:1]
    raw["cameras"][0].update(source=str(video), loop=False)
    raw["server"] = {"url": f"http://127.0.0.1:{port}", "token_file": "device.token"}
    raw["outbox"] = {**raw.get("outbox", {}), "path": str(data_dir / "spool")}
    if alerts:
        raw["alerts"] = alerts
    path = data_dir / "edge-site.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (data_dir / "device.token").write_text(token + "\n")
    return path


def _start_server(
    settings: Settings, database: Database
) -> tuple[threading.Thread, uvicorn.Server]:
    import uvicorn

    from sitewatch.server.app import UVICORN_OPTIONS, create_app

    app = create_app(settings, database=database)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.port, log_level="warning", **UVICORN_OPTIONS
        )
    )
    thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            err_console.print(f"✗ the demo server did not start on port {settings.port}")
            raise typer.Exit(1)
        time.sleep(0.1)
    return thread, server


def _run_edge(config_path: Path, *, max_wait_s: float) -> None:
    """Watch the video to its end, then let the outbox drain into the server."""
    from sitewatch.edge.config import load_config
    from sitewatch.edge.live import EdgeRunner, EdgeTuning

    # The shutdown flush is the drain: it ends open events, finishes their clips and
    # uploads until the outbox is empty or max_wait_s has passed.
    tuning = EdgeTuning(metrics_port=None, shutdown_flush_s=max_wait_s, retry_max_s=2.0)
    runner = EdgeRunner(load_config(config_path), config_path=config_path, tuning=tuning)
    runner.start()
    with console.status("edge box watching the video (at its own speed)..."):
        while not all(state.ended for state in runner.camera_states()):
            time.sleep(0.5)
    with console.status("edge box finishing clips and uploading..."):
        runner.shutdown()


def _print_summary(database: Database, site_id: str, port: int) -> None:
    from sqlalchemy import func, select

    from sitewatch.server.db.models import EventRecord, Media

    with database.session() as db:
        rows = db.execute(
            select(EventRecord.rule, EventRecord.severity, func.count())
            .where(EventRecord.site_id == site_id)
            .group_by(EventRecord.rule, EventRecord.severity)
        ).all()
        media = db.execute(
            select(Media.kind, func.count())
            .join(EventRecord)
            .where(EventRecord.site_id == site_id)
            .group_by(Media.kind)
        ).all()
    table = Table(title=f"events on the server (site {site_id})")
    for column in ("rule", "severity", "events"):
        table.add_column(column)
    for rule, severity, count in rows:
        table.add_row(
            str(getattr(rule, "value", rule)), str(getattr(severity, "value", severity)), str(count)
        )
    console.print(table)
    console.print("media: " + ", ".join(f"{k}: {n}" for k, n in media) if media else "media: none")
    console.print(f"server: http://127.0.0.1:{port}  (API docs at /docs)")
