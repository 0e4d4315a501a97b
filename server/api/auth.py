"""Session login for users (the JSON twin of the UI's login form)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from sitewatch.server.api.deps import CurrentSession, DbSession, end_session, start_session
from sitewatch.server.api.schemas import LoginIn, Me
from sitewatch.server.db.models import UserSession

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def me(session: UserSession) -> Me:
    user = session.user
    return Me(
        username=user.username,
        role=user.role,
        sites=sorted(user.site_ids),
        csrf_token=session.csrf_token,
    )


@router.post("/login", response_model=Me, responses={401: {}, 429: {}})
def login(body: LoginIn, request: Request, response: Response, db: DbSession) -> Me:
    """Check the password and set an httponly session cookie; returns the CSRF token."""
    session = start_session(
        request, response, username=body.username, password=body.password, db=db
    )
    if session is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    return me(session)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(_session: CurrentSession, request: Request, db: DbSession) -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    end_session(request, response, db=db)
    return response


@router.get("/me", response_model=Me)
def whoami(session: CurrentSession) -> Me:
    return me(session)
