"""Benchmark the live edge box: how many cameras at N detections/s one edge process sustains,
and how long an event takes from its start to the server's acknowledgement.

For n = 1, 2, ... cameras it runs one ``EdgeRunner`` (this process) with n cameras reading
a real RTSP stream (gst-rtsp-server, tests/rtsp_server.py; ``--source file`` reads the
looped video file instead), the real pipeline (ONNX detector, tracker, rules with the whole
frame as a restricted zone so people raise events, clips, outbox) and the real
``sitewatch server`` (subprocess, SQLite),
measures each camera's achieved detection rate over ``--seconds`` after a warm-up, and
stops at the first n where a camera falls below 90 % of the target rate.

Latency, per event: ``started_at`` (the first frame of the hazard; the rule then waits
``min_duration_s`` before raising it) -> spooled (event raised, written to the outbox) ->
acknowledged by the server. Printed as median and p90 over all events.

    .venv/bin/python -m scripts.bench.edge [--min-cameras 1] [--max-cameras 8] [--seconds 20]
        [--model M.onnx] [--threads T] [--sessions S] [--all]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.common import PROJECT_ROOT, shared_root
from sitewatch.edge.config import load_config
from sitewatch.edge.live import EdgeRunner, EdgeTuning
from tests.edge.live_central import RealCentral
from tests.edge.live_support import write_site
from tests.rtsp_server import RtspServer, system_rtsp_available

SITE = "bench-site"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = shared_root()
    parser.add_argument("--video", type=Path, default=shared / "data/videos/barrier-walkway.mp4")
    parser.add_argument(
        "--model",
        type=Path,
        default=PROJECT_ROOT / "models" / "sitewatch-det.onnx",
        help="Detector (default: the edge's own model).",
    )
    parser.add_argument("--detect-fps", type=float, default=5.0)
    parser.add_argument("--max-cameras", type=int, default=8)
    parser.add_argument(
        "--min-cameras", type=int, default=1, help="First n (to measure near saturation only)."
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="Measured time per n.")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--source", choices=["rtsp", "file"], default="rtsp")
    parser.add_argument(
        "--threads", type=int, default=0, help="model.threads (ONNX Runtime; 0 = its choice)."
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=0,
        help="model.sessions (0, the default: one session shared by the cameras; N: a pool of N).",
    )
    parser.add_argument(
        "--all", action="store_true", help="Measure every n up to --max-cameras, even past failure."
    )
    return parser.parse_args()


def site_with_cameras(
    folder: Path, n: int, source: str, url: str, token: str, args: argparse.Namespace
) -> Path:
    config = write_site(
        folder,
        site_id=SITE,
        rtsp_url=source,
        server_url=url,
        token=token,
        model=args.model,
        detect_fps=args.detect_fps,
    )
    text = config.read_text()
    import yaml

    data = yaml.safe_load(text)
    camera = data["cameras"][0]
    data["cameras"] = [{**camera, "id": f"cam{i}", "loop": True} for i in range(n)]
    data["model"]["threads"] = args.threads
    data["model"]["sessions"] = args.sessions
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def run_n(
    n: int, source: str, central: Any, args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    folder = root / f"n{n}"
    folder.mkdir()
    config = site_with_cameras(folder, n, source, central.url, central.token, args)
    runner = EdgeRunner(
        load_config(config),
        config_path=config,
        tuning=EdgeTuning(heartbeat_s=2, retry_min_s=0.2, retry_max_s=1, metrics_port=None),
    )
    runner.start()
    try:
        time.sleep(args.warmup)
        sums0 = {w.camera.id: _sample(runner, "_sum", w.camera.id) for w in runner.workers}
        counts0 = {w.camera.id: _sample(runner, "_count", w.camera.id) for w in runner.workers}
        started, cpu0 = time.monotonic(), time.process_time()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - started
        cpu_cores = (time.process_time() - cpu0) / elapsed
        counts = {cid: _sample(runner, "_count", cid) - counts0[cid] for cid in counts0}
        fps = {cid: counts[cid] / elapsed for cid in counts0}
        infer_ms = {
            cid: 1000 * (_sample(runner, "_sum", cid) - sums0[cid]) / max(1.0, counts[cid])
            for cid in counts0
        }
        history = runner.outbox.history()
        stages = _stage_means_ms(runner)
    finally:
        runner.stop()
        runner.shutdown()
    return {
        "fps": fps,
        "infer_ms": infer_ms,
        "history": history,
        "cpu_cores": cpu_cores,
        "stages": stages,
    }


def _sample(runner: EdgeRunner, suffix: str, camera_id: str) -> float:
    """The inference histogram's _count or _sum for one camera."""
    for metric in runner.metrics.inference_s.collect():
        for sample in metric.samples:
            if sample.name.endswith(suffix) and sample.labels.get("camera") == camera_id:
                return sample.value
    return 0.0


