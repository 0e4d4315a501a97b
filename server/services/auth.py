"""Browser sessions: log in with a password, look a session up, log out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sitewatch.server.db.models import User, UserSession
from sitewatch.server.db.types import utcnow
from sitewatch.server.security import (
    hash_password,
    hash_token,
    new_csrf_token,
    new_session_token,
    password_needs_rehash,
    verify_password,
)


@dataclass(frozen=True)
class LoginResult:
    session: UserSession
    #: The raw session token for the cookie (the table keeps only its hash).
    token: str


def login(db: Session, *, username: str, password: str, max_age_s: int) -> LoginResult | None:
    """A new session if the password is right and the user active; None otherwise."""
    user = db.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        return None
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    now = utcnow()
    db.execute(delete(UserSession).where(UserSession.expires_at < now))
    token = new_session_token()
    session = UserSession(
        token_hash=hash_token(token),
        user_id=user.id,
        csrf_token=new_csrf_token(),
        created_at=now,
        expires_at=now + timedelta(seconds=max_age_s),
    )
    db.add(session)
    db.commit()
    session.user = user
    return LoginResult(session=session, token=token)


def session_for_token(db: Session, *, token: str) -> UserSession | None:
    """The live session of a cookie token whose user is still active, or None."""
    session = db.get(UserSession, hash_token(token))
    if session is None or session.expires_at < utcnow() or not session.user.is_active:
        return None
    return session


def logout(db: Session, *, token: str) -> None:
    db.execute(delete(UserSession).where(UserSession.token_hash == hash_token(token)))
    db.commit()
