"""The offline alarm: a camera without frames, or whose box stopped reporting, for
longer than ``camera_offline_after_s`` is announced once per dark spell to the channels
whose rules route its site and camera for every rule (a rule limited to one hazard
hears nothing of cameras), and again when it is back. Run by the delivery worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from sitewatch.server.db.models import Camera, NotificationKind
from sitewatch.server.db.session import Database
from sitewatch.server.notify.queue import AlertPolicy, enqueue_loop
from sitewatch.server.services.cameras import camera_is_dark


@dataclass(frozen=True)
class CameraSubject:
    site_id: str
    camera_id: str
    rule: str | None = None  # only rules for every rule route camera messages
    severity: str = "high"


def check_cameras(
    database: Database, *, now: datetime, offline_after: timedelta, policy: AlertPolicy
) -> int:
    """Queue offline / back-online messages for cameras whose state changed; how many."""
    queued = 0
    with database.session() as db:
        for camera in db.scalars(select(Camera).order_by(Camera.site_id, Camera.camera_id)):
            dark = camera_is_dark(camera, now, offline_after)
            since = camera.last_frame_at or camera.last_seen_at
            if dark and since is not None and camera.offline_alarm_for != since:
                kind, camera.offline_alarm_for = NotificationKind.CAMERA_OFFLINE, since
            elif not dark and camera.offline_alarm_for is not None:
                kind, since, camera.offline_alarm_for = (
                    NotificationKind.CAMERA_ONLINE,
                    camera.offline_alarm_for,
                    None,
                )
            else:
                continue
            step = "offline" if kind == NotificationKind.CAMERA_OFFLINE else "online"
            queued += enqueue_loop(
                db,
                kind=kind,
                event=CameraSubject(camera.site_id, camera.camera_id),
                hazard_id=None,
                at=now,
                now=now,
                policy=policy,
                key=f"{step}:{camera.site_id}:{camera.camera_id}:{since.isoformat()}"[:200],
                payload={
                    "site_id": camera.site_id,
                    "camera_id": camera.camera_id,
                    "camera_name": camera.name or camera.camera_id,
                    "since": since.isoformat(),
                    "last_seen_at": camera.last_seen_at.isoformat()
                    if camera.last_seen_at
                    else None,
                },
            )
        db.commit()
    return queued
