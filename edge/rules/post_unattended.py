"""``post_unattended``: a post with nobody of a staffing role inside, in working hours.

The hazard exists while it is working time (the post's own staffing ``hours``, else the
rule's ``working_hours``, in the site's timezone, ISO weekdays) and no person whose role
is in the post's ``staffed_by_roles`` has feet inside the post polygon. It starts once
that has lasted the post's ``max_unattended_s`` (or the rule's ``min_duration_s`` if
larger), and ends ``end_after_s`` after the post is staffed again or working hours end.
People need no tracker id to staff a post. Events have ``track_id=None`` and ``zone`` = the post.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sitewatch.contract.events import RuleKind
from sitewatch.edge.config import PostRuleConfig, WorkingHours
from sitewatch.edge.rules.base import EventContext, HazardKey, Sighting, ZoneRule
from sitewatch.edge.rules.frame import PersonFrame
from sitewatch.zones.config import StaffingHours
from sitewatch.zones.geometry import CameraGeometry


def is_working_time(
    now: datetime, hours: Sequence[WorkingHours | StaffingHours], timezone: ZoneInfo
) -> bool:
    """True when ``now`` (timezone-aware) falls in any working-hours window, locally."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"post_unattended needs a timezone-aware time, got {now!r}")
    local = now.astimezone(timezone)
    clock = local.time().replace(tzinfo=None)
    weekday = local.isoweekday()
    return any(w.start <= clock < w.end and weekday in w.weekdays for w in hours)


class PostUnattendedRule(ZoneRule):
    kind = RuleKind.POST_UNATTENDED
    config: PostRuleConfig

    def __init__(
        self,
        config: PostRuleConfig,
        context: EventContext,
        geometry: CameraGeometry,
        timezone: ZoneInfo,
    ) -> None:
        super().__init__(config, context, geometry, min_duration_for=self._min_duration_s)
        self._timezone = timezone
        self._posts = {p.name: p for p in geometry.zones.posts}

    def _min_duration_s(self, key: HazardKey) -> float:
        post = self._posts[str(key[1])]
        return max(post.max_unattended_s, self.config.min_duration_s)

    def sightings(self, frame: PersonFrame, now: datetime) -> dict[HazardKey, Sighting]:
        # a post with its own staffing hours follows them, the others the rule's hours
        due = {
            name: post
            for name, post in self._posts.items()
            if is_working_time(now, post.hours or self.config.working_hours, self._timezone)
        }
        if not due:
            return {}
        inside = self.geometry.inside_posts(frame.feet_norm)
        out: dict[HazardKey, Sighting] = {}
        for name, post in due.items():
            roles = set(post.staffed_by_roles)
            staffed = any(inside[name][i] and frame.role[i] in roles for i in range(len(frame)))
            if not staffed:
                out[(None, name)] = Sighting(
                    track_id=None, zone=name, severity=self.config.severity
                )
        return out
