"""The durable outbox: every event message and media file is spooled here before upload.

Layout under the spool folder::

    outbox.db            SQLite, WAL journal, synchronous=FULL
    outbox.lock          held (flock) by the one process using the spool
    media/<event_id>/    snapshot.jpg, snapshot_clean.jpg, clip.mp4, ...
    tmp/                 files being written (renamed into media/ when complete)

One table, ``items``, is the upload queue in insertion order (``seq``): an ``event`` item
holds the event's JSON, a media item (``snapshot``, ``snapshot_clean``, ``clip``,
``face``) the file's path. A media file is written to ``tmp/``, fsynced, renamed into
place, and only then is its row committed; on start-up, files without a row (a crash in
between) are deleted and rows whose file is missing are dropped with a log line. An item
is deleted only once the server acknowledged it (:meth:`Outbox.ack`), so a crash between
sending and the acknowledgement re-sends it, which the server's upsert makes harmless.

Disk use is bounded by ``max_bytes`` (media sizes + event JSON sizes). When a new item
would pass it, the oldest media go first, event records last, each drop logged and
counted (``dropped`` and the ``on_drop`` callback, which feeds the metrics).

``history`` keeps the last events spooled and when the server acknowledged them (for
the heartbeat, latency measurements and the fault tests), pruned to ``HISTORY_ROWS``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sitewatch.contract.events import Event
from sitewatch.edge.errors import SitewatchError

logger = logging.getLogger(__name__)

MEDIA_KINDS = ("snapshot", "snapshot_clean", "clip", "face")
HISTORY_ROWS = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT,
    path TEXT,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_kind ON items (kind, seq);
CREATE TABLE IF NOT EXISTS history (
    event_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    spooled_at REAL NOT NULL,
    started_at TEXT,
    acked_at REAL,
    PRIMARY KEY (event_id, phase)
);
"""


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    event_id: str
    kind: str  # "event" or a media kind
    body: str | None
    path: Path | None
    size_bytes: int
    created_at: float
    attempts: int


