"""Dashboard aggregates for logged-in users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from server.api.deps import CurrentUser, DbSession
from server.services.dashboard import Dashboard, dashboard

router = APIRouter(prefix="/api/v1", tags=["dashboard"])


@router.get("/dashboard", response_model=Dashboard)
def get_dashboard(
    user: CurrentUser,
    db: DbSession,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> Dashboard:
    """Per site and UTC day: events by rule, verdicts, rectifications, red helmets."""
    return dashboard(db, user=user, site_id=site_id, date_from=date_from, date_to=date_to)
