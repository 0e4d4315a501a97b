"""shared state for several server processes: login failures in the database, and
audit object ids wide enough for "site/worker" (64 + 1 + 64 characters)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column(
            "object_id",
            existing_type=sa.String(length=64),
            type_=sa.String(length=160),
            existing_nullable=False,
        )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_login_failures_key_at", ["key", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_failures_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_failures_at"))
        batch_op.drop_index("ix_login_failures_key_at")
    op.drop_table("login_failures")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column(
            "object_id",
            existing_type=sa.String(length=160),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
