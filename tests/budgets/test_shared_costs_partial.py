"""Who sees how much of a shared cost on /shared-costs/: the whole only to someone who sees every grant of it.

An auditor of grant A alone sees grant A's part of a rent split over grants A and B: not the
total paid, not grant B's name, line or amounts, not the allocation key (it names grant B), and
no change or delete. Finance and Admin, who see every grant, see the whole; Program and Donor
users cannot open the page at all (a part is an ordinary expenditure of their grant).
"""

from __future__ import annotations

from datetime import date

import pytest

GRANT_B_SECRETS = ("GB-1", "Grant B", "B-1", "Secret line", "400.00", "136.00")


@pytest.fixture
def split_costs(app, world, budget):
    """A rent split 60/40 by percentage and a cleaning bill split by a key, both over grants A and B."""
    from budgets import rates, sharing
    from budgets.models import BudgetLine
    from core.audit import Actor, acting_as
    from core.extensions import db

    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        rates.record_rate(db.session, date(2026, 4, 16), "XCD", "EUR", "0.34")
        hr = db.session.get(BudgetLine, budget.line_hr)
        b1 = db.session.get(BudgetLine, budget.line_b)
        sharing.record_shared_cost(
            db.session,
            spent_on=date(2026, 4, 16),
            amount="1000.00",
            currency="XCD",
            description="Office rent April",
            method="percent",
            parts=[{"line": hr, "share": "60"}, {"line": b1, "share": "40"}],
        )
        key = sharing.save_allocation_key(
            db.session,
            None,
            name="Floor space with the hidden project",
            basis="floor space (m²)",
            shares=[{"line": hr, "weight": "60"}, {"line": b1, "weight": "40"}],
        )
        sharing.record_shared_cost(
            db.session,
            spent_on=date(2026, 4, 16),
            amount="1000.00",
            currency="XCD",
            description="Cleaning April",
            method="key",
            key=key,
        )
        only_a = sharing.record_shared_cost(
            db.session,
            spent_on=date(2026, 4, 17),
            amount="90.00",
            currency="USD",
            description="Courier for grant A",
            method="percent",
            parts=[
                {"line": hr, "share": "50"},
                {"line": db.session.get(BudgetLine, budget.line_travel), "share": "50"},
            ],
        )
        db.session.commit()
        return only_a.id


def test_an_auditor_of_one_grant_sees_only_that_grants_parts_of_a_shared_payment(world, split_costs, client_for):
    response = client_for("Auditor").get("/shared-costs/list/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Office rent April" in page and "Cleaning April" in page
    assert "GA-1 · HR-1: 600.00 XCD" in page  # their own grant's part, in full
    for secret in GRANT_B_SECRETS:
        assert secret not in page, secret
    assert "1,000.00" not in page  # not the total paid either
    assert "Floor space with the hidden project" not in page  # the key names grant B's line
    assert page.count("only your grants' parts are shown") == 2
    # A cost wholly within grant A reads whole, total included.
    assert "Courier for grant A" in page and "90.00 USD" in page


def test_finance_and_admin_see_every_part_and_the_total(world, split_costs, client_for):
    for role in ("Finance", "Admin"):
        page = client_for(role).get("/shared-costs/list/").get_data(as_text=True)
        assert "1,000.00 XCD" in page and "GB-1 · B-1: 400.00 XCD" in page, role
        assert "Floor space with the hidden project" in page, role
        assert "only your grants' parts are shown" not in page, role


def test_program_and_donor_users_cannot_open_shared_costs(world, split_costs, client_for):
    for role in ("Program", "Donor"):
        response = client_for(role).get("/shared-costs/list/")
        assert response.status_code in (302, 403, 404), role
        assert "Office rent April" not in response.get_data(as_text=True), role


def test_a_partial_viewer_cannot_open_a_shared_cost_they_do_not_see_whole(app, world, split_costs, client_for):
    from sqlalchemy import select

    from budgets.models import SharedCost
    from core.extensions import db

    with app.app_context():
        rent = db.session.scalar(select(SharedCost.id).where(SharedCost.description == "Office rent April"))
    auditor = client_for("Auditor")
    assert auditor.get(f"/shared-costs/{rent}/edit").status_code in (403, 404)
    assert auditor.post(f"/shared-costs/{rent}/delete").status_code in (302, 403, 404)
    with app.app_context():
        assert db.session.get(SharedCost, rent) is not None