class Outbox:
    """Thread-safe; one SQLite connection guarded by a lock."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        on_drop: Callable[[OutboxItem, str], None] | None = None,  # (item, reason code)
    ) -> None:
        self.root = root = root.resolve()
        self.max_bytes = max_bytes
        self.media_dir = root / "media"
        self.tmp_dir = root / "tmp"
        for folder in (root, self.media_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_spool(root)
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._db = sqlite3.connect(
            root / "outbox.db", check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._recover()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._lock_file.close()  # releases the spool lock

    # ---- writing -------------------------------------------------------------------------

    def put_event(self, event: Event) -> int:
        body = event.model_dump_json()
        with self._lock:
            self._make_room(len(body))
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._insert(str(event.event_id), "event", body, None, len(body))
                self._db.execute(
                    "INSERT OR IGNORE INTO history (event_id, phase, spooled_at, started_at)"
                    " VALUES (?, ?, ?, ?)",
                    (
                        str(event.event_id),
                        event.phase.value,
                        time.time(),
                        event.started_at.isoformat(),
                    ),
                )
            self._changed.notify_all()
        return seq

    def media_path(self, event_id: str, name: str) -> Path:
        return self.media_dir / event_id / name

    def tmp_path(self, name: str) -> Path:
        return self.tmp_dir / f"{time.monotonic_ns()}-{name}"

    def put_media_bytes(self, event_id: str, kind: str, name: str, data: bytes) -> int | None:
        """Write ``data`` durably (tmp, fsync, rename) and queue it."""
        tmp = self.tmp_path(name)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return self.put_media_file(event_id, kind, tmp, name)

    def put_media_file(self, event_id: str, kind: str, src: Path, name: str) -> int | None:
        """Move a complete, fsynced file into the spool and queue it; None if dropped."""
        if kind not in MEDIA_KINDS:
            raise ValueError(f"unknown media kind {kind!r}, expected one of {MEDIA_KINDS}")
        size = src.stat().st_size
        target = self.media_path(event_id, name)
        with self._lock:
            if not self._make_room(size):
                src.unlink(missing_ok=True)
                item = OutboxItem(0, event_id, kind, None, target, size, time.time(), 0)
                self._drop_notice(item, "too_large", f"larger than the spool ({self.max_bytes} B)")
                return None
            target.parent.mkdir(exist_ok=True)
            os.replace(src, target)
            _fsync_dir(target.parent)
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._insert(event_id, kind, None, str(target), size)
            self._changed.notify_all()
        return seq

    def _insert(
        self, event_id: str, kind: str, body: str | None, path: str | None, size: int
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO items (event_id, kind, body, path, size_bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, kind, body, path, size, time.time()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    # ---- reading and acknowledging -------------------------------------------------------

    def next_item(self, timeout_s: float = 0.0) -> OutboxItem | None:
        """The oldest item, waiting up to ``timeout_s`` for one to arrive."""
        with self._changed:
            row = self._oldest()
            if row is None and timeout_s > 0:
                self._changed.wait(timeout_s)
                row = self._oldest()
        return row

    def _oldest(self) -> OutboxItem | None:
        row = self._db.execute(
            "SELECT seq, event_id, kind, body, path, size_bytes, created_at, attempts"
            " FROM items ORDER BY seq LIMIT 1"
        ).fetchone()
        return _item(row) if row else None

    def ack(self, item: OutboxItem) -> None:
        """The server has it: forget the row, then the file."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM items WHERE seq = ?", (item.seq,))
            if item.kind == "event" and item.body is not None:
                phase = _phase_of(item.body)
                self._db.execute(
                    "UPDATE history SET acked_at = ? WHERE event_id = ? AND phase = ?"
                    " AND acked_at IS NULL",
                    (time.time(), item.event_id, phase),
                )
        if item.path is not None:
            item.path.unlink(missing_ok=True)
            self._remove_empty_folder(item.path.parent)

    def reject(self, item: OutboxItem, detail: str) -> None:
        """The server refused the item for good (4xx): drop it, say so."""
        with self._lock:
            self._delete(item, "rejected", detail)

    def note_attempt(self, item: OutboxItem) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE items SET attempts = attempts + 1 WHERE seq = ?", (item.seq,))

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def used_bytes(self) -> int:
        with self._lock:
            return self._used_bytes()

    def _used_bytes(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM items").fetchone()[0])

    def history(self) -> list[tuple[str, str, float, str | None, float | None]]:
        with self._lock:
            return list(
                self._db.execute(
                    "SELECT event_id, phase, spooled_at, started_at, acked_at FROM history"
                    " ORDER BY spooled_at"
                )
            )

    # ---- bounds and recovery -------------------------------------------------------------

    def _make_room(self, size: int) -> bool:
        """Drop oldest media, then oldest events, until ``size`` more bytes fit."""
        if size > self.max_bytes:
            return False
        used = self._used_bytes()
        while used + size > self.max_bytes:
            row = self._db.execute(
                "SELECT seq, event_id, kind, body, path, size_bytes, created_at, attempts"
                " FROM items ORDER BY (kind = 'event'), seq LIMIT 1"
            ).fetchone()
            if row is None:
                break
            victim = _item(row)
            self._delete(victim, "spool_full", f"spool full ({used + size} > {self.max_bytes} B)")
            used -= victim.size_bytes
        return True

    def _delete(self, item: OutboxItem, reason: str, detail: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM items WHERE seq = ?", (item.seq,))
        if item.path is not None:
            item.path.unlink(missing_ok=True)
            self._remove_empty_folder(item.path.parent)
        self._drop_notice(item, reason, detail)

    def _drop_notice(self, item: OutboxItem, reason: str, detail: str) -> None:
        """``reason`` is a short code (metrics label), ``detail`` the log text."""
        logger.warning(
            "outbox dropped %s of event %s (%d B): %s",
            item.kind,
            item.event_id,
            item.size_bytes,
            detail,
        )
        if self._on_drop is not None:
            self._on_drop(item, reason)

    def _recover(self) -> None:
        """After a crash: remove half-written and orphaned files, rows without files."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(exist_ok=True)
        known = {row[0] for row in self._db.execute("SELECT path FROM items WHERE path NOT NULL")}
        for path in self.media_dir.glob("*/*"):
            if str(path) not in known:
                logger.info("outbox: removing orphaned file %s", path)
                path.unlink(missing_ok=True)
        for path_text in known:
            if not Path(path_text).exists():
                logger.warning("outbox: %s is listed but missing, dropping its row", path_text)
                with self._db:
                    self._db.execute("DELETE FROM items WHERE path = ?", (path_text,))
        for folder in self.media_dir.iterdir():
            self._remove_empty_folder(folder)
        self._db.execute(
            "DELETE FROM history WHERE rowid NOT IN"
            " (SELECT rowid FROM history ORDER BY spooled_at DESC LIMIT ?)",
            (HISTORY_ROWS,),
        )

    def _remove_empty_folder(self, folder: Path) -> None:
        if folder.parent == self.media_dir:
            # not empty (more media of the same event) or already gone
            with contextlib.suppress(OSError):
                folder.rmdir()


def _item(row: tuple[int, str, str, str | None, str | None, int, float, int]) -> OutboxItem:
    seq, event_id, kind, body, path, size, created_at, attempts = row
    return OutboxItem(
        seq, event_id, kind, body, Path(path) if path else None, size, created_at, attempts
    )


def _phase_of(body: str) -> str:
    return Event.model_validate_json(body).phase.value


class SpoolBusy(SitewatchError, RuntimeError):
    """Another process (or Outbox) holds this spool."""


def _lock_spool(root: Path) -> IO[str]:
    """An exclusive lock on ``root/outbox.lock`` for this Outbox's life (freed at exit,
    SIGKILL included), so two edge processes never share, and half-delete, one spool."""
    handle = open(root / "outbox.lock", "a+")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise SpoolBusy(f"outbox {root} is in use by another edge process (pid {holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
