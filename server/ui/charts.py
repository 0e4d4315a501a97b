"""Charts of the dashboards as inline SVG drawn on the server (issue 18): no JavaScript,
no library, nothing from another host (the pages' CSP allows neither).

Every chart has its natural size in ``width``/``height`` and scales down with its ``viewBox``
(CSS ``max-width: 100%``) to fit a phone; it has a ``<title>``
and an ``aria-label``, and every bar or cell a ``<title>`` of its own (the tooltip, and
what a screen reader says) plus ``data-`` attributes with the number it stands for, so
a test can hold the picture against the table beside it. Colours come from CSS classes
(``s0``...``s9`` for series, ``h0``...``h4`` for the heat levels); all text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

FONT = 11
LABEL_W = 130  # the label column of the horizontal charts
MAX_LABEL_CHARS = 16


@dataclass(frozen=True)
class Segment:
    """One bar (or one piece of a stacked bar)."""

    key: str  # the series (rule, measure)
    value: float
    title: str  # the tooltip, e.g. "2026-11-20 · 未戴安全帽: 3"
    css: str = "s0"
    text: str = ""  # written after a horizontal bar ("85%")


@dataclass(frozen=True)
class Column:
    """One category of a bar chart (a day, a site, a hazard)."""

    key: str
    label: str
    segments: Sequence[Segment] = field(default_factory=tuple)
    href: str | None = None


def _attr(value: object) -> str:
    return str(escape(str(value)))


def _num(value: float) -> str:
    """A coordinate with at most one decimal."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _short(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _open(chart_id: str, title: str, width: float, height: float) -> list[str]:
    return [
        f'<svg class="chart" id="{_attr(chart_id)}" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'width="{_num(width)}" height="{_num(height)}" '
        f'role="img" aria-label="{_attr(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-size="{FONT}">',
        f"<title>{escape(title)}</title>",
    ]


