"""Enrolling a worker from a photo into a local face register (.npz).

Until the server's register syncs to the box, a site can enrol its workers here; the
register file is what ``faces.register_path`` in the site config points at.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.errors import SitewatchError
from sitewatch.edge.faces.detection import Face, FaceDetector
from sitewatch.edge.faces.embedding import FaceEmbedder
from sitewatch.edge.faces.tracks import FaceRegister

logger = logging.getLogger(__name__)


class EnrolmentError(SitewatchError, ValueError):
    """A photo that cannot enrol anyone (unreadable, no face)."""


def photo_embedding(
    photo: Path | bytes, detector: FaceDetector, embedder: FaceEmbedder
) -> np.ndarray:
    """The embedding of the largest face in ``photo`` (a path or encoded image bytes)."""
    name = str(photo) if isinstance(photo, Path) else "<uploaded photo>"
    data = photo.read_bytes() if isinstance(photo, Path) else photo
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EnrolmentError(f"{name}: not an image OpenCV can decode (JPEG or PNG expected)")
    faces = detector.detect(image)
    if not faces:
        raise EnrolmentError(f"{name}: no face found; use a clear, frontal photo of one person")
    face: Face = max(faces, key=lambda f: f.size_px)
    if len(faces) > 1:
        logger.warning("%s: %d faces, enrolling the largest", name, len(faces))
    return embedder.embed(image, face)


def enrol(
    register_path: Path,
    worker_id: str,
    photos: list[Path],
    detector: FaceDetector,
    embedder: FaceEmbedder,
) -> int:
    """Add ``worker_id``'s faces from ``photos`` to the register file; returns their count."""
    register = FaceRegister.load(register_path) if register_path.exists() else FaceRegister()
    new = [photo_embedding(p, detector, embedder) for p in photos]  # all or nothing
    old = list(register.embeddings(worker_id)) if worker_id in register else []
    register.set(worker_id, old + new)
    register.save(register_path)
    return len(old) + len(new)


def remove(register_path: Path, worker_id: str) -> bool:
    """Drop ``worker_id`` and their embeddings from the register file."""
    if not register_path.exists():
        return False
    register = FaceRegister.load(register_path)
    if worker_id not in register:
        return False
    register.remove(worker_id)
    register.save(register_path)
    return True
