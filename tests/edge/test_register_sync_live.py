"""The server's worker register in the live edge, end to end (issue 6).

A real ``sitewatch server`` subprocess (SQLite) and a real :class:`edge.live.EdgeRunner`
with the real pipeline (project detector, tracker, YuNet + SFace) watching
red-white-helmets.mp4 (paced at real time, looped). A reviewer enrols the man in the red
helmet through the API from a crop of frame 30, as a party member; the box also has a
local register (``faces.register_path``) with him from frame 160 and another man (from
yellow-helmets-closeup). The edge syncs at start: register version 1, local + server
workers, and the camera recognises him. An admin removes him through the API: after the
next poll (0.5 s) the edge holds version 2, his track loses the identity, later frames
never give it back (his local enrolment went too), the party-member rule no longer sees
him, and the other locally enrolled man is still in the register.

The same through ``sitewatch edge run`` as a process (its /metrics follow enrolment and
removal), and a box whose server is not there starts anyway, with its local register.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from sitewatch.contract.events import RuleKind
from sitewatch.edge.config import load_config
from sitewatch.edge.detections import HELMET_COLOUR, HELMET_STATE, WORKER_ID
from sitewatch.edge.faces.detection import DETECTOR_MODEL, RECOGNIZER_MODEL
from sitewatch.edge.faces.enrol import photo_embedding
from sitewatch.edge.faces.site_register import SYNCED_REGISTER_NAME
from sitewatch.edge.faces.sync import RegisterSync
from sitewatch.edge.faces.tracks import FaceRegister
from sitewatch.edge.live import EdgeRunner, EdgeTuning
from sitewatch.edge.rules.frame import PersonFrame
from sitewatch.edge.tracking import subset
from tests.conftest import shared_file
from tests.edge.live_central import RealCentral
from tests.edge.live_support import EdgeProcess, wait_for
from tests.rtsp_server import free_port
from tests.server.test_workers import CONSENT, _jpeg, _labelled_crop

pytestmark = pytest.mark.slow
SITE = "reg-site"
PASSWORD = "correct-horse-1"


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCentral]:
    """One server for the module (each test enrols its own worker id)."""
    for model in (DETECTOR_MODEL, RECOGNIZER_MODEL):
        shared_file(f"models/{model}")  # the server embeds enrolment photos with them
    server = RealCentral(tmp_path_factory.mktemp("central"), site_id=SITE)
    for user, role in (("rita", "reviewer"), ("ada", "admin")):
        server._cli("add-user", "--username", user, "--role", role, "--site", SITE,
                    "--password", PASSWORD)  # fmt: skip
    server.start()
    yield server
    server.stop()


def _login(central: RealCentral, username: str) -> httpx.Client:
    client = httpx.Client(base_url=central.url, timeout=60)
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def _site_config(folder: Path, central: RealCentral, local_register: Path | None) -> Path:
    (folder / "device.token").write_text(central.token + "\n")
    config: dict[str, Any] = {
        "site": {"id": SITE},
        "rules": {
            "no_helmet": {"enabled": False},
            "fall_edge": {"enabled": False},
            "restricted_zone": {"enabled": False},
            "post_unattended": {"enabled": False},
            "party_member_helmet": {"min_duration_s": 0},
        },
        "cameras": [
            {
                "id": "gate",
                "source": str(shared_file("data/videos/red-white-helmets.mp4")),
                "loop": True,
                "detect_fps": 4,
            }
        ],
        "server": {"url": central.url, "token_file": "device.token", "timeout_s": 10},
        "outbox": {"path": "spool"},
        "faces": {
            "enabled": True,
            "models_dir": str(shared_file(f"models/{DETECTOR_MODEL}").parent),
            "detect_every_n_frames": 1,
            "register_path": local_register.name if local_register else None,
            "register_sync_interval_s": 0.5,
        },
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _local_register(path: Path) -> None:
    """The box's own enrolments: the red-helmet man (frame 160) and another man."""
    from sitewatch.edge.faces.detection import FaceDetector
    from sitewatch.edge.faces.embedding import FaceEmbedder

    detector = FaceDetector(shared_file(f"models/{DETECTOR_MODEL}"))
    embedder = FaceEmbedder(shared_file(f"models/{RECOGNIZER_MODEL}"))
    crops = {
        "red": _labelled_crop("red-white-helmets.mp4", 160, 0),
        "other": _labelled_crop("yellow-helmets-closeup.mp4", 110, 1),
    }
    FaceRegister(
        {w: [photo_embedding(_jpeg(c), detector, embedder)] for w, c in crops.items()}
    ).save(path)


