"""What a queued notification says: the :class:`Alert` for its kind, built when it is
sent (so a digest counts every alert it gathered), or why it is no longer needed."""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sitewatch.server.db.models import (
    Camera,
    EventRecord,
    Hazard,
    HazardStatus,
    Media,
    MediaKind,
    Notification,
    NotificationKind,
    Site,
    User,
)
from sitewatch.server.media import MediaStore
from sitewatch.server.notify.channels import RULE_NAMES, Alert
from sitewatch.server.notify.routing import site_zone
from sitewatch.server.settings import Settings

#: Snapshots larger than this go as a link only (WeCom's image message takes 2 MB).
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024

TEXTS = {
    "zh": {
        NotificationKind.DIGEST: "告警汇总",
        NotificationKind.HAZARD_ASSIGNED: "整改通知",
        NotificationKind.HAZARD_REMINDER: "整改提醒",
        NotificationKind.HAZARD_OVERDUE: "整改逾期",
        NotificationKind.HAZARD_EVIDENCE: "整改待验收",
        "digest_line": "{minutes} 分钟内另有 {count} 起{rule}（{first} 至 {last}）",
        "responsible": "整改责任人",
        "deadline": "整改期限",
        "note": "备注",
        "left": "距期限还有 {hours} 小时",
        "late": "已逾期 {hours} 小时",
        "evidence_by": "提交人",
        NotificationKind.CAMERA_OFFLINE: "摄像头离线",
        NotificationKind.CAMERA_ONLINE: "摄像头恢复",
        "dark_since": "最后画面",
        "dark_for": "已离线 {minutes} 分钟",
        "back_after": "离线 {minutes} 分钟后恢复",
    },
    "en": {
        NotificationKind.DIGEST: "Alert digest",
        NotificationKind.HAZARD_ASSIGNED: "Rectification assigned",
        NotificationKind.HAZARD_REMINDER: "Rectification due soon",
        NotificationKind.HAZARD_OVERDUE: "Rectification overdue",
        NotificationKind.HAZARD_EVIDENCE: "Evidence to review",
        "digest_line": "{count} more {rule} alerts within {minutes} min ({first} to {last})",
        "responsible": "Responsible",
        "deadline": "Deadline",
        "note": "Note",
        "left": "{hours} h left before the deadline",
        "late": "{hours} h past the deadline",
        "evidence_by": "Submitted by",
        NotificationKind.CAMERA_OFFLINE: "Camera offline",
        NotificationKind.CAMERA_ONLINE: "Camera back online",
        "dark_since": "Last frame",
        "dark_for": "Offline for {minutes} min",
        "back_after": "Back after {minutes} min offline",
    },
}

#: Hazard states in which reminders and escalations still matter.
_STILL_OPEN = (HazardStatus.ASSIGNED, HazardStatus.REJECTED)


def _lang(language: str) -> str:
    return language if language in TEXTS else "zh"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _base_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


def _site_name(db: Session, site_id: str) -> str:
    site = db.get(Site, site_id)
    return site.name if site is not None else site_id


def _snapshot(db: Session, store: MediaStore | None, event: EventRecord) -> bytes | None:
    if store is None:
        return None
    media = db.scalar(
        select(Media).where(
            Media.event_id == event.event_id,
            Media.kind == MediaKind.SNAPSHOT,
            Media.deleted_at.is_(None),
            Media.problem.is_(None),
        )
    )
    if media is None or media.size_bytes > MAX_SNAPSHOT_BYTES:
        return None
    try:
        with store.open(media.stored_name) as handle:
            return handle.read(MAX_SNAPSHOT_BYTES + 1)[:MAX_SNAPSHOT_BYTES]
    except OSError:  # swept by retention meanwhile: the link still works for the record
        return None


def _camera_name(db: Session, site_id: str, camera_id: str) -> str:
    camera = db.get(Camera, (site_id, camera_id)) if camera_id else None
    return camera.name if camera is not None else ""


def event_alert(
    db: Session, event: EventRecord, settings: Settings, store: MediaStore | None = None
) -> Alert:
    return Alert(
        camera_name=_camera_name(db, event.site_id, event.camera_id),
        event_id=str(event.event_id),
        site_id=event.site_id,
        site_name=_site_name(db, event.site_id),
        camera_id=event.camera_id,
        rule=event.rule,
        severity=event.severity,
        started_at=event.started_at,
        zone=event.zone,
        link=f"{_base_url(settings)}/ui/events/{event.event_id}",
        fields={
            "phase": event.phase,
            "status": event.status.value,
            "track_id": event.track_id,
            "helmet_state": event.helmet_state,
            "helmet_colour": event.helmet_colour,
            "role": event.role,
            "worker_id": event.worker_id,
            "confidence": event.confidence,
            "message": event.message,
            "ended_at": event.ended_at.isoformat() if event.ended_at else None,
        },
        snapshot_jpeg=_snapshot(db, store, event),
    )


