"""period submission (who, when) and unpublishing with a reason

Revision ID: 0002
Revises: 0001

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reporting_periods", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("submitted_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("export_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unpublished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("unpublished_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("unpublish_reason", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("export_records", schema=None) as batch_op:
        batch_op.drop_column("unpublish_reason")
        batch_op.drop_column("unpublished_by")
        batch_op.drop_column("unpublished_at")
    with op.batch_alter_table("reporting_periods", schema=None) as batch_op:
        batch_op.drop_column("submitted_by")
        batch_op.drop_column("submitted_at")
