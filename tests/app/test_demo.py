"""The demo organisation tells the story of DEMO.md (as far as the grants records go)."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.conftest import _empty_database


@pytest.fixture
def demo(app):
    from app.demo import load_demo
    from core.audit import Actor, acting_as
    from core.extensions import db

    _empty_database(app)
    with app.app_context(), acting_as(Actor(None, "cli", "cli")):
        credentials = load_demo(app)
        yield db.session, credentials
        db.session.rollback()
    _empty_database(app)


def test_demo_users_have_the_five_roles_and_generated_passwords(demo):
    session, credentials = demo
    from flask_appbuilder.security.sqla.models import User

    roles = {u.username: [r.name for r in u.roles] for u in session.scalars(select(User))}
    assert roles == {
        "admin": ["Admin"],
        "finance": ["Finance"],
        "program": ["Program"],
        "donor.gf": ["Donor"],
        "auditor": ["Auditor"],
    }
    passwords = [c.password for c in credentials]
    assert len(set(passwords)) == 5 and all(len(p) >= 12 for p in passwords)


def test_grant_one_is_the_regional_hiv_grant_in_four_semesters(demo):
    session, _ = demo
    from grants.models import Grant

    grant = session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
    assert grant.amount == Decimal("150000.00") and grant.currency == "USD"
    assert (grant.start_date, grant.end_date) == (date(2026, 1, 1), date(2027, 12, 31))
    assert grant.country_codes == ["LC", "GD"]
    assert [p.label for p in grant.periods] == ["S1", "S2", "S3", "S4"]
    assert grant.periods[0].report_due == date(2026, 8, 14)
    assert grant.is_demo and "(demo)" in grant.recipient


def test_grant_two_is_the_annual_core_grant(demo):
    session, _ = demo
    from grants.models import Grant

    grant = session.scalar(select(Grant).where(Grant.reference == "CNF-CORE-2026"))
    assert grant.currency == "EUR" and grant.amount == Decimal("40000.00")
    assert [(p.label, p.report_due) for p in grant.periods] == [("Y1", date(2027, 3, 31))]


def test_donor_is_member_of_grant_one_only(demo):
    session, _ = demo
    from flask_appbuilder.security.sqla.models import User

    from grants.services import visible_grants

    donor = session.scalar(select(User).where(User.username == "donor.gf"))
    program = session.scalar(select(User).where(User.username == "program"))
    assert [g.reference for g in visible_grants(session, donor)] == ["RCM-HIV-2026-SW"]
    assert {g.reference for g in visible_grants(session, program)} == {"RCM-HIV-2026-SW", "CNF-CORE-2026"}


def test_demo_is_marked_in_the_ui(app, demo):

    session, credentials = demo
    password = next(c.password for c in credentials if c.username == "program")
    client = app.test_client()
    client.post("/login/", data={"username": "program", "password": password})
    html = client.get("/").get_data(as_text=True)
    assert "Demo data." in html
    assert "RCM-HIV-2026-SW" in html
