"""budget revisions: a move of money may go to another reporting period (of the same line or another)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("budget_revision_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("to_period_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_budget_revision_items_to_period_id",
            "reporting_periods",
            ["to_period_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_constraint("ck_budget_revision_items_lines", type_="check")
        batch_op.create_check_constraint(
            "ck_budget_revision_items_lines",
            "from_line_id <> to_line_id OR (to_period_id IS NOT NULL AND to_period_id <> period_id)",
        )


def downgrade():
    op.execute("DELETE FROM budget_revision_items WHERE from_line_id = to_line_id")
    with op.batch_alter_table("budget_revision_items", schema=None) as batch_op:
        batch_op.drop_constraint("ck_budget_revision_items_lines", type_="check")
        batch_op.create_check_constraint("ck_budget_revision_items_lines", "from_line_id <> to_line_id")
        batch_op.drop_constraint("fk_budget_revision_items_to_period_id", type_="foreignkey")
        batch_op.drop_column("to_period_id")
