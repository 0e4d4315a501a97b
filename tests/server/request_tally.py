"""A tally of every answer the in-process apps of the server tests gave, by status, read
from each app's own request counter; printed at the end of the run (the README's probe
figures come from it)."""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI

TALLY: Counter[str] = Counter()


def add_app(app: FastAPI) -> None:
    """Add ``app``'s answers so far (call once per app, when its test ends)."""
    for metric in app.state.metrics.requests.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                status = sample.labels["status"]
                TALLY[f"{status[0]}xx"] += int(sample.value)


def summary() -> str | None:
    total = sum(TALLY.values())
    if not total:
        return None
    parts = ", ".join(f"{key} {TALLY[key]}" for key in sorted(TALLY))
    return f"server requests answered in this run: {total} ({parts})"
