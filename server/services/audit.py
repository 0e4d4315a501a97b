"""The audit log: who changed what, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sitewatch.server.db.models import AuditEntry, Device, User
from sitewatch.server.db.types import utcnow
from sitewatch.server.services.access import site_filter

Actor = User | Device | None


def actor_label(actor: Actor) -> str:
    if isinstance(actor, User):
        return f"user:{actor.username}"
    if isinstance(actor, Device):
        return f"device:{actor.site_id}/{actor.name}"
    return "system"


def record(
    db: Session,
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    site_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to the session (the caller commits with its own change)."""
    entry = AuditEntry(
        at=utcnow(),
        actor_user_id=actor.id if isinstance(actor, User) else None,
        actor_device_id=actor.id if isinstance(actor, Device) else None,
        actor=actor_label(actor),
        action=action,
        object_type=object_type,
        object_id=object_id,
        site_id=site_id,
        details=details,
    )
    db.add(entry)
    return entry


def list_entries(
    db: Session,
    *,
    user: User,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """Newest first, limited to the sites ``user`` may see (admins also see global ones)."""
    query = select(AuditEntry).where(site_filter(user, AuditEntry.site_id))
    if object_type is not None:
        query = query.where(AuditEntry.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    query = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(db.scalars(query))
