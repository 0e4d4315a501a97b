"""Delivery: claim due notifications, send them, record sent / retry / failed.

:func:`deliver_due` does one round (the tests call it directly); :class:`NotifyWorker` runs
rounds in a background thread of a server process, started and stopped with the app's
lifespan by :func:`install` when ``settings.notify_worker`` is on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from sitewatch.server.db.models import AlertChannel, Notification, NotificationStatus
from sitewatch.server.db.session import Database
from sitewatch.server.db.types import utcnow
from sitewatch.server.media import MediaStore
from sitewatch.server.metrics import Metrics
from sitewatch.server.notify import queue
from sitewatch.server.notify.camera_watch import check_cameras
from sitewatch.server.notify.channels import Alert, Target, send
from sitewatch.server.notify.compose import compose
from sitewatch.server.notify.routing import site_zone
from sitewatch.server.settings import Settings

logger = logging.getLogger(__name__)
BATCH = 50
#: Seconds between the worker's looks for cameras gone dark (or back).
CAMERA_WATCH_S = 15.0


def event_link(settings: Settings, event_id: object) -> str:
    return f"{settings.public_url.rstrip('/')}/ui/events/{event_id}"


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
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


def deliver_due(
    database: Database,
    settings: Settings,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    limit: int = BATCH,
    store: MediaStore | None = None,
    metrics: Metrics | None = None,
    stop: threading.Event | None = None,
) -> Round:
    """Claim the due notifications (``now`` defaults to the clock) and deliver them; once
    ``stop`` is set the claims not yet sent are handed back (a graceful shutdown sends
    only the one in hand, and the next process takes the rest at once)."""
    clock_given = now is not None
    now = now or utcnow()
    claims = queue.claim_due(
        database,
        now=now,
        rate_per_minute=settings.alert_rate_per_minute,
        limit=limit,
        claim_s=settings.alert_claim_s,
    )
    done = Round(claimed=len(claims))
    for index, claim in enumerate(claims):
        if stop is not None and stop.is_set():
            queue.release(database, claims[index:], now=utcnow())
            break
        with database.session() as db:
            note = db.get(Notification, claim.id)
            channel = db.get(AlertChannel, claim.channel_id)
            target = target_of(channel) if channel is not None else None
            prepared: Alert | str = "channel removed"
            if note is not None and target is not None:
                prepared = compose(db, note, settings, target.language, store)
            if isinstance(prepared, Alert):  # a receiver tells a repeat by these
                ids = {"notification_id": claim.id, "attempt": claim.attempt}
                prepared = replace(prepared, fields={**prepared.fields, **ids})
            kind, created = (note.kind.value, note.created_at) if note else ("event", now)
            zone = settings.zone
            if isinstance(prepared, Alert) and prepared.site_id:
                zone = site_zone(db, prepared.site_id, settings.zone)
        ok, cancelled, error = False, False, None
        if isinstance(prepared, str):
            cancelled, error = True, prepared
        elif target is not None:
            result = send(target, prepared, zone, timeout_s=settings.alert_timeout_s, client=client)
            ok, error = result.ok, result.error
        finished_at = now if clock_given else utcnow()
        status = queue.finish(
            database,
            claim,
            now=finished_at,
            ok=ok,
            error=error,
            cancelled=cancelled,
            max_attempts=settings.alert_max_attempts,
            retry_base_s=settings.alert_retry_base_s,
            retry_max_s=settings.alert_retry_max_s,
        )
        outcome = status.value if status is not None else "lost_claim"
        if status == NotificationStatus.PENDING:
            outcome = "retry"
        if metrics is not None:
            metrics.alert_deliveries.labels(kind=kind, outcome=outcome).inc()
            if status == NotificationStatus.SENT and kind == "event":
                metrics.alert_delay.observe(max(0.0, (finished_at - created).total_seconds()))
        if status == NotificationStatus.SENT:
            done.sent += 1
        elif status == NotificationStatus.FAILED:
            done.failed += 1
        elif status == NotificationStatus.PENDING:
            done.retried += 1
        elif status == NotificationStatus.CANCELLED:
            done.cancelled += 1
        if error and not cancelled:
            done.errors.append(error)
    return done


class NotifyWorker:
    """A daemon thread running :func:`deliver_due` every ``notify_poll_s``, and at once
    when :meth:`wake` says this process queued an alert (other processes' alerts wait
    for the next poll)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        store: MediaStore | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.database, self.settings = database, settings
        self.store, self.metrics = store, metrics
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sitewatch-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop after the send in hand (it may take ``alert_timeout_s``; an e-mail, MQTT
        connect plus send, a little more)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s or 2 * self.settings.alert_timeout_s + 5)
            self._thread = None

    def _watch_cameras(self) -> None:
        try:
            check_cameras(
                self.database,
                now=utcnow(),
                offline_after=timedelta(seconds=self.settings.camera_offline_after_s),
                policy=self.settings.alert_policy,
            )
        except Exception:  # the database away for a while: the next look tries again
            logger.warning("camera offline check failed", exc_info=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        watched = 0.0
        with httpx.Client(timeout=self.settings.alert_timeout_s) as client:
            while not self._stop.is_set():
                self._wake.clear()
                if time.monotonic() - watched >= CAMERA_WATCH_S:
                    watched = time.monotonic()
                    self._watch_cameras()
                try:
                    done = deliver_due(
                        self.database,
                        self.settings,
                        client=client,
                        store=self.store,
                        metrics=self.metrics,
                        stop=self._stop,
                    )
                    busy = done.claimed >= BATCH
                except Exception:  # the database away for a while: try again later
                    logger.warning("alert delivery round failed", exc_info=True)
                    busy = False
                if not busy:
                    self._wake.wait(self.settings.notify_poll_s)


def queue_counts(database: Database) -> list[tuple[str, str, int]]:
    with database.session() as db:
        rows = db.execute(
            select(Notification.kind, Notification.status, func.count()).group_by(
                Notification.kind, Notification.status
            )
        ).all()
    return [(kind.value, status.value, count) for kind, status, count in rows]


def install(app: FastAPI, settings: Settings, database: Database) -> None:
    """Report the queue in /metrics; run a :class:`NotifyWorker` for the app's lifespan
    when ``notify_worker`` is on."""
    app.state.metrics.watch_queue(lambda: queue_counts(database))
    if not settings.notify_worker:
        return
    worker = NotifyWorker(database, settings, store=app.state.store, metrics=app.state.metrics)
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
