"""The worker register feed a box pulls (``GET /api/v1/register?since_version=N``)."""

from __future__ import annotations

from pydantic import BaseModel


class RegisterWorker(BaseModel):
    worker_id: str
    name: str
    is_party_member: bool
    embeddings: list[list[float]]


class RegisterOut(BaseModel):
    version: int
    #: True: replace the local register with ``workers``; false: apply the changes.
    full: bool
    workers: list[RegisterWorker]
    #: Worker ids removed (changed since ``since_version``; every removed one when full).
    removed: list[str]