def stacked_columns(chart_id: str, title: str, columns: Sequence[Column]) -> Markup:
    """Vertical bars, one per column, stacked from its segments (in order, from 0 up);
    a y axis with three ticks, x labels thinned to fit."""
    count = max(len(columns), 1)
    step = max(6.0, min(40.0, 840.0 / count))
    left, right, top, bottom, plot_h = 34.0, 8.0, 10.0, 34.0, 170.0
    width = max(320.0, left + right + step * count)
    height = top + plot_h + bottom
    top_value = nice_max(max((sum(s.value for s in c.segments) for c in columns), default=0))
    scale = plot_h / top_value
    base = top + plot_h
    parts = _open(chart_id, title, width, height)
    for tick in (0.0, top_value / 2, top_value):
        y = base - tick * scale
        parts.append(
            f'<line class="grid" x1="{_num(left)}" x2="{_num(width - right)}" '
            f'y1="{_num(y)}" y2="{_num(y)}"/>'
            f'<text class="tick" x="{_num(left - 4)}" y="{_num(y + 4)}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    every = max(1, math.ceil(count * 44 / (width - left - right)))
    bar_w = max(2.0, step * 0.7)
    for index, column in enumerate(columns):
        x = left + index * step + (step - bar_w) / 2
        parts.append(f'<g class="col" data-key="{_attr(column.key)}">')
        y = base
        for seg in column.segments:
            if seg.value <= 0:
                continue
            h = seg.value * scale
            y -= h
            parts.append(
                f'<rect class="bar {_attr(seg.css)}" x="{_num(x)}" y="{_num(y)}" '
                f'width="{_num(bar_w)}" height="{_num(h)}" data-key="{_attr(seg.key)}" '
                f'data-value="{_fmt(seg.value)}"><title>{escape(seg.title)}</title></rect>'
            )
        if index % every == 0:
            parts.append(
                f'<text class="xlabel" x="{_num(x + bar_w / 2)}" y="{_num(base + 14)}" '
                f'text-anchor="middle">{escape(column.label)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(
    chart_id: str, title: str, rows: Sequence[Column], *, max_value: float | None = None
) -> Markup:
    """Horizontal bars, one group per row (a site, a hazard) with one bar per segment,
    the row's label on the left (a link where the row has ``href``) and each segment's
    ``text`` after its bar."""
    bar_h, gap, plot_w, right = 12.0, 8.0, 300.0, 52.0
    top_value = max_value or nice_max(max((s.value for r in rows for s in r.segments), default=0))
    width = LABEL_W + plot_w + right
    y = 6.0
    body: list[str] = []
    for row in rows:
        bars = list(row.segments) or [Segment(key="", value=0, title=row.label)]
        group_h = bar_h * len(bars)
        label = (
            f'<text class="ylabel" x="{_num(LABEL_W - 6)}" y="{_num(y + group_h / 2 + 4)}" '
            f'text-anchor="end">{escape(_short(row.label))}<title>{escape(row.label)}</title>'
            "</text>"
        )
        if row.href:
            label = f'<a href="{_attr(row.href)}">{label}</a>'
        body.append(f'<g class="row" data-key="{_attr(row.key)}">{label}')
        for number, seg in enumerate(bars):
            by = y + number * bar_h
            w = max(0.0, min(seg.value / top_value, 1.0)) * plot_w
            body.append(
                f'<rect class="bar {_attr(seg.css)}" x="{_num(LABEL_W)}" y="{_num(by + 1)}" '
                f'width="{_num(w)}" height="{_num(bar_h - 2)}" data-key="{_attr(seg.key)}" '
                f'data-value="{round(seg.value, 4):g}" data-text="{_attr(seg.text)}">'
                f"<title>{escape(seg.title)}</title></rect>"
            )
            if seg.text:
                body.append(
                    f'<text class="value" x="{_num(LABEL_W + w + 4)}" '
                    f'y="{_num(by + bar_h - 2)}">{escape(seg.text)}</text>'
                )
        body.append("</g>")
        y += group_h + gap
    height = max(y, 30.0)
    parts = _open(chart_id, title, width, height)
    parts.append(
        f'<line class="axis" x1="{_num(LABEL_W)}" x2="{_num(LABEL_W)}" y1="0" y2="{_num(height)}"/>'
    )
    parts.extend(body)
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Cell:
    value: int
    title: str
    key: str = ""


def heat_grid(
    chart_id: str,
    title: str,
    row_labels: Sequence[tuple[str, str]],
    column_labels: Sequence[tuple[str, str]],
    cells: dict[tuple[str, str], Cell],
) -> Markup:
    """A grid of rows (key, label) by columns (key, label); a cell's shade (``h0`` to
    ``h4``) grows with its value, which is written in it when there is room."""
    count = max(len(column_labels), 1)
    cell_w = max(8.0, min(44.0, 560.0 / count))
    cell_h, top = 20.0, 18.0
    width = LABEL_W + cell_w * count + 8
    height = top + cell_h * len(row_labels) + 4
    top_value = max((c.value for c in cells.values()), default=0) or 1
    parts = _open(chart_id, title, width, height)
    every = max(1, math.ceil(42 / cell_w))
    for index, (_key, label) in enumerate(column_labels):
        if index % every == 0:
            parts.append(
                f'<text class="xlabel" x="{_num(LABEL_W + index * cell_w + cell_w / 2)}" '
                f'y="12" text-anchor="middle">{escape(label)}</text>'
            )
    for number, (row_key, row_label) in enumerate(row_labels):
        y = top + number * cell_h
        parts.append(
            f'<g class="row" data-key="{_attr(row_key)}">'
            f'<text class="ylabel" x="{_num(LABEL_W - 6)}" y="{_num(y + cell_h / 2 + 4)}" '
            f'text-anchor="end">{escape(_short(row_label))}<title>{escape(row_label)}</title>'
            "</text>"
        )
        for index, (column_key, _label) in enumerate(column_labels):
            cell = cells.get((row_key, column_key))
            if cell is None:
                continue
            level = 0 if cell.value <= 0 else 1 + min(3, int(3 * cell.value / top_value))
            x = LABEL_W + index * cell_w
            parts.append(
                f'<rect class="cell h{level}" x="{_num(x + 1)}" y="{_num(y + 1)}" '
                f'width="{_num(cell_w - 2)}" height="{_num(cell_h - 2)}" '
                f'data-key="{_attr(column_key)}" data-value="{cell.value}">'
                f"<title>{escape(cell.title)}</title></rect>"
            )
            if cell_w >= 18 and cell.value:
                parts.append(
                    f'<text class="cell-value" x="{_num(x + cell_w / 2)}" '
                    f'y="{_num(y + cell_h / 2 + 4)}" text-anchor="middle">{cell.value}</text>'
                )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
