"""The hazard loop's messages, queued in the same transaction as the step that causes
them: the responsible person told on assignment, reminded before the deadline,
escalated when it passes (to the escalation rules' channels), and the reviewer told
when evidence arrives. Reminders and escalations are queued ahead, due at their time,
and cancelled when sent if the hazard was fixed or its deadline moved meanwhile."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sitewatch.server.db.models import Hazard, NotificationKind
from sitewatch.server.notify.queue import AlertPolicy, enqueue_loop


def on_assigned(db: Session, hazard: Hazard, now: datetime, policy: AlertPolicy) -> int:
    """Queue the assignment message, the reminder and the escalation of ``hazard``
    (assigned again: a new deadline gets its own reminder and escalation)."""
    deadline = hazard.deadline.isoformat()
    payload: dict[str, object] = {"deadline": deadline, "responsible": hazard.responsible}
    assigned, reminder, overdue = (
        f"{step}:{hazard.id}:{deadline}" for step in ("assigned", "reminder", "overdue")
    )
    # Each assignment is told (the same deadline may go to someone else).
    steps = [(NotificationKind.HAZARD_ASSIGNED, now, f"{assigned}:{hazard.updated_at.isoformat()}")]
    lead = min(policy.remind_before, (hazard.deadline - now) / 2)
    if lead.total_seconds() > 0:
        steps.append((NotificationKind.HAZARD_REMINDER, hazard.deadline - lead, reminder))
    steps.append((NotificationKind.HAZARD_OVERDUE, max(hazard.deadline, now), overdue))
    return sum(
        enqueue_loop(
            db,
            kind=kind,
            event=hazard.event,
            hazard_id=hazard.id,
            at=at,
            now=now,
            policy=policy,
            key=key,
            payload=payload,
        )
        for kind, at, key in steps
    )


def on_evidence(db: Session, hazard: Hazard, now: datetime, policy: AlertPolicy) -> int:
    """Queue "evidence to review" for the reviewers' channels."""
    stamp = (hazard.evidence_at or now).isoformat()
    return enqueue_loop(
        db,
        kind=NotificationKind.HAZARD_EVIDENCE,
        event=hazard.event,
        hazard_id=hazard.id,
        at=now,
        now=now,
        policy=policy,
        key=f"evidence:{hazard.id}:{stamp}",
        payload={"deadline": hazard.deadline.isoformat()},
    )
