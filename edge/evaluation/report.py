"""Markdown and HTML reports of ``sitewatch eval events``, with PNG plots (matplotlib Agg).

Per video: a timeline of true vs predicted intervals per rule, the score table, and with
a sweep a precision/recall plot per rule (one line per min_duration_s, points along the
detector confidence). Then the helmet colour confusion matrices from the colour
classifier's metrics file, when there is one.
"""

from __future__ import annotations

import html
import json
import logging
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from sitewatch.edge.evaluation.evaluate import VideoEvaluation
from sitewatch.edge.evaluation.event_matching import Interval
from sitewatch.resources import model_file

logger = logging.getLogger(__name__)

DEFAULT_COLOUR_METRICS = model_file("helmet-colour-metrics.json")

COLUMNS = ("rule", "true", "predicted", "tp", "fp", "duplicates", "fn", "precision", "recall", "f1")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _lanes(intervals: list[Interval]) -> list[int]:
    """A lane per interval so that overlapping intervals do not hide each other."""
    ends: list[float] = []
    lanes = []
    for interval in intervals:
        lane = next((i for i, end in enumerate(ends) if end <= interval.start_s), len(ends))
        if lane == len(ends):
            ends.append(interval.end_s)
        ends[lane] = interval.end_s
        lanes.append(lane)
    return lanes


def _draw(ax: Axes, intervals: list[Interval], base: float, colours: list[str]) -> None:
    lanes = _lanes(intervals)
    height = 0.4 / max(max(lanes, default=0) + 1, 1)
    for interval, lane, colour in zip(intervals, lanes, colours, strict=True):
        width = max(interval.end_s - interval.start_s, 0.1)
        ax.broken_barh(
            [(interval.start_s, width)], (base + lane * height, height * 0.9), facecolors=colour
        )


