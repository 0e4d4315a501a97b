"""Admin endpoints: sites, users, devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from sitewatch.server.api.deps import AdminUser, DbSession
from sitewatch.server.api.schemas import (
    DeviceIn,
    DeviceOut,
    NewDeviceOut,
    SiteIn,
    SiteOut,
    SitePatch,
    UserIn,
    UserOut,
    UserPatch,
)
from sitewatch.server.db.models import User
from sitewatch.server.services import admin

#: Database ids are 32-bit on PostgreSQL; larger ones are refused before any query.
DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]
router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
ERRORS: dict[int | str, dict[str, object]] = {403: {}, 404: {}, 409: {}}


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        is_active=user.is_active,
        sites=sorted(user.site_ids),
    )


@router.get("/sites", response_model=list[SiteOut])
def list_sites(_admin: AdminUser, db: DbSession) -> list[SiteOut]:
    return [SiteOut.model_validate(s) for s in admin.list_sites(db)]


@router.post(
    "/sites", response_model=SiteOut, status_code=status.HTTP_201_CREATED, responses=ERRORS
)
def create_site(body: SiteIn, user: AdminUser, db: DbSession) -> SiteOut:
    site = admin.create_site(
        db, actor=user, site_id=body.id, name=body.name, timezone=body.timezone
    )
    return SiteOut.model_validate(site)


@router.patch("/sites/{site_id}", response_model=SiteOut, responses=ERRORS)
def update_site(site_id: str, body: SitePatch, user: AdminUser, db: DbSession) -> SiteOut:
    """Rename a site or set its time zone (``timezone: null``: the server's)."""
    given = body.model_dump(exclude_unset=True)
    site = admin.update_site(db, actor=user, site_id=site_id, changes=given)
    return SiteOut.model_validate(site)


@router.get("/users", response_model=list[UserOut])
def list_users(_admin: AdminUser, db: DbSession) -> list[UserOut]:
    return [user_out(u) for u in admin.list_users(db)]


@router.post(
    "/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, responses=ERRORS
)
def create_user(body: UserIn, user: AdminUser, db: DbSession) -> UserOut:
    created = admin.create_user(
        db,
        actor=user,
        username=body.username,
        password=body.password,
        role=body.role,
        site_ids=body.sites,
        display_name=body.display_name,
    )
    return user_out(created)


@router.patch("/users/{user_id}", response_model=UserOut, responses=ERRORS)
def update_user(user_id: DbId, body: UserPatch, user: AdminUser, db: DbSession) -> UserOut:
    updated = admin.update_user(
        db,
        actor=user,
        user_id=user_id,
        role=body.role,
        site_ids=body.sites,
        is_active=body.is_active,
        password=body.password,
    )
    return user_out(updated)


@router.post("/users/{user_id}/unlock", responses=ERRORS)
def unlock_user(user_id: DbId, user: AdminUser, db: DbSession) -> dict[str, int]:
    """End a user's login pause now (their failed logins are forgotten)."""
    target = admin.get_user(db, user_id=user_id)
    return {"failures_cleared": admin.unlock_user(db, actor=user, username=target.username)}


@router.get("/devices", response_model=list[DeviceOut])
def list_devices(_admin: AdminUser, db: DbSession, site_id: str | None = None) -> list[DeviceOut]:
    return [DeviceOut.model_validate(d) for d in admin.list_devices(db, site_id=site_id)]


@router.post(
    "/devices", response_model=NewDeviceOut, status_code=status.HTTP_201_CREATED, responses=ERRORS
)
def create_device(body: DeviceIn, user: AdminUser, db: DbSession) -> NewDeviceOut:
    """Register an edge device; the token in the answer is shown this once only."""
    new = admin.create_device(db, actor=user, site_id=body.site_id, name=body.name)
    return NewDeviceOut(device=DeviceOut.model_validate(new.device), token=new.token)


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut, responses=ERRORS)
def revoke_device(device_id: DbId, user: AdminUser, db: DbSession) -> DeviceOut:
    device = admin.set_device_active(db, actor=user, device_id=device_id, active=False)
    return DeviceOut.model_validate(device)
