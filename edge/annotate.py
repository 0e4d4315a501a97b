"""Drawing a frame's people on the image (supervision annotators, OpenCV fonts only).

Each person gets a box coloured by helmet state (green helmet, red bare head, grey
unknown) and a label ``#id helmet-colour``; the head box assigned to them is outlined
thinly. The person an event is about is drawn again with a thick box so it stands out
in a snapshot. Annotators are built once and reused.
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from sitewatch.contract.events import Event, HelmetState
from sitewatch.edge.detections import HEAD_XYXY, HELMET_COLOUR, HELMET_STATE, Detections
from sitewatch.zones.config import CameraZones

_STATE_ORDER = [HelmetState.HELMET.value, HelmetState.BARE.value, HelmetState.UNKNOWN.value]
_PALETTE = sv.ColorPalette([sv.Color(46, 204, 64), sv.Color(230, 40, 40), sv.Color(160, 160, 160)])
HIGHLIGHT = sv.Color(255, 0, 255)
#: BGR colours of the zones: restricted areas, fall-risk edges, posts.
ZONE_BGR = {"restricted": (40, 40, 230), "edge": (0, 140, 255), "post": (230, 160, 40)}


class FrameAnnotator:
    """``draw(frame, persons, highlight=event) -> annotated copy of the frame``."""

    def __init__(self, thickness: int = 2, zones: CameraZones | None = None) -> None:
        self.zones = zones
        self._boxes = sv.BoxAnnotator(color=_PALETTE, thickness=thickness)
        self._heads = sv.BoxAnnotator(
            color=_PALETTE, thickness=1, color_lookup=sv.ColorLookup.INDEX
        )
        self._labels = sv.LabelAnnotator(
            color=_PALETTE, text_scale=0.4, text_padding=3, text_position=sv.Position.TOP_LEFT
        )
        self._highlight = sv.BoxAnnotator(
            color=HIGHLIGHT, thickness=thickness * 3, color_lookup=sv.ColorLookup.INDEX
        )
        self._highlight_label = sv.LabelAnnotator(
            color=HIGHLIGHT,
            text_scale=0.5,
            text_position=sv.Position.BOTTOM_LEFT,
            color_lookup=sv.ColorLookup.INDEX,
        )

    def draw(
        self, frame_bgr: np.ndarray, persons: Detections, *, highlight: Event | None = None
    ) -> np.ndarray:
        scene = frame_bgr.copy()
        if self.zones is not None:
            draw_zones(scene, self.zones)
        if len(persons):
            lookup = _state_index(persons)
            scene = self._boxes.annotate(scene, persons, custom_color_lookup=lookup)
            scene = self._labels.annotate(
                scene, persons, labels=person_labels(persons), custom_color_lookup=lookup
            )
            heads = _head_boxes(persons)
            if len(heads):
                scene = self._heads.annotate(
                    scene, heads, custom_color_lookup=lookup[_has_head(persons)]
                )
        if highlight is not None:
            scene = self._draw_highlight(scene, persons, highlight)
        return scene

    def _draw_highlight(self, scene: np.ndarray, persons: Detections, event: Event) -> np.ndarray:
        target = _event_box(persons, event)
        if target is None:
            return scene
        scene = self._highlight.annotate(scene, target)
        label = event.rule.value + (f" #{event.track_id}" if event.track_id is not None else "")
        return self._highlight_label.annotate(scene, target, labels=[label])


def draw_zones(scene: np.ndarray, zones: CameraZones) -> None:
    """Outline the camera's zones (normalised coordinates) on ``scene`` in place."""
    height, width = scene.shape[:2]

    def pixels(points: list[tuple[float, float]]) -> np.ndarray:
        return np.array([[x * width, y * height] for x, y in points], np.int32).reshape(-1, 1, 2)

    shapes = [
        *((z.polygon, True, ZONE_BGR["restricted"]) for z in zones.restricted),
        *((e.polyline, False, ZONE_BGR["edge"]) for e in zones.edges),
        *((p.polygon, True, ZONE_BGR["post"]) for p in zones.posts),
    ]
    for points, closed, colour in shapes:
        cv2.polylines(scene, [pixels(points)], closed, colour, 2, cv2.LINE_AA)


def person_labels(persons: Detections) -> list[str]:
    ids = persons.tracker_id if persons.tracker_id is not None else [None] * len(persons)
    states = persons.data.get(HELMET_STATE, [""] * len(persons))
    colours = persons.data.get(HELMET_COLOUR, [""] * len(persons))
    labels = []
    for track_id, state, colour in zip(ids, states, colours, strict=True):
        name = f"#{track_id}" if track_id is not None else "?"
        what = str(colour) if str(colour) else ("bare" if state == HelmetState.BARE.value else "")
        labels.append(f"{name} {what}".strip())
    return labels


def _state_index(persons: Detections) -> np.ndarray:
    states = persons.data.get(HELMET_STATE)
    if states is None:
        return np.full(len(persons), 2, dtype=int)
    return np.array([_STATE_ORDER.index(str(s)) if s in _STATE_ORDER else 2 for s in states])


def _has_head(persons: Detections) -> np.ndarray:
    head_xyxy = persons.data.get(HEAD_XYXY)
    if head_xyxy is None:
        return np.zeros(len(persons), dtype=bool)
    return np.asarray(~np.isnan(np.asarray(head_xyxy, dtype=np.float32)).any(axis=1), dtype=bool)


def _head_boxes(persons: Detections) -> Detections:
    mask = _has_head(persons)
    if not mask.any():
        return Detections.empty()
    return Detections(xyxy=np.asarray(persons.data[HEAD_XYXY], dtype=np.float32)[mask])


def _event_box(persons: Detections, event: Event) -> Detections | None:
    """The event's person in this frame (by track id), else the box the event carries."""
    if event.track_id is not None and persons.tracker_id is not None:
        match = np.flatnonzero(persons.tracker_id == event.track_id)
        if len(match):
            return Detections(xyxy=persons.xyxy[match[:1]])
    if event.bbox_xyxy is not None:
        return Detections(xyxy=np.array([event.bbox_xyxy], dtype=np.float32))
    return None
