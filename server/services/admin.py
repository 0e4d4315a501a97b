"""Sites, users and devices (admin work), device authentication and heartbeats."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sitewatch.contract.ids import check_identifier
from sitewatch.server.db.models import Device, LoginFailure, Role, Site, User, UserSession
from sitewatch.server.db.types import utcnow
from sitewatch.server.security import hash_password, hash_token, new_device_token
from sitewatch.server.services import audit
from sitewatch.server.services.access import require_admin
from sitewatch.server.services.errors import Conflict, Invalid, NotFound


def _admin_or_cli(actor: User | None) -> None:
    """Admin changes come from an admin user, or from the CLI (``actor=None``)."""
    if actor is not None:
        require_admin(actor)


def create_site(
    db: Session,
    *,
    actor: User | None,
    site_id: str,
    name: str | None = None,
    timezone: str | None = None,
) -> Site:
    _admin_or_cli(actor)
    _check_id(site_id, "site id")
    if db.get(Site, site_id) is not None:
        raise Conflict(f"site {site_id!r} exists already")
    site = Site(id=site_id, name=name or site_id, timezone=timezone, created_at=utcnow())
    db.add(site)
    audit.record(
        db,
        actor=actor,
        action="site.create",
        object_type="site",
        object_id=site_id,
        site_id=site_id,
        details={"name": site.name, "timezone": timezone},
    )
    db.commit()
    return site


def update_site(db: Session, *, actor: User | None, site_id: str, changes: dict[str, Any]) -> Site:
    """Apply ``changes`` (name, timezone; already validated) to a site."""
    _admin_or_cli(actor)
    site = db.get(Site, site_id)
    if site is None:
        raise NotFound(f"site {site_id!r} not found")
    if changes.get("name") is not None:
        site.name = changes["name"]
    if "timezone" in changes:
        site.timezone = changes["timezone"]
    audit.record(
        db,
        actor=actor,
        action="site.update",
        object_type="site",
        object_id=site_id,
        site_id=site_id,
        details={k: v for k, v in changes.items() if k in ("name", "timezone")},
    )
    db.commit()
    return site


def _check_id(value: str, what: str) -> None:
    try:
        check_identifier(value, what)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


def ensure_site(db: Session, *, actor: User | None, site_id: str) -> Site:
    """The site, created on first use (the CLI registers devices for new sites)."""
    return db.get(Site, site_id) or create_site(db, actor=actor, site_id=site_id)


def list_sites(db: Session) -> list[Site]:
    return list(db.scalars(select(Site).order_by(Site.id)))


def _sites(db: Session, site_ids: Iterable[str]) -> list[Site]:
    wanted = sorted(set(site_ids))
    sites = list(db.scalars(select(Site).where(Site.id.in_(wanted)))) if wanted else []
    missing = set(wanted) - {s.id for s in sites}
    if missing:
        raise NotFound(f"unknown site(s): {', '.join(sorted(missing))}")
    return sites


def create_user(
    db: Session,
    *,
    actor: User | None,
    username: str,
    password: str,
    role: Role,
    site_ids: Iterable[str] = (),
    display_name: str | None = None,
) -> User:
    _admin_or_cli(actor)
    if not username.strip() or len(password) < 8:
        raise Invalid("username must not be empty and the password needs 8 characters or more")
    if db.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists already")
    user = User(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password),
        is_active=True,
        created_at=utcnow(),
    )
    user.sites = _sites(db, site_ids)
    db.add(user)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=username,
        details={"role": role.value, "sites": sorted(user.site_ids)},
    )
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise Conflict(f"user {username!r} exists already") from exc
    return user


def get_user(db: Session, *, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def update_user(
    db: Session,
    *,
    actor: User | None,
    user_id: int,
    role: Role | None = None,
    site_ids: Iterable[str] | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a user's role, sites, active flag or password (None leaves it as is)."""
    _admin_or_cli(actor)
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    changes: dict[str, Any] = {}
    if role is not None:
        user.role = changes.setdefault("role", role)
    if site_ids is not None:
        user.sites = _sites(db, site_ids)
        changes["sites"] = sorted(user.site_ids)
    if is_active is not None:
        user.is_active = changes.setdefault("is_active", is_active)
    if password is not None:
        if len(password) < 8:
            raise Invalid("the password needs 8 characters or more")
        user.password_hash = hash_password(password)
        changes["password"] = "changed"
    if isinstance(changes.get("role"), Role):
        changes["role"] = changes["role"].value
    if changes.keys() & {"role", "is_active", "password"}:
        # A reset password, a new role or a disabled account must not leave an old cookie
        # working: every session of the user ends (they log in again).
        ended = db.execute(delete(UserSession).where(UserSession.user_id == user.id))
        changes["sessions_ended"] = getattr(ended, "rowcount", 0)
    audit.record(
        db,
        actor=actor,
        action="user.update",
        object_type="user",
        object_id=user.username,
        details=changes,
    )
    db.commit()
    return user


