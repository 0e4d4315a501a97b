"""Faces on real frames of ../shared/data/videos with real YuNet/SFace models.

Labels: tests/data/faces/labels.json (made by eye, see tests/data/faces/README.md).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sitewatch.edge.faces.detection import (
    DETECTOR_MODEL,
    RECOGNIZER_MODEL,
    Face,
    FaceDetector,
    FaceModelError,
    resolve_model,
)
from sitewatch.edge.faces.embedding import DEFAULT_MATCH_THRESHOLD, FaceEmbedder
from sitewatch.edge.faces.privacy import blur_faces
from sitewatch.edge.faces.tracks import FaceRegister, FaceTracks
from tests.conftest import shared_file

LABELS = Path(__file__).resolve().parents[1] / "data" / "faces" / "labels.json"
RED = "red-white-helmets.mp4"  # the man in the red helmet faces the camera for seconds


@cache
def _frames(video: str, indices: tuple[int, ...]) -> dict[int, np.ndarray]:
    path = shared_file(f"data/videos/{video}")
    wanted, out = set(indices), {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[i] = frame.to_ndarray(format="bgr24")
            if i >= max(wanted):
                break
    return out


def _frame(video: str, index: int) -> np.ndarray:
    return _frames(video, (index,))[index]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(shared_file(f"models/{DETECTOR_MODEL}"))


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder(shared_file(f"models/{RECOGNIZER_MODEL}"))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _found(label: np.ndarray, faces: list[Face]) -> bool:
    return any(_iou(label, f.xyxy) >= 0.3 for f in faces)


def _red_man(detector: FaceDetector, image: np.ndarray) -> Face:
    """The red-helmet man: the largest face left of x=700 in red-white-helmets."""
    faces = [f for f in detector.detect(image) if f.xyxy[2] < 700]
    assert faces, "no face of the man in the red helmet"
    return max(faces, key=lambda f: f.size_px)


def test_detection_recall_on_labelled_frames(detector: FaceDetector) -> None:
    labels = json.loads(LABELS.read_text())["frames"]
    found = {True: 0, False: 0}
    total = {True: 0, False: 0}
    for entry in labels:
        faces = detector.detect(_frame(entry["video"], entry["frame_index"]))
        for face in entry["faces"]:
            hard = bool(face["hard"])
            total[hard] += 1
            found[hard] += _found(np.array(face["xyxy"], np.float32), faces)
    easy = found[False] / total[False]
    overall = (found[False] + found[True]) / (total[False] + total[True])
    print(f"face recall: {easy:.2f} of {total[False]} clear faces, {overall:.2f} of all")
    assert easy >= 0.85
    assert overall >= 0.6


def test_upper_body_crops_find_the_same_face(detector: FaceDetector) -> None:
    image = _frame(RED, 100)
    person_xyxy = np.array([[220, 20, 700, 480]], np.float32)  # drawn by eye around him
    faces = detector.detect_in_boxes(image, person_xyxy)[0]
    assert len(faces) == 1
    assert _iou(faces[0].xyxy, np.array([375, 150, 530, 295], np.float32)) >= 0.3


def test_enrolment_recognises_the_person_in_later_frames(
    detector: FaceDetector, embedder: FaceEmbedder
) -> None:
    enrol = _frame(RED, 30)
    register = FaceRegister({"w-red": [embedder.embed(enrol, _red_man(detector, enrol))]})
    for index in (100, 160, 220):
        image = _frame(RED, index)
        embedding = embedder.embed(image, _red_man(detector, image))
        assert register.match(embedding, DEFAULT_MATCH_THRESHOLD) == "w-red", index


def test_one_identity_through_a_clip(detector: FaceDetector, embedder: FaceEmbedder) -> None:
    enrol = _frame(RED, 30)
    register = FaceRegister({"w-red": [embedder.embed(enrol, _red_man(detector, enrol))]})
    tracks = FaceTracks(register, votes=3, window=5)
    indices = tuple(range(60, 130, 5))
    identities = []
    for t, (_, image) in enumerate(sorted(_frames(RED, indices).items())):
        face = _red_man(detector, image)
        identities.append(tracks.observe(1, image, face, embedder.embed(image, face), t * 0.2))
    assert identities[:2] == ["", ""]  # not before `votes` matching faces
    assert set(identities[2:]) == {"w-red"}
    thumbnail = tracks.thumbnail(1)
    assert thumbnail is not None and max(thumbnail.shape[:2]) == 112
    tracks.prune(set())
    assert len(tracks) == 0 and tracks.identity(1) == ""


@pytest.mark.parametrize(
    ("video", "indices"),
    [
        ("turnstile-a.mp4", tuple(range(0, 150, 10))),
        ("turnstile-b.mp4", (30, 75, 120)),
        ("yellow-helmets-closeup.mp4", (10, 60, 110)),
    ],
)
def test_other_people_never_get_the_workers_identity(
    detector: FaceDetector, embedder: FaceEmbedder, video: str, indices: tuple[int, ...]
) -> None:
    enrol = _frame(RED, 30)
    register = FaceRegister({"w-red": [embedder.embed(enrol, _red_man(detector, enrol))]})
    tracks = FaceTracks(register, votes=1, window=1)  # the strictest: a single frame decides
    seen = 0
    for image in _frames(video, indices).values():
        for face in detector.detect(image):
            seen += 1
            assert tracks.observe(seen, image, face, embedder.embed(image, face), 0.0) == ""
    assert seen >= 2, f"{video}: expected faces to test against"


def test_white_helmet_man_stays_unknown(detector: FaceDetector, embedder: FaceEmbedder) -> None:
    enrol = _frame(RED, 30)
    register = FaceRegister({"w-red": [embedder.embed(enrol, _red_man(detector, enrol))]})
    tracks = FaceTracks(register, votes=2, window=5)
    for t, index in enumerate((30, 100, 220)):
        image = _frame(RED, index)
        right = [f for f in detector.detect(image) if f.xyxy[0] > 700]
        assert right, index
        assert tracks.observe(2, image, right[0], embedder.embed(image, right[0]), t) == ""


def _laplacian_var(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_blur_hides_faces_and_leaves_the_rest(
    detector: FaceDetector, embedder: FaceEmbedder
) -> None:
    image = _frame(RED, 100)
    face = _red_man(detector, image)
    blurred, count = blur_faces(image, [face])
    assert count == 1
    x0, y0, x1, y1 = (int(v) for v in face.xyxy)
    before = _laplacian_var(image[y0:y1, x0:x1])
    after = _laplacian_var(blurred[y0:y1, x0:x1])
    assert after < before / 20, (before, after)
    # unrecognisable: the blurred face no longer matches the same face unblurred
    similarity = float(embedder.embed(image, face) @ embedder.embed(blurred, face))
    assert similarity < DEFAULT_MATCH_THRESHOLD, similarity
    outside = np.ones(image.shape[:2], bool)
    w, h = x1 - x0, y1 - y0
    outside[max(0, y0 - h // 4) : y1 + h // 4, max(0, x0 - w // 4) : x1 + w // 4] = False
    assert np.array_equal(image[outside], blurred[outside])


def test_blur_keeps_enrolled_faces(detector: FaceDetector) -> None:
    image = _frame(RED, 100)
    faces = detector.detect(image)
    kept = _red_man(detector, image)
    out, count = blur_faces(image, faces, keep=lambda f: f.xyxy[0] == kept.xyxy[0])
    assert count == len(faces) - 1
    x0, y0, x1, y1 = (int(v) for v in kept.xyxy)
    assert np.array_equal(out[y0:y1, x0:x1], image[y0:y1, x0:x1])


def test_missing_model_names_the_paths(tmp_path: Path) -> None:
    with pytest.raises(FaceModelError, match=str(tmp_path)):
        resolve_model(DETECTOR_MODEL, tmp_path)
