"""Writing events and their snapshots to a folder (replay's output).

``EventRecorder`` appends every event message (start / update / end) to ``events.jsonl``
(one ``Event.model_dump_json()`` per line, flushed at once so nothing is lost on a crash)
and writes one annotated JPEG per event, ``<event_id>.jpg``, when the event starts; every
later message of that event carries the same ``snapshot`` name.

Rules give events random ids (uuid4). Given an ``id_seed`` (replay passes the site, camera
and video name), the recorder replaces them with ids derived from the seed and the order
in which events start (uuid5), so replaying the same video twice gives identical output.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import cv2
import numpy as np

from sitewatch.contract.events import Event, EventPhase
from sitewatch.edge.closing import Closing

logger = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"
JPEG_QUALITY = 90
ID_NAMESPACE = uuid.UUID("6f1c3a52-6d0e-4c1b-9f43-2b7d0e9a5c11")


def encode_jpeg(image_bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a JPEG of shape {image_bgr.shape}")
    return buffer.tobytes()


class EventRecorder(Closing):
    """Records events in ``out_dir``; use as a context manager."""

    def __init__(self, out_dir: Path, *, id_seed: str | None = None) -> None:
        self.out_dir = Path(out_dir)
        self._id_seed = id_seed
        self._stable_ids: dict[uuid.UUID, uuid.UUID] = {}
        self._started = 0
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.events_path = self.out_dir / EVENTS_FILE
        self._file = self.events_path.open("w", encoding="utf-8")
        self._snapshots: dict[uuid.UUID, str] = {}
        self.messages: list[Event] = []

    def record(self, event: Event, snapshot_bgr: np.ndarray | None) -> Event:
        """Write ``event`` (with its snapshot name) and, at its start, its snapshot."""
        event = self._stable_id(event)
        name = self._snapshots.get(event.event_id)
        if name is None and snapshot_bgr is not None and event.phase is not EventPhase.END:
            name = f"{event.event_id}.jpg"
            (self.out_dir / name).write_bytes(encode_jpeg(snapshot_bgr))
            self._snapshots[event.event_id] = name
        if name is not None and event.snapshot != name:
            event = event.model_copy(update={"snapshot": name})
        self._file.write(event.model_dump_json() + "\n")
        self._file.flush()
        self.messages.append(event)
        if event.phase is EventPhase.END:
            self._snapshots.pop(event.event_id, None)
        return event

    def _stable_id(self, event: Event) -> Event:
        if self._id_seed is None:
            return event
        stable = self._stable_ids.get(event.event_id)
        if stable is None:
            self._started += 1
            stable = uuid.uuid5(ID_NAMESPACE, f"{self._id_seed}:{self._started}")
            self._stable_ids[event.event_id] = stable
        if event.phase is EventPhase.END:
            del self._stable_ids[event.event_id]
        return event.model_copy(update={"event_id": stable})

    def close(self) -> None:
        self._file.close()
