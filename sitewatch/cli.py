"""The ``sitewatch`` command line. Heavy imports stay inside the commands so that
``sitewatch --help`` and ``sitewatch config check`` answer at once."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="sitewatch: construction-site safety monitor.", no_args_is_help=True)
config_app = typer.Typer(help="Site configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole


from sitewatch.commands.config import config_check as _config_check  # noqa: E402

config_app.command("check")(_config_check)

from sitewatch.commands.replay import replay as _replay  # noqa: E402

app.command("replay")(_replay)

from sitewatch.commands.edge import edge_app as _edge_app  # noqa: E402

app.add_typer(_edge_app, name="edge")


from sitewatch.commands.server import server_app as _server_app  # noqa: E402

app.add_typer(_server_app, name="server")

from sitewatch.commands.demo import demo as _demo  # noqa: E402

app.command("demo")(_demo)

eval_app = typer.Typer(help="Evaluation against labelled video.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

from sitewatch.commands.eval_events import eval_events as _eval_events  # noqa: E402

eval_app.command("events")(_eval_events)

from sitewatch.commands.eval_detect import eval_detect as _eval_detect  # noqa: E402

eval_app.command("detect")(_eval_detect)

from sitewatch.commands.faces import faces_app as _faces_app  # noqa: E402

app.add_typer(_faces_app, name="faces")

if __name__ == "__main__":
    app()
