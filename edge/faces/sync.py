"""Keeping the box's face register in step with the server's worker register.

:class:`RegisterSync` asks ``GET /api/v1/register?since_version=N`` (device bearer
token) for what changed since the version it holds, applies the adds and removals to
the local :class:`~edge.faces.tracks.FaceRegister` and writes the register file whole
(temporary file, then rename), together with the version and the party members. The
file stays readable by ``FaceRegister.load`` (extra arrays are ignored there).

``party_member_ids`` is a callable for ``RuleEngine(party_member_ids=...)``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic import ValidationError

from sitewatch.contract.register import RegisterOut
from sitewatch.edge.errors import SitewatchError
from sitewatch.edge.faces.embedding import EMBEDDING_DIM
from sitewatch.edge.faces.tracks import FaceRegister

logger = logging.getLogger(__name__)

REGISTER_PATH = "/api/v1/register"


class RegisterSyncError(SitewatchError, RuntimeError):
    """The server could not be asked, or answered something unusable."""


@dataclass(frozen=True)
class SyncResult:
    version: int
    full: bool
    added: int
    removed: int
    #: The worker ids the server removed (tombstones) in this answer.
    removed_ids: tuple[str, ...] = ()


class RegisterSync:
    """Pulls the site's worker register into ``register_path`` (an .npz)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        register_path: Path,
        *,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
        on_change: Callable[[FaceRegister], None] | None = None,
    ) -> None:
        self.register_path = Path(register_path)
        #: Called with the new register after each applied change (to swap it in live).
        self.on_change = on_change
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._headers = {"Authorization": f"Bearer {token}"}
        self._lock = threading.Lock()
        self.register, self.version, self._party, self._names = _load(self.register_path)

    def party_member_ids(self) -> set[str]:
        with self._lock:
            return set(self._party)

    def name(self, worker_id: str) -> str:
        return self._names.get(worker_id, "")

    def sync(self) -> SyncResult:
        """One pull and apply; raises RegisterSyncError (the local register is kept)."""
        try:
            answer = self._client.get(
                REGISTER_PATH, params={"since_version": self.version}, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise RegisterSyncError(f"register sync: {exc}") from exc
        if answer.status_code != 200:
            raise RegisterSyncError(
                f"register sync: HTTP {answer.status_code} from {answer.url}: {answer.text[:200]}"
            )
        try:
            feed = answer.json()
        except ValueError as exc:
            raise RegisterSyncError(f"register sync: answer is not JSON ({exc})") from exc
        if not isinstance(feed, dict):
            raise RegisterSyncError("register sync: malformed answer (not an object)")
        return self.apply(feed)

    def apply(self, feed: dict[str, Any]) -> SyncResult:
        """Apply one feed answer (``sitewatch.contract.register.RegisterOut``), save the file."""
        try:
            answer = RegisterOut.model_validate(feed)
            version, full, removed = answer.version, answer.full, answer.removed
            updates = {
                w.worker_id: (
                    [np.asarray(e, np.float32).reshape(EMBEDDING_DIM) for e in w.embeddings],
                    w.is_party_member,
                    w.name,
                )
                for w in answer.workers
            }
        except (ValidationError, ValueError) as exc:
            raise RegisterSyncError(f"register sync: malformed answer ({exc})") from exc
        with self._lock:
            register = FaceRegister() if full else _copy(self.register)
            party, names = (set(), {}) if full else (set(self._party), dict(self._names))
            for worker_id in removed:
                register.remove(worker_id)
                party.discard(worker_id)
                names.pop(worker_id, None)
            for worker_id, (vectors, is_party, name) in updates.items():
                register.set(worker_id, vectors)
                names[worker_id] = name
                (party.add if is_party else party.discard)(worker_id)
            _save(self.register_path, register, version, party, names)
            self.register, self.version, self._party, self._names = register, version, party, names
        if self.on_change is not None and (full or updates or removed):
            self.on_change(register)
        logger.info(
            "face register v%d: %d worker(s) (+%d, -%d%s)",
            version,
            len(register),
            len(updates),
            len(removed),
            ", full" if full else "",
        )
        return SyncResult(
            version=version,
            full=full,
            added=len(updates),
            removed=len(removed),
            removed_ids=tuple(removed),
        )

    def poll(self, stop: threading.Event, interval_s: float = 60.0) -> None:
        """Sync every ``interval_s`` until ``stop`` is set (for a daemon thread); a failed
        sync is logged and retried at the next interval, the local register is kept."""
        while not stop.is_set():
            try:
                self.sync()
            except RegisterSyncError as exc:
                logger.warning("%s; keeping register v%d", exc, self.version)
            stop.wait(interval_s)

    def close(self) -> None:
        self._client.close()


def _copy(register: FaceRegister) -> FaceRegister:
    return FaceRegister({w: list(register.embeddings(w)) for w in register.worker_ids()})


def _save(
    path: Path, register: FaceRegister, version: int, party: set[str], names: dict[str, str]
) -> None:
    ids = register.worker_ids()
    rows = [register.embeddings(w) for w in ids]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".sync.tmp.npz")
    np.savez(
        tmp,
        worker_ids=np.array(ids, dtype=str),
        counts=np.array([len(r) for r in rows], np.int64),
        embeddings=np.vstack(rows) if rows else np.zeros((0, EMBEDDING_DIM), np.float32),
        names=np.array([names.get(w, "") for w in ids], dtype=str),
        version=np.array(version, np.int64),
        party_member_ids=np.array(sorted(party), dtype=str),
    )
    tmp.replace(path)


def _load(path: Path) -> tuple[FaceRegister, int, set[str], dict[str, str]]:
    """The register, version, party members and names of ``path`` (empty if absent)."""
    if not path.exists():
        return FaceRegister(), 0, set(), {}
    register = FaceRegister.load(path)
    with np.load(path, allow_pickle=False) as data:
        version = int(data["version"]) if "version" in data else 0
        party = {str(w) for w in data["party_member_ids"]} if "party_member_ids" in data else set()
        names = (
            dict(zip(register.worker_ids(), (str(n) for n in data["names"]), strict=True))
            if "names" in data
            else {}
        )
    return register, version, party, names
