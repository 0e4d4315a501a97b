"""One frame's tracked people, read once from ``Detections`` into what rules need.

Missing ``data`` keys are normal (a COCO-only model has no helmet classes, no face
recognition may run): a missing or unreadable helmet state reads as ``unknown``, a
missing colour / role / worker id as empty, so rules that need them stay silent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

from sitewatch.contract.events import HelmetColour, HelmetState, Severity
from sitewatch.edge.detections import (
    CLASS_NAME,
    HELMET_COLOUR,
    HELMET_STATE,
    PERSON,
    ROLE,
    WORKER_ID,
    Detections,
)
from sitewatch.edge.rules.base import Sighting
from sitewatch.zones.geometry import feet_anchors_norm

logger = logging.getLogger(__name__)

_MAX_LABEL_CHARS = 64  # Event.role and Event.worker_id


@dataclass(frozen=True)
class PersonFrame:
    frame_wh: tuple[int, int]
    xyxy: npt.NDArray[np.float64]  # (N,4) pixels
    confidence: npt.NDArray[np.float64] | None  # (N,)
    track_ids: npt.NDArray[np.int64]  # (N,), -1 where the person has no track yet
    feet_norm: npt.NDArray[np.float64]  # (N,2) bottom centre, normalised
    helmet_state: list[HelmetState]
    helmet_colour: list[HelmetColour | None]
    role: list[str]
    worker_id: list[str]

    @classmethod
    def from_detections(cls, persons: Detections, frame_wh: tuple[int, int]) -> PersonFrame:
        if CLASS_NAME in persons.data and len(persons) > 0:
            is_person = np.asarray(persons.data[CLASS_NAME]).astype(str) == PERSON
            persons = persons[is_person]  # type: ignore[assignment]
        n = len(persons)
        xyxy = np.asarray(persons.xyxy, dtype=np.float64).reshape(n, 4)
        if persons.tracker_id is None:
            track_ids = np.full(n, -1, dtype=np.int64)
        else:
            track_ids = np.asarray(persons.tracker_id, dtype=np.int64).reshape(n)
        confidence = (
            None if persons.confidence is None else np.asarray(persons.confidence, np.float64)
        )
        return cls(
            frame_wh=(int(frame_wh[0]), int(frame_wh[1])),
            xyxy=xyxy,
            confidence=confidence,
            track_ids=track_ids,
            feet_norm=feet_anchors_norm(xyxy, frame_wh),
            helmet_state=[_helmet_state(v) for v in _column(persons, HELMET_STATE, n)],
            helmet_colour=[_helmet_colour(v) for v in _column(persons, HELMET_COLOUR, n)],
            role=[_label(v, ROLE) for v in _column(persons, ROLE, n)],
            worker_id=[_label(v, WORKER_ID) for v in _column(persons, WORKER_ID, n)],
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def tracked(self) -> list[int]:
        """Indices of the people who carry a tracker id (rules follow tracks only)."""
        return [i for i in range(len(self)) if self.track_ids[i] >= 0]

    def sighting(
        self,
        i: int,
        *,
        severity: Severity,
        zone: str | None = None,
        distance: float | None = None,
        distance_unit: str | None = None,
    ) -> Sighting:
        box = self.xyxy[i]
        confidence = None
        if self.confidence is not None and np.isfinite(self.confidence[i]):
            confidence = float(np.clip(self.confidence[i], 0.0, 1.0))
        return Sighting(
            track_id=int(self.track_ids[i]),
            zone=zone,
            severity=severity,
            bbox_xyxy=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            confidence=confidence,
            helmet_state=self.helmet_state[i],
            helmet_colour=self.helmet_colour[i],
            role=self.role[i] or None,
            worker_id=self.worker_id[i] or None,
            distance=distance,
            distance_unit=distance_unit,
        )


def _column(persons: Detections, key: str, n: int) -> list[Any]:
    values = persons.data.get(key)
    if values is None:
        return [""] * n
    return list(values)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _label(value: Any, key: str) -> str:
    """A role or worker id as events carry it (at most 64 characters, see Event)."""
    text = _text(value)
    if len(text) > _MAX_LABEL_CHARS:
        logger.warning("%s %r is longer than %d characters; cut", key, text, _MAX_LABEL_CHARS)
        return text[:_MAX_LABEL_CHARS]
    return text


def _helmet_state(value: Any) -> HelmetState:
    text = _text(value)
    try:
        return HelmetState(text) if text else HelmetState.UNKNOWN
    except ValueError:
        logger.debug("unknown helmet state %r read as unknown", text)
        return HelmetState.UNKNOWN


def _helmet_colour(value: Any) -> HelmetColour | None:
    text = _text(value)
    try:
        return HelmetColour(text) if text else None
    except ValueError:
        logger.debug("unknown helmet colour %r ignored", text)
        return None
