"""Privacy for event clips: blur unknown faces in every clip frame before it is encoded.

Clips are encoded on the clip-encoder threads, and OpenCV's YuNet/SFace objects must not
be shared across threads, so :func:`clip_blur_factory` returns a factory that each encoder
thread calls once (see :class:`edge.clips.ClipRecorder`) to get its own detector and
embedder. The register is the face stage's, looked up on every frame, so enrolments,
removals and a register swapped by the sync apply to the next frame.

Cost (scripts/bench/clip_privacy.py, 100 frames 848x480, 2 contended cores): a 10 s clip
at 10 fps takes ~1.1 s to encode with privacy off, ~3.1 s with nobody enrolled (one YuNet
pass a frame, ~20 ms) and ~7.6 s with a worker enrolled (each face is also embedded with
SFace to check whether it is his), all on the encoder thread, off the camera's path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sitewatch.edge.config import SiteConfig
from sitewatch.edge.faces.detection import FaceDetector
from sitewatch.edge.faces.embedding import FaceEmbedder
from sitewatch.edge.faces.privacy import FacePrivacy
from sitewatch.edge.faces.stage import FaceStage

FrameFilter = Callable[[np.ndarray], np.ndarray]


def clip_blur_factory(
    site: SiteConfig, faces: FaceStage | None
) -> Callable[[], FrameFilter] | None:
    """A per-thread maker of the clip frame blur, or None (faces off or privacy off)."""
    if faces is None or not site.privacy.blur_unknown_faces:
        return None
    stage = faces

    def make() -> FrameFilter:
        detector = FaceDetector(stage.detector.model_path, min_face_px=stage.detector.min_face_px)
        embedder = FaceEmbedder(stage.embedder.model_path)
        privacy = FacePrivacy(detector, embedder, stage.register, stage.config.match_threshold)

        def blur(image_bgr: np.ndarray) -> np.ndarray:
            privacy.register = stage.register  # follow a register replaced by the sync
            return privacy.blur_unknown(image_bgr)

        return blur

    return make
