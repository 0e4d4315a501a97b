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

``dead_letters`` keeps what the server refused for good (a non-retryable 4xx, see
:meth:`Outbox.reject`): the item's row as it was (body, media path, kind, event id, its
``seq``, which is also its dead-letter id) with the HTTP status, the server's detail, when,
and the edge version that got the answer. Its media file stays in ``media/`` (it is not an
orphan). Later items of an event whose event record is a dead letter are moved beside it unsent
(status NULL, "held"), so an event's items still reach the server in spool order (a
refused media file holds nothing back).
:meth:`Outbox.retry_dead_letters` puts an event's dead letters back in the queue at their
old places; at open, dead letters recorded by another edge version are retried once (the
upgrade may have fixed the cause). Dead letters count toward ``max_bytes``; making room
drops the oldest dead letters (media first) before anything still queued, each drop
logged and counted like the others.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sitewatch import __version__
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
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT,
    path TEXT,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    detail TEXT NOT NULL,
    dead_at REAL NOT NULL,
    version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_event ON dead_letters (event_id, seq);
"""
_ITEM_COLUMNS = "seq, event_id, kind, body, path, size_bytes, created_at, attempts"


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


@dataclass(frozen=True)
class DeadLetter:
    """An item the server refused for good; ``id`` is the item's ``seq``."""

    item: OutboxItem
    status: int | None  # the HTTP status; None: held behind an earlier dead letter
    detail: str
    dead_at: float
    version: str  # the edge software version that got the answer

    @property
    def id(self) -> int:
        return self.item.seq


