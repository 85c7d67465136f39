"""The grants part of the demo organisation (DEMO.md): two funders, two grants, their periods."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from grants import services
from grants.models import GrantStatus, MemberRole, PeriodStatus

RECIPIENT = "Windward Sex Worker Coalition (demo)"


def load(session: Session, ctx: Any) -> None:
    regional = services.create_funder(
        session,
        name="Regional HIV Fund (demo)",
        code="RHF",
        default_currency="USD",
        cost_categories="global_fund",
        notes="Global Fund-style rules: cost groupings, semester progress updates, "
        "reallocations above 15% of a cost grouping need approval.",
        is_demo=True,
    )
    networks = services.create_funder(
        session,
        name="Community Networks Fund (demo)",
        code="CNF",
        default_currency="EUR",
        cost_categories="generic",
        notes="Core funding for community networks; annual report in the funder's own Excel template.",
        is_demo=True,
    )
    hiv = services.create_grant(
        session,
        funder=regional,
        reference="RCM-HIV-2026-SW",
        title="Sex worker-led HIV and human rights response in the Eastern Caribbean",
        recipient=RECIPIENT,
        currency="USD",
        amount=Decimal("150000.00"),
        start_date=date(2026, 1, 1),
        end_date=date(2027, 12, 31),
        status=GrantStatus.active,
        countries="LC,GD",
        description=(
            "The Regional Coordinating Mechanism agreed that the coalition leads every activity "
            "targeted at sex workers, in Saint Lucia and Grenada: forming sex worker groups, "
            "training in human rights and HIV, capacity building and network strengthening."
        ),
        is_demo=True,
    )
    semesters = services.generate_periods(session, hiv, "semester", 45)
    # S1 (to 30 Jun 2026) was reported on time, 14 Aug 2026, and accepted by the donor.
    semesters[0].status = PeriodStatus.accepted

    core = services.create_grant(
        session,
        funder=networks,
        reference="CNF-CORE-2026",
        title="Core support: advocacy and organisational strengthening",
        recipient=RECIPIENT,
        currency="EUR",
        amount=Decimal("40000.00"),
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
        status=GrantStatus.active,
        countries="LC",
        is_demo=True,
    )
    services.generate_periods(session, core, "year", 90)

    users = ctx.users
    for grant in (hiv, core):
        services.add_member(session, grant, users["program"], MemberRole.program)
        services.add_member(session, grant, users["finance"], MemberRole.finance)
        services.add_member(session, grant, users["auditor"], MemberRole.auditor)
    services.add_member(session, hiv, users["donor.gf"], MemberRole.donor)

    ctx.funders.update({"RHF": regional, "CNF": networks})
    ctx.grants.update({hiv.reference: hiv, core.reference: core})
