"""Helpers for stepping a RuleEngine frame by frame with synthetic tracked people."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import supervision as sv

from sitewatch.contract.events import Event, EventPhase
from sitewatch.edge.config import SiteConfig
from sitewatch.edge.detections import HELMET_COLOUR, HELMET_STATE, ROLE, WORKER_ID
from sitewatch.edge.rules.engine import PartyMemberIds, RuleEngine

#: Monday 2026-11-23 10:00 in Asia/Shanghai (UTC+8).
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
#: 1000 x 1000 pixels, so a pixel coordinate / 1000 is the normalised coordinate.
FRAME_WH = (1000, 1000)


@dataclass(frozen=True)
class Person:
    track_id: int | None
    feet_xy: tuple[float, float] = (0.5, 0.9)  # normalised
    helmet: str = "helmet"
    colour: str = ""
    role: str = ""
    worker_id: str = ""
    confidence: float = 0.9


def detections(*people: Person, with_data: bool = True) -> sv.Detections:
    """Tracked people as supervision.Detections: 40 x 100 px boxes standing on feet_xy."""
    if not people:
        return sv.Detections.empty()
    xyxy = []
    for p in people:
        x, y = p.feet_xy[0] * FRAME_WH[0], p.feet_xy[1] * FRAME_WH[1]
        xyxy.append([x - 20.0, y - 100.0, x + 20.0, y])
    tracker_ids = [p.track_id for p in people]
    data: dict[str, Any] = {}
    if with_data:
        data = {
            HELMET_STATE: np.array([p.helmet for p in people]),
            HELMET_COLOUR: np.array([p.colour for p in people]),
            ROLE: np.array([p.role for p in people]),
            WORKER_ID: np.array([p.worker_id for p in people]),
        }
    return sv.Detections(
        xyxy=np.array(xyxy, dtype=np.float32),
        confidence=np.array([p.confidence for p in people], dtype=np.float32),
        class_id=np.zeros(len(people), dtype=int),
        tracker_id=None if None in tracker_ids else np.array(tracker_ids, dtype=int),
        data=data,
    )


def site_config(
    *,
    rules: dict[str, Any] | None = None,
    zones: dict[str, Any] | None = None,
    timezone: str = "Asia/Shanghai",
) -> SiteConfig:
    """A site with one camera ``cam``; every rule disabled unless named in ``rules``."""
    all_rules = [
        "no_helmet",
        "fall_edge",
        "restricted_zone",
        "post_unattended",
        "party_member_helmet",
        "person",
    ]
    rule_cfg: dict[str, Any] = {name: {"enabled": False} for name in all_rules}
    for name, settings in (rules or {}).items():
        rule_cfg[name] = {"enabled": True, **settings}
    return SiteConfig.model_validate(
        {
            "site": {"id": "site-1", "timezone": timezone},
            "rules": rule_cfg,
            "cameras": [{"id": "cam", "source": "video.mp4", "zones": zones or {}}],
        }
    )


@dataclass
class Stepper:
    """Drives one engine with times given as seconds after ``t0``; records every event."""

    site: SiteConfig
    party_member_ids: PartyMemberIds = frozenset()
    t0: datetime = T0
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = RuleEngine(
            self.site, self.site.cameras[0], party_member_ids=self.party_member_ids
        )

    def at(self, t_s: float) -> datetime:
        return self.t0 + timedelta(seconds=t_s)

    def step(self, t_s: float, *people: Person) -> list[Event]:
        out = self.engine.evaluate(detections(*people), self.at(t_s), FRAME_WH)
        self.events.extend(out)
        return out

    def run(self, start_s: float, stop_s: float, step_s: float, *people: Person) -> list[Event]:
        """Step the same people at start, start+step, ... up to and including stop."""
        out: list[Event] = []
        n = round((stop_s - start_s) / step_s)
        for k in range(n + 1):
            out.extend(self.step(start_s + k * step_s, *people))
        return out

    def finish(self, t_s: float) -> list[Event]:
        out = self.engine.finish(self.at(t_s))
        self.events.extend(out)
        return out


def phases(events: list[Event]) -> list[tuple[EventPhase, int | None, str | None]]:
    return [(e.phase, e.track_id, e.zone) for e in events]
