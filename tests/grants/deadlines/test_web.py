"""The deadline pages and API: row-level rules, read-only roles, notifications, the outbox, no secrets shown."""

from __future__ import annotations

from datetime import date

from tests.grants.deadlines.conftest import SMTP_PASSWORD


def test_program_sees_only_their_grants_deadlines_in_the_list(world, deadlines, client_for):
    page = client_for("Program").get("/deadlines/list/").get_data(as_text=True)
    assert "External audit 2025" in page
    assert "Secret board meeting" not in page


def test_program_cannot_show_edit_or_delete_another_grants_deadline(app, world, deadlines, client_for):
    from core.extensions import db
    from grants.deadlines.models import Deadline

    client = client_for("Program")
    board = deadlines["board"]
    assert client.get(f"/deadlines/show/{board}").status_code == 404
    assert client.get(f"/deadlines/edit/{board}").status_code == 404
    client.post(f"/deadlines/edit/{board}", data={"title": "hacked", "due_date": "2026-01-01"})
    client.get(f"/deadlines/delete/{board}")
    client.post(f"/deadlines/delete/{board}")
    assert client.post(f"/deadlines/{board}/submitted").status_code == 404
    with app.app_context():
        row = db.session.get(Deadline, board)
        assert row is not None and row.title == "Secret board meeting" and row.submitted_on is None


def test_program_cannot_add_a_deadline_under_a_grant_they_cannot_see(app, world, client_for):
    from sqlalchemy import select

    from core.extensions import db
    from grants.deadlines.models import Deadline

    client_for("Program").post(
        "/deadlines/add",
        data={"grant": str(world.grant_b), "kind": "audit", "title": "Sneaky", "due_date": "2026-12-01"},
    )
    with app.app_context():
        assert db.session.scalar(select(Deadline.id).where(Deadline.title == "Sneaky")) is None


def test_program_adds_a_one_off_deadline_through_the_form(app, world, client_for):
    from sqlalchemy import select

    from core.extensions import db
    from grants.deadlines.models import Deadline, DeadlineSource

    client_for("Program").post(
        "/deadlines/add",
        data={
            "grant": str(world.grant_a),
            "kind": "board_meeting",
            "title": "Board meeting",
            "due_date": "2026-11-10",
            "owner": str(world.users["Program"]),
        },
    )
    with app.app_context():
        deadline = db.session.scalar(select(Deadline).where(Deadline.title == "Board meeting"))
        assert deadline is not None and deadline.source_kind == DeadlineSource.manual


def test_donor_and_auditor_change_nothing(app, world, deadlines, client_for, api_for):
    from core.extensions import db
    from grants.deadlines.models import Deadline, DeadlineSource

    audit = deadlines["audit"]
    for role in ("Donor", "Auditor"):
        client = client_for(role)
        client.post(f"/deadlines/edit/{audit}", data={"title": "changed", "due_date": "2026-01-01"})
        client.post(f"/deadlines/delete/{audit}")
        client.post(f"/deadlines/{audit}/submitted")
        client.post("/deadlines/add", data={"grant": str(world.grant_a), "title": "x", "due_date": "2026-12-01"})
        api = api_for(role)
        assert api.put(f"/api/v1/deadlines/{audit}", json={"title": "changed"}).status_code in (401, 403)
        assert api.delete(f"/api/v1/deadlines/{audit}").status_code in (401, 403)
        assert api.post(
            "/api/v1/deadlines/", json={"grant": world.grant_a, "title": "x", "due_date": "2026-12-01"}
        ).status_code in (401, 403)
    with app.app_context():
        row = db.session.get(Deadline, audit)
        assert row.title == "External audit 2025" and row.submitted_on is None
        assert db.session.query(Deadline).filter(Deadline.source_kind == DeadlineSource.manual).count() == 2
    # The auditor reads deadlines; the donor does not see the deadline pages at all.
    assert client_for("Auditor").get(f"/deadlines/show/{audit}").status_code == 200
    assert client_for("Donor").get("/deadlines/list/").status_code in (302, 403)


