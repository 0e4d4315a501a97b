"""Per person track: the best face seen (a thumbnail) and recognition by vote.

A track's faces are matched one by one against the register of enrolled workers; only the
match result (a worker id or "") is kept, in a window of the last ``window`` faces, never
the embedding, so nothing of an unknown person is stored. The track is given a worker's
identity once ``votes`` faces of that window matched the same worker; it stays unknown
otherwise. Tracks that end are pruned.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.faces.detection import Face
from sitewatch.edge.faces.embedding import DEFAULT_MATCH_THRESHOLD, EMBEDDING_DIM, normalise

logger = logging.getLogger(__name__)

THUMBNAIL_PX = 112


class FaceRegister:
    """Enrolled workers' embeddings, ``{worker_id: (k, 128) float32}``, in memory."""

    def __init__(self, embeddings: dict[str, list[np.ndarray]] | None = None) -> None:
        self._by_worker: dict[str, np.ndarray] = {}
        for worker_id, vectors in (embeddings or {}).items():
            self.set(worker_id, vectors)

    def set(self, worker_id: str, vectors: list[np.ndarray]) -> None:
        if not worker_id:
            raise ValueError("worker id must not be empty")
        rows = [normalise(v) for v in vectors]
        if not rows or any(r.shape != (EMBEDDING_DIM,) for r in rows):
            raise ValueError(f"worker {worker_id!r}: need 128-value embeddings, got {len(rows)}")
        self._by_worker[worker_id] = np.stack(rows)

    def remove(self, worker_id: str) -> None:
        self._by_worker.pop(worker_id, None)

    def __len__(self) -> int:
        return len(self._by_worker)

    def __contains__(self, worker_id: object) -> bool:
        return worker_id in self._by_worker

    def best_match(self, embedding: np.ndarray) -> tuple[str, float]:
        """The enrolled worker most similar to ``embedding`` and the cosine similarity."""
        best_id, best = "", -1.0
        for worker_id, rows in self._by_worker.items():
            score = float(np.max(rows @ embedding))
            if score > best:
                best_id, best = worker_id, score
        return best_id, best

    def match(self, embedding: np.ndarray, threshold: float) -> str:
        worker_id, score = self.best_match(embedding)
        return worker_id if score >= threshold else ""

    def worker_ids(self) -> list[str]:
        return sorted(self._by_worker)

    def embeddings(self, worker_id: str) -> np.ndarray:
        return self._by_worker[worker_id].copy()

    def save(self, path: Path) -> None:
        """To an .npz (see :meth:`load`), written whole then renamed into place."""
        ids = sorted(self._by_worker)
        rows = [self._by_worker[w] for w in ids]
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            worker_ids=np.array(ids, dtype=str),
            counts=np.array([len(r) for r in rows], np.int64),
            embeddings=np.vstack(rows) if rows else np.zeros((0, EMBEDDING_DIM), np.float32),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FaceRegister:
        """From an .npz written by :meth:`save` (worker_ids, counts, embeddings (n, 128))."""
        try:
            with np.load(path, allow_pickle=False) as data:
                ids, counts = list(data["worker_ids"]), list(data["counts"])
                rows = np.asarray(data["embeddings"], np.float32).reshape(-1, EMBEDDING_DIM)
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"face register {path}: {exc}") from None
        if len(ids) != len(counts) or sum(counts) != len(rows):
            raise ValueError(f"face register {path}: worker ids, counts and embeddings disagree")
        starts = np.cumsum([0, *counts])
        return cls({str(w): list(rows[starts[i] : starts[i + 1]]) for i, w in enumerate(ids)})


def face_quality(image_bgr: np.ndarray, face: Face) -> float:
    """Size x sharpness (Laplacian variance) x frontalness (landmark symmetry)."""
    x0, y0, x1, y1 = _clip(face.xyxy, image_bgr.shape)
    crop = image_bgr[y0:y1, x0:x1]
    if crop.size == 0:
        return 0.0
    gray = cv2.cvtColor(cv2.resize(crop, (64, 64)), cv2.COLOR_BGR2GRAY)
    sharpness = float(np.log1p(cv2.Laplacian(gray, cv2.CV_64F).var()))
    return face.size_px * sharpness * frontalness(face)


