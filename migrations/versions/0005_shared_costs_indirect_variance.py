"""shared costs over grants, allocation keys, indirect cost rates and caps, variance direction

Revision ID: 0005
Revises: 0004

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "allocation_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("basis", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "allocation_key_shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.CheckConstraint("weight > 0", name="ck_allocation_key_shares_weight"),
        sa.ForeignKeyConstraint(["grant_id"], ["grants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["key_id"], ["allocation_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["line_id"], ["budget_lines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id", "line_id", name="uq_allocation_key_shares_line"),
    )
    with op.batch_alter_table("allocation_key_shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocation_key_shares_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_key_shares_key_id"), ["key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_key_shares_line_id"), ["line_id"], unique=False)

    op.create_table(
        "shared_costs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spent_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column(
            "method",
            sa.Enum(
                "percent", "amount", "key", name="ck_splitmethod", native_enum=False, create_constraint=True, length=20
            ),
            nullable=False,
        ),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint("amount <> 0", name="ck_shared_costs_amount"),
        sa.ForeignKeyConstraint(["key_id"], ["allocation_keys.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shared_costs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shared_costs_key_id"), ["key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shared_costs_spent_on"), ["spent_on"], unique=False)

    with op.batch_alter_table("expenditures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shared_cost_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("share", sa.Numeric(precision=16, scale=4), nullable=True))
        batch_op.create_index(batch_op.f("ix_expenditures_shared_cost_id"), ["shared_cost_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_expenditures_shared_cost_id", "shared_costs", ["shared_cost_id"], ["id"], ondelete="CASCADE"
        )

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("indirect_rate", sa.Numeric(precision=7, scale=4), nullable=True))
        batch_op.add_column(
            sa.Column(
                "indirect_base",
                sa.Enum(
                    "total_direct",
                    "modified_direct",
                    name="ck_indirectbase",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                server_default="total_direct",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("indirect_excluded", sa.JSON(), nullable=True))

    with op.batch_alter_table("funders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("indirect_cap_percent", sa.Numeric(precision=7, scale=4), nullable=True))

    with op.batch_alter_table("variance_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "direction",
                sa.Enum(
                    "over",
                    "under",
                    "both",
                    name="ck_variancedirection",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                server_default="over",
                nullable=False,
            )
        )


def downgrade():
    with op.batch_alter_table("variance_rules", schema=None) as batch_op:
        batch_op.drop_column("direction")
    with op.batch_alter_table("funders", schema=None) as batch_op:
        batch_op.drop_column("indirect_cap_percent")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("indirect_excluded")
        batch_op.drop_column("indirect_base")
        batch_op.drop_column("indirect_rate")
    with op.batch_alter_table("expenditures", schema=None) as batch_op:
        batch_op.drop_constraint("fk_expenditures_shared_cost_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_expenditures_shared_cost_id"))
        batch_op.drop_column("share")
        batch_op.drop_column("shared_cost_id")
    with op.batch_alter_table("shared_costs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shared_costs_spent_on"))
        batch_op.drop_index(batch_op.f("ix_shared_costs_key_id"))
    op.drop_table("shared_costs")
    with op.batch_alter_table("allocation_key_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocation_key_shares_line_id"))
        batch_op.drop_index(batch_op.f("ix_allocation_key_shares_key_id"))
        batch_op.drop_index(batch_op.f("ix_allocation_key_shares_grant_id"))
    op.drop_table("allocation_key_shares")
    op.drop_table("allocation_keys")
