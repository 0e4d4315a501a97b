"""``party_member_helmet``: an enrolled party member seen without a red helmet.

A person counts as a party member when their recognised worker id is in the engine's
set of party-member ids. The hazard is a bare head, or a helmet whose colour is known
and not red; an unknown helmet state or colour raises nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sitewatch.contract.events import HelmetColour, HelmetState, RuleKind
from sitewatch.edge.config import RuleConfig
from sitewatch.edge.rules.base import EventContext, HazardKey, Rule, Sighting
from sitewatch.edge.rules.frame import PersonFrame


class PartyMemberHelmetRule(Rule):
    kind = RuleKind.PARTY_MEMBER_HELMET

    def __init__(
        self, config: RuleConfig, context: EventContext, party_member_ids: Callable[[], set[str]]
    ) -> None:
        super().__init__(config, context)
        self._party_member_ids = party_member_ids

    def sightings(self, frame: PersonFrame, now: datetime) -> dict[HazardKey, Sighting]:
        candidates = [i for i in frame.tracked() if frame.worker_id[i]]
        if not candidates:
            return {}
        members = self._party_member_ids()
        return {
            (int(frame.track_ids[i]), None): frame.sighting(i, severity=self.config.severity)
            for i in candidates
            if frame.worker_id[i] in members and _not_red(frame, i)
        }


def _not_red(frame: PersonFrame, i: int) -> bool:
    state = frame.helmet_state[i]
    if state is HelmetState.BARE:
        return True
    colour = frame.helmet_colour[i]
    return state is HelmetState.HELMET and colour is not None and colour is not HelmetColour.RED
