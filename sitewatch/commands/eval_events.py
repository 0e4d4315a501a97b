"""``sitewatch eval events``: replay labelled videos and score their events per rule."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from sitewatch.edge.config import CameraConfig, SiteConfig
    from sitewatch.edge.evaluation.evaluate import VideoEvaluation
    from sitewatch.edge.evaluation.events_truth import EventTruth

logger = logging.getLogger(__name__)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines keep paths whole

DEFAULT_CONFIDENCES = "0.2,0.35,0.5,0.65"
DEFAULT_MIN_DURATIONS = "0.5,1,2,4"


def eval_events(
    truth: Annotated[
        list[Path], typer.Option("--truth", help="Ground-truth YAML (repeat for more videos).")
    ],
    video: Annotated[
        Path | None, typer.Option("--video", help="Video file (default: the truth file's).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Site YAML (default: the truth file's).")
    ] = None,
    camera: Annotated[
        str | None, typer.Option("--camera", help="Camera id in the config (default: first).")
    ] = None,
    tolerance_s: Annotated[
        float, typer.Option("--tolerance-s", min=0.0, help="Slack around true intervals.")
    ] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.md, report.html and plots here.")
    ] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Also vary confidence and min_duration_s.")
    ] = False,
    confidences: Annotated[
        str, typer.Option("--confidences", help="Sweep: detector confidences.")
    ] = DEFAULT_CONFIDENCES,
    min_durations: Annotated[
        str, typer.Option("--min-durations", help="Sweep: rules' min_duration_s values.")
    ] = DEFAULT_MIN_DURATIONS,
    colour_metrics: Annotated[
        Path | None,
        typer.Option(
            "--colour-metrics",
            help="Helmet colour metrics JSON for the report's confusion matrices "
            "(default: models/helmet-colour-metrics.json when present).",
        ),
    ] = None,
) -> None:
    """Replay labelled videos and score their events: P, R, F1, latency, duplicates per rule.

    Each video runs through the same code as `sitewatch replay`.
    """
    from sitewatch.edge.config import ConfigError
    from sitewatch.edge.detector import ModelError
    from sitewatch.edge.evaluation.events_truth import TruthError
    from sitewatch.edge.video import VideoError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if len(truth) > 1 and (video is not None or config is not None):
        err_console.print("[red]✗[/red] --video and --config go with a single --truth")
        raise typer.Exit(2)
    try:
        sweep_values = (
            _floats(confidences, "--confidences"),
            _floats(min_durations, "--min-durations"),
        )
        results, sweeps = [], []
        for path in truth:
            evaluation, points = _run_one(
                path, video, config, camera, tolerance_s, sweep, sweep_values
            )
            results.append(evaluation)
            sweeps.append(points)
    except (ConfigError, ModelError, VideoError, TruthError) as exc:
        err_console.print(f"[red]✗[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(
            json.dumps([_as_dict(r, s) for r, s in zip(results, sweeps, strict=True)])
        )
    else:
        for evaluation, points in zip(results, sweeps, strict=True):
            _print(evaluation, points)
    if report is not None:
        from sitewatch.edge.evaluation.report import write_report

        try:
            written = write_report(
                report, results, sweeps, tolerance_s=tolerance_s, colour_metrics=colour_metrics
            )
        except ValueError as exc:
            err_console.print(f"[red]✗[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
        err_console.print(f"report: {written[0]} and {written[1]}")


def _floats(text: str, option: str) -> list[float]:
    try:
        values = sorted({float(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of numbers", param_hint=option
        ) from None
    if not values:
        raise typer.BadParameter("needs at least one value", param_hint=option)
    return values


def _setup(
    truth_path: Path, video: Path, truth: EventTruth, config: Path | None, camera: str | None
) -> tuple[SiteConfig, CameraConfig, Path | None]:
    """The site and camera: --config, else the truth file's config, else the replay default."""
    from sitewatch.commands.replay import _site_and_camera
    from sitewatch.edge.evaluation.events_truth import resolve_relative

    if config is None and truth.config is not None:
        config = resolve_relative(truth_path, truth.config)
    site, cam = _site_and_camera(video, config, camera or truth.camera)
    return site, cam, config


