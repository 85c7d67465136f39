"""reminder claims: a renewable lease and the moment a message was handed to SMTP

Revision ID: 0009
Revises: 0008

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DEFAULT_LEASE_MINUTES = 30


def upgrade():
    with op.batch_alter_table("reminder_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_reminder_logs_claim")
        batch_op.create_index("ix_reminder_logs_lease", ["status", "lease_until"], unique=False)
    # Claims left by a sweep of the previous release keep the lease they had (claimed_at + 30 minutes).
    if op.get_bind().dialect.name == "postgresql":
        until = f"claimed_at + interval '{DEFAULT_LEASE_MINUTES} minutes'"
    else:
        until = f"datetime(claimed_at, '+{DEFAULT_LEASE_MINUTES} minutes')"
    op.execute(f"UPDATE reminder_logs SET lease_until = {until} WHERE status = 'claimed'")


def downgrade():
    with op.batch_alter_table("reminder_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_reminder_logs_lease")
        batch_op.create_index("ix_reminder_logs_claim", ["status", "claimed_at"], unique=False)
        batch_op.drop_column("handed_over_at")
        batch_op.drop_column("lease_until")
