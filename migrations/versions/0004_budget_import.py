"""budget line totals and budget file imports

Revision ID: 0004
Revises: 0003

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("budget_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("total", sa.Numeric(precision=18, scale=2), nullable=True))

    op.create_table(
        "budget_plan_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_type", sa.String(length=10), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "previewed",
                "rejected",
                "imported",
                name="ck_importstatus",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=True),
        sa.Column("mapping", sa.JSON(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("lines_added", sa.Integer(), nullable=False),
        sa.Column("lines_changed", sa.Integer(), nullable=False),
        sa.Column("lines_unchanged", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["grant_id"], ["grants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["revision_id"], ["budget_revisions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("budget_plan_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budget_plan_imports_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_budget_plan_imports_sha256"), ["sha256"], unique=False)


def downgrade():
    with op.batch_alter_table("budget_plan_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_plan_imports_sha256"))
        batch_op.drop_index(batch_op.f("ix_budget_plan_imports_grant_id"))
    op.drop_table("budget_plan_imports")
    with op.batch_alter_table("budget_lines", schema=None) as batch_op:
        batch_op.drop_column("total")
