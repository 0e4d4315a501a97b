"""Cameras and zones (issue 17): the box's picture upload and zones pull (device token),
the camera list, pictures and the zone editor's API (users: viewers read; admins and
the site's reviewers change)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from sitewatch.contract.ids import Identifier
from sitewatch.contract.site_config import SiteZones
from sitewatch.server.api.deps import (
    CurrentDevice,
    CurrentUser,
    DbSession,
    SettingsDep,
    StoreDep,
)
from sitewatch.server.db.models import Camera, MediaKind
from sitewatch.server.db.types import utcnow
from sitewatch.server.services import cameras
from sitewatch.server.services.errors import NotFound
from sitewatch.server.services.media import receive_media

router = APIRouter(prefix="/api/v1", tags=["cameras"])
ERRORS: dict[int | str, dict[str, object]] = {403: {}, 404: {}, 409: {}, 422: {}}


class CameraOut(BaseModel):
    site_id: str
    camera_id: str
    name: str
    online: bool
    #: online, and a frame came within the offline setting; else offline.
    state: str
    fps: float | None
    width: int | None
    height: int | None
    last_frame_at: datetime | None
    last_seen_at: datetime | None
    zones_version: int | None
    picture_at: datetime | None
    picture_url: str | None
    #: The people on the latest picture ([x1, y1, x2, y2] normalised).
    picture_persons: list[list[float]]
    #: Zones the server manages for this camera (None: the box's YAML zones).
    zones: dict[str, Any] | None


def camera_out(camera: Camera, zones: SiteZones, offline_after: timedelta) -> CameraOut:
    managed = zones.cameras.get(camera.camera_id)
    dark = cameras.camera_is_dark(camera, utcnow(), offline_after)
    picture = f"/api/v1/sites/{camera.site_id}/cameras/{camera.camera_id}/picture"
    return CameraOut(
        site_id=camera.site_id,
        camera_id=camera.camera_id,
        name=camera.name or camera.camera_id,
        online=camera.online,
        state="offline" if dark else "online",
        fps=camera.fps,
        width=camera.width,
        height=camera.height,
        last_frame_at=camera.last_frame_at,
        last_seen_at=camera.last_seen_at,
        zones_version=camera.zones_version,
        picture_at=camera.picture_at,
        picture_url=picture if camera.picture_key else None,
        picture_persons=camera.picture_persons or [],
        zones=managed.model_dump(mode="json", exclude_none=True) if managed else None,
    )


class ZonesIn(BaseModel):
    """A camera's zones as the editor saves them."""

    zones: dict[str, Any]
    #: The site zones version the editor loaded; 409 when another save came since.
    base_version: int | None = Field(default=None, ge=0)


class VersionOut(BaseModel):
    version: int
    changed_camera: str | None
    actor: str
    created_at: datetime


class PreviewPersonOut(BaseModel):
    box: list[float]
    inside: list[str]
    near_edges: dict[str, float]


# -- the box ---------------------------------------------------------------------------------


