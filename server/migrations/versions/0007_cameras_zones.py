"""cameras and zones on the server: the camera table, versioned site zones, and each
event's zones version and track boxes (issue 17)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("fps", sa.Double(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("last_frame_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("zones_version", sa.Integer(), nullable=True),
        sa.Column("yaml_zones", sa.JSON(), nullable=True),
        sa.Column("picture_key", sa.String(length=255), nullable=True),
        sa.Column("picture_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("picture_persons", sa.JSON(), nullable=True),
        sa.Column("picture_wanted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offline_alarm_for", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "camera_id"),
    )
    op.create_table(
        "site_zone_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=False),
        sa.Column("changed_camera", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=140), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "version"),
    )
    with op.batch_alter_table("site_zone_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_site_zone_versions_site_id"), ["site_id"])
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zones_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("track_boxes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("track_boxes")
        batch_op.drop_column("zones_version")
    with op.batch_alter_table("site_zone_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_site_zone_versions_site_id"))
    op.drop_table("site_zone_versions")
    op.drop_table("cameras")
