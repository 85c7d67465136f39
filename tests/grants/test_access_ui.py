"""Row-level rules through the web UI: each role sees and changes only what it may."""

import pytest
from sqlalchemy import func, select

from grants.models import Grant, ReportingPeriod


def page(client, url):
    response = client.get(url)
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("role", "sees_b"), [("Admin", True), ("Finance", True), ("Program", False), ("Donor", False), ("Auditor", False)]
)
def test_grant_list_shows_only_visible_grants(client_for, world, role, sees_b):
    status, html = page(client_for(role), "/grants/list/")
    assert status == 200
    assert "GA-1" in html
    assert ("GB-1" in html) is sees_b


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_member_cannot_open_a_grant_they_are_not_member_of(client_for, world, role):
    client = client_for(role)
    assert client.get(f"/grants/show/{world.grant_b}").status_code == 404
    assert client.get(f"/periods/show/{world.period_b1}").status_code == 404


def test_program_user_opens_own_grant_and_sees_its_periods(program_client, world):
    status, html = page(program_client, f"/grants/show/{world.grant_a}")
    assert status == 200
    assert "Grant A" in html and "S1" in html and "2026-08-14" in html
    assert "Next report" in html and "S1 due 2026-08-14" in html


def test_period_list_is_filtered_too(program_client, world):
    status, html = page(program_client, "/periods/list/")
    assert status == 200
    assert "GA-1" in html and "GB-1" not in html


def test_program_cannot_edit_or_delete_another_grants_period(program_client, world, app):
    assert program_client.get(f"/periods/edit/{world.period_b1}").status_code == 404
    response = program_client.post(
        f"/periods/edit/{world.period_b1}",
        data={"label": "hijacked", "start_date": "2026-01-01", "end_date": "2026-06-30", "status": "open"},
    )
    assert response.status_code == 404
    assert program_client.post(f"/periods/delete/{world.period_b1}").status_code == 404
    with app.app_context():
        from core.extensions import db

        assert db.session.get(ReportingPeriod, world.period_b1).label == "S1"


def test_parent_choice_lists_only_visible_grants(program_client, world):
    status, html = page(program_client, "/periods/add")
    assert status == 200
    assert "GA-1" in html and "GB-1" not in html


def test_program_cannot_create_a_period_under_an_invisible_grant(program_client, world, app):
    from core.extensions import db

    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(ReportingPeriod))
    program_client.post(
        "/periods/add",
        data={
            "grant": str(world.grant_b),
            "label": "S9",
            "start_date": "2026-01-01",
            "end_date": "2026-02-01",
            "status": "open",
        },
        follow_redirects=True,
    )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportingPeriod)) == before


