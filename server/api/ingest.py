"""Ingest API for edge devices (bearer token): events, media, heartbeats."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Path, Request, Response, UploadFile, status

from sitewatch.contract.events import Event
from sitewatch.contract.heartbeat import Heartbeat, HeartbeatReply
from sitewatch.server.api.deps import CurrentDevice, DbSession, SettingsDep, StoreDep
from sitewatch.server.api.schemas import IngestResult, MediaResult
from sitewatch.server.db.models import MediaKind
from sitewatch.server.db.types import utcnow
from sitewatch.server.metrics import Metrics
from sitewatch.server.services import admin, cameras, events
from sitewatch.server.services.media import device_event, receive_media, store_media
from sitewatch.server.services.validation import TimeWindow

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["ingest"])


class DeviceMediaKind(StrEnum):
    """Media kinds a device uploads (evidence photos come from users)."""

    SNAPSHOT = "snapshot"
    SNAPSHOT_CLEAN = "snapshot_clean"
    CLIP = "clip"
    FACE = "face"


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


@router.put(
    "/events/{event_id}",
    response_model=IngestResult,
    responses={201: {"model": IngestResult}, 403: {}, 409: {}, 422: {}},
)
def put_event(
    event_id: uuid.UUID,
    event: Event,
    device: CurrentDevice,
    db: DbSession,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> IngestResult:
    """Create or update an event (idempotent by ``event_id``; 201 when created)."""
    if event.event_id != event_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"event_id in the path ({event_id}) differs from the body ({event.event_id})",
        )
    window = TimeWindow(
        max_future=timedelta(seconds=settings.event_max_future_s),
        max_age=timedelta(days=settings.event_max_age_days),
    )
    result = events.upsert_event(
        db, event=event, device=device, window=window, alerts=settings.alert_policy
    )
    outcome = "created" if result.created else ("updated" if result.applied else "stale")
    _metrics(request).ingest.labels("event", outcome).inc()
    logger.info(
        "event %s %s (%s)",
        event_id,
        outcome,
        event.phase.value,
        extra={"event_id": str(event_id), "site_id": event.site_id, "device": device.name},
    )
    if result.created:
        response.status_code = status.HTTP_201_CREATED
        worker = getattr(request.app.state, "notify_worker", None)
        if worker is not None:
            worker.wake()  # its alerts go now, not at the next poll
    return IngestResult(event_id=event_id, created=result.created, applied=result.applied)


@router.put(
    "/events/{event_id}/media/{kind}",
    response_model=MediaResult,
    responses={404: {}, 403: {}, 413: {}, 415: {}},
)
def put_media(
    event_id: uuid.UUID,
    device_kind: Annotated[DeviceMediaKind, Path(alias="kind")],
    file: Annotated[UploadFile, File(description="JPEG (snapshots, face) or MP4 (clip)")],
    device: CurrentDevice,
    db: DbSession,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
) -> MediaResult:
    """Upload one media file of an event; the same bytes again change nothing."""
    kind = MediaKind(device_kind.value)
    event = device_event(db, device=device, event_id=event_id)
    received = receive_media(
        file.file, store=store, settings=settings, kind=kind, what=f"{kind.value} of {event_id}"
    )
    result = store_media(db, store=store, event=event, kind=kind, received=received)
    _metrics(request).ingest.labels("media", "stored" if result.changed else "unchanged").inc()
    media = result.media
    return MediaResult(
        event_id=event_id,
        kind=kind,
        size_bytes=media.size_bytes,
        sha256=media.sha256,
        content_type=media.content_type,
        changed=result.changed,
    )


@router.post("/heartbeat", response_model=HeartbeatReply)
def post_heartbeat(
    heartbeat: Heartbeat, device: CurrentDevice, db: DbSession, request: Request
) -> HeartbeatReply:
    """Cameras (names, state, fps, last frame), queue depth and version of a device; the
    reply says the site's zones version and which cameras' pictures are wanted."""
    reply = cameras.record_cameras(db, device=device, heartbeat=heartbeat, now=utcnow())
    admin.record_heartbeat(db, device=device, heartbeat=heartbeat.model_dump(mode="json"))
    _metrics(request).ingest.labels("heartbeat", "ok").inc()
    return reply