class Recorded:
    """Each processed frame's persons, in order (wraps the live pipeline's process)."""

    def __init__(self, pipeline: Any) -> None:
        self.frames: list[Any] = []
        process: Callable[..., Any] = pipeline.process

        def recording(frame_bgr: np.ndarray, now: Any) -> Any:
            result = process(frame_bgr, now)
            self.frames.append(result)
            return result

        pipeline.process = recording

    def ids_since(self, start: int) -> list[set[str]]:
        return [set(map(str, r.persons.data[WORKER_ID])) for r in self.frames[start:]]


def _party_sightings(rule: Any, result: Any) -> int:
    """Sightings of the live party-member rule if the people of ``result`` wore yellow
    helmets (the man's real helmet is red, which raises nothing)."""
    persons = subset(result.persons, np.arange(len(result.persons)))
    persons.data[HELMET_STATE] = np.array(["helmet"] * len(persons), dtype=object)
    persons.data[HELMET_COLOUR] = np.array(["yellow"] * len(persons), dtype=object)
    return len(rule.sightings(PersonFrame.from_detections(persons, result.frame_wh), result.now))


def test_enrol_sync_recognise_remove_through_the_api(central: RealCentral, tmp_path: Path) -> None:
    started = time.monotonic()
    reviewer, admin = _login(central, "rita"), _login(central, "ada")
    enrolled = reviewer.post(
        f"/api/v1/workers/{SITE}",
        data={"worker_id": "red", "name": "Red Helmet", "is_party_member": "true", **CONSENT},
        files=[("photos", ("red.jpg", _jpeg(_labelled_crop("red-white-helmets.mp4", 30, 0))))],
    )
    assert enrolled.status_code == 201, enrolled.text
    version = enrolled.json()["version"]

    edge_dir = tmp_path / "edge"
    edge_dir.mkdir()
    local = edge_dir / "local-register.npz"
    _local_register(local)
    config = _site_config(edge_dir, central, local)
    runner = EdgeRunner(load_config(config), config_path=config, tuning=EdgeTuning(metrics_port=0))
    pipeline: Any = runner.workers[0].pipeline
    recorded = Recorded(pipeline)
    stage = pipeline.faces
    [party_rule] = [r for r in pipeline.rules.rules if r.kind is RuleKind.PARTY_MEMBER_HELMET]
    site_register = runner.face_register
    assert site_register is not None and site_register.version == 0
    try:
        runner.start()
        # the first sync ran before the cameras started
        assert site_register.version == version and site_register.failures == 0
        assert site_register.register.worker_ids() == ["other", "red"]  # local + server
        assert stage.register is site_register.register
        assert site_register.party_member_ids() == {"red"}
        assert (edge_dir / "spool" / SYNCED_REGISTER_NAME).exists()
        runner.refresh_metrics()
        metrics = httpx.get(f"http://127.0.0.1:{runner.metrics_port}/metrics").text
        assert f"sitewatch_edge_face_register_version {version:.1f}" in metrics

        wait_for(
            lambda: any("red" in ids for ids in recorded.ids_since(0)),
            60,
            "the camera to recognise the enrolled worker",
            poll_s=0.2,
        )
        recognised = next(
            r for r in reversed(recorded.frames) if "red" in r.persons.data[WORKER_ID]
        )
        assert _party_sightings(party_rule, recognised) == 1
        others = [ids - {"", "red"} for ids in recorded.ids_since(0)]
        assert not any(others), others  # nobody else is given an identity

        removed = admin.delete(f"/api/v1/workers/{SITE}/red")
        assert removed.status_code == 200, removed.text
        wait_for(lambda: "red" not in stage.register, 15, "the edge to sync the removal")
        assert site_register.version == version + 1 and "red" not in stage.tracks.register
        assert site_register.register.worker_ids() == ["other"]
        assert FaceRegister.load(local).worker_ids() == ["other"]  # gone locally too
        assert site_register.party_member_ids() == set()
        assert _party_sightings(party_rule, recognised) == 0  # the rule no longer sees him

        after = len(recorded.frames) + 1  # a frame in flight may have used the old register
        wait_for(lambda: len(recorded.frames) >= after + 8, 60, "8 frames after the removal")
        later = recorded.ids_since(after)
        assert not any("red" in ids for ids in later), later
        people = [len(r.persons) for r in recorded.frames[after:]]
        assert sum(people) > 0, "nobody tracked after the removal: the check would prove nothing"
    finally:
        runner.shutdown()
        reviewer.close()
        admin.close()
    assert not any(t.name == "register-sync" and t.is_alive() for t in threading.enumerate())
    print(f"register sync end to end: {time.monotonic() - started:.1f} s")


