"""The demo's deadlines (DEMO.md): semester updates, the annual update and disbursement request, one overdue audit."""

from __future__ import annotations

import datetime as dt
from datetime import date

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
        load_demo(app)
        yield db.session
        db.session.rollback()
    _empty_database(app)


def test_demo_deadlines_follow_the_grant_rules_and_one_is_overdue(demo):
    from grants.deadlines.models import Deadline, DeadlineState
    from grants.models import Grant

    session = demo
    today = date.today()
    rows = session.scalars(select(Deadline).join(Grant).order_by(Deadline.due_date)).all()
    by_title = {(d.grant.reference, d.title.split(" (")[0]): d for d in rows}
    assert by_title[("RCM-HIV-2026-SW", "Report for S1")].due_date == date(2026, 8, 14)
    assert by_title[("RCM-HIV-2026-SW", "Annual progress update and disbursement request 2026")].due_date == date(
        2027, 3, 1
    )
    assert by_title[("RCM-HIV-2026-SW", "Annual progress update and disbursement request 2027")].due_date == date(
        2028, 2, 29
    )
    assert by_title[("CNF-CORE-2026", "Report for Y1")].due_date == date(2027, 3, 31)
    # Among the deadlines this package loads (periods and one-offs; requirements belong to compliance),
    # exactly one is overdue: the external audit.
    overdue = [d for d in rows if d.state_on(today) == DeadlineState.overdue and d.source_kind.value != "requirement"]
    assert [d.kind.value for d in overdue] == ["audit"]


def test_demo_shows_what_is_still_missing_from_the_other_domains(demo):
    from app.domains import DOMAINS
    from grants.deadlines.missing import missing_for
    from grants.deadlines.models import Deadline

    session = demo
    s3 = session.scalar(select(Deadline).where(Deadline.title.like("Report for S3%")))
    missing = missing_for(session, s3)
    if "indicators" in DOMAINS:
        assert any("indicators without results for S3" in item for item in missing), missing
    if "grants.evidence" in DOMAINS:
        assert any("awaiting verification" in item for item in missing), missing


def test_demo_sweep_sends_the_overdue_audit_reminder_and_its_escalation_to_the_outbox(demo):
    from grants.deadlines.models import ReminderLog
    from grants.deadlines.reminders import sweep

    session = demo
    session.commit()
    result = sweep(session, now=dt.datetime.now(dt.UTC), sender=None)
    logs = session.scalars(select(ReminderLog)).all()
    assert result.outbox == len(logs) >= 2
    audit = [log for log in logs if "Annual external audit: audited statements" in log.subject]
    assert sorted((log.recipient.username, log.subject.split(":")[0]) for log in audit) == [
        ("finance", "[Grantkeeper] Overdue"),  # the owner
        ("program", "[Grantkeeper] Escalation"),  # the grant's program lead, 10 days late (RHF escalates after 7)
    ]
