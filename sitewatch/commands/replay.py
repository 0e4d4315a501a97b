"""``sitewatch replay VIDEO --out DIR``: the edge pipeline on a recorded video."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sitewatch.edge.config import CameraConfig, SiteConfig
    from sitewatch.edge.replay import ReplayResult

logger = logging.getLogger(__name__)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole


def replay(
    video: Annotated[Path, typer.Argument(help="Video file to replay (mp4, mkv, ...).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for events.jsonl and snapshots.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Site YAML; without it: one camera, no zones."),
    ] = None,
    camera: Annotated[
        str | None, typer.Option("--camera", help="Camera id in the config (default: first).")
    ] = None,
    detect_fps: Annotated[
        float | None,
        typer.Option("--detect-fps", min=0.0, help="Detections per second; 0 = every frame."),
    ] = None,
    annotate: Annotated[
        bool, typer.Option("--annotate", help="Also write annotated.mp4 with the boxes.")
    ] = False,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", min=0.0, help="Stop after this video time.")
    ] = None,
) -> None:
    """Run the pipeline on VIDEO at its own timestamps; write events and snapshots to --out.

    Event times are the video's creation_time (from its metadata; 1970-01-01 UTC when it
    has none) plus each frame's presentation time, so a replay is deterministic.
    """
    from sitewatch.edge.config import ConfigError
    from sitewatch.edge.detector import ModelError
    from sitewatch.edge.detector_pool import load_detector
    from sitewatch.edge.replay import run_replay
    from sitewatch.edge.video import VideoError, VideoReader

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        site, cam = _site_and_camera(video, config, camera)
        VideoReader(video).close()  # a bad file is reported before the model loads
        detector = load_detector(site.model, config)
        with _progress(video) as on_progress:
            result = run_replay(
                video,
                site,
                cam,
                detector,
                out,
                detect_fps=detect_fps,
                annotate=annotate,
                max_seconds=max_seconds,
                on_progress=on_progress,
                config_path=config,
            )
    except (ConfigError, ModelError, VideoError) as exc:
        err_console.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(2) from None
    _print_summary(result, out)
    if result.stopped_at_s is not None:
        err_console.print(
            f"[yellow]warning:[/yellow] {video} is damaged or truncated: processed up to "
            f"{result.stopped_at_s:.2f} s ({result.stop_reason})"
        )


def _site_and_camera(
    video: Path, config: Path | None, camera_id: str | None
) -> tuple[SiteConfig, CameraConfig]:
    from sitewatch.edge.config import ConfigError, load_config
    from sitewatch.edge.replay import default_site_config

    site = load_config(config) if config is not None else default_site_config(video)
    source = str(config) if config is not None else "built-in replay config"
    if not site.cameras:
        raise ConfigError(source, ["cameras: the site has no camera to replay as"])
    if camera_id is None:
        return site, site.cameras[0]
    try:
        return site, site.camera(camera_id)
    except KeyError:
        known = ", ".join(c.id for c in site.cameras)
        raise ConfigError(source, [f"no camera {camera_id!r} (cameras: {known})"]) from None


@contextmanager
def _progress(video: Path) -> Iterator[Callable[[float], None]]:
    """A rich progress bar over the video's duration; yields the callback that advances it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from sitewatch.edge.video import VideoError, VideoReader

    try:
        with VideoReader(video) as reader:
            total_s = reader.duration_s
    except VideoError:
        total_s = None  # run_replay reports the error itself
    bar = Progress(
        TextColumn("[bold]replay[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:.1f} s"),
        TimeRemainingColumn(),
        console=err_console,
    )
    task = bar.add_task(video.name, total=total_s or 1.0)
    with bar:
        yield lambda time_s: bar.update(task, completed=time_s)


def _print_summary(result: ReplayResult, out: Path) -> None:
    from sitewatch.edge.replay import events_by_rule

    table = Table(title=f"Events in {result.video.name}")
    table.add_column("rule")
    table.add_column("severity")
    table.add_column("events", justify="right")
    for (rule, severity), count in events_by_rule(result).items():
        table.add_row(rule, severity, str(count))
    if not result.events:
        table.add_row("(none)", "", "0")
    console.print(table)
    stats = Table(show_header=False, title="Replay")
    stats.add_row("frames decoded", str(result.frames_read))
    stats.add_row("frames detected", str(result.frames_detected))
    stats.add_row("video time", f"{result.video_s:.1f} s")
    stats.add_row("wall time", f"{result.wall_s:.1f} s")
    stats.add_row("speed", f"{result.fps:.1f} frames/s")
    stats.add_row("people tracked", str(len(result.track_ids)))
    stats.add_row("messages written", f"{len(result.messages)} -> {out / 'events.jsonl'}")
    console.print(stats)
