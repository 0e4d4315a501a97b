"""A tally of every answer the in-process apps of the server tests gave, by status, read
from each app's own request counter; printed at the end of the run (the README's probe
figures come from it)."""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI

TALLY: Counter[str] = Counter()
FAULT_ANSWERS = ("503", "507")
#: Lines the probes of a real server process add (answer and memory of each probe).
NOTES: list[str] = []


def note(line: str) -> None:
    NOTES.append(line)


def add_app(app: FastAPI) -> None:
    """Add ``app``'s answers so far (call once per app, when its test ends)."""
    for metric in app.state.metrics.requests.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                status = sample.labels["status"]
                # 503 / 507 are the fault answers the fault tests ask for (Retry-After);
                # any other 5xx is a defect.
                key = status if status in FAULT_ANSWERS else f"{status[0]}xx"
                TALLY[key] += int(sample.value)


def summary() -> list[str]:
    total = sum(TALLY.values())
    lines = [f"server process probe: {line}" for line in NOTES]
    if total:
        parts = ", ".join(f"{key} {TALLY[key]}" for key in sorted(TALLY))
        lines.append(f"server requests answered in this run: {total} ({parts})")
    return lines
