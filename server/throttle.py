"""Login throttling: too many failed passwords for one user name or from one address
within a window, and further attempts are refused (429) until the window passes.

The server uses :class:`DatabaseLoginThrottle`: failures are rows of ``login_failures``,
so the limit holds across the worker processes of ``sitewatch server run --workers N``
and across restarts; rows older than the window are pruned as new ones come in.
:class:`LoginThrottle` keeps the same state in memory, for one process only.
Argon2 verification already makes each guess slow; this stops a patient attacker from
trying thousands of them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, func, select

from sitewatch.server.db.models import LoginFailure
from sitewatch.server.db.types import utcnow
from sitewatch.server.services.errors import ServiceError

if TYPE_CHECKING:
    from sitewatch.server.db.session import Database

#: Longest key stored (``login_failures.key``); a longer one (a huge user name) is cut.
MAX_KEY_LENGTH = 200


class TooManyAttempts(ServiceError):
    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        #: Seconds until the limit lifts (the UI says when; the API sends Retry-After).
        self.retry_after_s = retry_after_s


class Throttle(Protocol):
    """What the login code needs (``app.state.login_throttle``)."""

    def check(self, *keys: str) -> None: ...
    def failed(self, *keys: str) -> None: ...
    def succeeded(self, *keys: str) -> None: ...


def _refuse(wait_s: float) -> TooManyAttempts:
    seconds = int(wait_s) + 1
    return TooManyAttempts(f"too many failed logins; try again in {seconds} s", seconds)


def _limit(key: str, max_failures: int, address_max_failures: int | None) -> int:
    """An address ("ip:...") may be shared by a whole site office behind one NAT: it
    gets its own, higher limit, so one person's typos do not lock everyone out."""
    if key.startswith("ip:") and address_max_failures is not None:
        return address_max_failures
    return max_failures


class LoginThrottle:
    """In memory, per process: for a single-process server and for tests."""

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: float,
        max_keys: int = 10_000,
        address_max_failures: int | None = None,
    ) -> None:
        self.max_failures = max_failures
        self.address_max_failures = address_max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def check(self, *keys: str, now: float | None = None) -> None:
        """TooManyAttempts if any key has failed ``max_failures`` times in the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                limit = _limit(key, self.max_failures, self.address_max_failures)
                if len(times) >= limit:
                    raise _refuse(times[-limit] + self.window_s - now)

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


class DatabaseLoginThrottle:
    """Failures kept in ``login_failures``: one limit for every process on the database.

    Each call is its own short transaction (not the request's), so a failure counts even
    when the request then fails. Concurrent guesses may each pass ``check`` before any of
    them is recorded, so a burst can exceed the limit by the number of requests in flight
    at once; after that every process refuses. The table stays small: ``failed`` deletes
    rows that have left the window, and ``failed`` is only reached after ``check`` let the
    attempt through, so a key holds at most about ``max_failures`` rows in the window.
    """

    def __init__(
        self,
        database: Database,
        *,
        max_failures: int,
        window_s: float,
        address_max_failures: int | None = None,
    ) -> None:
        self.database = database
        self.max_failures = max_failures
        self.address_max_failures = address_max_failures
        self.window_s = window_s

    @staticmethod
    def _keys(keys: tuple[str, ...]) -> list[str]:
        return list(dict.fromkeys(key[:MAX_KEY_LENGTH] for key in keys))

    def check(self, *keys: str, now: datetime | None = None) -> None:
        """TooManyAttempts if any key has failed ``max_failures`` times in the window."""
        now = now or utcnow()
        since = now - timedelta(seconds=self.window_s)
        with self.database.session() as db:
            for key in self._keys(keys):
                recent = select(LoginFailure.at).where(
                    LoginFailure.key == key, LoginFailure.at > since
                )
                count = db.scalar(select(func.count()).select_from(recent.subquery())) or 0
                limit = _limit(key, self.max_failures, self.address_max_failures)
                if count < limit:
                    continue
                # The limit lifts once all but limit - 1 of them have left the window.
                oldest = db.scalar(recent.order_by(LoginFailure.at.desc()).offset(limit - 1))
                lifts_at = (oldest or now) + timedelta(seconds=self.window_s)
                raise _refuse((lifts_at - now).total_seconds())

    def failed(self, *keys: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        with self.database.session() as db:
            db.execute(
                delete(LoginFailure).where(
                    LoginFailure.at <= now - timedelta(seconds=self.window_s)
                )
            )
            db.add_all(LoginFailure(key=key, at=now) for key in self._keys(keys))
            db.commit()

    def succeeded(self, *keys: str) -> None:
        with self.database.session() as db:
            db.execute(delete(LoginFailure).where(LoginFailure.key.in_(self._keys(keys))))
            db.commit()
