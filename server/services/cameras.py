"""Cameras as their boxes report them, their latest pictures, and the zones the server
manages for them (issue 17).

Zones are kept as whole versions per site (:class:`SiteZoneVersion`): a save copies the
current version with one camera's zones replaced, so a box can take any version as it is
and the history says who changed what, when (with an audit entry for each change).
Zones are validated by the box's own pydantic + shapely model
(:class:`sitewatch.zones.config.CameraZones`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sitewatch.contract.heartbeat import Heartbeat, HeartbeatReply
from sitewatch.contract.ids import check_identifier
from sitewatch.contract.site_config import SiteZones
from sitewatch.server.db.models import Camera, Device, EventRecord, Site, SiteZoneVersion, User
from sitewatch.server.db.types import utcnow
from sitewatch.server.media import MediaStore, ReceivedFile
from sitewatch.server.services import audit
from sitewatch.server.services.access import require_reviewer, require_site
from sitewatch.server.services.errors import Conflict, Invalid, NotFound
from sitewatch.zones.config import CameraZones
from sitewatch.zones.geometry import CameraGeometry, feet_anchors_norm

#: People on a camera picture, at most (the zone editor's preview).
MAX_PICTURE_PERSONS = 200


# -- from the box ------------------------------------------------------------------------


def record_cameras(
    db: Session, *, device: Device, heartbeat: Heartbeat, now: datetime
) -> HeartbeatReply:
    """Keep the cameras a heartbeat reports (and the site's display name while an admin
    has not given it one); the reply says the current zones version and which cameras'
    pictures are wanted. The caller commits."""
    site = db.get(Site, device.site_id)
    if site is not None and heartbeat.site_name and site.name == site.id:
        site.name = heartbeat.site_name
    wanted = []
    for status in heartbeat.cameras:
        try:
            check_identifier(status.camera_id, "camera id")
        except ValueError:
            continue  # the box's own config refuses such ids; never a row for one
        camera = db.get(Camera, (device.site_id, status.camera_id))
        if camera is None:
            camera = Camera(site_id=device.site_id, camera_id=status.camera_id, name="")
            db.add(camera)
        camera.device_id = device.id
        camera.name = status.name or camera.name
        camera.online = status.online
        camera.fps = status.fps
        camera.width, camera.height = status.width, status.height
        camera.last_frame_at = status.last_frame_at or camera.last_frame_at
        camera.last_seen_at = now
        camera.zones_version = status.zones_version
        if status.yaml_zones is not None:
            try:  # kept only if the box's zones are zones (they are drawn on events)
                camera.yaml_zones = CameraZones.model_validate(status.yaml_zones).model_dump(
                    mode="json", exclude_none=True
                )
            except ValidationError:
                camera.yaml_zones = None
        if camera.picture_wanted_at is not None:
            wanted.append(camera.camera_id)
    return HeartbeatReply(
        site_config_version=current_version(db, device.site_id), pictures_wanted=wanted
    )


def parse_persons(raw: str | None) -> list[list[float]]:
    """The people on a picture as the box sends them: JSON [[x1, y1, x2, y2], ...] in
    normalised image coordinates; Invalid naming what is wrong."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise Invalid(f"persons: not JSON ({exc})") from exc
    if not isinstance(value, list) or len(value) > MAX_PICTURE_PERSONS:
        raise Invalid(f"persons: a list of at most {MAX_PICTURE_PERSONS} boxes")
    boxes = []
    for index, box in enumerate(value):
        ok = (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in box)
        )
        if not ok or box[2] < box[0] or box[3] < box[1]:
            raise Invalid(f"persons[{index}]: [x1, y1, x2, y2] within 0..1, x2 >= x1, y2 >= y1")
        boxes.append([float(v) for v in box])
    return boxes


def store_picture(
    db: Session,
    *,
    store: MediaStore,
    device: Device,
    camera_id: str,
    received: ReceivedFile,
    persons: list[list[float]],
    now: datetime,
) -> Camera:
    """Make ``received`` the camera's latest picture (the old file goes)."""
    if received.problem is not None:
        received.path.unlink(missing_ok=True)
        raise Invalid(f"picture of camera {camera_id!r}: {received.problem.reason}")
    camera = db.get(Camera, (device.site_id, camera_id))
    if camera is None:
        received.path.unlink(missing_ok=True)
        raise NotFound(f"camera {camera_id!r} of site {device.site_id!r} not reported yet")
    key = f"cameras/{device.site_id}/{camera_id}-{received.sha256[:16]}.{received.kind.extension}"
    old = camera.picture_key
    store.put(key, received)
    camera.picture_key, camera.picture_at = key, now
    camera.picture_persons = persons
    camera.picture_wanted_at = None
    db.commit()
    if old and old != key:
        store.delete(old)
    return camera