def test_program_creates_a_period_under_own_grant(program_client, world, app):
    from core.extensions import db

    response = program_client.post(
        "/periods/add",
        data={
            "grant": str(world.grant_a),
            "label": "X1",
            "start_date": "2026-03-01",
            "end_date": "2026-03-31",
            "report_due": "2026-04-30",
            "status": "open",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    with app.app_context():
        created = db.session.scalar(select(ReportingPeriod).where(ReportingPeriod.label == "X1"))
        assert created is not None and created.grant_id == world.grant_a


def test_form_error_names_the_field_and_saves_nothing(finance_client, world, app):
    from core.extensions import db

    response = finance_client.post(
        "/grants/add",
        data={
            "funder": str(world.funder_id),
            "reference": "BAD-1",
            "title": "t",
            "recipient": "r",
            "currency": "QQQ",
            "amount": "-3",
            "start_date": "2026-05-01",
            "end_date": "2026-01-01",
            "status": "active",
        },
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "ISO 4217" in html
    assert "must not be negative" in html
    assert "is before the start date" in html
    with app.app_context():
        assert db.session.scalar(select(Grant).where(Grant.reference == "BAD-1")) is None


def test_duplicate_reference_is_refused_in_the_form(finance_client, world, app):
    from core.extensions import db

    response = finance_client.post(
        "/grants/add",
        data={
            "funder": str(world.funder_id),
            "reference": "GA-1",
            "title": "dup",
            "recipient": "r",
            "currency": "USD",
            "amount": "3",
            "start_date": "2026-01-01",
            "end_date": "2026-02-01",
            "status": "active",
        },
        follow_redirects=True,
    )
    assert "Already exists" in response.get_data(as_text=True) or "already used" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Grant).where(Grant.reference == "GA-1")) == 1


@pytest.mark.parametrize("role", ["Donor", "Auditor"])
def test_read_only_roles_get_403_on_every_change(client_for, world, role):
    client = client_for(role)
    assert client.get("/grants/add").status_code == 403
    assert client.get(f"/grants/edit/{world.grant_a}").status_code == 403
    assert client.post(f"/grants/delete/{world.grant_a}").status_code == 403
    assert client.get("/periods/add").status_code == 403
    assert (
        client.post(f"/grants/{world.grant_a}/generate-periods", data={"length": "month", "due_days": "5"}).status_code
        == 403
    )


def test_program_cannot_create_or_delete_grants(program_client, world):
    assert program_client.get("/grants/add").status_code == 403
    assert program_client.post(f"/grants/delete/{world.grant_a}").status_code == 403


def test_donor_sees_no_memberships_or_funders(donor_client, world):
    assert donor_client.get("/memberships/list/").status_code == 403
    assert donor_client.get("/funders/list/").status_code == 403


def test_anonymous_is_sent_to_the_login_page(anonymous_client, world):
    response = anonymous_client.get("/grants/list/")
    assert response.status_code == 302
    assert "/login/" in response.headers["Location"]


def test_generate_periods_from_the_grant_page(finance_client, world, app):
    from core.extensions import db

    response = finance_client.post(
        f"/grants/{world.grant_b}/generate-periods",
        data={"length": "quarter", "due_days": "30", "replace": "1"},
        follow_redirects=True,
    )
    assert "Created 4 reporting periods" in response.get_data(as_text=True)
    with app.app_context():
        labels = db.session.scalars(
            select(ReportingPeriod.label)
            .where(ReportingPeriod.grant_id == world.grant_b)
            .order_by(ReportingPeriod.start_date)
        ).all()
        assert labels == ["Q1", "Q2", "Q3", "Q4"]


def test_generate_periods_with_bad_days_says_so(finance_client, world):
    response = finance_client.post(
        f"/grants/{world.grant_b}/generate-periods",
        data={"length": "quarter", "due_days": "soon"},
        follow_redirects=True,
    )
    assert "due_days: enter a whole number" in response.get_data(as_text=True)


def test_program_cannot_generate_periods_for_an_invisible_grant(program_client, world):
    response = program_client.post(
        f"/grants/{world.grant_b}/generate-periods", data={"length": "quarter", "due_days": "30", "replace": "1"}
    )
    assert response.status_code == 404


def test_dashboard_lists_my_grants_and_reports_due(program_client, world):
    status, html = page(program_client, "/")
    assert status == 200
    assert "GA-1" in html and "GB-1" not in html
    assert "S1" in html


@pytest.mark.parametrize(
    "url", ["/grants/download/secret_key", "/periods/download/..%2Fsecret_key", "/funders/download/x.pdf"]
)
def test_stock_fab_download_serves_nothing(admin_client, world, url):
    assert admin_client.get(url).status_code == 404


def test_donor_grant_page_lists_no_members(donor_client, world):
    """Related views ignore permissions in FAB: the donor must not read who works on the grant."""
    html = donor_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "Grant A" in html
    assert "GrantMembershipView" not in html
    assert "program@test.example.org" not in html and ">program<" not in html


def test_program_grant_page_lists_members(program_client, world):
    html = program_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "GrantMembershipView" in html


def test_member_search_lists_only_people_of_visible_grants(program_client, world, app):
    from app.bootstrap import create_user
    from tests.conftest import PASSWORD

    create_user(app, "stranger", "stranger@test.example.org", "Program", PASSWORD, "Sally", "Stranger")
    html = program_client.get("/memberships/list/").get_data(as_text=True)
    assert "Sally" not in html  # not on any grant the program user sees
    assert "program" in html
