"""``fall_edge``: a tracked person's feet within an edge's danger distance.

Severity is the rule's ``severity``, or ``severity_without_helmet`` while the person's
helmet state is bare (a rise during the event emits an ``update``). The event carries
the edge's name and the distance (metres when calibrated, else normalised units).
"""

from __future__ import annotations

from datetime import datetime

from sitewatch.contract.events import HelmetState, RuleKind
from sitewatch.edge.config import FallEdgeRuleConfig
from sitewatch.edge.rules.base import HazardKey, Sighting, ZoneRule
from sitewatch.edge.rules.frame import PersonFrame


class FallEdgeRule(ZoneRule):
    kind = RuleKind.FALL_EDGE
    config: FallEdgeRuleConfig

    def sightings(self, frame: PersonFrame, now: datetime) -> dict[HazardKey, Sighting]:
        tracked = frame.tracked()
        if not tracked or not self.geometry.edges:
            return {}
        out: dict[HazardKey, Sighting] = {}
        distances = self.geometry.edge_distances(frame.feet_norm[tracked])
        for name, distance in distances.items():
            edge = self.geometry.edges[name]
            for i, d in zip(tracked, distance, strict=True):
                if d > edge.danger_distance:
                    continue
                bare = frame.helmet_state[i] is HelmetState.BARE
                severity = self.config.severity_without_helmet if bare else self.config.severity
                out[(int(frame.track_ids[i]), name)] = frame.sighting(
                    i, severity=severity, zone=name, distance=float(d), distance_unit=edge.unit
                )
        return out