def frontalness(face: Face) -> float:
    """1 for a face looking at the camera, towards 0 as it turns (nose off the eyes' middle)."""
    right_eye, left_eye, nose, right_mouth, left_mouth = face.landmarks
    half_eyes = max(1.0, abs(float(left_eye[0] - right_eye[0])) / 2)
    eyes_mid = (right_eye[0] + left_eye[0]) / 2
    mouth_mid = (right_mouth[0] + left_mouth[0]) / 2
    offset = (abs(float(nose[0] - eyes_mid)) + abs(float(nose[0] - mouth_mid))) / 2
    return max(0.05, 1.0 - offset / half_eyes)


@dataclass
class TrackFaces:
    votes: deque[str]
    identity: str = ""
    best_quality: float = 0.0
    thumbnail: np.ndarray | None = None
    last_seen_s: float = 0.0
    faces_seen: int = 0


class FaceTracks:
    """Best face and voted identity for each person track."""

    def __init__(
        self,
        register: FaceRegister,
        *,
        threshold: float = DEFAULT_MATCH_THRESHOLD,
        votes: int = 3,
        window: int = 5,
    ) -> None:
        if votes > window:
            raise ValueError(f"votes ({votes}) cannot exceed the vote window ({window})")
        self.register = register
        self.threshold = threshold
        self.votes = votes
        self.window = window
        self._tracks: dict[int, TrackFaces] = {}

    def observe(
        self, track_id: int, image_bgr: np.ndarray, face: Face, embedding: np.ndarray, now_s: float
    ) -> str:
        """Record one face of ``track_id``; returns the track's identity ("" = unknown)."""
        state = self._tracks.setdefault(int(track_id), TrackFaces(deque(maxlen=self.window)))
        state.last_seen_s = now_s
        state.faces_seen += 1
        state.votes.append(self.register.match(embedding, self.threshold))
        quality = face_quality(image_bgr, face)
        if quality > state.best_quality:
            state.best_quality = quality
            state.thumbnail = _thumbnail(image_bgr, face)
        counts = Counter(v for v in state.votes if v)
        if counts:
            worker_id, n = counts.most_common(1)[0]
            if n >= self.votes:
                state.identity = worker_id
        if state.identity and state.identity not in self.register:
            state.identity = ""  # removed from the register since
        return state.identity

    def set_register(self, register: FaceRegister) -> None:
        """Match against ``register`` from now on (a new version from the server).

        A track identified as a worker who is no longer in ``register`` loses that identity
        at once (it is unknown again, so its face is blurred and no rule treats it as that
        worker), and its window's votes for removed workers are voided, so it can only be
        identified again by new matches. Identities of workers still enrolled are kept.
        """
        self.register = register
        for state in self._tracks.values():
            state.votes = deque(
                (v if v in register else "" for v in state.votes), maxlen=self.window
            )
            if state.identity and state.identity not in register:
                state.identity = ""

    def identity(self, track_id: int) -> str:
        state = self._tracks.get(int(track_id))
        return state.identity if state else ""

    def thumbnail(self, track_id: int) -> np.ndarray | None:
        state = self._tracks.get(int(track_id))
        return None if state is None or state.thumbnail is None else state.thumbnail.copy()

    def prune(self, active_track_ids: set[int]) -> None:
        """Forget every track not in ``active_track_ids``."""
        for track_id in [t for t in self._tracks if t not in active_track_ids]:
            del self._tracks[track_id]

    def __len__(self) -> int:
        return len(self._tracks)


def _clip(xyxy: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0, x1, y1 = (round(float(v)) for v in xyxy)
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _thumbnail(image_bgr: np.ndarray, face: Face) -> np.ndarray | None:
    x0, y0, x1, y1 = _clip(face.xyxy, image_bgr.shape)
    if x1 <= x0 or y1 <= y0:
        return None
    crop = image_bgr[y0:y1, x0:x1]
    scale = THUMBNAIL_PX / max(crop.shape[:2])
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
