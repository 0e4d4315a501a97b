"""What happens to an event once a camera's pipeline raised it.

The box and a replay do the same with it: a start gets an annotated snapshot (the camera's
zones drawn, the event's person highlighted) and a clean one, with unknown faces blurred
first when privacy asks for it, and the track's face thumbnail where it may leave the box.
Then the box spools it into its outbox and asks for a clip (:class:`OutboxSink`), and a
replay writes it to a folder (:class:`FolderSink`). The camera loops know only
:class:`EventSink`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sitewatch.contract.events import Event, EventPhase
from sitewatch.edge.annotate import FrameAnnotator
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.detections import Detections
from sitewatch.edge.faces.stage import shareable_thumbnail, snapshot_blur
from sitewatch.edge.snapshots import EventRecorder, encode_jpeg

if TYPE_CHECKING:
    from sitewatch.edge.clips import ClipRecorder
    from sitewatch.edge.faces.stage import FaceStage
    from sitewatch.edge.outbox import Outbox
    from sitewatch.zones.config import CameraZones


class EventSink(Protocol):
    """Takes each event of a camera, with the frame it was raised on (None when ending)."""

    def handle(
        self, event: Event, image: np.ndarray | None, persons: Detections | None, at: datetime
    ) -> None: ...


@dataclass(frozen=True)
class EventMedia:
    """The pictures that go with an event's start."""

    snapshot: np.ndarray  # annotated
    clean: np.ndarray  # as the camera saw it (faces blurred where privacy asks)
    face: np.ndarray | None  # the track's face, only where it may leave the box


class EventMediaMaker:
    """Builds :class:`EventMedia` for one camera (its zones, its face stage)."""

    def __init__(self, site: SiteConfig, camera: CameraConfig, faces: FaceStage | None) -> None:
        self._site, self._faces = site, faces
        self._blur = snapshot_blur(site, faces)
        self._annotator = FrameAnnotator(zones=camera.zones)

    def set_zones(self, zones: CameraZones) -> None:
        """Draw ``zones`` on the snapshots from now on (a live zones swap)."""
        self._annotator = FrameAnnotator(zones=zones)

    def private(self, image: np.ndarray) -> np.ndarray:
        """``image`` with unknown faces blurred when faces and privacy are on."""
        return image if self._blur is None else self._blur(image)

    def make(self, event: Event, image: np.ndarray, persons: Detections | None) -> EventMedia:
        clean = self.private(image)
        snapshot = (
            clean if persons is None else self._annotator.draw(clean, persons, highlight=event)
        )
        face = shareable_thumbnail(self._site, self._faces, event.track_id)
        return EventMedia(snapshot=snapshot, clean=clean, face=face)


class FolderSink:
    """A replay's events: ``events.jsonl`` and one annotated snapshot per event."""

    def __init__(self, recorder: EventRecorder, media: EventMediaMaker) -> None:
        self.recorder, self.media = recorder, media

    def handle(
        self, event: Event, image: np.ndarray | None, persons: Detections | None, at: datetime
    ) -> None:
        snapshot = None
        if image is not None and event.phase is EventPhase.START:
            snapshot = self.media.make(event, image, persons).snapshot
        self.recorder.record(event, snapshot)


@dataclass(frozen=True)
class ClipWindow:
    pre_s: float
    post_s: float


class OutboxSink:
    """A box's events: into the durable outbox with their snapshots, face and clip."""

    def __init__(
        self,
        outbox: Outbox,
        media: EventMediaMaker,
        clips: ClipRecorder,
        window: ClipWindow,
        on_clip_done: Callable[[str, Path | None], None],
    ) -> None:
        self.outbox, self.media, self.clips = outbox, media, clips
        self.window, self.on_clip_done = window, on_clip_done

    def handle(
        self, event: Event, image: np.ndarray | None, persons: Detections | None, at: datetime
    ) -> None:
        self.outbox.put_event(event)
        if image is None or event.phase is not EventPhase.START:
            return
        event_id, media = str(event.event_id), self.media.make(event, image, persons)
        put = self.outbox.put_media_bytes
        put(event_id, "snapshot", "snapshot.jpg", encode_jpeg(media.snapshot))
        put(event_id, "snapshot_clean", "snapshot_clean.jpg", encode_jpeg(media.clean))
        if media.face is not None:
            put(event_id, "face", "face.jpg", encode_jpeg(media.face))
        self.clips.request(
            event_id,
            start=event.started_at - timedelta(seconds=self.window.pre_s),
            end=at + timedelta(seconds=self.window.post_s),
            path=self.outbox.tmp_path("clip.mp4"),
            on_done=self.on_clip_done,
        )
