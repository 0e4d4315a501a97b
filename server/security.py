"""Passwords (argon2), device tokens (shown once, stored as sha256), browser sessions
and CSRF tokens.

Session cookies carry a random token signed with the server secret (itsdangerous); the
database keeps only the token's sha256 together with the session's CSRF token, so a
logout or a disabled user ends the session at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, Signer

SESSION_COOKIE = "sitewatch_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"
DEVICE_TOKEN_PREFIX = "swd_"

_hasher = PasswordHasher()
#: A valid hash to check against when the user does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("sitewatch-no-such-user")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("password must not be empty")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; always spends the same argon2 time."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_device_token() -> str:
    """A fresh device token (256 bits); show it once, store only :func:`hash_token`."""
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """sha256 of a high-entropy token (device or session); fine without a salt."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class CookieSigner:
    """Signs the session token for the cookie and checks it on the way back."""

    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret, salt="sitewatch-session")

    def sign(self, token: str) -> str:
        return self._signer.sign(token.encode()).decode()

    def unsign(self, cookie: str) -> str | None:
        try:
            return self._signer.unsign(cookie.encode()).decode()
        except BadSignature:
            return None
