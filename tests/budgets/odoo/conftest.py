"""Odoo fixtures: a fake Odoo server speaking the real wire protocols, and a grant linked to it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.budgets.odoo.fake_odoo import FakeOdoo

SECRET = "api-key-123"


@pytest.fixture
def odoo():
    server = FakeOdoo(password=SECRET).start()
    # The analytic accounts the tests link grants to, in the "Grants" plan (x_plan2_id).
    server.add_account(41, "GA-1 grant account")
    server.add_account(77, "GB-1 grant account")
    server.add_account(12, "Demo grant account")
    yield server
    server.stop()


def odoo_env(odoo, protocol: str = "jsonrpc", **changes: str) -> dict[str, str]:
    """GRANTKEEPER_ODOO_* variables pointing at the fake server."""
    env = {
        "GRANTKEEPER_ODOO_HOST": "127.0.0.1",
        "GRANTKEEPER_ODOO_PORT": str(odoo.port),
        "GRANTKEEPER_ODOO_DATABASE": odoo.database,
        "GRANTKEEPER_ODOO_LOGIN": odoo.login,
        "GRANTKEEPER_ODOO_API_KEY": SECRET,
        "GRANTKEEPER_ODOO_PROTOCOL": protocol,
        "GRANTKEEPER_ODOO_TIMEOUT": "5",
    }
    env.update({f"GRANTKEEPER_ODOO_{k.upper()}": v for k, v in changes.items()})
    return env


@dataclass
class Linked:
    link_a: int  # grant A (USD, fixed 2.70 XCD policy), Odoo analytic account 41 in the "Grants" plan
    line_hr: int  # grant A's HR-1, mapped from Odoo account 600 "6100 Salaries"
    line_travel: int  # grant A's TR-1, mapped from Odoo account 610 "6200 Travel"
    line_b: int  # grant B's line (only Admin and Finance see grant B)


@pytest.fixture
def linked(app, world) -> Linked:
    from budgets import odoo_sync, rates, services
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Funder, Grant
    from grants.services import GENERIC_COST_CATEGORIES

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        funder = db.session.get(Funder, world.funder_id)
        funder.cost_categories = [dict(c) for c in GENERIC_COST_CATEGORIES]
        grant_a = db.session.get(Grant, world.grant_a)
        grant_b = db.session.get(Grant, world.grant_b)
        rates.set_rate_policy(db.session, grant_a, "fixed", fixed_currency="XCD")
        hr = services.create_line(db.session, grant_a, code="HR-1", description="Coordinator", cost_category="STAFF")
        travel = services.create_line(db.session, grant_a, code="TR-1", description="Travel", cost_category="TRAVEL")
        other = services.create_line(db.session, grant_b, code="B-1", description="Secret line", cost_category="ACT")
        link = odoo_sync.link_grant(
            db.session,
            grant_a,
            analytic_account_id=41,
            analytic_plan="Grants",
            company_currency="XCD",
            analytic_account_name="GA-1 grant account",
        )
        odoo_sync.map_account(db.session, grant_a, odoo_account_id=600, line=hr, label="6100 Salaries")
        odoo_sync.map_account(db.session, grant_a, odoo_account_id=610, line=travel, label="6200 Travel")
        db.session.commit()
        return Linked(link.id, hr.id, travel.id, other.id)
