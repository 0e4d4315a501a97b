"""Form posts of the event page: verdict, rectification, evidence, acceptance.

Every post goes through the core's ``current_session`` (login + CSRF token) and the
core's services, which check the role (viewers are refused) and the site scope, and
write the audit log. A success answers 303 back to the event page.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from sitewatch.server.api.deps import SettingsDep, StoreDep
from sitewatch.server.db.models import DismissReason, MediaKind, ReviewStatus
from sitewatch.server.media import MediaError
from sitewatch.server.services import hazards
from sitewatch.server.services.errors import Invalid, ServiceError
from sitewatch.server.services.events import set_verdict
from sitewatch.server.services.media import receive_media
from sitewatch.server.ui.deps import ActingViewerDep, DbDep, Viewer, error_page, service_error_page
from sitewatch.server.ui.i18n import request_lang, translator
from sitewatch.server.ui.rendering import page_zone

logger = logging.getLogger(__name__)
router = APIRouter()

Note = Annotated[str, Form(max_length=1000)]
VERDICTS = {"confirm": ReviewStatus.CONFIRMED, "dismiss": ReviewStatus.DISMISSED}


def _back(event_id: uuid.UUID, anchor: str) -> Response:
    return RedirectResponse(f"/ui/events/{event_id}#{anchor}", status_code=303)


#: The hazard loop's English refusals -> catalogue keys (issue 18; first match wins).
_REFUSALS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^deadline .* is in the past"), "rect.err.past_deadline"),
    (re.compile(r"^responsible person must not be empty"), "rect.err.no_responsible"),
    (re.compile(r"^responsible user .* not found or disabled"), "rect.err.bad_responsible"),
    (re.compile(r"cannot rectify hazards|does not work on site"), "rect.err.bad_responsible"),
    (re.compile(r"^you uploaded this evidence"), "rect.err.own_evidence"),
    (re.compile(r"may not submit evidence for this rectification"), "rect.err.not_yours"),
    (re.compile(r"only an admin can correct"), "rect.err.admin_only"),
    (re.compile(r"^a corrected verdict needs the reason"), "rect.err.correction_reason"),
    (re.compile(r"^a correction reason goes only with a changed"), "rect.err.unchanged"),
    (re.compile(r"^a dismissed event needs a reason"), "rect.err.dismiss_reason"),
]


def refusal_text(request: Request, message: str) -> str | None:
    """A refusal of the hazard loop in the page's language, None for one not known here."""
    for pattern, key in _REFUSALS:
        if pattern.search(message):
            return translator(request_lang(request))(key)
    return None


def refusal_page(request: Request, viewer: Viewer, exc: ServiceError) -> Response:
    logger.info("UI action refused for %s: %s", viewer.user.username, exc.message)
    text = refusal_text(request, exc.message)
    if text is None:
        return service_error_page(request, viewer, exc)
    return error_page(request, viewer, exc.status, text)


def _run(
    request: Request, viewer: Viewer, action: Callable[[], object], back: Response
) -> Response:
    """Run a service call; its error becomes an error page with the service's status."""
    try:
        action()
    except ServiceError as exc:
        return refusal_page(request, viewer, exc)
    return back


def _text(value: str) -> str | None:
    return value.strip() or None


@router.post("/events/{event_id}/verdict", include_in_schema=False)
def post_verdict(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    event_id: uuid.UUID,
    verdict: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    note: Note = "",
    correction: Note = "",
) -> Response:
    """A verdict; on a decided event an admin's correction, with its reason."""
    if verdict not in VERDICTS:
        return error_page(
            request, viewer, 400, f"verdict must be confirm or dismiss, got {verdict!r}"
        )
    try:
        dismiss_reason = DismissReason(reason) if reason and verdict == "dismiss" else None
    except ValueError:
        return error_page(request, viewer, 400, f"unknown dismiss reason {reason!r}")
    return _run(
        request,
        viewer,
        lambda: set_verdict(
            db,
            user=viewer.user,
            event_id=event_id,
            verdict=VERDICTS[verdict],
            reason=dismiss_reason,
            note=_text(note),
            correction=_text(correction),
        ),
        _back(event_id, "verdict"),
    )


def deadline_end_of_day(raw: str, tz: ZoneInfo) -> datetime:
    """A deadline day from the form means "by the end of that local day" in ``tz``."""
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise Invalid(f"deadline: {raw!r} is not a date (YYYY-MM-DD)") from exc
    try:
        return datetime.combine(day, time(23, 59, 59), tzinfo=tz).astimezone(UTC)
    except OverflowError as exc:
        raise Invalid(f"deadline: {raw!r} is out of range") from exc


@router.post("/events/{event_id}/rectification", include_in_schema=False)
def post_rectification(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    viewer: ActingViewerDep,
    event_id: uuid.UUID,
    deadline: Annotated[str, Form(max_length=32)],
    responsible_user: Annotated[str, Form(max_length=32)] = "",
    assignee: Annotated[str, Form(max_length=200)] = "",
    note: Note = "",
) -> Response:
    """The responsible person is one of the site's users (``responsible_user``, an id),
    or, chosen "other", a name typed in ``assignee`` for someone without an account."""
    person: int | None = None
    if responsible_user.strip():
        try:
            person = int(responsible_user)
        except ValueError:
            t = translator(request_lang(request))
            return error_page(request, viewer, 400, t("rect.err.bad_responsible"))
    return _run(
        request,
        viewer,
        lambda: hazards.assign_hazard(
            db,
            user=viewer.user,
            event_id=event_id,
            responsible=None if person is not None else assignee,
            responsible_user_id=person,
            deadline=deadline_end_of_day(deadline, page_zone(request)),
            note=_text(note),
            alerts=settings.alert_policy,
        ),
        _back(event_id, "rectification"),
    )


@router.post("/events/{event_id}/evidence", include_in_schema=False)
def post_evidence(
    request: Request,
    db: DbDep,
    store: StoreDep,
    settings: SettingsDep,
    viewer: ActingViewerDep,
    event_id: uuid.UUID,
    photo: Annotated[UploadFile, File()],
    note: Note = "",
) -> Response:
    """The site's proof of the fix: a photo (JPEG, PNG or HEIC, stored as JPEG) checked by
    its bytes, size and content, and a note; by a reviewer, an admin or the rectifier the
    hazard is assigned to."""
    try:
        received = receive_media(
            photo.file,
            store=store,
            settings=settings,
            kind=MediaKind.EVIDENCE,
            what="evidence photo",
        )
    except MediaError as exc:
        return error_page(request, viewer, exc.status, str(exc))
    try:
        hazards.submit_evidence(
            db,
            user=viewer.user,
            store=store,
            event_id=event_id,
            photo=received,
            note=_text(note),
            alerts=settings.alert_policy,
        )
    except ServiceError as exc:
        received.path.unlink(missing_ok=True)
        return refusal_page(request, viewer, exc)
    return _back(event_id, "rectification")


@router.post("/events/{event_id}/acceptance", include_in_schema=False)
def post_acceptance(
    request: Request,
    db: DbDep,
    viewer: ActingViewerDep,
    event_id: uuid.UUID,
    decision: Annotated[str, Form()],
    note: Note = "",
) -> Response:
    if decision not in ("accept", "reject"):
        return error_page(
            request, viewer, 400, f"decision must be accept or reject, got {decision!r}"
        )
    return _run(
        request,
        viewer,
        lambda: hazards.decide(
            db, user=viewer.user, event_id=event_id, accept=decision == "accept", note=_text(note)
        ),
        _back(event_id, "rectification"),
    )
