"""Replaying a labelled video and scoring its events against the ground truth.

The replay is :func:`edge.replay.run_replay`, the same code path as ``sitewatch replay``.
For a sweep over detector confidence, :class:`CachingDetector` runs the model once at the
lowest confidence and later passes filter the cached detections: greedy NMS keeps the
same boxes at a higher threshold, because a box is only suppressed by a higher-scoring
one, which passes the higher threshold too.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sitewatch.contract.events import RuleKind
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.detections import Detections
from sitewatch.edge.detector import Detector
from sitewatch.edge.detector_pool import FrameDetector
from sitewatch.edge.evaluation.event_matching import (
    Interval,
    RuleScore,
    match_events,
    predicted_intervals,
    true_intervals,
)
from sitewatch.edge.evaluation.events_truth import EventTruth, TruthError, resolve_relative
from sitewatch.edge.replay import ReplayResult, run_replay
from sitewatch.edge.tracking import subset
from sitewatch.edge.video import VideoReader
from sitewatch.resources import shared_root

logger = logging.getLogger(__name__)


@dataclass
class VideoEvaluation:
    video: Path
    scores: dict[RuleKind, RuleScore]
    true: list[Interval]
    predicted: list[Interval]
    replay: ReplayResult
    duration_s: float
    model: str
    confidence: float | None = None
    min_duration_s: float | None = None


def find_video(truth_path: Path, truth: EventTruth, override: Path | None = None) -> Path:
    """The truth file's video: --video, else next to the file, else ../shared/data/videos."""
    if override is not None:
        return override
    candidates = [
        resolve_relative(truth_path, truth.video),
        shared_root() / "data" / "videos" / truth.video,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise TruthError(f"{truth_path}: video {truth.video!r} not found (tried {tried})")


def with_min_duration(site: SiteConfig, rules: list[RuleKind], min_duration_s: float) -> SiteConfig:
    """A copy of ``site`` with ``min_duration_s`` set on the given rules."""
    updates = {
        rule.value: getattr(site.rules, rule.value).model_copy(
            update={"min_duration_s": min_duration_s}
        )
        for rule in rules
    }
    return site.model_copy(update={"rules": site.rules.model_copy(update=updates)})


def evaluate_video(
    video: Path,
    truth: EventTruth,
    site: SiteConfig,
    camera: CameraConfig,
    detector: FrameDetector,
    *,
    tolerance_s: float,
    out_dir: Path | None = None,
) -> VideoEvaluation:
    """Replay ``video`` and score the events against ``truth`` (times from the video start)."""
    with VideoReader(video) as reader:
        origin = reader.time_origin()
        duration_s = reader.duration_s or 0.0
    with tempfile.TemporaryDirectory(prefix="sitewatch-eval-") as scratch:
        result = run_replay(video, site, camera, detector, out_dir or Path(scratch))
    predicted = predicted_intervals(result.messages, origin)
    true = true_intervals(truth.events)
    scores = match_events(true, predicted, tolerance_s, rules=truth.scored_rules())
    return VideoEvaluation(
        video,
        scores,
        true,
        predicted,
        result,
        max(duration_s, result.video_s),
        detector.model_path.name,
    )


class CachingDetector(Detector):
    """Runs ``inner`` once per frame, in call order; later passes replay the cache.

    Call :meth:`rewind` before each pass and set :attr:`confidence` to filter.
    """

    def __init__(self, inner: Detector) -> None:
        # No super().__init__(): this wrapper opens no model of its own.
        self.inner = inner
        self.model_path = inner.model_path
        self.class_names = inner.class_names
        self.input_wh = inner.input_wh
        self.iou = inner.iou
        self.confidence = 0.0
        self._cache: list[Detections] = []
        self._next = 0

    def rewind(self, confidence: float) -> None:
        self.confidence = confidence
        self._next = 0

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        if self._next == len(self._cache):
            self._cache.append(self.inner.detect(frame_bgr))
        detections = self._cache[self._next]
        self._next += 1
        if detections.confidence is None or len(detections) == 0:
            return detections
        keep = detections.confidence >= self.confidence
        return detections if bool(keep.all()) else subset(detections, keep)
