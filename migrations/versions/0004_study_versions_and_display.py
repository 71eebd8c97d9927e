"""study versions, 4-D volume count, value range and window, reader notes, job options

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("volume_count", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("value_min", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("value_max", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("window_level", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("window_width", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("notes", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        # Studies imported before versions existed each start their own lineage.
        batch_op.add_column(
            sa.Column("lineage", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_studies_lineage"), ["lineage"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_studies_superseded_at"), ["superseded_at"], unique=False
        )
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notes", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("options", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_column("options")
        batch_op.drop_column("notes")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_studies_superseded_at"))
        batch_op.drop_index(batch_op.f("ix_studies_lineage"))
        for column in (
            "superseded_at",
            "version",
            "lineage",
            "notes",
            "window_width",
            "window_level",
            "value_max",
            "value_min",
            "volume_count",
        ):
            batch_op.drop_column(column)
