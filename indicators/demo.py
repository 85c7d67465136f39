"""The indicators part of the demo organisation (DEMO.md): dimensions, both grants' indicators, targets, results."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from grants import services as grant_services
from grants.models import PeriodStatus
from indicators import services

D = Decimal


def load(session: Session, ctx: Any) -> None:
    dims = services.ensure_standard_dimensions(session)
    program, verifier = ctx.users["program"], ctx.users["admin"]
    hiv = ctx.grants["RCM-HIV-2026-SW"]
    core = ctx.grants["CNF-CORE-2026"]
    s1, s2, s3, s4 = sorted(hiv.periods, key=lambda p: p.start_date)[:4]

    kp1c = services.create_indicator(
        session,
        hiv,
        code="KP-1c",
        name="Percentage of sex workers reached with a defined package of HIV prevention services",
        definition="Numerator: sex workers reached with the package in the period (peer outreach records). "
        "Denominator: estimated number of sex workers in the areas served (2025 mapping).",
        unit="percentage",
        direction="increase",
        cumulative_mode="sum",
        baseline_value=D("38"),
        baseline_date=dt.date(2025, 12, 31),
        lop_target=D("75"),
        means_of_verification="Peer outreach register (counts only, no names); mapping report",
        responsible=program,
        dimensions=["country"],
    )
    trained = services.create_indicator(
        session,
        hiv,
        code="HR-1",
        name="Number of sex workers trained in human rights and HIV",
        unit="number",
        cumulative_mode="sum",
        baseline_value=D("0"),
        baseline_date=dt.date(2025, 12, 31),
        lop_target=D("200"),
        means_of_verification="Training reports with attendance counts by country, gender and age",
        responsible=program,
        dimensions=["country", "gender", "age"],
    )
    groups = services.create_indicator(
        session,
        hiv,
        code="CSS-1",
        name="Number of sex worker-led groups formed or strengthened",
        unit="number",
        cumulative_mode="maximum",
        baseline_value=D("0"),
        lop_target=D("4"),
        means_of_verification="Group registration letters; minutes of founding meetings",
        responsible=program,
        dimensions=["country"],
    )
    rcm = services.create_indicator(
        session,
        hiv,
        code="GOV-1",
        name="Number of RCM meetings with sex worker representation",
        unit="number",
        cumulative_mode="sum",
        lop_target=D("8"),
        means_of_verification="RCM minutes and attendance counts by constituency",
        responsible=program,
    )

    # The crosswalk: one KP-1c result feeds three reports without retyping.
    pepfar = grant_services.create_funder(
        session,
        name="PEPFAR (demo)",
        code="PEPFAR",
        default_currency="USD",
        is_demo=True,
        notes="Listed for the indicator crosswalk (MER codes).",
    )
    gam = grant_services.create_funder(
        session,
        name="UNAIDS Global AIDS Monitoring (demo)",
        code="GAM",
        default_currency="USD",
        is_demo=True,
        notes="A reporting framework rather than a funder; listed for the indicator crosswalk.",
    )
    services.set_indicator_code(
        session, kp1c, ctx.funders["RHF"], "KP-1c", "Coverage of prevention programmes: sex workers"
    )
    services.set_indicator_code(
        session, kp1c, pepfar, "KP_PREV (FSW)", "Key populations reached with prevention: female sex workers"
    )
    services.set_indicator_code(session, kp1c, gam, "3.3a", "Coverage of HIV prevention programmes — sex workers")

    # S1 was reported and accepted by the donor (grants demo). Its targets and results
    # were entered while it was open: reopen it for the load, then close it again.
    s1_status = s1.status
    s1.status = PeriodStatus.open
    session.flush()

    # Targets per semester; KP-1c and HR-1 split by country.
    coverage_targets = {
        s1: ((150, 300), {"country=LC": (100, 200), "country=GD": (50, 100)}),
        s2: ((180, 300), {"country=LC": (120, 200), "country=GD": (60, 100)}),
        s3: ((210, 300), {"country=LC": (140, 200), "country=GD": (70, 100)}),
        s4: ((225, 300), {"country=LC": (150, 200), "country=GD": (75, 100)}),
    }
    for period, ((num, den), parts) in coverage_targets.items():
        services.set_target(session, kp1c, period, numerator=num, denominator=den, disaggregation=parts)
    for period, (total, lc, gd) in {s1: (40, 25, 15), s2: (50, 30, 20), s3: (60, 35, 25), s4: (50, 30, 20)}.items():
        services.set_target(session, trained, period, value=total, disaggregation={"country=LC": lc, "country=GD": gd})
    for period, level in {s1: 1, s2: 2, s3: 3, s4: 4}.items():
        services.set_target(session, groups, period, value=level)
    for period in (s1, s2, s3, s4):
        services.set_target(session, rcm, period, value=2)

    s1_end = dt.datetime(2026, 7, 20, 15, 0, tzinfo=dt.UTC)
    results = [
        # S1: beats the KP-1c and training targets, meets the groups target, misses RCM representation.
        services.record_result(
            session,
            kp1c,
            s1,
            user=program,
            numerator=165,
            denominator=300,
            status="submitted",
            entered_at=s1_end,
            disaggregation={"country=LC": (120, 200), "country=GD": (45, 100)},
            comment="Outreach in Castries and Gros Islet went beyond plan; Grenada started late.",
        ),
        services.record_result(
            session,
            trained,
            s1,
            user=program,
            value=46,
            status="submitted",
            entered_at=s1_end,
            disaggregation={
                "country=LC": 30,
                "country=GD": 16,
                "gender=F": 38,
                "gender=M": 3,
                "gender=TG": 5,
                "age=15-19": 4,
                "age=20-24": 12,
                "age=25-49": 28,
                "age=50+": 2,
            },
            comment="Two trainings in Saint Lucia, one in Grenada.",
        ),
        services.record_result(
            session,
            groups,
            s1,
            user=program,
            value=1,
            status="submitted",
            entered_at=s1_end,
            disaggregation={"country=LC": 1, "country=GD": 0},
        ),
        services.record_result(
            session,
            rcm,
            s1,
            user=program,
            value=1,
            status="submitted",
            entered_at=s1_end,
            comment="Two RCM meetings held; at one of them no sex worker representative could attend.",
        ),
    ]
    for result in results:
        services.verify_result(session, result, verifier, at=dt.datetime(2026, 8, 3, 10, 0, tzinfo=dt.UTC))
    s1.status = s1_status
    session.flush()

    # S2 so far: KP-1c behind, training behind, groups on track, RCM half.
    s2_entry = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC)
    services.record_result(
        session,
        kp1c,
        s2,
        user=program,
        numerator=140,
        denominator=300,
        status="submitted",
        entered_at=s2_entry,
        disaggregation={"country=LC": (95, 200), "country=GD": (45, 100)},
        comment="Figures to the end of October; outreach paused during the September storms.",
    )
    services.record_result(
        session,
        trained,
        s2,
        user=program,
        value=27,
        status="submitted",
        entered_at=s2_entry,
        disaggregation={"country=LC": 19, "country=GD": 8, "gender=F": 22, "gender=M": 2, "gender=TG": 3},
    )
    services.record_result(
        session,
        groups,
        s2,
        user=program,
        value=2,
        status="draft",
        entered_at=s2_entry,
        disaggregation={"country=LC": 1, "country=GD": 1},
        comment="Grenada group registered in October; letter awaited.",
    )
    services.record_result(session, rcm, s2, user=program, value=1, status="submitted", entered_at=s2_entry)

    # Grant 2: advocacy and organisational strengthening, one annual period.
    year = sorted(core.periods, key=lambda p: p.start_date)[0]
    meetings = services.create_indicator(
        session,
        core,
        code="ADV-1",
        name="Number of meetings held with government officials",
        unit="number",
        cumulative_mode="sum",
        lop_target=D("12"),
        responsible=program,
        means_of_verification="Meeting notes (no names of sex workers)",
    )
    submissions = services.create_indicator(
        session,
        core,
        code="ADV-2",
        name="Number of policy submissions made",
        unit="number",
        cumulative_mode="sum",
        lop_target=D("3"),
        responsible=program,
        means_of_verification="Submitted documents",
    )
    members = services.create_indicator(
        session,
        core,
        code="ORG-1",
        name="Number of members trained in organisational skills",
        unit="number",
        cumulative_mode="sum",
        lop_target=D("30"),
        responsible=program,
        dimensions=["gender"],
        means_of_verification="Training attendance counts by gender",
    )
    services.set_target(session, meetings, year, value=12)
    services.set_target(session, submissions, year, value=3)
    services.set_target(
        session, members, year, value=30, disaggregation={"gender=F": 24, "gender=M": 2, "gender=TG": 4}
    )
    services.record_result(session, meetings, year, user=program, value=9, status="submitted", entered_at=s2_entry)
    adv2 = services.record_result(
        session,
        submissions,
        year,
        user=program,
        value=4,
        status="submitted",
        entered_at=s2_entry,
        comment="Submissions on the draft Sexual Offences Bill, the HIV policy, police training and health access.",
    )
    services.verify_result(session, adv2, verifier, at=s2_entry + dt.timedelta(days=3))
    services.record_result(
        session,
        members,
        year,
        user=program,
        value=22,
        status="draft",
        entered_at=s2_entry,
        disaggregation={"gender=F": 18, "gender=M": 1, "gender=TG": 3},
    )
    ctx.extra["indicators"] = {
        "dimensions": dims,
        "KP-1c": kp1c,
        "HR-1": trained,
        "CSS-1": groups,
        "GOV-1": rcm,
        "ADV-1": meetings,
        "ADV-2": submissions,
        "ORG-1": members,
    }
