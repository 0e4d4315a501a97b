"""Dashboard aggregates for logged-in users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from sitewatch.server.api.deps import CurrentUser, DbSession, SettingsDep
from sitewatch.server.localtime import zone
from sitewatch.server.services.dashboard import Dashboard, dashboard
from sitewatch.server.services.errors import Invalid

router = APIRouter(prefix="/api/v1", tags=["dashboard"])


@router.get("/dashboard", response_model=Dashboard)
def get_dashboard(
    user: CurrentUser,
    db: DbSession,
    settings: SettingsDep,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    tz: Annotated[
        str | None,
        Query(
            max_length=64,
            description="IANA time zone whose local days the rows count "
            "(default: the server's `timezone` setting).",
        ),
    ] = None,
) -> Dashboard:
    """Per site and local day (of ``tz``): events by rule, verdicts, rectifications,
    red helmets."""
    try:
        day_zone = settings.zone if tz is None else zone(tz, "tz")
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return dashboard(
        db, user=user, tz=day_zone, site_id=site_id, date_from=date_from, date_to=date_to
    )
