"""Fixtures for the indicators tests: standard dimensions and three indicators on grant GA-1."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest


@dataclass
class Setup:
    coverage: int  # KP-1c, percentage by country
    trained: int  # number, by country and gender, summed
    groups: int  # number, maximum mode, life-of-grant target 4
    other_grant_indicator: int  # an indicator of GB-1, which the program user cannot see
    period_a2: int
    period_b2: int


@pytest.fixture
def ind(app, world):
    """GA-1 gets KP-1c, a training count and a groups count; GB-1 gets one indicator."""
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Grant
    from indicators import services

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        session = db.session
        services.ensure_standard_dimensions(session)
        grant_a = session.get(Grant, world.grant_a)
        grant_b = session.get(Grant, world.grant_b)
        coverage = services.create_indicator(
            session,
            grant_a,
            code="KP-1c",
            name="% of sex workers reached with HIV prevention",
            unit="percentage",
            cumulative_mode="sum",
            dimensions=["country"],
        )
        trained = services.create_indicator(
            session,
            grant_a,
            code="T-1",
            name="Sex workers trained in human rights and HIV",
            unit="number",
            cumulative_mode="sum",
            dimensions=["country", "gender"],
            lop_target=Decimal(100),
        )
        groups = services.create_indicator(
            session,
            grant_a,
            code="G-1",
            name="Sex worker-led groups formed",
            unit="number",
            cumulative_mode="maximum",
            lop_target=Decimal(4),
        )
        other = services.create_indicator(session, grant_b, code="B-1", name="Secret indicator", unit="number")
        periods_a = sorted(grant_a.periods, key=lambda p: p.start_date)
        periods_b = sorted(grant_b.periods, key=lambda p: p.start_date)
        session.commit()
        return Setup(coverage.id, trained.id, groups.id, other.id, periods_a[1].id, periods_b[1].id)


def get(model, pk):
    from core.extensions import db

    return db.session.get(model, pk)
