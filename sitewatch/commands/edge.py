"""``sitewatch edge run``: the live edge box (every camera of one site); ``sitewatch edge
outbox list|retry``: the upload spool's dead letters (items the server refused)."""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from sitewatch.edge.outbox import Outbox

edge_app = typer.Typer(help="The live edge box on site.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="The box's upload spool: items the server refused (dead letters).", no_args_is_help=True
)
edge_app.add_typer(outbox_app, name="outbox")
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole


@edge_app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Site YAML file.")],
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Prometheus /metrics port (default 9108 or SITEWATCH_EDGE_METRICS_PORT; "
            "0 = any free port)."
        ),
    ] = None,
    metrics_host: Annotated[
        str | None, typer.Option(help="Address for /metrics (default 127.0.0.1).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ERROR.")] = "INFO",
) -> None:
    """Watch every camera of the site and push events to the server until SIGTERM/SIGINT.

    Environment (SITEWATCH_EDGE_*): OPEN_TIMEOUT_S, READ_TIMEOUT_S, RECONNECT_MIN_S,
    RECONNECT_MAX_S, RETRY_MIN_S, RETRY_MAX_S, HEARTBEAT_S, SHUTDOWN_FLUSH_S, CLIP_FPS,
    CLIP_MAX_WIDTH, RING_MAX_BYTES, ENCODER_THREADS, METRICS_PORT, METRICS_HOST,
    PICTURE_INTERVAL_S (each camera's picture to the server, default 300),
    PICTURE_MAX_SIDE (1280), PICTURE_QUALITY (80).

    With a server, the zones it manages are pulled every server.zones_sync_interval_s
    (default 30) and at once when a heartbeat says there is a newer version, kept in
    <outbox>/site-zones.json (used at start, also offline) and swapped into the running
    cameras between two frames.
    """
    from sitewatch.edge.config import ConfigError, load_config
    from sitewatch.edge.detector import ModelError
    from sitewatch.edge.faces.detection import FaceModelError
    from sitewatch.edge.live import EdgeRunner, EdgeTuning
    from sitewatch.edge.outbox import SpoolBusy
    from sitewatch.edge.uploader import TokenError

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        site = load_config(config)
        overrides = {"metrics_port": metrics_port, "metrics_host": metrics_host}
        tuning = EdgeTuning().model_copy(
            update={key: value for key, value in overrides.items() if value is not None}
        )
        runner = EdgeRunner(site, config_path=config.resolve(), tuning=tuning)
    except (ConfigError, TokenError, ModelError, FaceModelError, SpoolBusy) as exc:
        err_console.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(2) from None
    if not runner.workers:
        err_console.print(f"[red]✗[/red] {config}: no enabled cameras")
        raise typer.Exit(2)

    def _stop(signum: int, _frame: object) -> None:
        logging.getLogger(__name__).info("signal %d: shutting down", signum)
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.run()


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Site YAML file (its outbox: path and max_bytes)."),
]
SpoolOption = Annotated[
    Path | None, typer.Option("--spool", help="The outbox folder itself, instead of --config.")
]


def _fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[red]✗[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _open_outbox(config: Path | None, spool: Path | None) -> Outbox:
    """The spool of ``--config`` or ``--spool``, locked; a one-line error otherwise. The
    upgrade retry is left to the box, so that ``list`` shows the spool as it is."""
    from sitewatch.edge.config import ConfigError, OutboxConfig, load_config
    from sitewatch.edge.outbox import Outbox, SpoolBusy

    if (config is None) == (spool is None):
        _fail("give --config SITE.yaml or --spool FOLDER (one of them)")
    max_bytes = OutboxConfig().max_bytes
    if config is not None:
        try:
            site = load_config(config)
        except ConfigError as exc:
            _fail(str(exc))
        spool = Path(site.outbox.path).expanduser()
        if not spool.is_absolute():
            spool = config.resolve().parent / spool  # beside the config, as the box does
        max_bytes = site.outbox.max_bytes
    assert spool is not None
    if not (spool / "outbox.db").is_file():
        _fail(f"no outbox at {spool} (no outbox.db: nothing spooled there yet?)")
    try:
        return Outbox(spool, max_bytes=max_bytes, retry_on_upgrade=False)
    except SpoolBusy as exc:
        _fail(f"{exc}; stop the edge box to use this command")
    except sqlite3.DatabaseError as exc:
        _fail(f"outbox {spool}: unreadable outbox.db ({exc})")


@outbox_app.command("list")
def outbox_list(config: ConfigOption = None, spool: SpoolOption = None) -> None:
    """List the dead letters: items the server refused (status, its detail, when, and the
    edge version that sent them). Run it while the box is stopped (it locks the spool)."""
    from rich.table import Table

    outbox = _open_outbox(config, spool)
    try:
        letters, queued = outbox.dead_letters(), outbox.depth()
    finally:
        outbox.close()
    console = Console(width=None if sys.stdout.isatty() else 200)  # piped: whole ids
    if not letters:
        console.print(
            f"no dead letters in {outbox.root} ({queued} item(s) queued)", highlight=False
        )
        return
    table = Table("id", "kind", "event id", "status", "detail", "when", "version")
    for letter in letters:
        when = datetime.fromtimestamp(letter.dead_at).astimezone()
        table.add_row(
            str(letter.id),
            letter.item.kind,
            letter.item.event_id,
            str(letter.status) if letter.status is not None else "held",
            letter.detail,
            when.strftime("%Y-%m-%d %H:%M:%S"),
            letter.version,
        )
    console.print(table)
    console.print(
        f"{len(letters)} dead letter(s) in {outbox.root}, {queued} item(s) queued;"
        " 'held' items wait behind an earlier dead letter of their event",
        highlight=False,
    )


@outbox_app.command("retry")
def outbox_retry(
    config: ConfigOption = None,
    spool: SpoolOption = None,
    ids: Annotated[
        list[int] | None,
        typer.Option("--id", help="A dead letter's id (repeat it); its whole event goes back."),
    ] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
) -> None:
    """Put dead letters back in the upload queue, in spool order; the box sends them at its
    next start. Run it while the box is stopped (it locks the spool)."""
    from sitewatch.edge.outbox import UnknownDeadLetter

    if bool(ids) == retry_all:
        _fail("give --id N (repeatable) or --all")
    outbox = _open_outbox(config, spool)
    try:
        count = outbox.retry_dead_letters(None if retry_all else ids)
    except UnknownDeadLetter as exc:
        _fail(f"{exc} in {outbox.root} (see sitewatch edge outbox list)", 1)
    finally:
        outbox.close()
    Console().print(f"{count} dead letter(s) back in the queue of {outbox.root}", highlight=False)
