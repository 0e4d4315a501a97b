""" "我的整改" (issue 18): the hazards assigned to the logged-in user, whatever their role,
earliest deadline first, the overdue ones marked; a list of cards that fits a phone."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from sitewatch.server.db.models import Hazard
from sitewatch.server.db.types import utcnow
from sitewatch.server.services import hazards
from sitewatch.server.ui import queries
from sitewatch.server.ui.deps import DbDep, ViewerDep
from sitewatch.server.ui.rendering import render

router = APIRouter()


@dataclass(frozen=True)
class HazardCard:
    """One hazard of "my hazards": what to fix, where, by when, and its state."""

    event_id: uuid.UUID
    rule: str
    severity: str
    site_id: str
    site_name: str
    camera_id: str
    started_at: datetime
    deadline: datetime
    status: str
    overdue: bool
    note: str | None

    @property
    def url(self) -> str:
        return f"/ui/events/{self.event_id}"

    @property
    def open(self) -> bool:
        """The site still has to act (assigned, or its evidence rejected)."""
        return self.status in {s.value for s in hazards.OPEN_STATES}


def hazard_cards(
    rows: Iterable[Hazard], site_names: dict[str, str], now: datetime
) -> list[HazardCard]:
    """Cards in the order given (the service's: earliest deadline first)."""
    return [
        HazardCard(
            event_id=h.event_id,
            rule=h.event.rule,
            severity=h.event.severity,
            site_id=h.site_id,
            site_name=site_names.get(h.site_id, h.site_id),
            camera_id=h.event.camera_id,
            started_at=h.event.started_at,
            deadline=h.deadline,
            status=h.status.value,
            overdue=h.is_overdue(now),
            note=h.note,
        )
        for h in rows
    ]


@router.get("/my-hazards", include_in_schema=False)
def my_hazards(request: Request, db: DbDep, viewer: ViewerDep) -> Response:
    now = utcnow()
    rows = hazards.list_hazards(db, user=viewer.user, mine=True, now=now)
    names = {s.id: s.name for s in queries.visible_sites(db, viewer.user)}
    cards = hazard_cards(rows, names, now)
    context = {"cards": cards, "overdue_total": sum(1 for c in cards if c.overdue)}
    return render(
        request, "my_hazards.html", context, user=viewer.user, csrf_token=viewer.csrf_token
    )
