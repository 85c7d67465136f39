"""The compliance part of the demo (DEMO.md): the six requirements of grant 1, mapped to what proves them."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from grants.compliance import services
from grants.evidence.services import link_evidence


def load(session: Session, ctx: Any) -> None:
    grant = ctx.grants["RCM-HIV-2026-SW"]
    program, finance = ctx.users["program"], ctx.users["finance"]
    clause = "Grant agreement RCM-HIV-2026-SW, "
    kp = services.create_requirement(
        session,
        grant,
        code="R1",
        title="Key population representation in the RCM documented",
        category="community_inclusion",
        frequency="per_period",
        owner_id=program.id,
        due_days=45,
        clause=clause + "Annex 1, 2.3: at least one sex worker representative at every RCM meeting.",
        expected_evidence="minutes,attendance_summary",
        is_demo=True,
        rules=[
            {
                "rule": "consultation_representation",
                "params": {"body": "RCM", "population": "sex_workers", "min_count": 1},
            },
            {"rule": "evidence_verified", "params": {"kind": "minutes"}},
        ],
    )
    lead = services.create_requirement(
        session,
        grant,
        code="R2",
        title="The coalition leads all sex worker-targeted activities (agreed at the RCM)",
        category="programmatic",
        frequency="once",
        owner_id=program.id,
        due_date=date(2026, 3, 31),
        clause=clause + "Annex 1, 1.2.",
        expected_evidence="minutes",
        is_demo=True,
        rules=[{"rule": "evidence_verified", "params": {"kind": "minutes", "linked_only": True}}],
    )
    services.create_requirement(
        session,
        grant,
        code="R3",
        title="Semester progress update submitted within 45 days",
        category="reporting",
        frequency="per_period",
        owner_id=program.id,
        due_days=45,
        clause=clause + "Article 6.1.",
        is_demo=True,
        rules=[{"rule": "report_submitted", "params": {}}],
    )
    services.create_requirement(
        session,
        grant,
        code="R4",
        title="Budget reallocation above 15% of a cost grouping needs donor approval",
        category="financial",
        frequency="per_period",
        owner_id=finance.id,
        clause=clause + "Article 8.4.",
        is_demo=True,
        rules=[{"rule": "budget_variance", "params": {}}],
    )
    services.create_requirement(
        session,
        grant,
        code="R5",
        title="Annual external audit",
        category="audit",
        frequency="annual",
        owner_id=finance.id,
        due_days=180,
        clause=clause + "Article 9.",
        expected_evidence="report",
        is_demo=True,
        rules=[{"rule": "evidence_verified", "params": {"kind": "report", "linked_only": True}}],
    )
    safeguarding = services.create_requirement(
        session,
        grant,
        code="R6",
        title="Safeguarding and data-protection policy in place",
        category="safeguarding",
        frequency="once",
        owner_id=program.id,
        due_date=date(2026, 6, 30),
        clause=clause + "Article 11.",
        expected_evidence="policy",
        is_demo=True,
        rules=[{"rule": "evidence_verified", "params": {"kind": "policy"}}],
    )
    extra = ctx.extra
    if extra.get("rcm_minutes"):
        link_evidence(session, extra["rcm_minutes"][0], "requirement", lead.id, note="Decision recorded in item 1")
        for minutes in extra["rcm_minutes"]:
            link_evidence(session, minutes, "requirement", kp.id)
    if extra.get("policy_evidence"):
        link_evidence(session, extra["policy_evidence"], "requirement", safeguarding.id)
    ctx.extra["requirements"] = {"R1": kp, "R2": lead, "R6": safeguarding}
