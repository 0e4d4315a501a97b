"""The rule engine of one camera: one call per frame, events out.

``RuleEngine(site, camera).evaluate(persons, now, frame_wh)`` runs every enabled rule on
the frame's tracked people and returns the events that frame produced (start / update /
end, see :mod:`edge.rules.base`); ``finish(now)`` ends every open event. Time is always
a parameter (video time in replay), never the clock, and must be timezone-aware so that
working hours can be read in the site's timezone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sitewatch.contract.events import Event
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.detections import Detections
from sitewatch.edge.rules.base import EventContext, Rule
from sitewatch.edge.rules.fall_edge import FallEdgeRule
from sitewatch.edge.rules.frame import PersonFrame
from sitewatch.edge.rules.no_helmet import NoHelmetRule
from sitewatch.edge.rules.party_member_helmet import PartyMemberHelmetRule
from sitewatch.edge.rules.person import PersonRule
from sitewatch.edge.rules.post_unattended import PostUnattendedRule
from sitewatch.edge.rules.restricted_zone import RestrictedZoneRule
from sitewatch.zones.geometry import CameraGeometry

logger = logging.getLogger(__name__)

PartyMemberIds = Callable[[], set[str]] | set[str] | frozenset[str]


class RuleEngine:
    def __init__(
        self,
        site: SiteConfig,
        camera: CameraConfig,
        *,
        party_member_ids: PartyMemberIds = frozenset(),
    ) -> None:
        self.site = site
        self.camera = camera
        self.geometry = CameraGeometry(camera.zones)
        self.rules = _build_rules(site, camera, self.geometry, _as_callable(party_member_ids))
        self._last_now: datetime | None = None
        logger.info(
            "camera %s: rules %s", camera.id, ", ".join(r.kind.value for r in self.rules) or "none"
        )

    def evaluate(
        self, persons: Detections, now: datetime, frame_wh: tuple[int, int]
    ) -> list[Event]:
        """Events raised by this frame; ``persons`` are tracked people in pixels.

        If time goes backwards (a looped file, a clock step), every open event is ended
        first and the rules start afresh, so no event is left hanging on a future time.
        """
        events = self._check_time(now)
        frame = PersonFrame.from_detections(persons, frame_wh)
        for rule in self.rules:
            events.extend(rule.evaluate(frame, now))
        return events

    def finish(self, now: datetime) -> list[Event]:
        """End every open event (end of a video, shutdown); the engine can go on after."""
        events = self._check_time(now)
        for rule in self.rules:
            events.extend(rule.finish(now))
        return events

    def _check_time(self, now: datetime) -> list[Event]:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"RuleEngine needs timezone-aware times, got {now!r}")
        events: list[Event] = []
        if self._last_now is not None and now < self._last_now:
            logger.warning(
                "camera %s: time went back from %s to %s; ending open events",
                self.camera.id,
                self._last_now,
                now,
            )
            for rule in self.rules:
                events.extend(rule.finish(now))
        self._last_now = now
        return events


def _as_callable(ids: PartyMemberIds) -> Callable[[], set[str]]:
    if callable(ids):
        return ids
    fixed = set(ids)
    return lambda: fixed


def _build_rules(
    site: SiteConfig,
    camera: CameraConfig,
    geometry: CameraGeometry,
    party_member_ids: Callable[[], set[str]],
) -> list[Rule]:
    context = EventContext(site_id=site.site.id, camera_id=camera.id)
    cfg = site.rules
    candidates: list[Rule] = []
    if cfg.no_helmet.enabled:
        candidates.append(NoHelmetRule(cfg.no_helmet, context))
    if cfg.fall_edge.enabled and geometry.edges:
        candidates.append(FallEdgeRule(cfg.fall_edge, context, geometry))
    if cfg.restricted_zone.enabled and geometry.restricted:
        candidates.append(RestrictedZoneRule(cfg.restricted_zone, context, geometry))
    if cfg.post_unattended.enabled and geometry.posts:
        timezone = ZoneInfo(site.site.timezone)
        candidates.append(PostUnattendedRule(cfg.post_unattended, context, geometry, timezone))
    if cfg.party_member_helmet.enabled:
        candidates.append(PartyMemberHelmetRule(cfg.party_member_helmet, context, party_member_ids))
    if cfg.person.enabled:
        candidates.append(PersonRule(cfg.person, context))
    return candidates