def test_edge_starts_when_the_server_register_cannot_be_had(tmp_path: Path) -> None:
    """A real EdgeRunner (default pipelines, faces on) whose server is not there: it
    starts, its cameras run with the local register, and it stops cleanly."""
    models = shared_file(f"models/{DETECTOR_MODEL}").parent
    video = shared_file("data/videos/turnstile-a.mp4")
    local = tmp_path / "local.npz"
    FaceRegister({"a": [np.ones(128, np.float32)]}).save(local)
    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": {"id": "s"},
                "cameras": [{"id": "cam", "source": str(video), "loop": True, "detect_fps": 2}],
                "server": {
                    "url": f"http://127.0.0.1:{free_port()}",
                    "device_token": "t",
                    "timeout_s": 2,
                },
                "outbox": {"path": "spool"},
                "faces": {
                    "enabled": True,
                    "models_dir": str(models),
                    "register_path": "local.npz",
                    "register_sync_interval_s": 0.3,
                },
            }
        )
    )
    runner = EdgeRunner(
        load_config(config), config_path=config, tuning=EdgeTuning(metrics_port=None)
    )
    try:
        runner.start()
        face_register = runner.face_register
        assert face_register is not None and face_register.failures >= 1
        pipeline: Any = runner.workers[0].pipeline
        stage = pipeline.faces
        assert stage.register.worker_ids() == ["a"]
        deadline = time.monotonic() + 30
        while runner.workers[0].detect_fps == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.workers[0].detect_fps > 0, "the camera did not run"
    finally:
        runner.shutdown()
    assert not any(t.name == "register-sync" for t in threading.enumerate())


def test_edge_process_syncs_enrolment_and_removal(central: RealCentral, tmp_path: Path) -> None:
    """``sitewatch edge run`` as a process: its /metrics follow the server's register.

    Its local register holds "gone", removed on the server before this box ever synced:
    the first (full) answer's tombstones take it out of the local file too.
    """
    admin = _login(central, "ada")
    photo = _jpeg(_labelled_crop("red-white-helmets.mp4", 160, 0))
    for worker_id in ("gone", "proc-1"):
        enrolled = admin.post(
            f"/api/v1/workers/{SITE}",
            data={"worker_id": worker_id, "name": "Process Test", **CONSENT},
            files=[("photos", ("p.jpg", photo))],
        )
        assert enrolled.status_code == 201, enrolled.text
    assert admin.delete(f"/api/v1/workers/{SITE}/gone").status_code == 200
    version = enrolled.json()["version"] + 1
    local = tmp_path / "local.npz"
    rows = np.eye(2, 128, dtype=np.float32)
    FaceRegister({"gone": [rows[0]], "keep": [rows[1]]}).save(local)
    config = _site_config(tmp_path, central, local)
    edge = EdgeProcess(config).start()
    try:

        def register_is(v: int, workers: int) -> bool:
            return (
                edge.metric("sitewatch_edge_face_register_version") == v
                and edge.metric("sitewatch_edge_face_register_workers") == workers
            )

        wait_for(lambda: register_is(version, 2), 30, f"v{version}: proc-1 and keep")
        assert FaceRegister.load(local).worker_ids() == ["keep"]
        assert admin.delete(f"/api/v1/workers/{SITE}/proc-1").status_code == 200
        wait_for(lambda: register_is(version + 1, 1), 30, "the removal on the edge")
        assert FaceRegister.load(local).worker_ids() == ["keep"]
        synced = RegisterSync(central.url, central.token, tmp_path / "spool" / SYNCED_REGISTER_NAME)
        assert synced.version == version + 1 and len(synced.register) == 0  # persisted
        synced.close()
        assert edge.metric("sitewatch_edge_face_register_sync_failures_total") == 0
    finally:
        assert edge.terminate() == 0, edge.log_text()
        admin.close()