# -- for people ----------------------------------------------------------------------------


def list_cameras(db: Session, *, user: User, site_id: str) -> list[Camera]:
    require_site(user, site_id, f"site {site_id!r}")
    if db.get(Site, site_id) is None:
        raise NotFound(f"site {site_id!r} not found")
    query = select(Camera).where(Camera.site_id == site_id).order_by(Camera.camera_id)
    return list(db.scalars(query))


def get_camera(db: Session, *, user: User, site_id: str, camera_id: str) -> Camera:
    require_site(user, site_id, f"camera {camera_id!r}")
    camera = db.get(Camera, (site_id, camera_id))
    if camera is None:
        raise NotFound(f"camera {camera_id!r} of site {site_id!r} not found")
    return camera


def request_picture(db: Session, *, user: User, site_id: str, camera_id: str) -> Camera:
    camera = get_camera(db, user=user, site_id=site_id, camera_id=camera_id)
    camera.picture_wanted_at = utcnow()
    db.commit()
    return camera


def camera_is_dark(camera: Camera, now: datetime, after: timedelta) -> bool:
    """No frame (or no report from its box) for longer than ``after``."""
    seen = [t for t in (camera.last_frame_at, camera.last_seen_at) if t is not None]
    if not camera.online or not seen:
        return True
    return now - min(seen) > after


# -- zones -----------------------------------------------------------------------------------


def _latest(db: Session, site_id: str) -> SiteZoneVersion | None:
    return db.scalar(
        select(SiteZoneVersion)
        .where(SiteZoneVersion.site_id == site_id)
        .order_by(SiteZoneVersion.version.desc())
        .limit(1)
    )


def current_version(db: Session, site_id: str) -> int:
    return (
        db.scalar(
            select(func.coalesce(func.max(SiteZoneVersion.version), 0)).where(
                SiteZoneVersion.site_id == site_id
            )
        )
        or 0
    )


def site_zones(db: Session, site_id: str) -> SiteZones:
    latest = _latest(db, site_id)
    if latest is None:
        return SiteZones(version=0)
    cameras = {cid: CameraZones.model_validate(z) for cid, z in latest.cameras.items()}
    return SiteZones(version=latest.version, updated_at=latest.created_at, cameras=cameras)


def zones_for(db: Session, *, user: User, site_id: str) -> SiteZones:
    require_site(user, site_id, f"site {site_id!r}")
    if db.get(Site, site_id) is None:
        raise NotFound(f"site {site_id!r} not found")
    return site_zones(db, site_id)


def check_zones(raw: Any) -> CameraZones:
    """``raw`` as zones, or Invalid with every problem and where it is."""
    try:
        return CameraZones.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise Invalid("; ".join(problems)) from None


def save_zones(
    db: Session,
    *,
    user: User,
    site_id: str,
    camera_id: str,
    zones: CameraZones | None,
    base_version: int | None = None,
) -> SiteZones:
    """A new version with ``camera_id``'s zones replaced (``None``: the camera goes back
    to its YAML zones). ``base_version``: the version the editor started from; Conflict
    when someone saved since (so no one overwrites another's change unseen)."""
    require_site(user, site_id, f"site {site_id!r}")
    require_reviewer(user)
    if db.get(Site, site_id) is None:
        raise NotFound(f"site {site_id!r} not found")
    try:
        check_identifier(camera_id, "camera id")
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    latest = _latest(db, site_id)
    version = latest.version if latest is not None else 0
    if base_version is not None and base_version != version:
        raise Conflict(
            f"zones of site {site_id!r} changed since version {base_version} "
            f"(now {version}): reload and edit again"
        )
    cameras = dict(latest.cameras) if latest is not None else {}
    if zones is None:
        if camera_id not in cameras:
            return site_zones(db, site_id)  # nothing to remove: no new version
        del cameras[camera_id]
    else:
        cameras[camera_id] = zones.model_dump(mode="json", exclude_none=True)
    row = SiteZoneVersion(
        site_id=site_id,
        version=version + 1,
        cameras=cameras,
        changed_camera=camera_id,
        actor=audit.actor_label(user),
        created_at=utcnow(),
    )
    db.add(row)
    audit.record(
        db,
        actor=user,
        action="zones.save" if zones is not None else "zones.reset",
        object_type="camera",
        object_id=f"{site_id}/{camera_id}",
        site_id=site_id,
        details={"version": version + 1, "zones": _summary(zones)},
    )
    try:
        db.commit()
    except IntegrityError as exc:  # another save took this version number meanwhile
        db.rollback()
        raise Conflict(
            f"zones of site {site_id!r} changed meanwhile: reload and edit again"
        ) from exc
    return site_zones(db, site_id)


