"""``sitewatch edge run``: the live edge box (every camera of one site)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

edge_app = typer.Typer(help="The live edge box on site.", no_args_is_help=True)
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
    CLIP_MAX_WIDTH, RING_MAX_BYTES, ENCODER_THREADS, METRICS_PORT, METRICS_HOST.
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
