"""Login throttling: too many failed passwords for one user name or from one address
within a window, and further attempts are refused (429) until the window passes.

State is in memory per process and bounded (the oldest keys are dropped); a restart
forgets it. Argon2 verification already makes each guess slow; this stops a patient
attacker from trying thousands of them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from sitewatch.server.services.errors import ServiceError


class TooManyAttempts(ServiceError):
    status = 429


class LoginThrottle:
    def __init__(self, *, max_failures: int, window_s: float, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
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
                if len(times) >= self.max_failures:
                    wait_s = int(times[0] + self.window_s - now) + 1
                    raise TooManyAttempts(f"too many failed logins; try again in {wait_s} s")

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
