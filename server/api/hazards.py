"""The hazard loop for logged-in users: assign, evidence, accept/reject; audit log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel

from sitewatch.server.api.deps import CurrentUser, DbSession, SettingsDep, StoreDep
from sitewatch.server.api.schemas import AssignIn, AuditOut, DecisionIn, HazardOut
from sitewatch.server.db.models import Hazard, HazardStatus, MediaKind
from sitewatch.server.services import audit, hazards
from sitewatch.server.services.access import require_site
from sitewatch.server.services.media import receive_media

router = APIRouter(prefix="/api/v1", tags=["hazards"])
ERRORS: dict[int | str, dict[str, object]] = {403: {}, 404: {}, 409: {}}


def hazard_out(hazard: Hazard) -> HazardOut:
    out = HazardOut.model_validate(hazard)
    out.overdue = hazard.is_overdue(datetime.now(UTC))
    return out


@router.get("/hazards", response_model=list[HazardOut])
def list_hazards(
    user: CurrentUser,
    db: DbSession,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    status: HazardStatus | None = None,
    overdue: bool = False,
    mine: bool = False,
) -> list[HazardOut]:
    """Rectifications the user may see (``mine``: assigned to them), earliest deadline
    first."""
    rows = hazards.list_hazards(
        db, user=user, site_id=site_id, status=status, overdue_only=overdue, mine=mine
    )
    return [hazard_out(h) for h in rows]


@router.get("/events/{event_id}/hazard", response_model=HazardOut, responses=ERRORS)
def get_hazard(event_id: uuid.UUID, user: CurrentUser, db: DbSession) -> HazardOut:
    return hazard_out(hazards.get_hazard(db, user=user, event_id=event_id))


@router.post("/events/{event_id}/hazard", response_model=HazardOut, responses=ERRORS)
def assign(
    event_id: uuid.UUID, body: AssignIn, user: CurrentUser, db: DbSession, settings: SettingsDep
) -> HazardOut:
    """Assign a confirmed event to a responsible person with a deadline."""
    hazard = hazards.assign_hazard(
        db,
        user=user,
        event_id=event_id,
        responsible=body.responsible,
        responsible_user_id=body.responsible_user_id,
        deadline=body.deadline,
        note=body.note,
        alerts=settings.alert_policy,
    )
    return hazard_out(hazard)


@router.post(
    "/events/{event_id}/hazard/evidence",
    response_model=HazardOut,
    responses={**ERRORS, 413: {}, 415: {}},
)
def submit_evidence(
    event_id: uuid.UUID,
    file: Annotated[
        UploadFile,
        File(description="Photo of the fixed hazard: JPEG, PNG or HEIC (stored as JPEG)"),
    ],
    user: CurrentUser,
    db: DbSession,
    store: StoreDep,
    settings: SettingsDep,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> HazardOut:
    """The site's proof that the hazard is fixed: a photo and a note."""
    hazards.get_hazard(db, user=user, event_id=event_id)  # 404 before reading the upload
    photo = receive_media(
        file.file, store=store, settings=settings, kind=MediaKind.EVIDENCE, what="evidence photo"
    )
    hazard = hazards.submit_evidence(
        db,
        user=user,
        store=store,
        event_id=event_id,
        photo=photo,
        note=note,
        alerts=settings.alert_policy,
    )
    return hazard_out(hazard)


@router.post("/events/{event_id}/hazard/accept", response_model=HazardOut, responses=ERRORS)
def accept(event_id: uuid.UUID, body: DecisionIn, user: CurrentUser, db: DbSession) -> HazardOut:
    return hazard_out(hazards.decide(db, user=user, event_id=event_id, accept=True, note=body.note))


@router.post("/events/{event_id}/hazard/reject", response_model=HazardOut, responses=ERRORS)
def reject(event_id: uuid.UUID, body: DecisionIn, user: CurrentUser, db: DbSession) -> HazardOut:
    """Refuse the evidence (a note is required); the site has to act again."""
    hazard = hazards.decide(db, user=user, event_id=event_id, accept=False, note=body.note)
    return hazard_out(hazard)


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def audit_log(
    user: CurrentUser,
    db: DbSession,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditOut]:
    """Audit entries of the user's sites, newest first."""
    entries = audit.list_entries(
        db, user=user, object_type=object_type, object_id=object_id, limit=limit
    )
    return [AuditOut.model_validate(e) for e in entries]


class CandidateOut(BaseModel):
    id: int
    username: str
    display_name: str | None
    role: str


@router.get(
    "/sites/{site_id}/responsible-candidates",
    response_model=list[CandidateOut],
    responses=ERRORS,
)
def responsible_candidates(site_id: str, user: CurrentUser, db: DbSession) -> list[CandidateOut]:
    """The site's users a rectification can be assigned to (rectifiers first)."""
    require_site(user, site_id, f"site {site_id!r}")
    return [
        CandidateOut(id=u.id, username=u.username, display_name=u.display_name, role=u.role)
        for u in hazards.responsible_candidates(db, site_id)
    ]
