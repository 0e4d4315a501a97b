"""rectification with roles: the responsible user of a hazard, and the site setting that
evidence is accepted by another user than its uploader (issue 18)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accept_by_other", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("hazards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("responsible_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_hazards_responsible_user_id",
            "users",
            ["responsible_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_hazards_responsible_user_id", ["responsible_user_id"])


def downgrade() -> None:
    with op.batch_alter_table("hazards", schema=None) as batch_op:
        batch_op.drop_index("ix_hazards_responsible_user_id")
        batch_op.drop_constraint("fk_hazards_responsible_user_id", type_="foreignkey")
        batch_op.drop_column("responsible_user_id")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("accept_by_other")
