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

from sitewatch.contract.events import Event, RuleKind
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
from sitewatch.zones.config import CameraZones
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
        self._party_member_ids = _as_callable(party_member_ids)
        self.rules = _build_rules(site, camera, self.geometry, self._party_member_ids)
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

    def replace_zones(self, zones: CameraZones, now: datetime) -> list[Event]:
        """Judge with ``zones`` from now on (between two frames; a live zones sync).

        The zone rules whose zones changed (restricted polygons, fall-risk edges, posts;
        the calibration counts for all three) end their open events first (returned, to
        be sent) and are rebuilt with the new geometry; zone rules whose zones did not
        change keep their state, and so do the other rules (no_helmet, person,
        party_member_helmet): their events go on untouched.
        """
        events = self._check_time(now)
        old_zones = self.camera.zones
        camera = self.camera.model_copy(update={"zones": zones})
        geometry = CameraGeometry(zones)
        fresh = _build_rules(self.site, camera, geometry, self._party_member_ids)
        old = {rule.kind: rule for rule in self.rules}
        changed = {
            kind
            for kind, parts in _ZONE_PARTS.items()
            if _parts(old_zones, parts) != _parts(zones, parts)
        }
        for kind in changed:
            if kind in old:
                events.extend(old[kind].finish(now))
        rules: list[Rule] = []
        for rule in fresh:
            kept = old.get(rule.kind)
            rules.append(kept if kept is not None and rule.kind not in changed else rule)
        self.camera, self.geometry, self.rules = camera, geometry, rules
        if changed:
            logger.info(
                "camera %s: zones changed (%s); rules now %s",
                camera.id,
                ", ".join(sorted(k.value for k in changed)),
                ", ".join(r.kind.value for r in rules) or "none",
            )
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


#: The parts of a camera's zones each zone rule judges with.
_ZONE_PARTS: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.RESTRICTED_ZONE: ("restricted", "calibration"),
    RuleKind.FALL_EDGE: ("edges", "calibration"),
    RuleKind.POST_UNATTENDED: ("posts", "calibration"),
}


def _parts(zones: CameraZones, parts: tuple[str, ...]) -> list[object]:
    dumped = zones.model_dump(mode="json")
    return [dumped.get(part) for part in parts]


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