def _stage_means_ms(runner: EdgeRunner) -> dict[str, float]:
    """Mean time per stage over the whole run (all cameras), in ms."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for metric in runner.metrics.stage_s.collect():
        for sample in metric.samples:
            stage = sample.labels.get("stage", "")
            if sample.name.endswith("_sum"):
                sums[stage] = sums.get(stage, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[stage] = counts.get(stage, 0.0) + sample.value
    return {stage: 1000 * sums[stage] / counts[stage] for stage in sums if counts.get(stage)}


def latencies(history: list[tuple[Any, ...]]) -> tuple[list[float], list[float]]:
    from_start, from_spool = [], []
    for _eid, phase, spooled_at, started_at, acked_at in history:
        if phase != "start" or acked_at is None:
            continue
        from_spool.append(acked_at - spooled_at)
        from_start.append(acked_at - datetime.fromisoformat(started_at).timestamp())
    return from_start, from_spool


def summary(values: list[float]) -> str:
    if not values:
        return "no events"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s (n={len(ordered)})"


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        central = RealCentral(root / "central", site_id=SITE)
        central.start()
        rtsp = None
        source = str(args.video)
        if args.source == "rtsp":
            reason = system_rtsp_available()
            if reason:
                print(f"RTSP not available ({reason}); reading the file instead")
            else:
                looped = RtspServer.looped_copy(args.video, root / "loop.mp4", 20)
                rtsp = RtspServer(looped).start()
                source = rtsp.url
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"server: {central.kind}; source: {source}; target {args.detect_fps} detections/s")
        all_start: list[float] = []
        all_spool: list[float] = []
        sustained = args.min_cameras - 1  # counted from n = 1 up: below --min-cameras assumed
        try:
            for n in range(args.min_cameras, args.max_cameras + 1):
                result = run_n(n, source, central, args, root)
                rates = ", ".join(
                    f"{cid} {fps:.2f}/s ({result['infer_ms'][cid]:.0f} ms)"
                    for cid, fps in result["fps"].items()
                )
                ok = min(result["fps"].values()) >= 0.9 * args.detect_fps
                verdict = "sustained" if ok else "NOT sustained"
                detections_per_s = sum(result["fps"].values())
                cpu_per_detection = result["cpu_cores"] / max(detections_per_s, 1e-9)
                print(
                    f"{n} camera(s): {rates}; {detections_per_s:.1f} detections/s in all; "
                    f"edge CPU {result['cpu_cores']:.2f} cores, "
                    f"{cpu_per_detection:.3f} CPU-s per detected frame -> {verdict}"
                )
                stage_text = ", ".join(f"{k} {v:.0f} ms" for k, v in result["stages"].items())
                print(f"    pipeline stages (mean): {stage_text}")
                starts, spools = latencies(result["history"])
                all_start += starts
                all_spool += spools
                if ok and sustained == n - 1:
                    sustained = n
                if not ok and not args.all:
                    break
        finally:
            if rtsp is not None:
                rtsp.stop()
            central.stop()
        print(f"cameras sustained at {args.detect_fps} detections/s: {sustained}")
        print(f"latency event start -> server ack: {summary(all_start)}")
        print(f"latency event raised (spooled) -> server ack: {summary(all_spool)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
