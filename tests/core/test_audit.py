"""The audit trail records every change, whatever path made it, in the same transaction."""

from datetime import date

import pytest
from sqlalchemy import select

from core.audit import Actor, AuditEntry, acting_as
from core.errors import DomainValidationError
from grants import services
from grants.models import Grant


def entries(session, table=None, action=None):
    query = select(AuditEntry).order_by(AuditEntry.id)
    if table:
        query = query.where(AuditEntry.table_name == table)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(session.scalars(query))


def test_form_edit_records_who_and_before_after(finance_client, world, app):
    from core.extensions import db

    response = finance_client.post(
        f"/grants/edit/{world.grant_a}",
        data={
            "funder": str(world.funder_id),
            "reference": "GA-1",
            "title": "Grant A renamed",
            "recipient": "Coalition",
            "currency": "USD",
            "amount": "1250.50",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "status": "active",
            "indirect_base": "total_direct",  # the form's own default, as a browser posts it
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    with app.app_context():
        (entry,) = entries(db.session, "grants", "update")
        assert entry.username == "finance" and entry.source == "web"
        assert entry.user_id == world.users["Finance"]
        assert entry.record_id == str(world.grant_a)
        assert entry.changes["title"] == ["Grant A", "Grant A renamed"]
        assert entry.changes["amount"] == ["1000.00", "1250.50"]
        assert "currency" not in entry.changes  # unchanged fields are not listed


def test_api_insert_and_delete_are_recorded(api_for, world, app):
    from core.extensions import db

    api = api_for("Program")
    created = api.post(
        "/api/v1/periods/",
        json={"grant": world.grant_a, "label": "X1", "start_date": "2026-03-01", "end_date": "2026-03-31"},
    )
    assert created.status_code == 201
    assert api.delete(f"/api/v1/periods/{created.json['id']}").status_code == 200
    with app.app_context():
        inserted = entries(db.session, "reporting_periods", "insert")[-1]
        deleted = entries(db.session, "reporting_periods", "delete")[-1]
        assert inserted.source == "api" and inserted.username == "program"
        assert inserted.changes["label"] == [None, "X1"]
        assert deleted.record_id == str(created.json["id"])
        assert deleted.changes["label"] == ["X1", None]


def test_service_change_from_the_cli_is_attributed(db_session, world):
    grant = db_session.get(Grant, world.grant_b)
    with acting_as(Actor(None, "cli", "cli")):
        services.update_grant(db_session, grant, status="closing")
        db_session.commit()
    (entry,) = entries(db_session, "grants", "update")
    assert (entry.username, entry.source) == ("cli", "cli")
    assert entry.changes == {"status": ["active", "closing"]}


def test_a_rolled_back_change_leaves_no_audit_entry(db_session, world):
    before = len(entries(db_session))
    grant = db_session.get(Grant, world.grant_b)
    grant.title = "never saved"
    db_session.flush()
    assert len(entries(db_session)) == before + 1  # written in the same transaction...
    db_session.rollback()
    assert len(entries(db_session)) == before  # ...and gone with it


def test_refused_input_leaves_no_audit_entry(db_session, world):
    before = len(entries(db_session))
    grant = db_session.get(Grant, world.grant_b)
    with pytest.raises(DomainValidationError):
        services.update_grant(db_session, grant, end_date=date(2000, 1, 1))
    db_session.rollback()
    assert len(entries(db_session)) == before


def test_auditor_browses_and_filters_the_trail(auditor_client, world):
    listing = auditor_client.get("/audit/list/?_flt_0_table_name=grants")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert "GA-1" in html and "added" in html and "by the system" in html  # actions and sources in words
    assert ">insert<" not in html and ">grants<" not in html


def test_nobody_can_edit_or_delete_audit_entries(admin_client, world, app):
    from core.extensions import db

    with app.app_context():
        first = entries(db.session)[0].id
    assert admin_client.get(f"/audit/edit/{first}").status_code == 403
    assert admin_client.post(f"/audit/delete/{first}").status_code == 403


@pytest.mark.parametrize("role", ["Finance", "Program", "Donor"])
def test_only_admin_and_auditor_read_the_trail(client_for, world, role):
    assert client_for(role).get("/audit/list/").status_code == 403


def test_passwords_never_reach_the_trail(db_session, world):
    seen = entries(db_session)
    assert any(entry.table_name == "ab_user" for entry in seen)  # users are in the trail...
    for entry in seen:
        # ...and a password only as the fact that it was set or changed.
        assert entry.changes.get("password") in (None, [None, "changed"])
        assert "correct horse" not in str(entry.changes) and "pbkdf2" not in str(entry.changes)
