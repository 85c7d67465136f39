"""The deadlines of the demo organisation (DEMO.md), one of them overdue, and the funders' reminder policies."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.periods import due_after
from grants.deadlines import policies, services
from grants.deadlines.models import Deadline, DeadlineKind, DeadlineSource


def load(session: Session, ctx: Any) -> None:
    hiv = ctx.grants["RCM-HIV-2026-SW"]
    core = ctx.grants["CNF-CORE-2026"]
    program = ctx.users["program"]
    finance = ctx.users["finance"]

    # Semester progress updates (45 days after each semester) and CNF's annual report (90 days
    # after year end) come from the reporting periods.
    services.sync_period_deadlines(session, today=ctx.today)
    for deadline in session.scalars(select(Deadline).where(Deadline.source_kind == DeadlineSource.period)):
        deadline.owner_id = program.id
        if deadline.submitted_on is not None:
            deadline.submitted_on = deadline.due_date  # S1 went to the donor on time, 14 Aug 2026
    session.flush()

    for year_end in (date(2026, 12, 31), date(2027, 12, 31)):
        services.create_deadline(
            session,
            grant_id=hiv.id,
            kind=DeadlineKind.disbursement_request,
            title=f"Annual progress update and disbursement request {year_end.year}",
            due_date=due_after(year_end, 60),  # 31 Dec 2026 → 1 Mar 2027
            owner_id=finance.id,
            notes="Progress update with the annual financial report; the next disbursement depends on it.",
        )
    # The one overdue deadline of the demo: whatever day the demo is loaded, it is ten days late.
    services.create_deadline(
        session,
        grant_id=hiv.id,
        kind=DeadlineKind.audit,
        title="Annual external audit: audited statements to the Principal Recipient",
        due_date=ctx.today - timedelta(days=10),
        owner_id=finance.id,
        notes="Auditor's fieldwork done; waiting for the management letter.",
    )
    services.create_deadline(
        session,
        grant_id=core.id,
        kind=DeadlineKind.board_meeting,
        title="Board meeting: approve the annual report to the Community Networks Fund",
        due_date=date(2027, 3, 15),
        owner_id=program.id,
    )

    policies.set_reminder_policy(
        session,
        funder_id=ctx.funders["RHF"].id,
        days_before="30,14,7,1",
        on_due_day=True,
        overdue_every_days=7,
        escalate_after_days=7,
        escalate_roles="lead,finance,program",
    )
    policies.set_reminder_policy(
        session,
        funder_id=ctx.funders["CNF"].id,
        days_before="30,7,1",
        on_due_day=True,
        overdue_every_days=7,
        escalate_after_days=14,
    )
