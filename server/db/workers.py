"""The worker register (issue 6): enrolled workers, their face embeddings, and the
per-site register version that edge boxes sync from.

Its tables join ``Base.metadata`` with the others in :mod:`sitewatch.server.db.tables`.
Photos are never stored: the server computes the embeddings and drops the upload.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sitewatch.server.db.base import Base
from sitewatch.server.db.types import UTCDateTime, utcnow


class RegisterVersion(Base):
    """The latest register version of a site: bumped by every enrol, update, removal."""

    __tablename__ = "register_versions"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


class Worker(Base):
    __tablename__ = "workers"
    __table_args__ = (
        UniqueConstraint("site_id", "worker_id"),
        Index("ix_workers_site_version", "site_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    worker_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    is_party_member: Mapped[bool] = mapped_column(default=False)
    consent_given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consent_recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    consent_method: Mapped[str] = mapped_column(String(64))
    consent_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set on removal: the row stays as a tombstone for the sync feed, embeddings go.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The site's register version of this worker's last change.
    version: Mapped[int] = mapped_column(default=0)
    embeddings: Mapped[list[WorkerEmbedding]] = relationship(
        back_populates="worker", cascade="all, delete-orphan", order_by="WorkerEmbedding.id"
    )


class WorkerEmbedding(Base):
    """One SFace embedding: 128 little-endian float32 values (512 bytes)."""

    __tablename__ = "worker_embeddings"

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_pk: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    worker: Mapped[Worker] = relationship(back_populates="embeddings")
