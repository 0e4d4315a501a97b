"""How long the rule engine takes per frame (zones + every rule), printed, not asserted.

    .venv/bin/python -m scripts.bench.rules [--people 20] [--frames 2000]

Uses configs/examples/calibrated-site.yaml (a homography, two metre edges, a restricted
zone and a post) with synthetic tracked people walking across the frame.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import supervision as sv

from scripts.common import PROJECT_ROOT
from sitewatch.edge.config import load_config
from sitewatch.edge.detections import HELMET_COLOUR, HELMET_STATE, ROLE, WORKER_ID
from sitewatch.edge.rules.engine import RuleEngine

CONFIG = PROJECT_ROOT / "configs" / "examples" / "calibrated-site.yaml"
FRAME_WH = (1920, 1080)


def frame_people(rng: np.random.Generator, n: int, k: int) -> sv.Detections:
    x = (np.linspace(0.05, 0.95, n) + 0.001 * k) % 1.0 * FRAME_WH[0]
    y = (0.3 + 0.6 * rng.random(n)) * FRAME_WH[1]
    xyxy = np.stack([x - 30, y - 160, x + 30, y], axis=1).astype(np.float32)
    return sv.Detections(
        xyxy=xyxy,
        confidence=np.full(n, 0.8, dtype=np.float32),
        class_id=np.zeros(n, dtype=int),
        tracker_id=np.arange(n),
        data={
            HELMET_STATE: rng.choice(["helmet", "bare", "unknown"], n),
            HELMET_COLOUR: rng.choice(["red", "yellow", ""], n),
            ROLE: rng.choice(["party_member", "worker", ""], n),
            WORKER_ID: rng.choice(["pm-1", "w-2", ""], n),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    site = load_config(CONFIG)
    engine = RuleEngine(site, site.cameras[0], party_member_ids={"pm-1"})
    rng = np.random.default_rng(0)
    frames = [frame_people(rng, args.people, k) for k in range(args.frames)]
    t0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    times_ms, n_events = [], 0
    for k, dets in enumerate(frames):
        started = time.perf_counter()
        n_events += len(engine.evaluate(dets, t0 + timedelta(seconds=k * 0.2), FRAME_WH))
        times_ms.append((time.perf_counter() - started) * 1000.0)
    times_ms.sort()
    print(f"rule engine, {args.people} people, {len(engine.rules)} rules, {args.frames} frames")
    print(
        f"  mean {statistics.fmean(times_ms):.3f} ms/frame, median "
        f"{times_ms[len(times_ms) // 2]:.3f} ms, p99 {times_ms[int(len(times_ms) * 0.99)]:.3f} ms"
    )
    print(f"  events emitted: {n_events}")


if __name__ == "__main__":
    main()
