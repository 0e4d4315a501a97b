"""Which channels hear of an event: routing rules by site, camera, rule, severity, local
hours and weekdays, and escalation rules for overdue hazards.

Hours are read in the site's zone (``sites.timezone``, else the server's ``timezone``);
a window whose end is before its start wraps past midnight (22:00-06:00 is the night).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sitewatch.contract.events import Severity
from sitewatch.server.db.models import AlertChannel, AlertRule, EventRecord, Site
from sitewatch.server.localtime import zone as parse_zone

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_clock(value: str, what: str) -> time:
    """ "07:30" -> time(7, 30); a ValueError naming ``what`` otherwise."""
    match = _CLOCK.match(value)
    if match is None:
        raise ValueError(f"{what} must be a local time HH:MM (00:00-23:59), got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_weekdays(value: str, what: str = "weekdays") -> frozenset[int]:
    """ "1,2,3,4,5" -> {1..5} (ISO: Monday is 1); a ValueError naming ``what`` otherwise."""
    days: set[int] = set()
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 7:
            raise ValueError(f"{what} must be ISO weekdays 1-7 separated by commas, got {value!r}")
        days.add(int(part))
    if not days:
        raise ValueError(f"{what} must name at least one day")
    return frozenset(days)


def _rank(severity: str) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return 0


def site_zone(db: Session, site_id: str, default: ZoneInfo) -> ZoneInfo:
    site = db.get(Site, site_id)
    if site is None or not site.timezone:
        return default
    try:
        return parse_zone(site.timezone)
    except ValueError:  # checked when set; an old row with a zone the OS dropped
        return default


def active_at(rule: AlertRule, local: datetime) -> bool:
    """Whether ``rule`` routes event alerts at the local time ``local``."""
    if rule.weekdays and local.isoweekday() not in parse_weekdays(rule.weekdays):
        return False
    if not rule.active_from or not rule.active_to:
        return True
    start, end = parse_clock(rule.active_from, "active_from"), parse_clock(rule.active_to, "")
    now = local.time().replace(second=0, microsecond=0)
    if start <= end:
        return start <= now < end
    return now >= start or now < end  # wraps past midnight


def next_active(rule: AlertRule, local: datetime) -> datetime:
    """The first minute at or after ``local`` when ``rule`` is active (``local`` itself
    if it is; the search stops after 8 days, which a weekday set always lies within)."""
    if active_at(rule, local):
        return local
    probe = local.replace(second=0, microsecond=0)
    for _ in range(8 * 24 * 60):
        probe += timedelta(minutes=1)
        if active_at(rule, probe):
            return probe
    return local


class Subject(Protocol):
    """What a message is about, as routing sees it (an event; a camera gone dark)."""

    @property
    def site_id(self) -> str: ...
    @property
    def camera_id(self) -> str: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def severity(self) -> str: ...


def matching_rules(db: Session, event: Subject, *, escalation: bool) -> list[AlertRule]:
    """Enabled channels' rules that match ``event`` by site, camera, rule and severity
    (hours not applied), either the escalation rules or the others."""
    query = (
        select(AlertRule)
        .join(AlertChannel, AlertChannel.id == AlertRule.channel_id)
        .where(
            AlertChannel.enabled.is_(True),
            AlertRule.escalation.is_(escalation),
            or_(AlertRule.site_id.is_(None), AlertRule.site_id == event.site_id),
            or_(AlertRule.camera_id.is_(None), AlertRule.camera_id == event.camera_id),
            or_(AlertRule.rule.is_(None), AlertRule.rule == event.rule),
        )
        .order_by(AlertRule.id)
    )
    rank = _rank(event.severity)
    return [r for r in db.scalars(query) if _rank(r.min_severity) <= rank]


def event_channels(db: Session, event: EventRecord, zone: ZoneInfo) -> list[int]:
    """Channels that get ``event``'s alert: a matching rule active at its start."""
    local = event.started_at.astimezone(site_zone(db, event.site_id, zone))
    rules = matching_rules(db, event, escalation=False)
    return sorted({r.channel_id for r in rules if active_at(r, local)})


def loop_channels(
    db: Session, event: Subject, zone: ZoneInfo, at: datetime, *, escalation: bool = False
) -> dict[int, datetime]:
    """Channels for a hazard-loop message about ``event`` due at ``at``, each with the
    time it may go out: quiet hours delay it to the rule's next active minute. Overdue
    messages (``escalation``) go to the escalation rules, or the usual ones if none."""
    rules = matching_rules(db, event, escalation=True) if escalation else []
    rules = rules or matching_rules(db, event, escalation=False)
    site_tz = site_zone(db, event.site_id, zone)
    due: dict[int, datetime] = {}
    for rule in rules:
        when = next_active(rule, at.astimezone(site_tz)).astimezone(at.tzinfo)
        if rule.channel_id not in due or when < due[rule.channel_id]:
            due[rule.channel_id] = when
    return due
