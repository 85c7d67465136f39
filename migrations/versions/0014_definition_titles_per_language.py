"""indicator and requirement definitions: a title per language

Revision ID: 0014
Revises: 0013

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    # {"es": "...", "fr": "..."}: the name in other languages; existing rows have none.
    with op.batch_alter_table("requirements") as batch:
        batch.add_column(sa.Column("titles", sa.JSON(), nullable=True))
    with op.batch_alter_table("indicators") as batch:
        batch.add_column(sa.Column("titles", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("indicators") as batch:
        batch.drop_column("titles")
    with op.batch_alter_table("requirements") as batch:
        batch.drop_column("titles")
