"""grants: the DAC 5-digit sectors a grant is published under in its IATI activity file

Revision ID: 0008
Revises: 0007

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("iati_sectors", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("iati_sectors")
