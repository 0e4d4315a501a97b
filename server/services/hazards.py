"""The hazard loop: assign a confirmed event, submit evidence, accept or reject it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sitewatch.server.db.models import (
    EventRecord,
    Hazard,
    HazardStatus,
    MediaKind,
    ReviewStatus,
    Role,
    Site,
    User,
)
from sitewatch.server.db.types import utcnow
from sitewatch.server.media import MediaStore, ReceivedFile
from sitewatch.server.notify import hazard_loop
from sitewatch.server.notify.queue import AlertPolicy
from sitewatch.server.services import audit
from sitewatch.server.services.access import require_reviewer, site_filter
from sitewatch.server.services.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
)
from sitewatch.server.services.events import get_event
from sitewatch.server.services.media import store_media
from sitewatch.server.services.validation import text, utc

#: States in which the site still has to act.
OPEN_STATES = (HazardStatus.ASSIGNED, HazardStatus.REJECTED)
#: A deadline this close to now is taken as "today, now" (clocks and forms lag a little).
DEADLINE_GRACE = timedelta(minutes=5)
#: Who may be made responsible for a rectification.
RESPONSIBLE_ROLES = (Role.RECTIFIER, Role.REVIEWER, Role.ADMIN)


def _responsible_user(db: Session, site_id: str, user_id: int | None) -> User | None:
    """The active user ``user_id`` of the site who may rectify, or Invalid saying why."""
    if user_id is None:
        return None
    person = db.get(User, user_id)
    if person is None or not person.is_active:
        raise Invalid(f"responsible user {user_id} not found or disabled")
    if person.role not in RESPONSIBLE_ROLES:
        raise Invalid(f"user {person.username!r} ({person.role.value}) cannot rectify hazards")
    if person.role != Role.ADMIN and site_id not in person.site_ids:
        raise Invalid(f"user {person.username!r} does not work on site {site_id!r}")
    return person


def may_submit_evidence(user: User, hazard: Hazard) -> bool:
    """Reviewers and admins, and the rectifier the hazard is assigned to."""
    if user.role in (Role.ADMIN, Role.REVIEWER):
        return True
    return user.role == Role.RECTIFIER and hazard.responsible_user_id == user.id


def responsible_candidates(db: Session, site_id: str) -> list[User]:
    """The site's active users who may be made responsible (rectifiers first)."""
    users = db.scalars(select(User).where(User.is_active.is_(True)).order_by(User.username))
    order = {Role.RECTIFIER: 0, Role.REVIEWER: 1, Role.ADMIN: 2}
    chosen = [
        u
        for u in users
        if u.role in RESPONSIBLE_ROLES and (u.role == Role.ADMIN or site_id in u.site_ids)
    ]
    return sorted(chosen, key=lambda u: (order[u.role], u.username))


def _record(db: Session, user: User, hazard: Hazard, action: str, **details: object) -> None:
    audit.record(
        db,
        actor=user,
        action=f"hazard.{action}",
        object_type="hazard",
        object_id=str(hazard.event_id),
        site_id=hazard.site_id,
        details={"status": hazard.status.value, **details},
    )


def get_hazard(db: Session, *, user: User, event_id: uuid.UUID) -> Hazard:
    event = get_event(db, user=user, event_id=event_id)
    if event.hazard is None:
        raise NotFound(f"event {event_id} has no rectification")
    return event.hazard


def assign_hazard(
    db: Session,
    *,
    user: User,
    event_id: uuid.UUID,
    responsible: str | None = None,
    responsible_user_id: int | None = None,
    deadline: datetime,
    note: str | None = None,
    alerts: AlertPolicy | None = None,
) -> Hazard:
    """Give a confirmed event a responsible person (one of the site's users; a name for
    someone without an account) and a deadline not in the past (again while open); its
    messages (assigned, reminder, overdue) are queued in the same transaction."""
    event = get_event(db, user=user, event_id=event_id)
    require_reviewer(user)
    if event.review_status != ReviewStatus.CONFIRMED:
        raise Conflict(f"event {event_id} must be confirmed before it is assigned")
    person = _responsible_user(db, event.site_id, responsible_user_id)
    if person is not None:
        responsible = person.display_name or person.username
    responsible = text((responsible or "").strip(), "responsible") or ""
    if not responsible:
        raise Invalid("responsible person must not be empty")
    deadline, note = utc(deadline, "deadline"), text(note, "note")
    if deadline < utcnow() - DEADLINE_GRACE:
        raise Invalid(f"deadline {deadline.isoformat()} is in the past")
    hazard = event.hazard
    if hazard is not None and hazard.status not in OPEN_STATES:
        raise Conflict(f"rectification of event {event_id} is {hazard.status.value}")
    if hazard is None:
        hazard = Hazard(event=event, site_id=event.site_id, created_by_id=user.id)
        db.add(hazard)
    hazard.responsible = responsible
    hazard.responsible_user_id = person.id if person is not None else None
    hazard.deadline = deadline
    hazard.note = note
    hazard.status = HazardStatus.ASSIGNED
    hazard.updated_at = utcnow()
    db.flush()
    _record(
        db,
        user,
        hazard,
        "assign",
        responsible=hazard.responsible,
        responsible_user=person.username if person is not None else None,
        deadline=deadline.isoformat(),
        note=note,
    )
    hazard_loop.on_assigned(db, hazard, hazard.updated_at, alerts or AlertPolicy())
    db.commit()
    return hazard


