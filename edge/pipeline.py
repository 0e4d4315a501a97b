"""One camera's pipeline: frame in, tracked people and safety events out.

``CameraPipeline.process(frame, now)`` runs detector -> person tracker -> helmet
attributes -> rules on one frame. It reads no clock and writes no files: replay, the live
edge box and the evaluation tool each feed it frames with their own times (video time in
replay, wall-clock time live) and deal with snapshots and uploads themselves. Call it only
for the frames that should be detected (see :class:`edge.video.FrameSampler`), and give
``frame_rate`` as the rate of those calls so the tracker's lost-track buffer is right.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from sitewatch.contract.events import Event
from sitewatch.edge.attributes import HelmetAttributes
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.detections import CLASS_NAME, HEAD, HELMET, PERSON, Detections
from sitewatch.edge.detector_pool import FrameDetector
from sitewatch.edge.faces.stage import FaceStage
from sitewatch.edge.motion import MotionGate
from sitewatch.edge.rules.engine import PartyMemberIds, RuleEngine
from sitewatch.edge.tracking import PersonTracker, subset
from sitewatch.zones.config import CameraZones

logger = logging.getLogger(__name__)

STAGES = ("detect", "track", "attributes", "rules")


@dataclass(frozen=True)
class FrameResult:
    """What one frame produced."""

    now: datetime
    frame_wh: tuple[int, int]
    #: Tracked people (``tracker_id`` set) with the helmet data keys filled.
    persons: Detections
    #: Head and helmet boxes of the frame (not tracked).
    heads: Detections
    events: list[Event]
    #: Seconds spent in each stage (see STAGES), for benchmarks and metrics.
    timings_s: dict[str, float] = field(default_factory=dict)
    #: The motion gate skipped the model: ``persons`` are the last model call's people.
    gated: bool = False


class CameraPipeline:
    def __init__(
        self,
        site: SiteConfig,
        camera: CameraConfig,
        detector: FrameDetector,
        *,
        frame_rate: float | None = None,
        rule_engine: RuleEngine | None = None,
        attributes: HelmetAttributes | None = None,
        faces: FaceStage | None = None,
        party_member_ids: PartyMemberIds = frozenset(),
        config_path: Path | None = None,
    ) -> None:
        """``party_member_ids`` (a set or a callable, e.g. the live edge's synced
        register) feeds the party_member_helmet rule when no ``rule_engine`` is given;
        ``config_path`` resolves the relative paths of ``site.faces``."""
        self.site = site
        self.camera = camera
        self.detector = detector
        self.frame_rate = frame_rate or camera.detect_fps
        self.tracker = PersonTracker(site.tracking, self.frame_rate)
        self.has_heads = HEAD in detector.class_names or HELMET in detector.class_names
        # The head classifier reads the heads a head detector missed; a person-only model
        # (COCO) keeps its promise below: helmet states stay unknown.
        attributes_cfg = site.attributes
        if not self.has_heads:
            attributes_cfg = attributes_cfg.model_copy(update={"head_classifier": False})
        self.attributes = attributes or HelmetAttributes(attributes_cfg)
        self.rules = rule_engine or RuleEngine(site, camera, party_member_ids=party_member_ids)
        #: Face stage (sets data[WORKER_ID] on persons) when site.faces.enabled.
        self.faces = faces or (
            FaceStage(site.faces, config_path=config_path) if site.faces.enabled else None
        )
        self._origin: datetime | None = None
        #: Motion gating (site.motion): frames without motion skip the model.
        self.gate = MotionGate(site.motion) if site.motion.enabled else None
        #: Seconds of gated frames, kept off the tracker's clock so tracks do not age.
        self._gated_s = 0.0
        self._last_now_s: float | None = None
        self._last_persons: Detections | None = None
        if not self.has_heads:
            logger.warning(
                "camera %s: model %s has no head/helmet classes; helmet states stay unknown",
                camera.id,
                detector.model_path,
            )

    def process(
        self, frame_bgr: np.ndarray, now: datetime, detections: Detections | None = None
    ) -> FrameResult:
        """Run every stage on one frame taken at ``now`` (timezone-aware).

        ``detections`` are the detector's output for this frame when the caller ran it
        already (a replay detecting ahead with a DetectorPool); its time is then the
        caller's to count, and ``timings_s["detect"]`` is 0.

        With motion gating on (and no ``detections`` given) a frame the gate turns away
        gets no model call: the tracker is not updated and its clock stands still, the
        rules see the last model call's people at this frame's time (``gated`` is set).
        """
        timings: dict[str, float] = {}
        now_s = self._seconds(now)
        previous_s, self._last_now_s = self._last_now_s, now_s
        # "detect" holds the motion test too: on a gated frame, only that.
        started = time.perf_counter()
        gate = self.gate if detections is None else None
        if gate is not None and not gate.wants_model(frame_bgr, now_s):
            timings["detect"] = _lap(started)
            if previous_s is not None:
                self._gated_s += now_s - previous_s
            return self._gated(frame_bgr, now, timings)
        if detections is None:
            detections = self.detector.detect(frame_bgr)
        timings["detect"] = _lap(started)
        if self.gate is not None:
            self.gate.model_ran(now_s, _people(detections))

        started = time.perf_counter()
        persons = self.tracker.update(detections, now_s - self._gated_s)
        timings["track"] = _lap(started)

        started = time.perf_counter()
        heads = _heads(detections)
        persons = self.attributes.update(persons, heads, frame_bgr, now_s)
        timings["attributes"] = _lap(started)

        if self.faces is not None:
            started = time.perf_counter()
            persons = self.faces.update(persons, frame_bgr, now_s)
            timings["faces"] = _lap(started)

        started = time.perf_counter()
        frame_wh = (frame_bgr.shape[1], frame_bgr.shape[0])
        events = self.rules.evaluate(persons, now, frame_wh)
        timings["rules"] = _lap(started)
        self._last_persons = persons
        return FrameResult(now, frame_wh, persons, heads, events, timings)

    def _gated(
        self, frame_bgr: np.ndarray, now: datetime, timings: dict[str, float]
    ) -> FrameResult:
        persons = self._last_persons if self._last_persons is not None else _no_persons()
        timings["track"] = timings["attributes"] = 0.0  # not run: the last model call's people
        started = time.perf_counter()
        frame_wh = (frame_bgr.shape[1], frame_bgr.shape[0])
        events = self.rules.evaluate(persons, now, frame_wh)
        timings["rules"] = _lap(started)
        return FrameResult(now, frame_wh, persons, _no_heads(), events, timings, gated=True)

    def finish(self, now: datetime) -> list[Event]:
        """End every open event (end of a video, camera removed, shutdown)."""
        return self.rules.finish(now)

    def replace_zones(self, zones: CameraZones, now: datetime) -> list[Event]:
        """Judge with ``zones`` from the next frame on (see RuleEngine.replace_zones); call
        it between two frames, from the thread that calls ``process``."""
        self.camera = self.camera.model_copy(update={"zones": zones})
        return self.rules.replace_zones(zones, now)

    def _seconds(self, now: datetime) -> float:
        if self._origin is None:
            self._origin = now
        return (now - self._origin).total_seconds()


def _heads(detections: Detections) -> Detections:
    names = np.asarray(detections.data[CLASS_NAME])
    return subset(detections, (names == HEAD) | (names == HELMET))


def _people(detections: Detections) -> int:
    names = detections.data.get(CLASS_NAME)
    return 0 if names is None else int(np.count_nonzero(np.asarray(names) == PERSON))


def _no_persons() -> Detections:
    empty = Detections.empty()
    empty.tracker_id = np.empty(0, dtype=int)
    empty.data[CLASS_NAME] = np.empty(0, dtype=str)
    return empty


def _no_heads() -> Detections:
    empty = Detections.empty()
    empty.data[CLASS_NAME] = np.empty(0, dtype=str)
    return empty


def _lap(started: float) -> float:
    return time.perf_counter() - started
