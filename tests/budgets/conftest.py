"""Budgets fixtures: lines with planned amounts on the world's two grants, and a variance rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest


@dataclass
class Budget:
    line_hr: int  # grant A, category STAFF, 1000 planned per semester
    line_travel: int  # grant A, category TRAVEL, 500 planned per semester
    line_b: int  # grant B (only Admin and Finance see it)
    period_a2: int


@pytest.fixture
def budget(app, world) -> Budget:
    from budgets import services
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Funder, Grant
    from grants.services import GENERIC_COST_CATEGORIES

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        funder = db.session.get(Funder, world.funder_id)
        funder.cost_categories = [dict(c) for c in GENERIC_COST_CATEGORIES]
        grant_a = db.session.get(Grant, world.grant_a)
        grant_b = db.session.get(Grant, world.grant_b)
        hr = services.create_line(
            db.session,
            grant_a,
            code="HR-1",
            description="Coordinator",
            cost_category="STAFF",
            planned={"S1": "1000", "S2": "1000"},
        )
        travel = services.create_line(
            db.session,
            grant_a,
            code="TR-1",
            description="Travel",
            cost_category="TRAVEL",
            planned={"S1": "500", "S2": "500"},
        )
        other = services.create_line(
            db.session, grant_b, code="B-1", description="Secret line", cost_category="ACT", planned={"S1": "300"}
        )
        services.add_variance_rule(db.session, funder, threshold_percent="15")
        period_a2 = next(p.id for p in grant_a.periods if p.label == "S2")
        db.session.commit()
        return Budget(hr.id, travel.id, other.id, period_a2)


@pytest.fixture
def spend(app, world, budget):
    """spend(line_id, "120.00", "USD", date(2026, 2, 1)) records a manual expenditure and commits."""
    from budgets import services
    from budgets.models import BudgetLine
    from core.extensions import db

    def _spend(line_id: int, amount: str, currency: str = "USD", day: date = date(2026, 2, 1), **kw):
        with app.app_context():
            line = db.session.get(BudgetLine, line_id)
            item = services.record_expenditure(
                db.session, line.grant, line=line, spent_on=day, amount=amount, currency=currency, **kw
            )
            db.session.commit()
            return item.id

    return _spend
