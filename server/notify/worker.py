"""Delivery: claim due notifications, send them, record sent / retry / failed.

:func:`deliver_due` does one round (the tests call it directly); :class:`NotifyWorker` runs
rounds in a background thread of a server process, started and stopped with the app's
lifespan by :func:`install` when ``settings.notify_worker`` is on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session

from sitewatch.server.db.models import AlertChannel, EventRecord, NotificationStatus, Site
from sitewatch.server.db.session import Database
from sitewatch.server.db.types import utcnow
from sitewatch.server.notify import queue
from sitewatch.server.notify.channels import Alert, Target, send
from sitewatch.server.settings import Settings

logger = logging.getLogger(__name__)
BATCH = 50


def event_link(settings: Settings, event_id: object) -> str:
    return f"{settings.public_url.rstrip('/')}/ui/events/{event_id}"


def alert_for(db: Session, event: EventRecord, settings: Settings) -> Alert:
    site = db.get(Site, event.site_id)
    return Alert(
        event_id=str(event.event_id),
        site_id=event.site_id,
        site_name=site.name if site is not None else event.site_id,
        camera_id=event.camera_id,
        rule=event.rule,
        severity=event.severity,
        started_at=event.started_at,
        zone=event.zone,
        link=event_link(settings, event.event_id),
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
    )


def target_of(channel: AlertChannel) -> Target:
    return Target(
        kind=channel.kind, url=channel.url, secret=channel.secret, language=channel.language
    )


@dataclass
class Round:
    """What one delivery round did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver_due(
    database: Database,
    settings: Settings,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    limit: int = BATCH,
) -> Round:
    """Claim the due notifications (``now`` defaults to the clock) and deliver them."""
    clock_given = now is not None
    now = now or utcnow()
    claims = queue.claim_due(
        database, now=now, rate_per_minute=settings.alert_rate_per_minute, limit=limit
    )
    done = Round(claimed=len(claims))
    zone = settings.zone
    for claim in claims:
        with database.session() as db:
            event = db.get(EventRecord, claim.event_id)
            channel = db.get(AlertChannel, claim.channel_id)
            alert = alert_for(db, event, settings) if event is not None else None
            target = target_of(channel) if channel is not None else None
        error: str | None = "event or channel removed"
        ok = False
        if alert is not None and target is not None:
            result = send(target, alert, zone, timeout_s=settings.alert_timeout_s, client=client)
            ok, error = result.ok, result.error
        status = queue.finish(
            database,
            claim,
            now=now if clock_given else utcnow(),
            ok=ok,
            error=error,
            max_attempts=settings.alert_max_attempts,
            retry_base_s=settings.alert_retry_base_s,
            retry_max_s=settings.alert_retry_max_s,
        )
        if status == NotificationStatus.SENT:
            done.sent += 1
        elif status == NotificationStatus.FAILED:
            done.failed += 1
        elif status == NotificationStatus.PENDING:
            done.retried += 1
        if error:
            done.errors.append(error)
    return done


class NotifyWorker:
    """A daemon thread running :func:`deliver_due` every ``notify_poll_s``."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database, self.settings = database, settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sitewatch-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        with httpx.Client(timeout=self.settings.alert_timeout_s) as client:
            while not self._stop.is_set():
                try:
                    done = deliver_due(self.database, self.settings, client=client)
                    busy = done.claimed >= BATCH
                except Exception:  # the database away for a while: try again later
                    logger.warning("alert delivery round failed", exc_info=True)
                    busy = False
                if not busy:
                    self._stop.wait(self.settings.notify_poll_s)


def install(app: FastAPI, settings: Settings, database: Database) -> None:
    """Run a :class:`NotifyWorker` for the app's lifespan when ``notify_worker`` is on."""
    if not settings.notify_worker:
        return
    worker = NotifyWorker(database, settings)
    app.state.notify_worker = worker
    previous: Any = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        worker.start()
        try:
            async with previous(app_) as state:
                yield state
        finally:
            worker.stop()

    app.router.lifespan_context = lifespan