def submit_evidence(
    db: Session,
    *,
    user: User,
    store: MediaStore,
    event_id: uuid.UUID,
    photo: ReceivedFile,
    note: str | None = None,
    alerts: AlertPolicy | None = None,
) -> Hazard:
    """The site shows the hazard is fixed: a photo and a note; waits for a reviewer."""
    try:
        hazard = get_hazard(db, user=user, event_id=event_id)
        if not may_submit_evidence(user, hazard):
            raise Forbidden(
                f"user {user.username!r} ({user.role.value}) may not submit evidence for "
                "this rectification (it is assigned to someone else)"
            )
        text(note, "note")
        if hazard.status not in OPEN_STATES:
            raise Conflict(f"rectification of event {event_id} is {hazard.status.value}")
    except ServiceError:
        photo.path.unlink(missing_ok=True)  # the upload was parked; do not leave it
        raise
    store_media(db, store=store, event=hazard.event, kind=MediaKind.EVIDENCE, received=photo)
    hazard.status = HazardStatus.RECTIFIED
    hazard.evidence_note = note
    hazard.evidence_at = utcnow()
    hazard.evidence_by_id = user.id
    hazard.updated_at = hazard.evidence_at
    _record(db, user, hazard, "evidence", note=note, sha256=photo.sha256)
    hazard_loop.on_evidence(db, hazard, hazard.evidence_at, alerts or AlertPolicy())
    db.commit()
    return hazard


def decide(
    db: Session, *, user: User, event_id: uuid.UUID, accept: bool, note: str | None = None
) -> Hazard:
    """Accept the evidence (done) or reject it (the site has to act again)."""
    hazard = get_hazard(db, user=user, event_id=event_id)
    require_reviewer(user)
    if hazard.status != HazardStatus.RECTIFIED:
        raise Conflict(
            f"rectification of event {event_id} is {hazard.status.value}; "
            "only submitted evidence can be accepted or rejected"
        )
    text(note, "note")
    if not accept and not (note and note.strip()):
        raise Invalid("rejecting evidence needs a note saying why")
    site = db.get(Site, hazard.site_id)
    if accept and site is not None and site.accept_by_other and hazard.evidence_by_id == user.id:
        raise Forbidden(
            "you uploaded this evidence: another user must accept it (site setting accept_by_other)"
        )
    hazard.status = HazardStatus.ACCEPTED if accept else HazardStatus.REJECTED
    hazard.decision_note = note
    hazard.decided_by_id = user.id
    hazard.decided_at = utcnow()
    hazard.updated_at = hazard.decided_at
    _record(db, user, hazard, "accept" if accept else "reject", note=note)
    db.commit()
    return hazard


def list_hazards(
    db: Session,
    *,
    user: User,
    site_id: str | None = None,
    status: HazardStatus | None = None,
    overdue_only: bool = False,
    mine: bool = False,
    now: datetime | None = None,
    limit: int = 500,
) -> list[Hazard]:
    """Hazards ``user`` may see (``mine``: assigned to them), earliest deadline first."""
    query = select(Hazard).join(EventRecord).where(site_filter(user, Hazard.site_id))
    if mine:
        query = query.where(Hazard.responsible_user_id == user.id)
    if site_id is not None:
        query = query.where(Hazard.site_id == site_id)
    if status is not None:
        query = query.where(Hazard.status == status)
    if overdue_only:
        query = query.where(Hazard.status.in_(OPEN_STATES), Hazard.deadline < (now or utcnow()))
    return list(db.scalars(query.order_by(Hazard.deadline, Hazard.id).limit(limit)))
