"""The pipeline's face stage: faces of tracked people -> ``data[WORKER_ID]`` per person.

Every ``detect_every_n_frames``-th call looks for faces in the upper part of each tracked
person, embeds the one best face per person, and votes it into that track's identity;
calls in between only copy the identities the tracks already have. Ended tracks are pruned.

The register can be replaced while the camera runs (:meth:`FaceStage.replace_register`,
called by the live edge when the server's register changes): a lock held for the whole of
:meth:`FaceStage.update` makes every frame see one register, the old or the new one, never
a mix; tracks identified as a worker who is gone lose that identity (see
:meth:`FaceTracks.set_register`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sitewatch.edge.config import FacesConfig, SiteConfig, resolve_path
from sitewatch.edge.detections import WORKER_ID, Detections
from sitewatch.edge.faces.detection import (
    DETECTOR_MODEL,
    RECOGNIZER_MODEL,
    Face,
    FaceDetector,
    resolve_model,
)
from sitewatch.edge.faces.embedding import FaceEmbedder
from sitewatch.edge.faces.privacy import FacePrivacy
from sitewatch.edge.faces.tracks import FaceRegister, FaceTracks
from sitewatch.edge.tracking import subset

logger = logging.getLogger(__name__)


class FaceStage:
    def __init__(
        self,
        config: FacesConfig,
        *,
        register: FaceRegister | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        models_dir = (
            resolve_path(config.models_dir, config_path=config_path) if config.models_dir else None
        )
        self.detector = FaceDetector(
            resolve_model(DETECTOR_MODEL, models_dir), min_face_px=config.min_face_px
        )
        self.embedder = FaceEmbedder(resolve_model(RECOGNIZER_MODEL, models_dir))
        if register is None and config.register_path:
            path = resolve_path(config.register_path, config_path=config_path)
            register = FaceRegister.load(path)
        self.register = register if register is not None else FaceRegister()
        self.tracks = FaceTracks(
            self.register,
            threshold=config.match_threshold,
            votes=config.votes,
            window=config.vote_window,
        )
        self._calls = 0
        self._lock = threading.Lock()

    def replace_register(self, register: FaceRegister) -> None:
        """Use ``register`` from the next frame on (waits for a frame in progress).

        ``register`` must not be changed after this call: build a new one for each change.
        """
        with self._lock:
            self.register = register
            self.tracks.set_register(register)

    def update(self, persons: Detections, frame_bgr: np.ndarray, now_s: float) -> Detections:
        """``persons`` (tracked) with ``data[WORKER_ID]`` set ("" = unknown)."""
        with self._lock:
            return self._update(persons, frame_bgr, now_s)

    def _update(self, persons: Detections, frame_bgr: np.ndarray, now_s: float) -> Detections:
        track_ids = _track_ids(persons)
        if self._calls % self.config.detect_every_n_frames == 0 and len(persons):
            faces = self.detector.detect_in_boxes(frame_bgr, persons.xyxy)
            for track_id, person_faces in zip(track_ids, faces, strict=True):
                face = _largest(person_faces)
                if track_id >= 0 and face is not None:
                    embedding = self.embedder.embed(frame_bgr, face)
                    self.tracks.observe(track_id, frame_bgr, face, embedding, now_s)
        self._calls += 1
        self.tracks.prune({t for t in track_ids if t >= 0})
        out = subset(persons, np.arange(len(persons)))
        out.data[WORKER_ID] = np.array([self.tracks.identity(t) for t in track_ids], dtype=object)
        return out

    def privacy(self) -> FacePrivacy:
        """A blurrer sharing this stage's models and register."""
        return FacePrivacy(self.detector, self.embedder, self.register, self.config.match_threshold)


def snapshot_blur(
    site: SiteConfig, faces: FaceStage | None
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The blur to apply to media leaving the box, or None (faces off or privacy off)."""
    if faces is None or not site.privacy.blur_unknown_faces:
        return None
    return faces.privacy().blur_unknown


def shareable_thumbnail(
    site: SiteConfig, faces: FaceStage | None, track_id: int | None
) -> np.ndarray | None:
    """The best face of ``track_id`` for an event, or None.

    With privacy on, only an enrolled worker's face leaves the box: an unknown person's
    face thumbnail is never sent.
    """
    if faces is None or track_id is None:
        return None
    if site.privacy.blur_unknown_faces and not faces.tracks.identity(track_id):
        return None
    return faces.tracks.thumbnail(track_id)


def _track_ids(persons: Detections) -> list[int]:
    if persons.tracker_id is None:
        return [-1] * len(persons)
    return [int(t) for t in persons.tracker_id]


def _largest(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda f: f.size_px * f.score, default=None)