def _summary(zones: CameraZones | None) -> dict[str, Any] | None:
    if zones is None:
        return None
    return {
        "restricted": [z.name for z in zones.restricted],
        "edges": [e.name for e in zones.edges],
        "posts": [p.name for p in zones.posts],
        "calibrated": zones.calibration is not None,
    }


@dataclass(frozen=True)
class VersionInfo:
    version: int
    changed_camera: str | None
    actor: str
    created_at: datetime


def zone_history(db: Session, *, user: User, site_id: str, limit: int = 50) -> list[VersionInfo]:
    require_site(user, site_id, f"site {site_id!r}")
    rows = db.execute(
        select(
            SiteZoneVersion.version,
            SiteZoneVersion.changed_camera,
            SiteZoneVersion.actor,
            SiteZoneVersion.created_at,
        )
        .where(SiteZoneVersion.site_id == site_id)
        .order_by(SiteZoneVersion.version.desc())
        .limit(limit)
    ).all()
    return [VersionInfo(*row) for row in rows]


@dataclass(frozen=True)
class PreviewPerson:
    box: list[float]
    #: Names of the restricted zones and posts the person's feet are in.
    inside: list[str]
    #: Edge name -> distance (metres when calibrated, else normalised), for edges closer
    #: than their danger distance.
    near_edges: dict[str, float]


def preview(zones: CameraZones, persons: list[list[float]]) -> list[PreviewPerson]:
    """Which of ``persons`` (normalised boxes) the zones would catch, as the box judges:
    by the feet (the bottom centre of the box)."""
    if not persons:
        return []
    geometry = CameraGeometry(zones)
    boxes = np.asarray(persons, dtype=np.float64)
    anchors = feet_anchors_norm(boxes, (1, 1))
    inside = {**geometry.inside_restricted(anchors), **geometry.inside_posts(anchors)}
    distances = geometry.edge_distances(anchors)
    limits = {e.name: e.danger_distance_m or e.danger_distance or 0.0 for e in zones.edges}
    out = []
    for index, box in enumerate(persons):
        near = {
            name: round(float(values[index]), 3)
            for name, values in distances.items()
            if float(values[index]) <= limits.get(name, 0.0)
        }
        names = [name for name, mask in inside.items() if bool(mask[index])]
        out.append(PreviewPerson(box=box, inside=names, near_edges=near))
    return out


def event_zones(db: Session, event: EventRecord) -> dict[str, Any] | None:
    """The zones (CameraZones JSON) ``event`` was judged with: its server zones version's,
    else its camera's YAML zones as the box last reported them (None: unknown)."""
    if event.zones_version:
        row = db.scalar(
            select(SiteZoneVersion).where(
                SiteZoneVersion.site_id == event.site_id,
                SiteZoneVersion.version == event.zones_version,
            )
        )
        if row is not None and event.camera_id in row.cameras:
            zones: dict[str, Any] = row.cameras[event.camera_id]
            return zones
    camera = db.get(Camera, (event.site_id, event.camera_id))
    return camera.yaml_zones if camera is not None else None


def camera_names(db: Session, site_ids: set[str] | None = None) -> dict[tuple[str, str], str]:
    """(site id, camera id) -> display name, for cameras whose box gave one."""
    query = select(Camera.site_id, Camera.camera_id, Camera.name).where(Camera.name != "")
    if site_ids is not None:
        query = query.where(Camera.site_id.in_(sorted(site_ids)))
    return {(site, camera): name for site, camera, name in db.execute(query)}
