"""``restricted_zone``: a tracked person's feet inside a restricted polygon."""

from __future__ import annotations

from datetime import datetime

from sitewatch.contract.events import RuleKind
from sitewatch.edge.rules.base import HazardKey, Sighting, ZoneRule
from sitewatch.edge.rules.frame import PersonFrame


class RestrictedZoneRule(ZoneRule):
    kind = RuleKind.RESTRICTED_ZONE

    def sightings(self, frame: PersonFrame, now: datetime) -> dict[HazardKey, Sighting]:
        tracked = frame.tracked()
        if not tracked or not self.geometry.restricted:
            return {}
        out: dict[HazardKey, Sighting] = {}
        for zone, inside in self.geometry.inside_restricted(frame.feet_norm[tracked]).items():
            for i, is_inside in zip(tracked, inside, strict=True):
                if is_inside:
                    key = (int(frame.track_ids[i]), zone)
                    out[key] = frame.sighting(i, severity=self.config.severity, zone=zone)
        return out
