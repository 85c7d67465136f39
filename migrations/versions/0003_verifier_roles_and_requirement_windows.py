"""who may verify results on a grant; requirement windows independent of reporting periods

Revision ID: 0003
Revises: 0002

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_FREQUENCIES = ("once", "per_period", "annual")
NEW_FREQUENCIES = (*OLD_FREQUENCIES, "month", "quarter", "semester", "grant", "custom")


def _frequency(values):
    return sa.Enum(*values, name="ck_frequency", native_enum=False, create_constraint=True, length=20)


def _change_frequencies(old, new):
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a CHECK: the batch copies the table with the new one.
        with op.batch_alter_table("requirements", schema=None) as batch_op:
            batch_op.alter_column("frequency", existing_type=_frequency(old), type_=_frequency(new), nullable=False)
    else:
        op.drop_constraint("ck_frequency", "requirements", type_="check")
        listed = ", ".join(f"'{value}'" for value in new)
        op.create_check_constraint("ck_frequency", "requirements", f"frequency IN ({listed})")


def upgrade():
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verifier_roles", sa.String(length=100), nullable=False, server_default="lead,program,finance")
        )
    with op.batch_alter_table("requirements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("window_end", sa.Date(), nullable=True))
    _change_frequencies(OLD_FREQUENCIES, NEW_FREQUENCIES)


def downgrade():
    # Windows the old schema cannot hold fall back to the reporting periods.
    listed = ", ".join(f"'{value}'" for value in OLD_FREQUENCIES)
    op.execute(f"UPDATE requirements SET frequency = 'per_period' WHERE frequency NOT IN ({listed})")
    _change_frequencies(NEW_FREQUENCIES, OLD_FREQUENCIES)
    with op.batch_alter_table("requirements", schema=None) as batch_op:
        batch_op.drop_column("window_end")
        batch_op.drop_column("window_start")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("verifier_roles")