def _digest_alert(db: Session, note: Notification, settings: Settings, language: str) -> Alert:
    payload = note.payload or {}
    site_id, rule = str(payload.get("site_id", "")), str(payload.get("rule", ""))
    count, first, last = db.execute(
        select(
            func.count(), func.min(Notification.created_at), func.max(Notification.created_at)
        ).where(Notification.digest_id == note.id)
    ).one()
    zone = site_zone(db, site_id, settings.zone)
    first = first or note.created_at
    last = last or note.created_at
    texts = TEXTS[_lang(language)]
    minutes = round(float(payload.get("window_s", 600)) / 60)
    line = str(texts["digest_line"]).format(
        minutes=minutes,
        count=count,
        rule=RULE_NAMES[_lang(language)].get(rule, rule),
        first=first.astimezone(zone).strftime("%H:%M"),
        last=last.astimezone(zone).strftime("%H:%M"),
    )
    query = urllib.parse.urlencode({"site": site_id, "rule": rule})
    return Alert(
        event_id="",
        site_id=site_id,
        site_name=_site_name(db, site_id),
        camera_id="",
        rule=rule,
        severity=str(payload.get("severity", "medium")),
        started_at=first,
        link=f"{_base_url(settings)}/ui/events?{query}",
        fields={"count": count, "first_at": first.isoformat(), "last_at": last.isoformat()},
        kind=NotificationKind.DIGEST.value,
        headline=f"{texts[NotificationKind.DIGEST]}: {_site_name(db, site_id)}",
        extra_lines=(line,),
    )


def _camera_alert(db: Session, note: Notification, settings: Settings, language: str) -> Alert:
    payload = note.payload or {}
    site_id, camera_id = str(payload.get("site_id", "")), str(payload.get("camera_id", ""))
    since = datetime.fromisoformat(str(payload.get("since")))
    zone = site_zone(db, site_id, settings.zone)
    texts = TEXTS[_lang(language)]
    minutes = max(0, round((note.created_at - since).total_seconds() / 60))
    step = "dark_for" if note.kind == NotificationKind.CAMERA_OFFLINE else "back_after"
    lines = (
        f"{texts['dark_since']}: {_local(since, zone)}",
        str(texts[step]).format(minutes=minutes),
    )
    return Alert(
        event_id="",
        site_id=site_id,
        site_name=_site_name(db, site_id),
        camera_id=camera_id,
        camera_name=str(payload.get("camera_name", "")),
        rule="",
        severity="high",
        started_at=since,
        link=f"{_base_url(settings)}/ui/cameras",
        fields={"since": since.isoformat()},
        kind=note.kind.value,
        headline=f"{texts[note.kind]}: {payload.get('camera_name') or camera_id}",
        extra_lines=lines,
    )


def _hazard_alert(
    db: Session, note: Notification, hazard: Hazard, settings: Settings, language: str
) -> Alert:
    event = hazard.event
    base = event_alert(db, event, settings)
    zone = site_zone(db, event.site_id, settings.zone)
    texts = TEXTS[_lang(language)]
    rule = RULE_NAMES[_lang(language)].get(event.rule, event.rule)
    lines = [
        f"{texts['responsible']}: {hazard.responsible}",
        f"{texts['deadline']}: {_local(hazard.deadline, zone)}",
    ]
    now = note.last_attempt_at or note.next_attempt_at  # the claim's time: now
    if note.kind == NotificationKind.HAZARD_REMINDER:
        hours = max(0.0, (hazard.deadline - now).total_seconds() / 3600)
        lines.append(str(texts["left"]).format(hours=f"{hours:.1f}"))
    elif note.kind == NotificationKind.HAZARD_OVERDUE:
        hours = max(0.0, (now - hazard.deadline).total_seconds() / 3600)
        lines.append(str(texts["late"]).format(hours=f"{hours:.1f}"))
    elif note.kind == NotificationKind.HAZARD_EVIDENCE:
        by = db.get(User, hazard.evidence_by_id) if hazard.evidence_by_id else None
        if by is not None:
            lines.append(f"{texts['evidence_by']}: {by.display_name or by.username}")
        if hazard.evidence_note:
            lines.append(f"{texts['note']}: {hazard.evidence_note[:200]}")
    if note.kind == NotificationKind.HAZARD_ASSIGNED and hazard.note:
        lines.append(f"{texts['note']}: {hazard.note[:200]}")
    return Alert(
        **{
            **base.__dict__,
            "kind": note.kind.value,
            "headline": f"{texts[note.kind]}: {rule}",
            "extra_lines": tuple(lines),
            "fields": {
                **base.fields,
                "hazard_status": hazard.status.value,
                "responsible": hazard.responsible,
                "deadline": hazard.deadline.isoformat(),
            },
        }
    )


def compose(
    db: Session,
    note: Notification,
    settings: Settings,
    language: str,
    store: MediaStore | None = None,
) -> Alert | str:
    """The alert ``note`` sends, or (a string) why it is no longer to be sent."""
    if note.kind == NotificationKind.EVENT:
        event = db.get(EventRecord, note.event_id) if note.event_id else None
        return event_alert(db, event, settings, store) if event else "event removed"
    if note.kind == NotificationKind.DIGEST:
        return _digest_alert(db, note, settings, language)
    if note.kind in (NotificationKind.CAMERA_OFFLINE, NotificationKind.CAMERA_ONLINE):
        return _camera_alert(db, note, settings, language)
    hazard = db.get(Hazard, note.hazard_id) if note.hazard_id else None
    if hazard is None:
        return "hazard removed"
    if note.kind in (NotificationKind.HAZARD_REMINDER, NotificationKind.HAZARD_OVERDUE):
        planned = (note.payload or {}).get("deadline")
        if hazard.status not in _STILL_OPEN:
            return f"hazard is {hazard.status.value}"
        if planned != hazard.deadline.isoformat():
            return "deadline changed"
    return _hazard_alert(db, note, hazard, settings, language)
