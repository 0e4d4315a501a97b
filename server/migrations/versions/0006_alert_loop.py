"""alert loop: site time zones, rule hours and escalation, digests and hazard messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active_from", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("active_to", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("weekdays", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("escalation", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="event")
        )
        batch_op.alter_column("event_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("hazard_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            "fk_notifications_hazard_id", "hazards", ["hazard_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index("ix_notifications_hazard_id", ["hazard_id"])
        batch_op.create_index("ix_notifications_digest_id", ["digest_id"])
        batch_op.create_index(
            "ix_notifications_channel_key", ["channel_id", "dedupe_key"], unique=True
        )


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE event_id IS NULL")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_channel_key")
        batch_op.drop_index("ix_notifications_digest_id")
        batch_op.drop_index("ix_notifications_hazard_id")
        batch_op.drop_constraint("fk_notifications_hazard_id", type_="foreignkey")
        batch_op.drop_column("payload")
        batch_op.drop_column("dedupe_key")
        batch_op.drop_column("digest_id")
        batch_op.drop_column("hazard_id")
        batch_op.alter_column("event_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("kind")
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_column("escalation")
        batch_op.drop_column("weekdays")
        batch_op.drop_column("active_to")
        batch_op.drop_column("active_from")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("timezone")
