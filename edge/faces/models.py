"""Loading the face models (YuNet to find faces, SFace to embed them) in one call."""

from __future__ import annotations

from pathlib import Path

from sitewatch.edge.faces.detection import (
    DETECTOR_MODEL,
    RECOGNIZER_MODEL,
    FaceDetector,
    resolve_model,
)
from sitewatch.edge.faces.embedding import FaceEmbedder


def load_face_models(models_dir: str | Path | None = None) -> tuple[FaceDetector, FaceEmbedder]:
    """Both models from ``models_dir`` (else the shared models); FaceModelError if absent."""
    detector = FaceDetector(resolve_model(DETECTOR_MODEL, models_dir))
    embedder = FaceEmbedder(resolve_model(RECOGNIZER_MODEL, models_dir))
    return detector, embedder
