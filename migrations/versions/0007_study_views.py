"""study views: which login session has opened which study (first view is audited)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_key", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_key"],
            ["user_sessions.token_hash"],
            name=op.f("fk_study_views_session_key_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name=op.f("fk_study_views_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_views")),
        sa.UniqueConstraint("session_key", "study_id", name=op.f("uq_study_views_session_key")),
    )
    with op.batch_alter_table("study_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_views_study_id"), ["study_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("study_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_views_study_id"))
    op.drop_table("study_views")