def _run_one(
    truth_path: Path,
    video: Path | None,
    config: Path | None,
    camera: str | None,
    tolerance_s: float,
    sweep: bool,
    sweep_values: tuple[list[float], list[float]],
) -> tuple[VideoEvaluation, list[VideoEvaluation]]:
    from sitewatch.edge.detector_pool import load_detector
    from sitewatch.edge.evaluation.evaluate import evaluate_video, find_video
    from sitewatch.edge.evaluation.events_truth import load_truth

    truth = load_truth(truth_path)
    video_path = find_video(truth_path, truth, video)
    site, cam, config_path = _setup(truth_path, video_path, truth, config, camera)
    detector = load_detector(site.model, config_path)
    evaluation = evaluate_video(video_path, truth, site, cam, detector, tolerance_s=tolerance_s)
    points = (
        _sweep(video_path, truth, site, cam, config_path, tolerance_s, sweep_values)
        if sweep
        else []
    )
    return evaluation, points


def _sweep(
    video: Path,
    truth: EventTruth,
    site: SiteConfig,
    cam: CameraConfig,
    config_path: Path | None,
    tolerance_s: float,
    values: tuple[list[float], list[float]],
) -> list[VideoEvaluation]:
    """One evaluation per (confidence, min_duration_s); the model runs in the first only."""
    from sitewatch.edge.detector import Detector
    from sitewatch.edge.evaluation.evaluate import (
        CachingDetector,
        evaluate_video,
        with_min_duration,
    )

    confidences, min_durations = values
    model_cfg = site.model.model_copy(update={"confidence": confidences[0], "class_confidence": {}})
    detector = CachingDetector(Detector.from_config(model_cfg, config_path))
    points = []
    for confidence in confidences:
        for min_duration_s in min_durations:
            detector.rewind(confidence)
            swept = with_min_duration(site, truth.scored_rules(), min_duration_s)
            point = evaluate_video(video, truth, swept, cam, detector, tolerance_s=tolerance_s)
            point.confidence, point.min_duration_s = confidence, min_duration_s
            points.append(point)
    return points


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print(evaluation: VideoEvaluation, points: list[VideoEvaluation]) -> None:
    replay = evaluation.replay
    table = Table(
        title=f"{evaluation.video.name}: events per rule",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("rule", "true", "pred", "TP", "FP", "dup", "FN", "P", "R", "F1", "lat s"):
        table.add_column(column, justify="left" if column == "rule" else "right", no_wrap=True)
    for rule, score in evaluation.scores.items():
        row = score.as_dict()
        table.add_row(
            rule.value,
            *(str(row[k]) for k in ("true", "predicted", "tp", "fp", "duplicates", "fn")),
            _fmt(score.precision),
            _fmt(score.recall),
            _fmt(score.f1),
            _fmt(row["mean_latency_s"], 1),  # type: ignore[arg-type]
        )
    console.print(table)
    console.print(
        f"model {evaluation.model}, {replay.frames_read} frames decoded at {replay.fps:.1f}/s, "
        f"{replay.frames_detected} detected; dup = duplicate alerts (counted in FP), "
        "lat s = mean time to first alert"
    )
    if points:
        _print_sweep(evaluation, points)


def _print_sweep(evaluation: VideoEvaluation, points: list[VideoEvaluation]) -> None:
    table = Table(title=f"{evaluation.video.name}: sweep")
    for column in ("confidence", "min_duration_s", "rule", "P", "R", "F1", "dup"):
        table.add_column(column, justify="right")
    for point in points:
        for rule, score in point.scores.items():
            table.add_row(
                f"{point.confidence:g}",
                f"{point.min_duration_s:g}",
                rule.value,
                _fmt(score.precision),
                _fmt(score.recall),
                _fmt(score.f1),
                str(score.n_duplicates),
            )
    console.print(table)


def _as_dict(evaluation: VideoEvaluation, points: list[VideoEvaluation]) -> dict[str, object]:
    return {
        "video": str(evaluation.video),
        "model": evaluation.model,
        "scores": [s.as_dict() for s in evaluation.scores.values()],
        "predicted": [
            {"rule": i.rule.value, "start_s": i.start_s, "end_s": i.end_s, "zone": i.zone}
            for i in evaluation.predicted
        ],
        "sweep": [
            {
                "confidence": p.confidence,
                "min_duration_s": p.min_duration_s,
                "scores": [s.as_dict() for s in p.scores.values()],
            }
            for p in points
        ],
    }
