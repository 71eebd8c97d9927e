"""review model: items, reads, comments, assignments, project roles; audit columns

Also makes the audit log append-only with triggers (both dialects). Note: a later
`batch_alter_table("audit_log")` on SQLite recreates the table and drops its triggers;
such a migration must create them again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 13:12:48.221003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("assigned_by_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"], ["users.id"], name=op.f("fk_assignments_assigned_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_assignments_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name=op.f("fk_assignments_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assignments_assignee_id"), ["assignee_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_assignments_ended_at"), ["ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_assignments_study_id"), ["study_id"], unique=False)

    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("segmentation_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["segmentation_id"],
            ["segmentations.id"],
            name=op.f("fk_review_items_segmentation_id_segmentations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name=op.f("fk_review_items_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_review_items_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        sa.UniqueConstraint("study_id", "key", name=op.f("uq_review_items_study_id")),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_items_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_items_study_id"), ["study_id"], unique=False)

    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("world_mm", sa.JSON(), nullable=True),
        sa.Column("slice_index", sa.Integer(), nullable=True),
        sa.Column("axis", sa.String(length=8), nullable=False),
        sa.Column("label_value", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_comments_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_items.id"],
            name=op.f("fk_comments_item_id_review_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["comments.id"],
            name=op.f("fk_comments_parent_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["users.id"], name=op.f("fk_comments_resolved_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comments_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_comments_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "review_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("label_verdicts", sa.JSON(), nullable=False),
        sa.Column("segmentation_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_items.id"],
            name=op.f("fk_review_reads_item_id_review_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"], ["users.id"], name=op.f("fk_review_reads_reader_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["segmentation_id"],
            ["segmentations.id"],
            name=op.f("fk_review_reads_segmentation_id_segmentations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_reads")),
        sa.UniqueConstraint("item_id", "reader_id", "round", name=op.f("uq_review_reads_item_id")),
    )
    with op.batch_alter_table("review_reads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_reads_item_id"), ["item_id"], unique=False)

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("study_uid", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("outcome", sa.String(length=16), nullable=False, server_default="ok")
        )
        batch_op.add_column(
            sa.Column("address", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_study_uid"), ["study_uid"], unique=False)

    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="reviewer")
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("required_reads", sa.Integer(), nullable=False, server_default="1")
        )

    with op.batch_alter_table("review_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("action", sa.String(length=16), nullable=False, server_default="transition")
        )
        batch_op.add_column(
            sa.Column("from_status", sa.String(length=24), nullable=False, server_default="")
        )
        batch_op.create_index(batch_op.f("ix_review_events_item_id"), ["item_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_review_events_item_id_review_items"),
            "review_items",
            ["item_id"],
            ["id"],
            ondelete="CASCADE",
        )

    _backfill()
    _append_only_audit()


def _backfill() -> None:
    """Review items for existing studies, carrying each study's flag onto its first item."""
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE project_members SET role = CASE "
            "(SELECT u.role FROM users u WHERE u.id = project_members.user_id) "
            "WHEN 'admin' THEN 'lead' WHEN 'expert' THEN 'expert' ELSE 'reviewer' END"
        )
    )
    now = sa.func.now()
    studies = conn.execute(sa.text("SELECT id, review_status FROM studies")).all()
    items = sa.table(
        "review_items",
        sa.column("id", sa.Integer),
        sa.column("study_id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("segmentation_id", sa.Integer),
        sa.column("state", sa.String),
        sa.column("version", sa.Integer),
        sa.column("round", sa.Integer),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    for study_id, status in studies:
        segs = (
            conn.execute(
                sa.text("SELECT id FROM segmentations WHERE study_id = :s ORDER BY id"),
                {"s": study_id},
            )
            .scalars()
            .all()
        )
        rows = [("image", None)] + [(f"seg:{seg}", seg) for seg in segs]
        for n, (key, seg) in enumerate(rows):
            primary = (n == 1) if segs else (n == 0)
            conn.execute(
                items.insert().values(
                    study_id=study_id,
                    key=key,
                    segmentation_id=seg,
                    state=status if primary else "unreviewed",
                    version=1,
                    round=1,
                    updated_at=now,
                )
            )
        primary_key = f"seg:{segs[0]}" if segs else "image"
        conn.execute(
            sa.text(
                "UPDATE review_events SET item_id = (SELECT id FROM review_items "
                "WHERE study_id = :s AND key = :k) WHERE study_id = :s"
            ),
            {"s": study_id, "k": primary_key},
        )


def _append_only_audit() -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE) of audit rows in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def _drop_audit_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def downgrade() -> None:
    _drop_audit_triggers()
    with op.batch_alter_table("review_events", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_review_events_item_id_review_items"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_review_events_item_id"))
        batch_op.drop_column("from_status")
        batch_op.drop_column("action")
        batch_op.drop_column("item_id")

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("required_reads")

    with op.batch_alter_table("project_members", schema=None) as batch_op:
        batch_op.drop_column("role")

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_study_uid"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))
        batch_op.drop_column("address")
        batch_op.drop_column("outcome")
        batch_op.drop_column("study_uid")
        batch_op.drop_column("role")

    with op.batch_alter_table("review_reads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_reads_item_id"))

    op.drop_table("review_reads")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comments_parent_id"))
        batch_op.drop_index(batch_op.f("ix_comments_item_id"))

    op.drop_table("comments")
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_items_study_id"))
        batch_op.drop_index(batch_op.f("ix_review_items_state"))

    op.drop_table("review_items")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_study_id"))
        batch_op.drop_index(batch_op.f("ix_assignments_ended_at"))
        batch_op.drop_index(batch_op.f("ix_assignments_assignee_id"))

    op.drop_table("assignments")
