"""The cameras page and the zone editor (issue 17).

``/ui/cameras`` lists the cameras of the sites the user may see (from the camera table
the boxes' heartbeats fill); ``/ui/cameras/{site}/{camera}/zones`` is the zone editor on
the camera's latest picture. The editor runs in the browser (``static/zone_editor.js``)
and talks to the JSON API of :mod:`server.api.cameras` with the session cookie and the
CSRF header, so it gets the same validation (the box's pydantic + shapely model), access
rules and audit as any other client; this module only renders the pages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from sitewatch.contract.ids import Identifier
from sitewatch.contract.site_config import SiteZones
from sitewatch.server.api.deps import SettingsDep
from sitewatch.server.db.models import Camera, EventRecord, Role, Site, User
from sitewatch.server.db.types import utcnow
from sitewatch.server.services import cameras as service
from sitewatch.server.services.errors import ServiceError
from sitewatch.server.ui import queries
from sitewatch.server.ui.deps import DbDep, ViewerDep, service_error_page
from sitewatch.server.ui.i18n import CATALOGUES, DEFAULT_LANG, request_lang
from sitewatch.server.ui.rendering import render

router = APIRouter()

#: Roles a post may be staffed by (the helmet roles of ``attributes.role_by_colour``).
POST_ROLES = ("party_member", "safety_officer", "manager", "worker", "visitor")
#: Catalogue keys the editor's script uses (passed to it in the page's language).
SCRIPT_PREFIX = "zed."


@dataclass(frozen=True)
class LastEvent:
    id: uuid.UUID
    started_at: datetime
    rule: str


@dataclass(frozen=True)
class CameraCard:
    site_id: str
    site_name: str
    camera_id: str
    name: str
    #: "online" or "offline" (no frame / no report for longer than the setting).
    state: str
    #: Online: the last frame; offline: dark since the last frame (or report).
    since: datetime | None
    fps: float | None
    width: int | None
    height: int | None
    picture_url: str | None
    picture_at: datetime | None
    #: The zones version the camera runs with (None: its box's YAML zones).
    zones_version: int | None
    #: The server manages zones for this camera.
    managed: bool
    #: The site's current zones version on the server (0: none).
    site_version: int
    last_event: LastEvent | None
    can_edit: bool

    @property
    def editor_url(self) -> str:
        return f"/ui/cameras/{self.site_id}/{self.camera_id}/zones"

    @property
    def size(self) -> str | None:
        return f"{self.width}×{self.height}" if self.width and self.height else None


@dataclass(frozen=True)
class SiteCameras:
    site_id: str
    name: str
    cameras: list[CameraCard]


def may_edit(user: User) -> bool:
    """Admins and reviewers change zones (the API also checks the site)."""
    return user.role in (Role.ADMIN, Role.REVIEWER)


def _last_event(db: Session, site_id: str, camera_id: str) -> LastEvent | None:
    row = db.execute(
        select(EventRecord.event_id, EventRecord.started_at, EventRecord.rule)
        .where(EventRecord.site_id == site_id, EventRecord.camera_id == camera_id)
        .order_by(EventRecord.started_at.desc())
        .limit(1)
    ).first()
    return LastEvent(*row) if row is not None else None


def camera_card(
    db: Session, camera: Camera, site: Site, zones: SiteZones, after: timedelta, user: User
) -> CameraCard:
    dark = service.camera_is_dark(camera, utcnow(), after)
    picture = None
    if camera.picture_key:
        stamp = int(camera.picture_at.timestamp()) if camera.picture_at else 0
        picture = f"/api/v1/sites/{site.id}/cameras/{camera.camera_id}/picture?t={stamp}"
    return CameraCard(
        site_id=site.id,
        site_name=site.name,
        camera_id=camera.camera_id,
        name=camera.name or camera.camera_id,
        state="offline" if dark else "online",
        since=(camera.last_frame_at or camera.last_seen_at),
        fps=camera.fps,
        width=camera.width,
        height=camera.height,
        picture_url=picture,
        picture_at=camera.picture_at,
        zones_version=camera.zones_version,
        managed=camera.camera_id in zones.cameras,
        site_version=zones.version,
        last_event=_last_event(db, site.id, camera.camera_id),
        can_edit=may_edit(user),
    )


def site_cameras(db: Session, user: User, after: timedelta) -> list[SiteCameras]:
    """The cameras of every site ``user`` may see, by site display name."""
    out = []
    for site in queries.visible_sites(db, user):
        rows = service.list_cameras(db, user=user, site_id=site.id)
        zones = service.site_zones(db, site.id)
        cards = [camera_card(db, c, site, zones, after, user) for c in rows]
        out.append(SiteCameras(site.id, site.name, cards))
    return out


def script_texts(lang: str) -> dict[str, str]:
    """The editor script's texts in ``lang`` (keys without the ``zed.`` prefix)."""
    catalogue = CATALOGUES.get(lang, CATALOGUES[DEFAULT_LANG])
    return {
        key.removeprefix(SCRIPT_PREFIX): text
        for key, text in catalogue.items()
        if key.startswith(SCRIPT_PREFIX)
    } | {f"role.{r}": catalogue.get(f"role.{r}", r) for r in POST_ROLES}


