"""Audit object ids as long as the API allows (defect 7b): a worker's audit entries are
keyed "site/worker", up to 64 + 1 + 64 characters, which overflowed the audit log's old
64-character column (a 500 on PostgreSQL; SQLite does not enforce VARCHAR lengths)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from sitewatch.server.db.models import AuditEntry, Role
from sitewatch.server.services import workers
from tests.server.conftest import ServerEnv

SITE = "s" * 64  # a site id and a worker id of the longest length the API accepts
WORKER = "w-" + "x" * 62


def _fake_embeddings(*_args: Any, **_kwargs: Any) -> list[np.ndarray]:
    vector = np.ones(128, np.float32)
    return [vector / np.linalg.norm(vector)]


def test_longest_worker_id_is_audited(
    server_env: ServerEnv, jpeg_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The face models are not what this is about: any photo gives one embedding.
    monkeypatch.setattr(workers, "embed_photos", _fake_embeddings)
    admin = server_env.user("root", Role.ADMIN, [SITE])
    assert len(WORKER) == 64

    enrolled = admin.post(
        f"/api/v1/workers/{SITE}",
        data={
            "worker_id": WORKER,
            "name": "Ann",
            "consent_given": "true",
            "consent_method": "signed form",
        },
        files=[("photos", ("face.jpg", jpeg_bytes, "image/jpeg"))],
    )
    assert enrolled.status_code == 201, enrolled.text
    patched = admin.patch(f"/api/v1/workers/{SITE}/{WORKER}", json={"team": "steel"})
    assert patched.status_code == 200, patched.text
    removed = admin.delete(f"/api/v1/workers/{SITE}/{WORKER}")
    assert removed.status_code == 200, removed.text

    with server_env.database.session() as db:
        entries = db.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "worker").order_by(AuditEntry.id)
        ).all()
    assert [e.action for e in entries] == ["worker.enrol", "worker.update", "worker.remove"]
    assert {e.object_id for e in entries} == {f"{SITE}/{WORKER}"}
    assert len(entries[0].object_id) == 129
