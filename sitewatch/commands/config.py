"""``sitewatch config check``: site YAML files, and the zones the server manages merged in.

The box's YAML stays the base; a camera listed in the server's zones (the SiteZones JSON
the box keeps as ``site-zones.json`` in its outbox folder, or a file given with
``--zones``) judges with those zones instead. The check reads the box's kept file when
there is one (unless ``--zones`` names another) and reports which cameras take server
zones and their version; zones that the box would refuse are refused with the reason,
as for the YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from sitewatch.edge.config import SiteConfig

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole


def kept_zones_path(config_path: Path, site: SiteConfig) -> Path:
    """Where the box of ``config_path`` keeps the server's zones (its outbox folder)."""
    from sitewatch.edge.site_zones import SITE_ZONES_NAME

    spool = Path(site.outbox.path).expanduser()
    if not spool.is_absolute():
        spool = config_path.resolve().parent / spool  # beside the config, as the box does
    return spool / SITE_ZONES_NAME


def merged_zones_problems(site: SiteConfig, zones_path: Path) -> tuple[list[str], list[str]]:
    """(problems, notes) of ``site`` with the SiteZones of ``zones_path`` merged in."""
    from pydantic import ValidationError

    from sitewatch.edge.config import CameraConfig
    from sitewatch.edge.site_zones import describe_errors, load_site_zones

    try:
        site_zones = load_site_zones(zones_path)
    except ValueError as exc:
        return [str(exc)], []
    notes: list[str] = []
    problems: list[str] = []
    known = {c.id for c in site.cameras}
    managed = sorted(set(site_zones.cameras) & known)
    for camera_id in sorted(set(site_zones.cameras) - known):
        notes.append(f"camera {camera_id!r} of the server's zones is not in this config: ignored")
    for camera in site.cameras:
        if camera.id not in site_zones.cameras:
            continue
        merged = camera.model_dump(mode="json", exclude_none=True)
        merged["zones"] = site_zones.cameras[camera.id].model_dump(mode="json", exclude_none=True)
        try:
            CameraConfig.model_validate(merged)
        except ValidationError as exc:
            problems.append(f"{zones_path}: cameras.{camera.id}: {describe_errors(exc)}")
    if problems:
        return problems, notes
    if managed:
        notes.append(
            f"server zones v{site_zones.version} ({zones_path}) for camera(s) "
            + ", ".join(managed)
            + "; the other cameras keep their YAML zones"
        )
    else:
        notes.append(f"server zones v{site_zones.version} ({zones_path}): no camera of this config")
    return [], notes


def config_check(
    files: Annotated[list[Path], typer.Argument(help="Site YAML files to check.")],
    zones: Annotated[
        Path | None,
        typer.Option(
            "--zones",
            help="The server's zones (SiteZones JSON, e.g. the box's spool/site-zones.json) "
            "to check merged into each file; default: the box's kept file when present.",
        ),
    ] = None,
) -> None:
    """Validate site config files without running anything; exit 1 if any is broken."""
    from sitewatch.edge.config import ConfigError, load_config

    failed = False
    if zones is not None and not zones.is_file():
        err_console.print(f"[red]✗[/red] {escape(str(zones))}: file not found")
        raise typer.Exit(1)
    for path in files:
        try:
            config = load_config(path)
        except ConfigError as exc:
            failed = True
            err_console.print(f"[red]✗[/red] {escape(str(exc))}")
            continue
        zones_path = zones if zones is not None else kept_zones_path(path, config)
        problems: list[str] = []
        notes: list[str] = []
        if zones_path.is_file():
            problems, notes = merged_zones_problems(config, zones_path)
        if problems:
            failed = True
            for problem in problems:
                err_console.print(f"[red]✗[/red] {escape(str(path))}: {escape(problem)}")
            continue
        console.print(
            f"[green]✓[/green] {escape(str(path))}: site {config.site.id!r}, "
            f"{len(config.cameras)} camera(s)",
            highlight=False,
        )
        for note in notes:
            console.print(f"  {escape(note)}", highlight=False)
    raise typer.Exit(1 if failed else 0)