def editor_data(
    db: Session, camera: Camera, card: CameraCard, *, can_edit: bool, csrf: str, lang: str
) -> dict[str, Any]:
    """What the editor script starts from (embedded in the page as JSON)."""
    zones = service.site_zones(db, camera.site_id)
    managed = zones.cameras.get(camera.camera_id)
    if managed is not None:
        start: dict[str, Any] = managed.model_dump(mode="json", exclude_none=True)
        source = "server"
    elif camera.yaml_zones:
        start, source = dict(camera.yaml_zones), "yaml"
    else:
        start, source = {}, "none"
    return {
        "api": f"/api/v1/sites/{camera.site_id}/cameras/{camera.camera_id}",
        "csrf": csrf,
        "canEdit": can_edit,
        "baseVersion": zones.version,
        "source": source,
        "zones": start,
        "picture": card.picture_url,
        "persons": camera.picture_persons or [],
        "width": camera.width,
        "height": camera.height,
        "roles": list(POST_ROLES),
        "text": script_texts(lang),
    }


@router.get("/cameras")
def cameras_page(request: Request, viewer: ViewerDep, db: DbDep, settings: SettingsDep) -> Response:
    after = timedelta(seconds=settings.camera_offline_after_s)
    try:
        sites = site_cameras(db, viewer.user, after)
    except ServiceError as exc:
        return service_error_page(request, viewer, exc)
    return render(
        request,
        "cameras.html",
        {"sites": sites},
        user=viewer.user,
        csrf_token=viewer.csrf_token,
    )


@router.get("/cameras/{site_id}/{camera_id}/zones")
def zone_editor_page(
    request: Request,
    site_id: Identifier,
    camera_id: Identifier,
    viewer: ViewerDep,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    try:
        camera = service.get_camera(db, user=viewer.user, site_id=site_id, camera_id=camera_id)
    except ServiceError as exc:
        return service_error_page(request, viewer, exc)
    site = db.get(Site, site_id)
    assert site is not None  # the camera's foreign key
    after = timedelta(seconds=settings.camera_offline_after_s)
    card = camera_card(db, camera, site, service.site_zones(db, site_id), after, viewer.user)
    can_edit = may_edit(viewer.user)
    data = editor_data(
        db,
        camera,
        card,
        can_edit=can_edit,
        csrf=viewer.csrf_token,
        lang=request_lang(request),
    )
    return render(
        request,
        "zone_editor.html",
        {"camera": card, "data": data, "can_edit": can_edit, "roles": POST_ROLES},
        user=viewer.user,
        csrf_token=viewer.csrf_token,
    )
