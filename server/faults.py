"""Faults a client can wait out, told apart from bugs.

A database that is restarting, unreachable or locked, and a disk that is full, are not
the client's fault and not the server's bug: the answer is 503 (database) or 507 (disk)
with Retry-After, and the box's outbox keeps the item and retries. Anything else stays
an error of the server (500, logged with its traceback).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

#: Seconds a client is asked to wait before retrying after a 503 or 507.
RETRY_AFTER_S = 15
UNAVAILABLE_DETAIL = "the database is unavailable; retry later"
DISK_FULL_DETAIL = "the server's disk is full; retry later"
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


@dataclass(frozen=True)
class FaultAnswer:
    status: int
    detail: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_S)}


class LowDisk(OSError):
    """Refused before writing: less free space than ``min_free_disk_bytes``."""

    def __init__(self, folder: Path, free: int, minimum: int) -> None:
        super().__init__(errno.ENOSPC, f"{folder}: {free} bytes free, under {minimum}")


def disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, SQLite's SQLITE_FULL and PostgreSQL's disk_full."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, DBAPIError):
        cause = exc.orig
        if getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        return getattr(cause, "sqlstate", None) == _PG_DISK_FULL
    return False


def database_unavailable(exc: BaseException) -> bool:
    """True for a lost or refused connection (or a locked SQLite file)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def fault_answer(exc: BaseException) -> FaultAnswer | None:
    """The answer for a fault a client can wait out; None for anything else (a bug)."""
    if disk_full(exc):
        return FaultAnswer(507, DISK_FULL_DETAIL)
    if isinstance(exc, DBAPIError) and database_unavailable(exc):
        return FaultAnswer(503, UNAVAILABLE_DETAIL)
    return None


def require_free_space(folder: Path, minimum: int) -> None:
    """LowDisk when ``folder``'s filesystem has fewer than ``minimum`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < minimum:
        raise LowDisk(folder, free, minimum)
