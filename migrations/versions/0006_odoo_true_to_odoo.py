"""Odoo links checked against Odoo, unmapped lines kept, bills' own currency, background jobs

Revision ID: 0006
Revises: 0005

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("odoo_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("plan_column", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("account_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "amount_basis",
                sa.Enum(
                    "company", "bill", name="ck_odooamountbasis", native_enum=False, create_constraint=True, length=20
                ),
                nullable=False,
                server_default="company",
            )
        )
        batch_op.add_column(sa.Column("removal_limit_percent", sa.Integer(), nullable=False, server_default="25"))
        batch_op.add_column(sa.Column("dismissed_accounts", sa.JSON(), nullable=True))

    op.create_table(
        "odoo_unmapped_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("odoo_line_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("account_label", sa.String(length=200), nullable=False),
        sa.Column("spent", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["odoo_links.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("link_id", "odoo_line_id", name="uq_odoo_unmapped_lines_line"),
    )
    with op.batch_alter_table("odoo_unmapped_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_odoo_unmapped_lines_link_id"), ["link_id"], unique=False)

    op.create_table(
        "odoo_own_amounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("expenditure_id", sa.Integer(), nullable=False),
        sa.Column("company_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("company_currency", sa.String(length=3), nullable=False),
        sa.Column("own_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("own_currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(["expenditure_id"], ["expenditures.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("expenditure_id"),
    )


def downgrade():
    op.drop_table("odoo_own_amounts")
    with op.batch_alter_table("odoo_unmapped_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_odoo_unmapped_lines_link_id"))
    op.drop_table("odoo_unmapped_lines")
    with op.batch_alter_table("odoo_links", schema=None) as batch_op:
        batch_op.drop_column("dismissed_accounts")
        batch_op.drop_column("removal_limit_percent")
        batch_op.drop_column("amount_basis")
        batch_op.drop_column("account_checked_at")
        batch_op.drop_column("plan_column")
        batch_op.drop_column("plan_id")
