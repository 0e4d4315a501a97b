"""The live edge box's face register: local enrolments plus the server's, kept current.

One :class:`SiteRegister` per edge process. It holds

- the **local** register, ``faces.register_path`` (workers enrolled on the box with
  ``sitewatch faces enrol``), and
- the **server's** register, pulled by :class:`~edge.faces.sync.RegisterSync` when the
  site config has a ``server:`` and kept in ``face-register.npz`` in the outbox folder, so
  a box that starts without the network still knows the workers of its last sync.

The cameras use the union of the two. A worker id in both takes the server's entry (its
embeddings, its party membership). Workers enrolled only on the box keep being
recognised after the server's register arrives: a sync never forgets them. A worker the
server *removes* is removed everywhere, including from the local register file, because
removal means that person's face data must go (consent withdrawn, left the site).
Party members come from the server only (a local enrolment carries no party flag).

:meth:`SiteRegister.start` runs a first sync (a failure is logged and the box goes on
with what it has) and a daemon thread that pulls every ``faces.register_sync_interval_s``.
Each change builds a new :class:`FaceRegister` (never changed afterwards) and hands it to
every subscriber, e.g. :meth:`edge.faces.stage.FaceStage.replace_register` of each
camera, which swaps it in between two frames.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sitewatch.edge.faces.sync import RegisterSync, RegisterSyncError, SyncResult
from sitewatch.edge.faces.tracks import FaceRegister

logger = logging.getLogger(__name__)

#: The server's register, in the outbox folder (the box's writable state).
SYNCED_REGISTER_NAME = "face-register.npz"

Subscriber = Callable[[FaceRegister], None]


class SiteRegister:
    """Local + server face register of one site, published to subscribers on change."""

    def __init__(
        self,
        *,
        local_path: Path | None = None,
        sync: RegisterSync | None = None,
        interval_s: float = 60.0,
    ) -> None:
        self.local_path = local_path
        self.sync = sync
        self.interval_s = interval_s
        #: Syncs that failed (unreachable server, HTTP error, malformed answer).
        self.failures = 0
        self._local = _load_local(local_path)
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._register = self._compose()
        logger.info(
            "face register: %d worker(s) (%d local, %d from the server, v%d)",
            len(self._register),
            len(self._local),
            len(sync.register) if sync else 0,
            self.version,
        )

    @property
    def register(self) -> FaceRegister:
        """The register the cameras use now (do not change it; it is shared)."""
        return self._register

    @property
    def version(self) -> int:
        """The server register version held (0: none yet, or no server)."""
        return self.sync.version if self.sync is not None else 0

    def party_member_ids(self) -> set[str]:
        """Enrolled party members (``RuleEngine(party_member_ids=...)``), from the server."""
        return self.sync.party_member_ids() if self.sync is not None else set()

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(register)`` with each new register."""
        with self._lock:
            self._subscribers.append(subscriber)

    def pull(self) -> SyncResult | None:
        """One sync now; on a change, publish the new register. Never raises: a failure is
        logged and counted, and the register in use is kept."""
        if self.sync is None:
            return None
        try:
            result = self.sync.sync()
        except RegisterSyncError as exc:
            self._failed(str(exc))
            return None
        except Exception as exc:  # e.g. the register file cannot be written
            self._failed(f"register sync: {exc!r}")
            return None
        if result.full or result.added or result.removed:
            self._apply(result)
        return result

    def start(self) -> None:
        """First sync (blocking, bounded by the server timeout), then poll in a thread."""
        if self.sync is None or self._thread is not None:
            return
        self.pull()
        self._thread = threading.Thread(target=self._poll, name="register-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop polling (waits for a sync in flight) and close the HTTP client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("register sync thread still running after %.0f s", timeout_s)
        if self.sync is not None:
            self.sync.close()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.pull()

    def _failed(self, message: str) -> None:
        self.failures += 1
        logger.warning(
            "%s; keeping the face register (server v%d, %d worker(s))",
            message,
            self.version,
            len(self._register),
        )

    def _apply(self, result: SyncResult) -> None:
        with self._lock:
            gone = [w for w in result.removed_ids if w in self._local]
            if gone:
                self._forget_locally(gone)
            self._register = self._compose()
            register, subscribers = self._register, list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(register)
            except Exception:
                logger.exception("face register: a subscriber failed to take v%d", self.version)

    def _forget_locally(self, worker_ids: list[str]) -> None:
        """Workers removed on the server leave the local register file too."""
        local = FaceRegister({w: list(self._local.embeddings(w)) for w in self._local.worker_ids()})
        for worker_id in worker_ids:
            local.remove(worker_id)
        self._local = local
        logger.warning(
            "worker(s) %s removed on the server: removed from the local register %s too",
            ", ".join(worker_ids),
            self.local_path,
        )
        if self.local_path is None:
            return
        try:
            local.save(self.local_path)
        except OSError as exc:
            logger.error(
                "cannot rewrite the local register %s (%s): worker(s) %s are no longer "
                "recognised now but would come back at the next start; remove them with "
                "'sitewatch faces remove'",
                self.local_path,
                exc,
                ", ".join(worker_ids),
            )

    def _compose(self) -> FaceRegister:
        merged = {w: list(self._local.embeddings(w)) for w in self._local.worker_ids()}
        if self.sync is not None:
            server = self.sync.register
            merged.update({w: list(server.embeddings(w)) for w in server.worker_ids()})
        return FaceRegister(merged)


def _load_local(path: Path | None) -> FaceRegister:
    if path is None:
        return FaceRegister()
    return FaceRegister.load(path)
