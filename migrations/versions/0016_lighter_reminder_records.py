"""reminders: a lighter record per message (the first sweep at 100,000 deadlines)

A reminder's in-app notification shows the reminder's own subject and body instead of a
copy (its title and body are empty; other notifications keep theirs), and the reminder
table keeps only the indexes its queries use: the claim's key, the creation time, and
one index for the open claims and failures (status, lease, next try) in place of four.

Revision ID: 0016
Revises: 0015

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reminder_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_reminder_logs_retry")
        batch_op.drop_index("ix_reminder_logs_lease")
        batch_op.drop_index("ix_reminder_logs_claimed_by")
        batch_op.drop_index("ix_reminder_logs_recipient_id")
        batch_op.create_index("ix_reminder_logs_open", ["status", "lease_until", "next_attempt_at"], unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_created_at")
        batch_op.alter_column("title", existing_type=sa.String(length=300), nullable=True)
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)
    # A reminder's notification that repeats its reminder's words word for word no longer keeps a copy.
    op.execute(
        "UPDATE notifications SET title = NULL, body = NULL"
        " WHERE reminder_log_id IS NOT NULL AND EXISTS (SELECT 1 FROM reminder_logs"
        " WHERE reminder_logs.id = notifications.reminder_log_id"
        " AND reminder_logs.subject = notifications.title AND reminder_logs.body = notifications.body)"
    )


def downgrade():
    # The copies come back from the reminders they were taken from.
    op.execute(
        "UPDATE notifications SET"
        " title = COALESCE(title, (SELECT subject FROM reminder_logs WHERE reminder_logs.id = notifications.reminder_log_id), ''),"
        " body = COALESCE(body, (SELECT body FROM reminder_logs WHERE reminder_logs.id = notifications.reminder_log_id), '')"
        " WHERE title IS NULL OR body IS NULL"
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("title", existing_type=sa.String(length=300), nullable=False)
        batch_op.create_index("ix_notifications_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("reminder_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_reminder_logs_open")
        batch_op.create_index("ix_reminder_logs_recipient_id", ["recipient_id"], unique=False)
        batch_op.create_index("ix_reminder_logs_claimed_by", ["claimed_by"], unique=False)
        batch_op.create_index("ix_reminder_logs_lease", ["status", "lease_until"], unique=False)
        batch_op.create_index("ix_reminder_logs_retry", ["status", "next_attempt_at"], unique=False)
