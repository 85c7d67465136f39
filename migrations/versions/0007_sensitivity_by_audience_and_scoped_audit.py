"""sensitivity named by audience, two-person lowering of restricted evidence, audit entries by grant

Revision ID: 0007
Revises: 0006

- evidence_items.sensitivity: public -> shared_with_donors, internal -> staff_only,
  confidential -> restricted (the CHECK constraint follows);
- sensitivity_requests: a request to lower a restricted item, decided by a second person;
- audit_log.grant_id: the grant an entry belongs to, so auditors read only their grants'
  entries; filled in for existing entries wherever the record or its changes name a grant.
"""

import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD = ("public", "internal", "confidential")
NEW = ("shared_with_donors", "staff_only", "restricted")
LEVELS = {"public": "shared_with_donors", "internal": "staff_only", "confidential": "restricted"}


def _check(values):
    return "sensitivity IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def _relabel(mapping, new_values):
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.drop_constraint("ck_sensitivity", type_="check")
    items = sa.table("evidence_items", sa.column("sensitivity", sa.String(20)))
    for before, after in mapping.items():
        op.execute(items.update().where(items.c.sensitivity == before).values(sensitivity=after))
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.create_check_constraint("ck_sensitivity", _check(new_values))


def _grant_of_existing_entries():
    """Fill audit_log.grant_id from each entry's changes, else from its record's grant_id today."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    with_grant = {
        name
        for name in inspector.get_table_names()
        if any(c["name"] == "grant_id" for c in inspector.get_columns(name))
    }
    cache = {}
    log = sa.table(
        "audit_log",
        sa.column("id", sa.Integer),
        sa.column("table_name", sa.String),
        sa.column("record_id", sa.String),
        sa.column("changes", sa.JSON),
        sa.column("grant_id", sa.Integer),
    )
    updates = []
    for entry_id, table_name, record_id, changes in bind.execute(
        sa.select(log.c.id, log.c.table_name, log.c.record_id, log.c.changes)
    ):
        if isinstance(changes, str):
            try:
                changes = json.loads(changes)
            except ValueError:
                changes = {}
        grant_id = None
        if table_name == "grants" and str(record_id).isdigit():
            grant_id = int(record_id)
        pair = (changes or {}).get("grant_id") if isinstance(changes, dict) else None
        if grant_id is None and isinstance(pair, list):
            grant_id = next((value for value in reversed(pair) if isinstance(value, int)), None)
        if grant_id is None and table_name in with_grant and str(record_id).isdigit():
            if table_name not in cache:
                table = sa.table(table_name, sa.column("id", sa.Integer), sa.column("grant_id", sa.Integer))
                cache[table_name] = dict(bind.execute(sa.select(table.c.id, table.c.grant_id)).all())
            grant_id = cache[table_name].get(int(record_id))
        if grant_id is not None:
            updates.append({"entry": entry_id, "grant": grant_id})
    if updates:
        bind.execute(
            log.update().where(log.c.id == sa.bindparam("entry")).values(grant_id=sa.bindparam("grant")), updates
        )


def upgrade():
    _relabel(LEVELS, NEW)
    op.create_table(
        "sensitivity_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column(
            "from_level",
            sa.Enum(*NEW, name="ck_sensitivity_from", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column(
            "to_level",
            sa.Enum(*NEW, name="ck_sensitivity_to", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                name="ck_requeststatus",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence_items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grant_id"], ["grants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sensitivity_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sensitivity_requests_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index("ix_sensitivity_requests_evidence_status", ["evidence_id", "status"], unique=False)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grant_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_log_grant_id"), ["grant_id"], unique=False)
    _grant_of_existing_entries()


def downgrade():
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_grant_id"))
        batch_op.drop_column("grant_id")
    with op.batch_alter_table("sensitivity_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_sensitivity_requests_evidence_status")
        batch_op.drop_index(batch_op.f("ix_sensitivity_requests_grant_id"))
    op.drop_table("sensitivity_requests")
    _relabel({after: before for before, after in LEVELS.items()}, OLD)
