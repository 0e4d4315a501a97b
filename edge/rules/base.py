"""The life of a hazard, shared by every rule: persistence, end, cooldown, updates.

A rule looks at one frame and says which hazards it sees, each under a key
(``(track_id, zone)``; ``(None, post)`` for a place). :class:`HazardLifecycle` turns that
per-frame answer into events:

- **Persistence**: a hazard becomes *pending* when first seen; it starts (one ``start``
  event) once it has been seen for ``min_duration_s`` (``now - first_seen >= min``). A gap
  shorter than ``end_after_s`` does not reset a pending hazard; a longer one drops it.
  ``started_at`` is the time the hazard was first seen, ``updated_at`` the frame time of
  the start.
- **Update**: while active, an ``update`` is emitted only when something material
  changes: the severity rises (it never drops within one event) or a worker id becomes
  known. Nothing is emitted for a hazard that simply goes on.
- **End**: once the hazard has not been seen for ``end_after_s`` (a missed frame or two
  is tolerated; a lost track ends the same way), one ``end`` event is emitted with
  ``ended_at`` = the last time it was seen and ``updated_at`` = the frame time.
- **Cooldown**: after an end, the same key cannot raise this rule again until
  ``cooldown_s`` after the end was emitted; sightings during the cooldown are ignored.

State is bounded: pending entries are dropped after the gap, active ones at their end,
cooldown entries once they expire.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sitewatch.contract.events import (
    Event,
    EventPhase,
    HelmetColour,
    HelmetState,
    RuleKind,
    Severity,
)
from sitewatch.edge.config import RuleConfig

if TYPE_CHECKING:
    from sitewatch.edge.rules.frame import PersonFrame
    from sitewatch.zones.geometry import CameraGeometry

HazardKey = tuple[int | None, str | None]


@dataclass(frozen=True)
class Sighting:
    """What a rule saw of one hazard in one frame (becomes the event's fields)."""

    track_id: int | None
    zone: str | None
    severity: Severity
    bbox_xyxy: tuple[float, float, float, float] | None = None
    confidence: float | None = None
    helmet_state: HelmetState | None = None
    helmet_colour: HelmetColour | None = None
    role: str | None = None
    worker_id: str | None = None
    distance: float | None = None
    distance_unit: str | None = None


@dataclass
class _Pending:
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass
class _Active:
    event_id: uuid.UUID
    started_at: datetime
    last_seen_at: datetime
    sighting: Sighting
    frame_wh: tuple[int, int]


@dataclass(frozen=True)
class EventContext:
    site_id: str
    camera_id: str


class HazardLifecycle:
    """Per-key state machine: pending -> active -> cooldown, emitting typed events."""

    def __init__(
        self,
        *,
        rule: RuleKind,
        config: RuleConfig,
        context: EventContext,
        min_duration_for: Callable[[HazardKey], float] | None = None,
    ) -> None:
        self.rule = rule
        self.config = config
        self.context = context
        self._min_duration_for = min_duration_for
        self._pending: dict[HazardKey, _Pending] = {}
        self._active: dict[HazardKey, _Active] = {}
        self._cooldown_until: dict[HazardKey, datetime] = {}

    @property
    def open_keys(self) -> set[HazardKey]:
        return set(self._active)

    def state_size(self) -> int:
        """Number of keys held in any state (for tests of bounded state)."""
        return len(self._pending) + len(self._active) + len(self._cooldown_until)

    def _min_duration(self, key: HazardKey) -> timedelta:
        seconds = self._min_duration_for(key) if self._min_duration_for else None
        return timedelta(seconds=self.config.min_duration_s if seconds is None else seconds)

    def step(
        self, sightings: Mapping[HazardKey, Sighting], now: datetime, frame_wh: tuple[int, int]
    ) -> list[Event]:
        events: list[Event] = []
        self._cooldown_until = {k: t for k, t in self._cooldown_until.items() if t > now}
        for key, sighting in sightings.items():
            active = self._active.get(key)
            if active is not None:
                update = self._refresh(active, sighting, now, frame_wh)
                if update is not None:
                    events.append(update)
            elif key not in self._cooldown_until:
                start = self._observe_pending(key, sighting, now, frame_wh)
                if start is not None:
                    events.append(start)
        events.extend(self._expire(sightings, now))
        return events

    def finish(self, now: datetime) -> list[Event]:
        """End every open event (end of a video, shutdown) and forget all state."""
        events = [self._end_event(a, now) for a in self._active.values()]
        self._active.clear()
        self._pending.clear()
        self._cooldown_until.clear()
        return events

    def _observe_pending(
        self, key: HazardKey, sighting: Sighting, now: datetime, frame_wh: tuple[int, int]
    ) -> Event | None:
        pending = self._pending.setdefault(key, _Pending(first_seen_at=now, last_seen_at=now))
        pending.last_seen_at = now
        if now - pending.first_seen_at < self._min_duration(key):
            return None
        del self._pending[key]
        active = _Active(uuid.uuid4(), pending.first_seen_at, now, sighting, frame_wh)
        self._active[key] = active
        return self._event(active, EventPhase.START, now)

    def _refresh(
        self, active: _Active, sighting: Sighting, now: datetime, frame_wh: tuple[int, int]
    ) -> Event | None:
        previous = active.sighting
        severity = max(previous.severity, sighting.severity, key=lambda s: s.rank)
        active.sighting = replace(sighting, severity=severity)
        active.last_seen_at = now
        active.frame_wh = frame_wh
        rose = severity.rank > previous.severity.rank
        identified = bool(sighting.worker_id) and not previous.worker_id
        return self._event(active, EventPhase.UPDATE, now) if rose or identified else None

    def _expire(self, seen: Mapping[HazardKey, Sighting], now: datetime) -> list[Event]:
        gap = timedelta(seconds=self.config.end_after_s)
        for key in [k for k, p in self._pending.items() if k not in seen]:
            if now - self._pending[key].last_seen_at >= gap:
                del self._pending[key]
        events: list[Event] = []
        for key in [k for k in self._active if k not in seen]:
            active = self._active[key]
            if now - active.last_seen_at >= gap:
                del self._active[key]
                events.append(self._end_event(active, now))
                self._cooldown_until[key] = now + timedelta(seconds=self.config.cooldown_s)
        return events

    def _end_event(self, active: _Active, now: datetime) -> Event:
        return self._event(active, EventPhase.END, now, ended_at=active.last_seen_at)

    def _event(
        self, active: _Active, phase: EventPhase, now: datetime, *, ended_at: datetime | None = None
    ) -> Event:
        s = active.sighting
        return Event(
            event_id=active.event_id,
            phase=phase,
            site_id=self.context.site_id,
            camera_id=self.context.camera_id,
            rule=self.rule,
            severity=s.severity,
            track_id=s.track_id,
            zone=s.zone,
            helmet_state=s.helmet_state,
            helmet_colour=s.helmet_colour,
            role=s.role,
            worker_id=s.worker_id,
            started_at=active.started_at,
            updated_at=now,
            ended_at=ended_at,
            bbox_xyxy=s.bbox_xyxy,
            frame_wh=active.frame_wh,
            confidence=s.confidence,
            distance=s.distance,
            distance_unit=s.distance_unit,
        )


class Rule(ABC):
    """One safety rule: says which hazards one frame shows; the lifecycle does the rest."""

    kind: RuleKind

    def __init__(
        self,
        config: RuleConfig,
        context: EventContext,
        *,
        min_duration_for: Callable[[HazardKey], float] | None = None,
    ) -> None:
        self.config = config
        self.lifecycle = HazardLifecycle(
            rule=self.kind, config=config, context=context, min_duration_for=min_duration_for
        )

    @abstractmethod
    def sightings(self, frame: PersonFrame, now: datetime) -> dict[HazardKey, Sighting]:
        """The hazards visible in this frame, by key."""

    def evaluate(self, frame: PersonFrame, now: datetime) -> list[Event]:
        return self.lifecycle.step(self.sightings(frame, now), now, frame.frame_wh)

    def finish(self, now: datetime) -> list[Event]:
        return self.lifecycle.finish(now)


class ZoneRule(Rule):
    """A rule about the camera's zones (restricted polygons, edges, posts)."""

    def __init__(
        self,
        config: RuleConfig,
        context: EventContext,
        geometry: CameraGeometry,
        *,
        min_duration_for: Callable[[HazardKey], float] | None = None,
    ) -> None:
        super().__init__(config, context, min_duration_for=min_duration_for)
        self.geometry = geometry
