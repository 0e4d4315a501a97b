"""The person's boxes over an event's clip (``Event.track``), kept by a camera worker.

An event's clip covers ``started_at - pre_s`` to the time its start was raised ``+ post_s``
(:class:`edge.event_sink.OutboxSink`); its track is the person's box at each detected frame
of that window: ``(seconds from started_at, x1, y1, x2, y2)`` in pixels of the frame.

:class:`TrackRecorder` keeps a short history per track id (bounded by age and count), so a
start carries the lead-in boxes at once. Each message of the event carries the boxes so far;
once the window has passed, an event whose last message went out earlier gets one more
message (an ``update``, a copy of its last message) with the whole list; the server keeps
a longer track from any message of the event, even one otherwise stale. At most
:data:`~sitewatch.contract.events.MAX_TRACK_BOXES` boxes are sent (evenly subsampled).
Events about a place (``track_id`` None) carry no track.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sitewatch.contract.events import MAX_TRACK_BOXES, Event, EventPhase
from sitewatch.edge.detections import Detections

#: (frame time, x1, y1, x2, y2)
Box = tuple[datetime, float, float, float, float]
#: Boxes kept per event before halving them (a long window at a high detect rate).
_MAX_KEPT = 4 * MAX_TRACK_BOXES


@dataclass
class _EventTrack:
    track_id: int
    started_at: datetime
    window_start: datetime
    window_end: datetime
    last: Event
    boxes: list[Box] = field(default_factory=list)
    #: Boxes the last message carried.
    sent: int = 0
    ended: bool = False


class TrackRecorder:
    """Per-track box history of one camera and the track of each open event; used from
    the camera's processing thread only."""

    def __init__(self, *, pre_s: float, post_s: float, history_s: float) -> None:
        self.pre = timedelta(seconds=pre_s)
        self.post = timedelta(seconds=post_s)
        self.history = timedelta(seconds=max(history_s, pre_s))
        self._history: dict[int, deque[Box]] = {}
        self._events: dict[str, _EventTrack] = {}

    def observe(self, persons: Detections, at: datetime) -> None:
        """The tracked people of a detected frame taken at ``at``."""
        ids = persons.tracker_id
        if ids is not None:
            for track_id, xyxy in zip(ids, persons.xyxy, strict=True):
                x1, y1, x2, y2 = (round(float(v), 1) for v in xyxy)
                box: Box = (at, x1, y1, x2, y2)
                self._history.setdefault(int(track_id), deque(maxlen=_MAX_KEPT)).append(box)
                for state in self._events.values():
                    if state.track_id == int(track_id) and at <= state.window_end:
                        _keep(state.boxes, box)
        oldest = at - self.history
        for track_id in list(self._history):
            boxes = self._history[track_id]
            while boxes and boxes[0][0] < oldest:
                boxes.popleft()
            if not boxes:
                del self._history[track_id]

    def attach(self, event: Event, at: datetime) -> Event:
        """``event`` (raised at ``at``) with its track so far; remembers what was sent."""
        if event.track_id is None:
            return event
        key = str(event.event_id)
        state = self._events.get(key)
        if state is None:
            if event.phase is not EventPhase.START:
                return event  # started before this recorder (never on a box)
            state = _EventTrack(
                track_id=event.track_id,
                started_at=event.started_at,
                window_start=event.started_at - self.pre,
                window_end=at + self.post,
                last=event,
            )
            for box in self._history.get(event.track_id, ()):
                if state.window_start <= box[0] <= state.window_end:
                    _keep(state.boxes, box)
            self._events[key] = state
        event = event.model_copy(update={"track": self._relative(state)})
        state.last, state.sent = event, len(state.boxes)
        if event.phase is EventPhase.END:
            state.ended = True
        return event

    def due(self, at: datetime) -> list[Event]:
        """The last messages of events whose clip window passed by ``at``: an ``update``
        with the whole track where the last message carried fewer boxes."""
        out = []
        for key, state in list(self._events.items()):
            if at <= state.window_end:
                continue
            out.extend(self._complete(state))
            if state.ended:
                del self._events[key]
        return out

    def flush(self) -> list[Event]:
        """Shutdown: the complete track of every event that has not sent it yet."""
        out = [m for state in self._events.values() for m in self._complete(state)]
        self._events.clear()
        return out

    def _complete(self, state: _EventTrack) -> list[Event]:
        if state.sent >= len(state.boxes):
            return []
        message = state.last.model_copy(
            update={"phase": EventPhase.UPDATE, "track": self._relative(state)}
        )
        state.last, state.sent = message, len(state.boxes)
        return [message]

    @staticmethod
    def _relative(state: _EventTrack) -> list[tuple[float, float, float, float, float]]:
        boxes = subsample(state.boxes, MAX_TRACK_BOXES)
        return [
            (round((t - state.started_at).total_seconds(), 3), x1, y1, x2, y2)
            for t, x1, y1, x2, y2 in boxes
        ]

    @property
    def open_events(self) -> int:
        return len(self._events)


def _keep(boxes: list[Box], box: Box) -> None:
    if boxes and box[0] <= boxes[-1][0]:
        return  # one box per frame, in time order
    boxes.append(box)
    if len(boxes) > _MAX_KEPT:
        del boxes[1::2]  # halve, keeping the first


def subsample(items: list[Box], limit: int) -> list[Box]:
    """At most ``limit`` of ``items``, evenly spread, the first and the last kept."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return items[:limit]
    step = (len(items) - 1) / (limit - 1)
    return [items[round(i * step)] for i in range(limit)]
