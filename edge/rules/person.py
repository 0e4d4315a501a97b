"""``person``: one informational event per tracked person, seen for ``min_duration_s``.

Not a hazard. It answers "who was on camera, when, wearing what" (Frigate's tracked-object
events) and makes a replay without zones report the people it sees; the event carries the
person's box, helmet state and colour, role and worker id as first seen.
"""

from __future__ import annotations

from datetime import datetime

from sitewatch.contract.events import RuleKind
from sitewatch.edge.rules.base import HazardKey, Rule, Sighting
from sitewatch.edge.rules.frame import PersonFrame


class PersonRule(Rule):
    kind = RuleKind.PERSON

    def sightings(self, frame: PersonFrame, now: datetime) -> dict[HazardKey, Sighting]:
        return {
            (int(frame.track_ids[i]), None): frame.sighting(i, severity=self.config.severity)
            for i in frame.tracked()
        }
