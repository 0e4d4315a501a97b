"""The worker register (issue 6): enrolment with consent, the device feed, removal,
face retention, and the edge RegisterSync pulling from a real app.

Face photos are real: crops around labelled faces (tests/data/faces/labels.json) of
frames of ../shared/data/videos/red-white-helmets.mp4 (the man in the red helmet) and
yellow-helmets-closeup.mp4 (another person); YuNet + SFace from ../shared/models.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from sitewatch.edge.faces.detection import DETECTOR_MODEL, RECOGNIZER_MODEL, FaceDetector
from sitewatch.edge.faces.embedding import DEFAULT_MATCH_THRESHOLD, FaceEmbedder
from sitewatch.edge.faces.sync import RegisterSync, RegisterSyncError
from sitewatch.edge.faces.tracks import FaceRegister
from sitewatch.server.db.models import AuditEntry, Role
from sitewatch.server.db.types import utcnow
from sitewatch.server.db.workers import Worker, WorkerEmbedding
from sitewatch.server.services.workers import purge_face_data
from tests.conftest import shared_file
from tests.server.conftest import ServerEnv

LABELS = Path(__file__).resolve().parents[1] / "data" / "faces" / "labels.json"
CONSENT = {"consent_given": "true", "consent_method": "signed form"}


def _frame(video: Path, index: int) -> np.ndarray:
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return np.asarray(frame.to_ndarray(format="bgr24"))
    raise AssertionError(f"{video} has no frame {index}")


def _labelled_crop(video: str, frame_index: int, face: int) -> np.ndarray:
    labels = json.loads(LABELS.read_text())["frames"]
    entry = next(f for f in labels if f["video"] == video and f["frame_index"] == frame_index)
    x0, y0, x1, y1 = entry["faces"][face]["xyxy"]
    pad_x, pad_y = (x1 - x0) * 0.6, (y1 - y0) * 0.6
    image = _frame(shared_file(f"data/videos/{video}"), frame_index)
    return image[
        max(0, int(y0 - pad_y)) : int(y1 + pad_y), max(0, int(x0 - pad_x)) : int(x1 + pad_x)
    ]


def _jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="session")
def faces() -> dict[str, np.ndarray]:
    """Crops: the red-helmet man at frames 30 and 160, another man (yellow clip)."""
    shared_file(f"models/{DETECTOR_MODEL}")
    shared_file(f"models/{RECOGNIZER_MODEL}")
    return {
        "red_30": _labelled_crop("red-white-helmets.mp4", 30, 0),
        "red_160": _labelled_crop("red-white-helmets.mp4", 160, 0),
        "other": _labelled_crop("yellow-helmets-closeup.mp4", 110, 1),
    }


def _enrol(client: TestClient, site: str, worker_id: str, photo: bytes, **form: str) -> Response:
    data = {"worker_id": worker_id, "name": f"Name of {worker_id}", **CONSENT, **form}
    return client.post(
        f"/api/v1/workers/{site}",
        data=data,
        files=[("photos", ("face.jpg", photo, "image/jpeg"))],
    )


def test_enrol_and_incremental_feed(server_env: ServerEnv, faces: dict[str, np.ndarray]) -> None:
    reviewer = server_env.user("rita", Role.REVIEWER, ["site-a"])
    box = server_env.device("site-a")
    other_box = server_env.device("site-b")

    answer = _enrol(reviewer, "site-a", "w-1", _jpeg(faces["red_30"]), team="steel")
    assert answer.status_code == 201, answer.text
    assert answer.json()["embedding_count"] == 1 and answer.json()["version"] == 1

    full = box.get("/api/v1/register", params={"since_version": 0}).json()
    assert full["version"] == 1 and full["full"] is True and full["removed"] == []
    [worker] = full["workers"]
    assert worker["worker_id"] == "w-1" and worker["is_party_member"] is False
    vector = np.array(worker["embeddings"][0], np.float32)
    assert vector.shape == (128,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4

    assert _enrol(reviewer, "site-a", "w-2", _jpeg(faces["other"])).status_code == 201
    patched = reviewer.patch("/api/v1/workers/site-a/w-1", json={"is_party_member": True})
    assert patched.status_code == 200 and patched.json()["version"] == 3
    since_1 = box.get("/api/v1/register", params={"since_version": 1}).json()
    assert since_1["version"] == 3 and since_1["full"] is False
    assert [(w["worker_id"], w["is_party_member"]) for w in since_1["workers"]] == [
        ("w-1", True),
        ("w-2", False),
    ]
    since_3 = box.get("/api/v1/register", params={"since_version": 3}).json()
    assert since_3["workers"] == [] and since_3["removed"] == []

    refused = other_box.get("/api/v1/register", params={"site_id": "site-a"})
    assert refused.status_code == 403
    own = other_box.get("/api/v1/register").json()
    assert own == {"version": 0, "full": True, "workers": [], "removed": []}
    assert server_env.client().get("/api/v1/register").status_code == 401

    with server_env.database.session() as db:
        actions = db.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "worker")
        ).all()
    assert sorted(actions) == ["worker.enrol", "worker.enrol", "worker.update"]


def test_enrol_refusals(
    server_env: ServerEnv, faces: dict[str, np.ndarray], jpeg_bytes: bytes
) -> None:
    reviewer = server_env.user("rita", Role.REVIEWER, ["site-a"])
    viewer = server_env.user("vic", Role.VIEWER, ["site-a"])
    stranger = server_env.user("sam", Role.REVIEWER, ["site-b"])
    photo = _jpeg(faces["red_30"])

    no_consent = reviewer.post(
        "/api/v1/workers/site-a",
        data={"worker_id": "w-1", "name": "Ann"},
        files=[("photos", ("face.jpg", photo, "image/jpeg"))],
    )
    assert no_consent.status_code == 422 and "consent" in no_consent.json()["detail"]
    assert _enrol(viewer, "site-a", "w-1", photo).status_code == 403
    assert _enrol(stranger, "site-a", "w-1", photo).status_code == 404

    no_face = _enrol(reviewer, "site-a", "w-1", jpeg_bytes)
    assert no_face.status_code == 422 and "no face" in no_face.json()["detail"]
    pair = np.hstack(
        [cv2.resize(faces["red_30"], (300, 300)), cv2.resize(faces["other"], (300, 300))]
    )
    two = _enrol(reviewer, "site-a", "w-1", _jpeg(pair))
    assert two.status_code == 422 and "2 faces" in two.json()["detail"], two.text
    png = cv2.imencode(".png", cv2.resize(faces["red_30"], (96, 96)))[1].tobytes()
    assert _enrol(reviewer, "site-a", "w-1", png).status_code == 415

    assert _enrol(reviewer, "site-a", "w-1", photo).status_code == 201
    assert _enrol(reviewer, "site-a", "w-1", photo).status_code == 409
    listed = viewer.get("/api/v1/workers").json()
    assert [w["worker_id"] for w in listed] == ["w-1"]
    assert stranger.get("/api/v1/workers").json() == []


def test_removal_leaves_tombstone_and_no_face_data(
    server_env: ServerEnv, faces: dict[str, np.ndarray]
) -> None:
    admin = server_env.user("ada", Role.ADMIN)
    reviewer = server_env.user("rita", Role.REVIEWER, ["site-a"])
    box = server_env.device("site-a")
    assert _enrol(reviewer, "site-a", "w-1", _jpeg(faces["red_30"])).status_code == 201
    assert _enrol(reviewer, "site-a", "w-2", _jpeg(faces["other"])).status_code == 201

    assert reviewer.delete("/api/v1/workers/site-a/w-1").status_code == 403
    assert admin.delete("/api/v1/workers/site-a/w-1").status_code == 200
    assert admin.delete("/api/v1/workers/site-a/w-1").status_code == 404

    since_2 = box.get("/api/v1/register", params={"since_version": 2}).json()
    assert since_2 == {"version": 3, "full": False, "workers": [], "removed": ["w-1"]}
    full = box.get("/api/v1/register").json()
    assert [w["worker_id"] for w in full["workers"]] == ["w-2"] and full["removed"] == ["w-1"]
    with server_env.database.session() as db:
        gone = db.scalars(select(Worker).where(Worker.worker_id == "w-1")).one()
        assert gone.removed_at is not None
        left = db.scalar(
            select(func.count())
            .select_from(WorkerEmbedding)
            .where(WorkerEmbedding.worker_pk == gone.id)
        )
        assert left == 0
    # a removed worker may be enrolled again (new consent, new photos)
    assert _enrol(reviewer, "site-a", "w-1", _jpeg(faces["red_30"])).status_code == 201


def test_face_retention_removes_old_enrolments(
    server_env: ServerEnv, faces: dict[str, np.ndarray]
) -> None:
    reviewer = server_env.user("rita", Role.REVIEWER, ["site-a"])
    box = server_env.device("site-a")
    assert _enrol(reviewer, "site-a", "w-1", _jpeg(faces["red_30"])).status_code == 201
    with server_env.database.session() as db:
        assert purge_face_data(db, days=30) == 0
        assert purge_face_data(db, days=30, now=utcnow() + timedelta(days=31)) == 1
        assert db.scalar(select(func.count()).select_from(WorkerEmbedding)) == 0
    assert box.get("/api/v1/register", params={"since_version": 1}).json()["removed"] == ["w-1"]


def test_edge_sync_recognises_enrolled_worker(
    server_env: ServerEnv, faces: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """A real RegisterSync pulls from the app; the synced register recognises the
    enrolled man in another frame and leaves the other person unknown."""
    reviewer = server_env.user("rita", Role.REVIEWER, ["site-a"])
    admin = server_env.user("ada", Role.ADMIN)
    box = server_env.device("site-a")
    token = box.headers["Authorization"].removeprefix("Bearer ")
    photo = _jpeg(faces["red_30"])
    assert _enrol(reviewer, "site-a", "red", photo, is_party_member="true").status_code == 201

    register_path = tmp_path / "edge" / "register.npz"
    sync = RegisterSync("http://testserver", token, register_path, client=server_env.client())
    result = sync.sync()
    assert (result.version, result.full, result.added) == (1, True, 1)
    assert sync.party_member_ids() == {"red"}

    detector = FaceDetector(shared_file(f"models/{DETECTOR_MODEL}"))
    embedder = FaceEmbedder(shared_file(f"models/{RECOGNIZER_MODEL}"))

    def embedding(image: np.ndarray) -> np.ndarray:
        [face] = detector.detect(image)
        return embedder.embed(image, face)

    on_disk = FaceRegister.load(register_path)
    assert on_disk.match(embedding(faces["red_160"]), DEFAULT_MATCH_THRESHOLD) == "red"
    assert on_disk.match(embedding(faces["other"]), DEFAULT_MATCH_THRESHOLD) == ""

    assert admin.delete("/api/v1/workers/site-a/red").status_code == 200
    restarted = RegisterSync("http://testserver", token, register_path, client=server_env.client())
    assert restarted.version == 1 and restarted.party_member_ids() == {"red"}
    again = restarted.sync()
    assert (again.version, again.full, again.removed) == (2, False, 1)
    assert len(FaceRegister.load(register_path)) == 0 and restarted.party_member_ids() == set()


def test_sync_failures_keep_the_local_register(tmp_path: Path) -> None:
    """An unreachable server or a malformed answer leaves the register file as it was."""
    path = tmp_path / "register.npz"
    vector = np.ones(128, np.float32)
    seen: list[int] = []
    sync = RegisterSync(
        "http://127.0.0.1:9", "t", path, timeout_s=2, on_change=lambda r: seen.append(len(r))
    )
    feed: dict[str, Any] = {
        "version": 4,
        "full": True,
        "removed": [],
        "workers": [
            {
                "worker_id": "a",
                "name": "A",
                "is_party_member": True,
                "embeddings": [vector.tolist()],
            }
        ],
    }
    assert sync.apply(feed).added == 1 and seen == [1]
    before = path.read_bytes()
    with pytest.raises(RegisterSyncError, match="register sync"):
        sync.sync()
    with pytest.raises(RegisterSyncError, match="malformed"):
        sync.apply({"version": 5, "full": False, "removed": [], "workers": [{"worker_id": "b"}]})
    with pytest.raises(RegisterSyncError, match="malformed"):
        sync.apply({**feed, "workers": [{**feed["workers"][0], "embeddings": [[1.0, 2.0]]}]})
    assert path.read_bytes() == before and sync.version == 4 and seen == [1]
    reloaded = RegisterSync("http://127.0.0.1:9", "t", path)
    assert (reloaded.version, reloaded.party_member_ids(), reloaded.name("a")) == (4, {"a"}, "A")


def test_missing_face_models_is_a_clear_503(
    server_env: ServerEnv, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes, tmp_path: Path
) -> None:
    from sitewatch.server.services import workers

    monkeypatch.setenv("SITEWATCH_SHARED", str(tmp_path))  # no models/ there
    workers.photo_embedder.cache_clear()  # load the models again, from the empty folder
    try:
        reviewer = server_env.user("rita", Role.REVIEWER, ["site-a"])
        answer = _enrol(reviewer, "site-a", "w-1", jpeg_bytes)
    finally:
        workers.photo_embedder.cache_clear()
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert "face_detection_yunet" in detail and str(tmp_path) in detail, detail


def test_concurrent_enrolments_get_distinct_versions(server_env: ServerEnv) -> None:
    """Four threads enrol at once (service level, synthetic embeddings): every change
    gets its own version and the feed's version is the last one."""
    from concurrent.futures import ThreadPoolExecutor

    from sitewatch.server.db.models import User
    from sitewatch.server.services import workers

    server_env.user("rita", Role.REVIEWER, ["site-a"])

    def enrol(index: int) -> int:
        with server_env.database.session() as db:
            user = db.scalars(select(User).where(User.username == "rita")).one()
            worker = workers.enrol_worker(
                db,
                user=user,
                site_id="site-a",
                worker_id=f"w-{index}",
                fields=workers.WorkerFields(name=f"W {index}"),
                consent=workers.Consent(given=True, method="form"),
                embeddings=[np.random.default_rng(index).standard_normal(128).astype(np.float32)],
            )
            return worker.version

    with ThreadPoolExecutor(4) as pool:
        versions = sorted(pool.map(enrol, range(4)))
    assert versions == [1, 2, 3, 4]
    assert server_env.device("site-a").get("/api/v1/register").json()["version"] == 4