def test_api_applies_the_same_row_rules(world, deadlines, api_for):
    api = api_for("Program")
    listing = api.get("/api/v1/deadlines/").json
    # GA-1's own deadlines (its reports, made with its periods, and the audit); nothing of GB-1.
    assert {row["title"] for row in listing["result"]} == {
        "External audit 2025",
        "Report for S1 (1 Jan 2026 – 30 Jun 2026)",
        "Report for S2 (1 Jul 2026 – 31 Dec 2026)",
    }
    assert api.get(f"/api/v1/deadlines/{deadlines['board']}").status_code == 404
    assert api.put(f"/api/v1/deadlines/{deadlines['board']}", json={"title": "x"}).status_code == 404
    assert api.delete(f"/api/v1/deadlines/{deadlines['board']}").status_code == 404
    refused = api.post("/api/v1/deadlines/", json={"grant": world.grant_b, "title": "Sneaky", "due_date": "2026-12-01"})
    assert refused.status_code == 422
    created = api.post(
        "/api/v1/deadlines/",
        json={
            "grant": world.grant_a,
            "title": "Disbursement request",
            "kind": "disbursement_request",
            "due_date": "2027-03-01",
        },
    )
    assert created.status_code == 201, created.json


def test_api_mine_gives_state_days_left_and_missing(world, deadlines, api_for):
    rows = api_for("Program").get("/api/v1/deadlines/mine").json["result"]
    assert [row["title"] for row in rows] == ["External audit 2025"]
    assert rows[0]["state"] in ("upcoming", "due", "overdue")
    assert rows[0]["missing"] == []


def test_api_refuses_to_move_a_period_deadline_or_delete_it(app, world, api_for):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import DeadlineSource
    from grants.models import PeriodStatus, ReportingPeriod

    with app.app_context():
        services.sync_period_deadlines(db.session, today=date(2026, 7, 1))
        db.session.commit()
        period_deadline = services.deadline_for_source(db.session, DeadlineSource.period, world.period_a1).id
    api = api_for("Finance")
    moved = api.put(f"/api/v1/deadlines/{period_deadline}", json={"due_date": "2026-12-01"})
    assert moved.status_code == 422 and "due_date" in moved.json["message"]
    assert api.delete(f"/api/v1/deadlines/{period_deadline}").status_code == 422
    assert PeriodStatus.open  # the period itself is untouched
    with app.app_context():
        assert db.session.get(ReportingPeriod, world.period_a1).report_due == date(2026, 8, 14)


def test_my_deadlines_page_and_grant_panel(world, deadlines, client_for):
    client = client_for("Program")
    page = client.get("/my-deadlines/").get_data(as_text=True)
    assert "External audit 2025" in page and "Secret board meeting" not in page
    assert client.get(f"/my-deadlines/?grant={world.grant_b}").status_code == 404
    grant_page = client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert 'data-panel="Deadlines"' in grant_page and "External audit 2025" in grant_page


def test_notifications_page_counts_unread_and_marks_read(app, world, deadlines, client_for):
    from core.extensions import db
    from grants.deadlines import notifications
    from grants.deadlines.reminders import sweep
    from tests.grants.deadlines.conftest import at

    with app.app_context():
        sweep(db.session, now=at(date(2026, 9, 23)), sender=None)
    client = client_for("Program")
    page = client.get("/notifications/").get_data(as_text=True)
    assert 'id="unread-count">1<' in page and "External audit 2025" in page
    client.post("/notifications/read", data={"all": "1"})
    assert 'id="unread-count">0<' in client.get("/notifications/").get_data(as_text=True)
    with app.app_context():
        assert notifications.unread_count(db.session, world.users["Finance"]) == 1


def test_outbox_is_for_admin_and_auditor_only_and_never_shows_the_smtp_password(app, world, deadlines, client_for):
    from core.extensions import db
    from grants.deadlines.reminders import sweep
    from tests.grants.deadlines.conftest import at

    app.config["SMTP_PASSWORD"] = SMTP_PASSWORD
    try:
        with app.app_context():
            sweep(db.session, now=at(date(2026, 9, 23)), sender=None)
        admin_page = client_for("Admin").get("/reminder-outbox/list/").get_data(as_text=True)
        assert "External audit 2025" in admin_page and "outbox" in admin_page
        assert client_for("Auditor").get("/reminder-outbox/list/").status_code == 200
        for role in ("Finance", "Program", "Donor"):
            assert client_for(role).get("/reminder-outbox/list/").status_code in (302, 403)
        for path in ("/reminder-outbox/list/", "/my-deadlines/", "/notifications/", "/reminder-policies/list/"):
            assert SMTP_PASSWORD not in client_for("Admin").get(path).get_data(as_text=True)
    finally:
        app.config["SMTP_PASSWORD"] = ""


