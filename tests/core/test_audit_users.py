"""Users, roles, memberships and passwords leave a trace in the audit trail, never the password itself;
and the trail (like the reminder outbox) is read per grant: an auditor reads only their grants' entries,
an organisation-wide auditor reads all of it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, login

NEW_PASSWORD = "a brand new long passphrase 42"


def _entries(session, table: str, record_id: int | None = None) -> list:
    from core.audit import AuditEntry

    session.rollback()
    query = select(AuditEntry).where(AuditEntry.table_name == table).order_by(AuditEntry.id)
    if record_id is not None:
        query = query.where(AuditEntry.record_id == str(record_id))
    return list(session.scalars(query))


def _whole_trail_text(session) -> str:
    from core.audit import AuditEntry

    session.rollback()
    return json.dumps([[e.record_label, e.changes] for e in session.scalars(select(AuditEntry))], default=str)


def test_a_user_created_at_the_command_line_is_in_the_trail_with_roles_but_without_the_password(app, world, db_session):
    from app.users import create_user

    create_user(app, "newcomer", "newcomer@test.example.org", "Program", PASSWORD, "New", "Comer")
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="newcomer")
        user_id, password_hash = user.id, user.password
    added = [e for e in _entries(db_session, "ab_user", user_id) if e.action == "insert"]
    assert len(added) == 1
    entry = added[0]
    assert entry.source == "cli" and entry.username == "cli"
    assert entry.changes["username"] == [None, "newcomer"]
    assert entry.changes["roles"] == [None, ["Program"]]
    assert entry.changes["password"] == [None, "changed"]
    trail = _whole_trail_text(db_session)
    assert PASSWORD not in trail and password_hash not in trail


def test_a_password_reset_at_the_command_line_says_changed_and_nothing_more(app, world, db_session):
    from app.users import reset_password

    reset_password(app, "program", NEW_PASSWORD)
    with app.app_context():
        password_hash = app.appbuilder.sm.find_user(username="program").password
    updates = [e for e in _entries(db_session, "ab_user", world.users["Program"]) if e.action == "update"]
    assert updates and updates[-1].changes == {"password": [None, "changed"]}
    assert updates[-1].source == "cli"
    trail = _whole_trail_text(db_session)
    assert NEW_PASSWORD not in trail and password_hash not in trail


def test_signing_in_leaves_no_entry(app, world, db_session):
    before = len(_entries(db_session, "ab_user"))
    login(app.test_client(), "donor")
    assert len(_entries(db_session, "ab_user")) == before


def test_an_admin_deactivating_a_user_and_changing_roles_on_the_web_is_in_the_trail(
    app, world, admin_client, db_session
):
    from flask_appbuilder.security.sqla.models import Role

    db_session.rollback()
    donor_role = db_session.scalar(select(Role).where(Role.name == "Donor"))
    auditor_role = db_session.scalar(select(Role).where(Role.name == "Auditor"))
    response = admin_client.post(
        f"/users/edit/{world.users['Donor']}",
        data={
            "first_name": "donor",
            "last_name": "-",
            "username": "donor",
            "email": "donor@test.example.org",
            "active": "",
            "roles": [str(donor_role.id), str(auditor_role.id)],
        },
        follow_redirects=False,
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    updates = [e for e in _entries(db_session, "ab_user", world.users["Donor"]) if e.action == "update"]
    assert updates and all(e.source == "web" and e.username == "admin" for e in updates)
    changed = {key: pair for e in updates for key, pair in e.changes.items()}  # FAB may flush twice
    assert changed["active"] == [True, False]
    assert changed["roles"] == [["Donor"], ["Auditor", "Donor"]]
    assert "password" not in changed


def test_an_admin_resetting_a_password_on_the_web_is_in_the_trail_without_it(app, world, admin_client, db_session):
    response = admin_client.post(
        f"/users/action/resetpasswords/{world.users['Finance']}",
        follow_redirects=False,
    )
    form_url = response.headers.get("Location", "")
    if "resetpassword" in form_url.lower():
        admin_client.post(form_url, data={"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    else:  # FAB's own form route
        admin_client.post(
            f"/resetpassword/form?pk={world.users['Finance']}",
            data={"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD},
        )
    updates = [e for e in _entries(db_session, "ab_user", world.users["Finance"]) if e.action == "update"]
    assert updates and updates[-1].changes.get("password") == [None, "changed"]
    assert updates[-1].username == "admin"
    assert NEW_PASSWORD not in _whole_trail_text(db_session)


def test_a_membership_change_is_in_the_trail_under_its_grant(app, world, session):
    from core.audit import AuditEntry
    from grants import services
    from grants.models import Grant, MemberRole

    finance = session.get(app.appbuilder.sm.user_model, world.users["Finance"])
    services.add_member(session, session.get(Grant, world.grant_b), finance, MemberRole.finance)
    session.commit()
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.table_name == "grant_memberships").order_by(AuditEntry.id.desc())
    ).first()
    assert entry.action == "insert" and entry.grant_id == world.grant_b


# ---------------------------------------------------------------- who reads the trail and the outbox


def _user(app, username: str, role: str) -> int:
    from app.users import create_user

    create_user(app, username, f"{username}@test.example.org", role, PASSWORD)
    with app.app_context():
        return app.appbuilder.sm.find_user(username=username).id


@pytest.fixture
def grant_b_activity(app, world, session):
    """Something recorded on grant B only: a requirement, a deadline and a reminder about it."""
    from grants.compliance import services as compliance
    from grants.deadlines.models import ReminderLog, ReminderStatus
    from grants.deadlines.services import create_deadline

    compliance.create_requirement(
        session, world.grant_b, code="RB-1", title="Hidden bylaw review", category="community_inclusion", rules=[]
    )
    deadline = create_deadline(session, grant_id=world.grant_b, title="Hidden audit visit", due_date="2026-09-01")
    session.add(
        ReminderLog(
            deadline_id=deadline.id,
            offset_key="due",
            recipient_id=world.users["Finance"],
            status=ReminderStatus.sent,
            subject="Reminder: Hidden audit visit",
            body="Hidden audit visit is due",
            created_at=dt.datetime(2026, 8, 1, tzinfo=dt.UTC),
        )
    )
    compliance.create_requirement(
        session, world.grant_a, code="RA-1", title="Visible minutes", category="community_inclusion", rules=[]
    )
    session.commit()


def test_an_auditor_of_no_grant_reads_no_entry_and_no_reminder(app, world, grant_b_activity):
    _user(app, "lonely", "Auditor")
    client = login(app.test_client(), "lonely")
    trail = client.get("/audit/list/")
    assert trail.status_code == 200
    text = trail.get_data(as_text=True)
    assert "Hidden bylaw review" not in text and "Visible minutes" not in text and "Grant B" not in text
    assert "No records found" in text or "no records" in text.lower()
    outbox = client.get("/reminder-outbox/list/").get_data(as_text=True)
    assert "Hidden audit visit" not in outbox


def test_an_auditor_of_grant_a_reads_grant_a_entries_only(app, world, grant_b_activity, auditor_client):
    text = auditor_client.get("/audit/list/?psize_AuditLogView=100").get_data(as_text=True)
    assert "Visible minutes" in text
    assert "Hidden bylaw review" not in text and "Grant B (secret)" not in text and "GB-1" not in text
    assert "newcomer" not in text and "ab_user" not in text  # users and roles: the organisation's own entries
    assert "Hidden audit visit" not in auditor_client.get("/reminder-outbox/list/").get_data(as_text=True)


def test_an_organisation_wide_auditor_reads_the_whole_trail_and_every_reminder(app, world, grant_b_activity):
    _user(app, "orgaudit", "Org auditor")
    client = login(app.test_client(), "orgaudit")
    text = client.get("/audit/list/?psize_AuditLogView=100").get_data(as_text=True)
    assert "Hidden bylaw review" in text and "Visible minutes" in text
    assert "orgaudit" in text  # their own account's creation: a user entry
    assert "Hidden audit visit" in client.get("/reminder-outbox/list/").get_data(as_text=True)
    # Read-only like an auditor.
    assert client.post(f"/grants/edit/{world.grant_b}", data={"title": "changed"}).status_code in (302, 403)
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        assert db.session.get(Grant, world.grant_b).title == "Grant B (secret)"
        db.session.remove()