def plot_timeline(evaluation: VideoEvaluation, path: Path) -> None:
    rules = list(evaluation.scores)
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.8 * max(len(rules), 1)))
    for row, rule in enumerate(rules):
        score = evaluation.scores[rule]
        matched = {p for _, p in score.matches}
        duplicate = {p for ps in score.duplicates.values() for p in ps}
        _draw(ax, score.true, row + 0.05, ["tab:green"] * len(score.true))
        colours = [
            "tab:blue" if p in matched else "tab:orange" if p in duplicate else "tab:red"
            for p in range(len(score.predicted))
        ]
        _draw(ax, score.predicted, row + 0.55, colours)
    ax.set_yticks([r + 0.5 for r in range(len(rules))], [r.value for r in rules])
    ax.set_ylim(0, max(len(rules), 1))
    ax.set_xlim(0, max(evaluation.duration_s, 1.0))
    ax.set_xlabel("video time (s)")
    ax.set_title(
        f"{evaluation.video.name}: true (lower, green) vs predicted (upper: blue matched, "
        "orange duplicate, red false)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_pr(points: list[VideoEvaluation], path: Path) -> None:
    rules = list(points[0].scores)
    fig, axes = plt.subplots(1, len(rules), figsize=(4.5 * len(rules), 4), squeeze=False)
    for ax, rule in zip(axes[0], rules, strict=True):
        lines: dict[float, list[tuple[float, float, float]]] = defaultdict(list)
        for point in points:
            score = point.scores[rule]
            p = score.precision if score.precision is not None else 1.0
            r = score.recall if score.recall is not None else 0.0
            lines[point.min_duration_s or 0.0].append((point.confidence or 0.0, r, p))
        for min_duration_s, values in sorted(lines.items()):
            values.sort()
            ax.plot(
                [v[1] for v in values],
                [v[2] for v in values],
                marker="o",
                label=f"min_duration {min_duration_s:g} s",
            )
            for conf, r, p in values:
                ax.annotate(f"{conf:g}", (r, p), fontsize=7)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(rule.value)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def load_colour_confusions(path: Path) -> dict[str, dict[str, dict[str, int]]]:
    """``{method: {true colour: {predicted colour: count}}}`` from a helmet colour metrics
    JSON (models/helmet-colour-metrics.json, written by scripts/train/train_helmet_colour.py)."""
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read helmet colour metrics ({exc})") from None
    return {
        name: value["confusion"]
        for name, value in metrics.items()
        if isinstance(value, dict) and isinstance(value.get("confusion"), dict)
    }


def plot_confusion(name: str, confusion: dict[str, dict[str, int]], path: Path) -> None:
    labels = sorted(set(confusion) | {p for row in confusion.values() for p in row})
    counts = np.array([[confusion.get(t, {}).get(p, 0) for p in labels] for t in labels])
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(labels), 1.0 + 0.6 * len(labels)))
    ax.imshow(counts, cmap="Blues")
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if count > counts.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted colour")
    ax.set_ylabel("true colour")
    ax.set_title(f"helmet colour: {name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _colour_section(out_dir: Path, metrics_path: Path) -> tuple[list[str], list[str]]:
    md = ["## Helmet colour confusion", "", f"From `{metrics_path}` (held-out helmet crops).", ""]
    body = ["<h2>Helmet colour confusion</h2>", f"<p>From {html.escape(str(metrics_path))}</p>"]
    for name, confusion in load_colour_confusions(metrics_path).items():
        png = f"colour-confusion-{name}.png"
        plot_confusion(name, confusion, out_dir / png)
        md += [f"![{name}]({png})", ""]
        body.append(f'<img src="{png}" alt="{html.escape(name)}">')
    return md, body


def write_report(
    out_dir: Path,
    evaluations: list[VideoEvaluation],
    sweeps: list[list[VideoEvaluation]],
    *,
    tolerance_s: float,
    colour_metrics: Path | None = None,
) -> tuple[Path, Path]:
    """Write report.md, report.html and PNGs into ``out_dir``; return the two report paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = [
        "# sitewatch event evaluation",
        "",
        f"Matching tolerance: {tolerance_s:g} s. Duplicates (extra alerts for an already "
        "matched true event) count as false positives.",
        "",
    ]
    body = [
        f"<h1>sitewatch event evaluation</h1><p>Matching tolerance: {tolerance_s:g} s. "
        "Duplicates count as false positives.</p>"
    ]
    for evaluation, points in zip(evaluations, sweeps, strict=True):
        stem = evaluation.video.stem
        timeline = f"timeline-{stem}.png"
        plot_timeline(evaluation, out_dir / timeline)
        rows = [s.as_dict() for s in evaluation.scores.values()]
        md += [
            f"## {evaluation.video.name}",
            "",
            f"Model `{evaluation.model}`, {evaluation.replay.frames_read} frames decoded at "
            f"{evaluation.replay.fps:.1f}/s, {evaluation.replay.frames_detected} detected.",
            "",
            "| " + " | ".join(COLUMNS) + " | latency s |",
            "|" + "---|" * (len(COLUMNS) + 1),
        ]
        md += [
            "| " + " | ".join(_cell(r[c]) for c in COLUMNS) + f" | {_cell(r['mean_latency_s'])} |"
            for r in rows
        ]
        md += ["", f"![timeline]({timeline})", ""]
        header = "".join(f"<th>{c}</th>" for c in (*COLUMNS, "latency s"))
        cells = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in (*COLUMNS, "mean_latency_s"))
            + "</tr>"
            for r in rows
        )
        body += [
            f"<h2>{html.escape(evaluation.video.name)}</h2>",
            f"<p>Model <code>{html.escape(evaluation.model)}</code></p>",
            f"<table border=1><tr>{header}</tr>{cells}</table>",
            f'<img src="{timeline}" alt="timeline">',
        ]
        if points:
            pr = f"pr-{stem}.png"
            plot_pr(points, out_dir / pr)
            md += [
                "Precision/recall over confidence (point labels) and min_duration_s:",
                "",
                f"![precision/recall]({pr})",
                "",
            ]
            body.append(f'<img src="{pr}" alt="precision/recall">')
    metrics_path = colour_metrics or DEFAULT_COLOUR_METRICS
    if metrics_path.is_file():
        colour_md, colour_body = _colour_section(out_dir, metrics_path)
        md += colour_md
        body += colour_body
    elif colour_metrics is not None:
        raise ValueError(f"{colour_metrics}: helmet colour metrics file not found")
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    html_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>sitewatch evaluation</title>"
        "</head><body>" + "\n".join(body) + "</body></html>\n",
        encoding="utf-8",
    )
    return md_path, html_path


__all__ = ["plot_pr", "plot_timeline", "write_report"]