def test_reminder_policy_refuses_bad_offsets_with_a_clear_message(app, world):
    import pytest

    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.deadlines import policies

    with app.app_context():
        with pytest.raises(DomainValidationError) as error:
            policies.set_reminder_policy(db.session, grant_id=world.grant_a, days_before="30,two,7")
        assert "days_before" in error.value.errors
        db.session.rollback()
        with pytest.raises(DomainValidationError) as error:
            policies.set_reminder_policy(db.session, funder_id=world.funder_id, escalate_roles="boss")
        assert "boss" in error.value.errors["escalate_roles"][0]
        db.session.rollback()


def test_finance_sets_the_owner_of_a_period_deadline_in_the_form_but_not_its_date(app, world, client_for):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import Deadline, DeadlineSource

    with app.app_context():
        services.sync_period_deadlines(db.session, today=date(2026, 7, 1))
        db.session.commit()
        deadline = services.deadline_for_source(db.session, DeadlineSource.period, world.period_a1)
        pk, title = deadline.id, deadline.title
    client = client_for("Finance")
    form = {"title": title, "kind": "report", "due_date": "2026-08-14", "owner": str(world.users["Program"])}
    client.post(f"/deadlines/edit/{pk}", data=form)
    client.post(f"/deadlines/edit/{pk}", data={**form, "due_date": "2026-12-24"})
    with app.app_context():
        row = db.session.get(Deadline, pk)
        assert row.owner_id == world.users["Program"]
        assert row.due_date == date(2026, 8, 14)


def test_mark_submitted_from_the_deadline_page_stops_reminders(app, world, deadlines, client_for):
    from core.extensions import db
    from grants.deadlines.models import Deadline, DeadlineState

    client = client_for("Program")
    page = client.get(f"/deadlines/show/{deadlines['audit']}").get_data(as_text=True)
    assert "Mark submitted today" in page and 'id="still-missing"' in page
    client.post(f"/deadlines/{deadlines['audit']}/submitted")
    with app.app_context():
        assert db.session.get(Deadline, deadlines["audit"]).state_on(date(2026, 12, 1)) == DeadlineState.submitted


def test_finance_sets_a_grant_reminder_policy_in_the_form_with_email_off(app, world, client_for):
    from sqlalchemy import select

    from core.extensions import db
    from grants.deadlines.models import ReminderPolicy

    client_for("Finance").post(
        "/reminder-policies/add",
        data={
            "grant": str(world.grant_a),
            "days_before": "14,3",
            "overdue_every_days": "0",
            "escalate_after_days": "5",
            "escalate_roles": "finance",
        },
    )
    with app.app_context():
        policy = db.session.scalar(select(ReminderPolicy).where(ReminderPolicy.grant_id == world.grant_a))
        assert policy is not None
        assert (policy.offsets(), policy.overdue_every_days, policy.send_email, policy.on_due_day) == (
            [14, 3],
            0,
            False,
            False,
        )


def test_program_cannot_set_a_policy_for_a_grant_they_cannot_see(app, world, client_for, api_for):
    from sqlalchemy import select

    from core.extensions import db
    from grants.deadlines.models import ReminderPolicy

    client_for("Program").post(
        "/reminder-policies/add",
        data={
            "grant": str(world.grant_b),
            "days_before": "1",
            "overdue_every_days": "1",
            "escalate_roles": "finance",
        },
    )
    with app.app_context():
        assert db.session.scalar(select(ReminderPolicy.id)) is None


def test_donor_grant_page_has_no_deadlines_panel(world, deadlines, client_for):
    page = client_for("Donor").get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert 'data-panel="Deadlines"' not in page and "External audit 2025" not in page