@router.get("/site-config", response_model=SiteZones, responses={204: {}, 401: {}})
def pull_site_config(
    device: CurrentDevice,
    db: DbSession,
    since_version: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> Any:
    """The zones the server manages for the device's site; 204 when the box has them."""
    zones = cameras.site_zones(db, device.site_id)
    if since_version and since_version == zones.version:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return zones


@router.put(
    "/cameras/{camera_id}/picture",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {}, 413: {}, 415: {}, 422: {}},
)
def put_picture(
    camera_id: Identifier,
    file: Annotated[UploadFile, File(description="JPEG of the camera's current view")],
    device: CurrentDevice,
    db: DbSession,
    store: StoreDep,
    settings: SettingsDep,
    persons: Annotated[str | None, Form(max_length=20_000)] = None,
) -> Response:
    """The camera's current picture (every few minutes, and when the server asks), with
    the people the box sees on it (JSON [[x1, y1, x2, y2], ...] normalised)."""
    boxes = cameras.parse_persons(persons)
    received = receive_media(
        file.file,
        store=store,
        settings=settings,
        kind=MediaKind.SNAPSHOT,
        what=f"picture of camera {camera_id}",
    )
    cameras.store_picture(
        db,
        store=store,
        device=device,
        camera_id=camera_id,
        received=received,
        persons=boxes,
        now=utcnow(),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- people ----------------------------------------------------------------------------------


@router.get("/sites/{site_id}/cameras", response_model=list[CameraOut], responses=ERRORS)
def list_cameras(
    site_id: Identifier, user: CurrentUser, db: DbSession, settings: SettingsDep
) -> list[CameraOut]:
    rows = cameras.list_cameras(db, user=user, site_id=site_id)
    zones = cameras.site_zones(db, site_id)
    after = timedelta(seconds=settings.camera_offline_after_s)
    return [camera_out(c, zones, after) for c in rows]


@router.get(
    "/sites/{site_id}/cameras/{camera_id}",
    response_model=CameraOut,
    responses=ERRORS,
)
def get_camera(
    site_id: Identifier,
    camera_id: Identifier,
    user: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
) -> CameraOut:
    camera = cameras.get_camera(db, user=user, site_id=site_id, camera_id=camera_id)
    after = timedelta(seconds=settings.camera_offline_after_s)
    return camera_out(camera, cameras.site_zones(db, site_id), after)


@router.get(
    "/sites/{site_id}/cameras/{camera_id}/picture",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
)
def get_picture(
    site_id: Identifier, camera_id: Identifier, user: CurrentUser, db: DbSession, store: StoreDep
) -> Response:
    camera = cameras.get_camera(db, user=user, site_id=site_id, camera_id=camera_id)
    if not camera.picture_key:
        raise NotFound(f"camera {camera_id!r} has sent no picture yet")
    headers = {"Cache-Control": "private, no-cache"}
    local = store.local_path(camera.picture_key)
    if local is not None:
        return FileResponse(local, media_type="image/jpeg", headers=headers)
    return StreamingResponse(
        store.open(camera.picture_key), media_type="image/jpeg", headers=headers
    )


@router.post(
    "/sites/{site_id}/cameras/{camera_id}/picture-request",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ERRORS,
)
def want_picture(
    site_id: Identifier, camera_id: Identifier, user: CurrentUser, db: DbSession
) -> dict[str, str]:
    """Ask the box for a fresh picture (it comes after the box's next heartbeat)."""
    cameras.request_picture(db, user=user, site_id=site_id, camera_id=camera_id)
    return {"status": "requested"}


@router.get("/sites/{site_id}/zones", response_model=SiteZones, responses=ERRORS)
def get_zones(site_id: Identifier, user: CurrentUser, db: DbSession) -> SiteZones:
    return cameras.zones_for(db, user=user, site_id=site_id)


@router.get("/sites/{site_id}/zones/history", response_model=list[VersionOut], responses=ERRORS)
def zones_history(site_id: Identifier, user: CurrentUser, db: DbSession) -> list[VersionOut]:
    return [VersionOut(**v.__dict__) for v in cameras.zone_history(db, user=user, site_id=site_id)]


@router.post(
    "/sites/{site_id}/cameras/{camera_id}/zones", response_model=SiteZones, responses=ERRORS
)
def save_zones(
    site_id: Identifier,
    camera_id: Identifier,
    body: ZonesIn,
    user: CurrentUser,
    db: DbSession,
) -> SiteZones:
    """Save a camera's zones as a new site version (422 with each problem and where)."""
    zones = cameras.check_zones(body.zones)
    return cameras.save_zones(
        db,
        user=user,
        site_id=site_id,
        camera_id=camera_id,
        zones=zones,
        base_version=body.base_version,
    )


@router.delete(
    "/sites/{site_id}/cameras/{camera_id}/zones", response_model=SiteZones, responses=ERRORS
)
def reset_zones(
    site_id: Identifier,
    camera_id: Identifier,
    user: CurrentUser,
    db: DbSession,
    base_version: Annotated[int | None, Query(ge=0)] = None,
) -> SiteZones:
    """The camera goes back to the zones of its box's YAML (a new version)."""
    return cameras.save_zones(
        db, user=user, site_id=site_id, camera_id=camera_id, zones=None, base_version=base_version
    )


@router.post(
    "/sites/{site_id}/cameras/{camera_id}/zones/preview",
    response_model=list[PreviewPersonOut],
    responses=ERRORS,
)
def preview_zones(
    site_id: Identifier,
    camera_id: Identifier,
    user: CurrentUser,
    db: DbSession,
    zones: Annotated[dict[str, Any], Body()],
) -> list[PreviewPersonOut]:
    """Which people on the camera's latest picture these (unsaved) zones would catch."""
    camera = cameras.get_camera(db, user=user, site_id=site_id, camera_id=camera_id)
    checked = cameras.check_zones(zones)
    people = cameras.preview(checked, camera.picture_persons or [])
    return [PreviewPersonOut(**p.__dict__) for p in people]
