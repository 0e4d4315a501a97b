"""Who may see and change what: roles and site scoping in one place.

Admins see every site. Reviewers and viewers see only the sites linked to them; an
object of another site is answered as not found, so its existence is not revealed.
Viewers change nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import QueryableAttribute

from sitewatch.server.db.models import Role, User
from sitewatch.server.services.errors import Forbidden, NotFound


def visible_site_ids(user: User) -> set[str] | None:
    """The sites ``user`` may see; None means all of them (admin)."""
    if user.role == Role.ADMIN:
        return None
    return user.site_ids


def site_filter(
    user: User, column: QueryableAttribute[Any] | ColumnElement[Any]
) -> ColumnElement[bool]:
    """A WHERE clause limiting ``column`` (a site id column) to what ``user`` may see."""
    sites = visible_site_ids(user)
    if sites is None:
        return true()
    if not sites:
        return false()
    return column.in_(sorted(sites))


def can_see_site(user: User, site_id: str) -> bool:
    sites = visible_site_ids(user)
    return sites is None or site_id in sites


def require_site(user: User, site_id: str, what: str) -> None:
    """NotFound unless ``user`` may see ``site_id`` (``what`` names the object)."""
    if not can_see_site(user, site_id):
        raise NotFound(f"{what} not found")


def require_reviewer(user: User) -> None:
    """Forbidden unless ``user`` may change things (reviewer or admin)."""
    if user.role not in (Role.ADMIN, Role.REVIEWER):
        raise Forbidden(f"user {user.username!r} ({user.role.value}) may not change anything")


def require_admin(user: User) -> None:
    if user.role != Role.ADMIN:
        raise Forbidden(f"user {user.username!r} is not an admin")