def list_users(db: Session) -> list[User]:
    return list(db.scalars(select(User).order_by(User.username)))


@dataclass(frozen=True)
class NewDevice:
    device: Device
    #: The plain token: show it once, it is not stored.
    token: str


def create_device(db: Session, *, actor: User | None, site_id: str, name: str) -> NewDevice:
    """Register an edge box for a site; the returned token is never shown again."""
    _admin_or_cli(actor)
    _check_id(name, "device name")
    if db.get(Site, site_id) is None:
        raise NotFound(f"site {site_id!r} not found")
    token = new_device_token()
    device = Device(
        site_id=site_id,
        name=name,
        token_hash=hash_token(token),
        is_active=True,
        created_at=utcnow(),
    )
    db.add(device)
    try:
        db.flush()
    except IntegrityError as exc:
        db.rollback()
        raise Conflict(f"site {site_id!r} has a device named {name!r} already") from exc
    audit.record(
        db,
        actor=actor,
        action="device.create",
        object_type="device",
        object_id=str(device.id),
        site_id=site_id,
        details={"name": name},
    )
    db.commit()
    return NewDevice(device=device, token=token)


def set_device_active(db: Session, *, actor: User | None, device_id: int, active: bool) -> Device:
    _admin_or_cli(actor)
    device = db.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found")
    device.is_active = active
    audit.record(
        db,
        actor=actor,
        action="device.enable" if active else "device.revoke",
        object_type="device",
        object_id=str(device.id),
        site_id=device.site_id,
    )
    db.commit()
    return device


def list_devices(db: Session, *, site_id: str | None = None) -> list[Device]:
    query = select(Device).order_by(Device.site_id, Device.name)
    if site_id is not None:
        query = query.where(Device.site_id == site_id)
    return list(db.scalars(query))


def authenticate_device(db: Session, *, token: str) -> Device | None:
    """The active device holding ``token``, or None."""
    if not token:
        return None
    device = db.scalar(select(Device).where(Device.token_hash == hash_token(token)))
    return device if device is not None and device.is_active else None


def record_heartbeat(db: Session, *, device: Device, heartbeat: dict[str, Any]) -> Device:
    device.last_heartbeat = heartbeat
    device.last_seen_at = utcnow()
    db.commit()
    return device


def unlock_user(db: Session, *, actor: User | None, username: str) -> int:
    """Forget ``username``'s failed logins, so the login pause ends now; how many."""
    _admin_or_cli(actor)
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} not found")
    cleared = db.execute(
        delete(LoginFailure).where(LoginFailure.key == f"user:{username.lower()}")
    ).rowcount  # type: ignore[attr-defined]
    audit.record(
        db,
        actor=actor,
        action="user.unlock",
        object_type="user",
        object_id=str(user.id),
        details={"username": username, "failures_cleared": cleared},
    )
    db.commit()
    return int(cleared)
