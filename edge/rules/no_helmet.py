"""``no_helmet``: a tracked person whose head is seen bare for ``min_duration_s``."""

from __future__ import annotations

from datetime import datetime

from sitewatch.contract.events import HelmetState, RuleKind
from sitewatch.edge.rules.base import HazardKey, Rule, Sighting
from sitewatch.edge.rules.frame import PersonFrame


class NoHelmetRule(Rule):
    kind = RuleKind.NO_HELMET

    def sightings(self, frame: PersonFrame, now: datetime) -> dict[HazardKey, Sighting]:
        return {
            (int(frame.track_ids[i]), None): frame.sighting(i, severity=self.config.severity)
            for i in frame.tracked()
            if frame.helmet_state[i] is HelmetState.BARE
        }
