"""Swapping a new worker register into a running camera, and the box's SiteRegister.

- FaceTracks.set_register: a track identified as a removed worker loses the identity at
  once and its old votes cannot bring it back; a kept worker keeps his.
- FaceStage.replace_register waits for a frame in progress (each frame sees one register).
- SiteRegister: local + server (synced) register, server entry wins for an id in both;
  a failed first sync (nothing listening) keeps the persisted and local registers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv

from sitewatch.edge.config import ConfigError, FacesConfig, parse_config
from sitewatch.edge.faces.detection import DETECTOR_MODEL, Face
from sitewatch.edge.faces.embedding import normalise
from sitewatch.edge.faces.site_register import SYNCED_REGISTER_NAME, SiteRegister
from sitewatch.edge.faces.stage import FaceStage
from sitewatch.edge.faces.sync import RegisterSync
from sitewatch.edge.faces.tracks import FaceRegister, FaceTracks
from tests.conftest import shared_file
from tests.rtsp_server import free_port

RNG = np.random.default_rng(6)
VECTORS = {w: RNG.normal(size=128).astype(np.float32) for w in ("a", "b", "c", "stranger")}
IMAGE = RNG.integers(0, 255, (120, 120, 3), dtype=np.uint8)
FACE = Face(
    xyxy=np.array([20, 20, 80, 80], np.float32),
    landmarks=np.array([[35, 40], [65, 40], [50, 55], [38, 68], [62, 68]], np.float32),
    score=0.9,
)


def _register(*worker_ids: str) -> FaceRegister:
    return FaceRegister({w: [VECTORS[w]] for w in worker_ids})


def _observe(tracks: FaceTracks, track_id: int, worker: str, times: int = 1) -> str:
    identity = ""
    for _ in range(times):
        identity = tracks.observe(track_id, IMAGE, FACE, normalise(VECTORS[worker]), 0.0)
    return identity


def test_removed_worker_loses_identity_and_old_votes_do_not_count() -> None:
    tracks = FaceTracks(_register("a", "b"), votes=3, window=5)
    assert _observe(tracks, 1, "a", 3) == "a" and _observe(tracks, 2, "b", 3) == "b"

    tracks.set_register(_register("b"))
    assert tracks.identity(1) == "" and tracks.identity(2) == "b"
    # a is enrolled again (new photos): the track's three old "a" votes were voided, so
    # one unrelated face does not give the identity back ...
    tracks.set_register(_register("a", "b"))
    assert _observe(tracks, 1, "stranger") == ""
    # ... new matches do
    assert _observe(tracks, 1, "a", 3) == "a"


def test_swap_waits_for_the_frame_in_progress() -> None:
    """replace_register from another thread returns only after the frame's update."""
    models = shared_file(f"models/{DETECTOR_MODEL}").parent
    old, new = _register("a"), _register("b")
    stage = FaceStage(FacesConfig(enabled=True, models_dir=str(models)), register=old)
    entered, release = threading.Event(), threading.Event()
    seen: list[FaceRegister] = []

    def slow_detect(image: np.ndarray, boxes: np.ndarray) -> list[list[Face]]:
        entered.set()
        seen.append(stage.tracks.register)
        release.wait(5)
        seen.append(stage.tracks.register)
        return [[] for _ in range(len(boxes))]

    stage.detector.detect_in_boxes = slow_detect  # type: ignore[method-assign,assignment]
    persons = sv.Detections(xyxy=np.array([[0, 0, 100, 119]], np.float32), tracker_id=np.array([7]))
    frame = threading.Thread(target=stage.update, args=(persons, IMAGE, 0.0))
    frame.start()
    assert entered.wait(5)
    swap = threading.Thread(target=stage.replace_register, args=(new,))
    swap.start()
    time.sleep(0.2)
    assert swap.is_alive() and stage.register is old  # waiting for the frame
    release.set()
    frame.join(5)
    swap.join(5)
    assert seen == [old, old] and stage.register is new and stage.tracks.register is new


def _feed(version: int, full: bool, workers: dict[str, bool], removed: list[str]) -> Any:
    return {
        "version": version,
        "full": full,
        "removed": removed,
        "workers": [
            {
                "worker_id": w,
                "name": w.upper(),
                "is_party_member": party,
                "embeddings": [VECTORS[w].tolist()],
            }
            for w, party in workers.items()
        ],
    }


def _nobody_listening() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_failed_first_sync_keeps_persisted_and_local_registers(tmp_path: Path) -> None:
    synced = tmp_path / "spool" / SYNCED_REGISTER_NAME
    # an earlier run synced b (party member) and c
    RegisterSync(_nobody_listening(), "t", synced).apply(
        _feed(3, True, {"b": True, "c": False}, [])
    )
    local = tmp_path / "local.npz"
    FaceRegister({"a": [VECTORS["a"]], "b": [VECTORS["stranger"]]}).save(local)

    published: list[FaceRegister] = []
    sync = RegisterSync(_nobody_listening(), "t", synced, timeout_s=2)
    register = SiteRegister(local_path=local, sync=sync, interval_s=0.2)
    register.subscribe(published.append)
    register.start()
    try:
        assert register.failures == 1 and register.version == 3
        assert register.register.worker_ids() == ["a", "b", "c"]
        # b is in both: the server's entry (its embedding) wins
        assert register.register.match(VECTORS["b"], 0.9) == "b"
        assert register.register.match(VECTORS["stranger"], 0.9) == ""
        assert register.party_member_ids() == {"b"}
        time.sleep(0.5)  # the poll thread keeps trying, and keeps the register
        assert register.failures >= 2 and published == []
    finally:
        register.stop()
    assert FaceRegister.load(local).worker_ids() == ["a", "b"]  # untouched


def test_sync_interval_is_checked() -> None:
    base = "site: {id: s}\nfaces: {enabled: true, register_sync_interval_s: %s}\n"
    assert parse_config(base % "5").faces.register_sync_interval_s == 5
    assert parse_config("site: {id: s}\n").faces.register_sync_interval_s == 60
    with pytest.raises(ConfigError, match="register_sync_interval_s"):
        parse_config(base % "0")
    with pytest.raises(ConfigError, match="register_sync_s"):
        parse_config("site: {id: s}\nfaces: {register_sync_s: 5}\n")


def test_edge_run_names_an_unreadable_local_register(tmp_path: Path) -> None:
    """``sitewatch edge run`` exits 2 naming faces.register_path (before any model loads)."""
    from typer.testing import CliRunner

    from sitewatch.cli import app

    (tmp_path / "broken.npz").write_bytes(b"not an npz")
    config = tmp_path / "site.yaml"
    config.write_text(
        "site: {id: s1}\n"
        "model: {path: nowhere.onnx}\n"
        "cameras: [{id: cam1, source: a.mp4}]\n"
        f"outbox: {{path: {tmp_path / 'spool'}}}\n"
        "faces: {enabled: true, register_path: broken.npz}\n"
    )
    result = CliRunner().invoke(app, ["edge", "run", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "faces.register_path" in result.output and "broken.npz" in result.output