class Outbox:
    """Thread-safe; one SQLite connection guarded by a lock."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        on_drop: Callable[[OutboxItem, str], None] | None = None,  # (item, reason code)
        version: str = __version__,
        retry_on_upgrade: bool = True,
    ) -> None:
        """``version``: the edge software version recorded with dead letters; with
        ``retry_on_upgrade``, dead letters recorded by another version are re-queued."""
        self.root = root = root.resolve()
        self.max_bytes = max_bytes
        self.version = version
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
        if retry_on_upgrade:
            self._retry_after_upgrade()

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
        """The oldest item, waiting up to ``timeout_s`` for one to arrive.

        An item whose event record is a dead letter is not handed out but moved beside it
        (held), so that the server never gets an event's items out of spool order."""
        with self._changed:
            row = self._oldest()
            if row is None and timeout_s > 0:
                self._changed.wait(timeout_s)
                row = self._oldest()
        return row

    def _oldest(self) -> OutboxItem | None:
        while True:
            row = self._db.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            item = _item(row)
            blocker = self._db.execute(
                # Only a refused event record holds the rest: a refused snapshot must not
                # keep the event's clip and end from the server.
                "SELECT seq FROM dead_letters WHERE event_id = ? AND kind = 'event'"
                " ORDER BY seq LIMIT 1",
                (item.event_id,),
            ).fetchone()
            if blocker is None:
                return item
            logger.warning(
                "outbox: holding %s of event %s behind dead letter #%d of the same event",
                item.kind,
                item.event_id,
                blocker[0],
            )
            self._move_to_dead_letters(
                item, None, f"held: dead letter #{blocker[0]} of this event goes first"
            )

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

    def reject(self, item: OutboxItem, detail: str, *, status: int | None = None) -> bool:
        """The server refused the item for good (4xx, ``status``, the server's ``detail``):
        move it to the dead letters, media file kept, until :meth:`retry_dead_letters`.
        False if the item had left the queue meanwhile (dropped for space)."""
        with self._lock:
            moved = self._move_to_dead_letters(item, status, detail)
        if moved:
            logger.warning(
                "outbox: %s of event %s refused by the server (%s): %s; kept as dead letter #%d",
                item.kind,
                item.event_id,
                status,
                detail,
                item.seq,
            )
        else:
            logger.info(
                "outbox: refused %s of event %s had left the queue", item.kind, item.event_id
            )
        return moved

    def _move_to_dead_letters(self, item: OutboxItem, status: int | None, detail: str) -> bool:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "INSERT INTO dead_letters"
                f" ({_ITEM_COLUMNS}, status, detail, dead_at, version)"
                f" SELECT {_ITEM_COLUMNS}, ?, ?, ?, ? FROM items WHERE seq = ?",
                (status, detail, time.time(), self.version, item.seq),
            )
            if cursor.rowcount == 0:
                return False
            self._db.execute("DELETE FROM items WHERE seq = ?", (item.seq,))
        return True

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest (in spool order) first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ITEM_COLUMNS}, status, detail, dead_at, version"
                " FROM dead_letters ORDER BY seq"
            ).fetchall()
        return [DeadLetter(_item(row[:8]), row[8], row[9], row[10], row[11]) for row in rows]

    def dead_letter_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def retry_dead_letters(self, ids: Iterable[int] | None = None) -> int:
        """Put dead letters back in the queue at their old places (spool order: an event
        before its media); returns how many. ``ids`` (None: all) picks events: every dead
        letter of the event of each id goes back, so none is sent ahead of an earlier one.
        Raises :class:`UnknownDeadLetter` (and re-queues nothing) for an unknown id."""
        with self._lock:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                args: tuple[int, ...] = ()
                if ids is None:
                    where = ""
                else:
                    wanted = sorted(set(ids))
                    known = {
                        row[0]
                        for row in self._db.execute(
                            f"SELECT seq FROM dead_letters WHERE seq IN ({_marks(wanted)})",
                            wanted,
                        )
                    }
                    missing = [str(seq) for seq in wanted if seq not in known]
                    if missing:
                        raise UnknownDeadLetter(f"no dead letter with id {', '.join(missing)}")
                    where = (
                        " WHERE event_id IN (SELECT event_id FROM dead_letters"
                        f" WHERE seq IN ({_marks(wanted)}))"
                    )
                    args = tuple(wanted)
                # Original seq values: AUTOINCREMENT never hands them out again.
                self._db.execute(
                    f"INSERT INTO items ({_ITEM_COLUMNS})"
                    f" SELECT {_ITEM_COLUMNS} FROM dead_letters{where}",
                    args,
                )
                count = self._db.execute(f"DELETE FROM dead_letters{where}", args).rowcount
            if count:
                self._changed.notify_all()
        if count:
            logger.info("outbox: %d dead letter(s) back in the queue", count)
        return count

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
        """Queued items and dead letters both."""
        return int(
            self._db.execute(
                "SELECT (SELECT COALESCE(SUM(size_bytes), 0) FROM items)"
                " + (SELECT COALESCE(SUM(size_bytes), 0) FROM dead_letters)"
            ).fetchone()[0]
        )

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
        """Drop the oldest dead letters (media, then event records), then the oldest
        queued media, then the oldest queued events, until ``size`` more bytes fit."""
        if size > self.max_bytes:
            return False
        used = self._used_bytes()
        while used + size > self.max_bytes:
            full = f"spool full ({used + size} > {self.max_bytes} B)"
            row = self._db.execute(
                f"SELECT {_ITEM_COLUMNS}, status FROM dead_letters"
                " ORDER BY (kind = 'event'), seq LIMIT 1"
            ).fetchone()
            if row is not None:
                victim = _item(row[:8])
                self._delete(
                    victim,
                    "dead_letter_spool_full",
                    f"{full}, oldest dead letter #{victim.seq} (refused: {row[8] or 'held'})",
                    table="dead_letters",
                )
            else:
                row = self._db.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items ORDER BY (kind = 'event'), seq LIMIT 1"
                ).fetchone()
                if row is None:
                    break
                victim = _item(row)
                self._delete(victim, "spool_full", full)
            used -= victim.size_bytes
        return True

    def _delete(self, item: OutboxItem, reason: str, detail: str, *, table: str = "items") -> None:
        with self._db:
            self._db.execute(f"DELETE FROM {table} WHERE seq = ?", (item.seq,))
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
        known = {
            row[0]
            for row in self._db.execute(
                "SELECT path FROM items WHERE path NOT NULL"
                " UNION SELECT path FROM dead_letters WHERE path NOT NULL"
            )
        }
        for path in self.media_dir.glob("*/*"):
            if str(path) not in known:
                logger.info("outbox: removing orphaned file %s", path)
                path.unlink(missing_ok=True)
        for path_text in known:
            if not Path(path_text).exists():
                logger.warning("outbox: %s is listed but missing, dropping its row", path_text)
                with self._db:
                    self._db.execute("DELETE FROM items WHERE path = ?", (path_text,))
                    self._db.execute("DELETE FROM dead_letters WHERE path = ?", (path_text,))
        for folder in self.media_dir.iterdir():
            self._remove_empty_folder(folder)
        self._db.execute(
            "DELETE FROM history WHERE rowid NOT IN"
            " (SELECT rowid FROM history ORDER BY spooled_at DESC LIMIT ?)",
            (HISTORY_ROWS,),
        )

    def _retry_after_upgrade(self) -> None:
        """Dead letters recorded by another edge version go back in the queue, once: if
        refused again they are recorded with this version."""
        rows = self._db.execute(
            "SELECT seq, version FROM dead_letters WHERE version != ? ORDER BY seq",
            (self.version,),
        ).fetchall()
        if rows:
            versions = ", ".join(sorted({row[1] for row in rows}))
            logger.info(
                "outbox: retrying the dead letters of %d item(s) refused under version %s (now %s)",
                len(rows),
                versions,
                self.version,
            )
            self.retry_dead_letters([row[0] for row in rows])

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


def _marks(values: list[int]) -> str:
    return ", ".join("?" * len(values))


class SpoolBusy(SitewatchError, RuntimeError):
    """Another process (or Outbox) holds this spool."""


class UnknownDeadLetter(SitewatchError, LookupError):
    """:meth:`Outbox.retry_dead_letters` was given an id that is not a dead letter."""


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
