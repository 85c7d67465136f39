"""Requirement windows independent of reporting periods, the meeting-count rule, and one judgement for
the matrix and the deadlines."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from grants import services as grants
from grants.compliance import builder, services
from grants.deadlines.models import Deadline, DeadlineSource
from grants.evidence import consultations
from grants.models import Grant, ReportingPeriod

SEMESTER_RCM = [
    {
        "rule": "meeting_count",
        "params": {"body": "RCM", "min_meetings": 2, "population": "sex_workers", "min_count": 1},
    }
]


@pytest.fixture
def quarterly(session, world):
    """A 2026 grant reported on quarterly, with an RCM and four meetings."""
    grant = grants.create_grant(
        session,
        funder=session.get(Grant, world.grant_a).funder,
        reference="GQ-1",
        title="Quarterly grant",
        recipient="Coalition",
        currency="GBP",
        amount=Decimal("5000"),
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
    )
    grants.generate_periods(session, grant, "quarter", 30, today=date(2026, 1, 5))
    body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
    for day, sex_workers in ((date(2026, 2, 10), 1), (date(2026, 5, 12), 0), (date(2026, 6, 20), 2)):
        consultations.record_consultation(
            session,
            grant=grant,
            body=body,
            held_on=day,
            title=f"RCM {day:%B}",
            attendance={"sex_workers": sex_workers, "government": 4},
        )
    consultations.record_consultation(
        session, grant=grant, body=body, held_on=date(2026, 9, 3), title="RCM September", attendance={"sex_workers": 1}
    )
    session.flush()
    return grant


def _periods(session, grant):
    return list(
        session.scalars(
            select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id).order_by(ReportingPeriod.start_date)
        )
    )


def test_a_semester_window_on_a_quarterly_grant_counts_meetings_over_six_months(session, quarterly):
    requirement = services.create_requirement(
        session, quarterly, code="C1", title="Community consultations", frequency="semester", rules=SEMESTER_RCM
    )
    assert builder.describe_requirement(session, requirement) == (
        "At least 2 RCM meetings with at least 1 sex worker representative per semester."
    )
    rows = services.judge_requirement(session, requirement, today=date(2027, 1, 10))
    assert [(r.window_start, r.window_end) for r in rows] == [
        (date(2026, 1, 1), date(2026, 6, 30)),
        (date(2026, 7, 1), date(2026, 12, 31)),
    ]
    q1, q2, q3, q4 = _periods(session, quarterly)
    assert [r.period_id for r in rows] == [q2.id, q4.id]  # shown under the quarter that ends the semester
    first, second = rows
    # February (1) and June (2) count; May had no sex worker representative and does not.
    assert first.status == "met" and first.window_label.startswith("Semester 1")
    assert "2 of the 2 RCM meetings" in first.explanation and "12 May 2026: 0" in first.explanation
    assert second.status == "not_met" and "1 of the 2 RCM meetings" in second.explanation
    matrix = services.compliance_matrix(session, quarterly, today=date(2027, 1, 10))
    assert matrix.cell(requirement.id, q1.id) is None and matrix.cell(requirement.id, q2.id).status == "met"


def test_the_meeting_count_is_pending_then_at_risk_inside_its_window(session, quarterly):
    requirement = services.create_requirement(
        session, quarterly, code="C1", title="Community consultations", frequency="semester", rules=SEMESTER_RCM
    )
    early = services.judge_requirement(session, requirement, today=date(2026, 1, 20))[0]
    assert early.status == "pending"  # nothing yet, and the window runs to 30 June
    middle = services.judge_requirement(session, requirement, today=date(2026, 5, 20))[0]
    assert middle.status == "at_risk" and "1 of the 2" in middle.explanation and "30 Jun 2026" in middle.explanation


def test_meeting_count_parameters_are_checked_like_any_rule(session, quarterly):
    from core.errors import DomainValidationError

    with pytest.raises(DomainValidationError) as caught:
        services.create_requirement(
            session,
            quarterly,
            code="C2",
            title="Consultations",
            frequency="semester",
            rules=[
                {"rule": "meeting_count", "params": {"body": "CCM", "population": "sex_workers", "min_meetings": 0}}
            ],
        )
    message = " ".join(caught.value.errors["rules"])
    assert "min_meetings" in message


def test_windows_follow_the_grant_when_its_periods_are_regenerated(session, world):
    grant = session.get(Grant, world.grant_a)  # semesters S1, S2 in the fixture
    requirement = services.create_requirement(
        session,
        grant,
        code="Q1",
        title="Quarterly minutes",
        frequency="quarter",
        due_days=20,
        expected_evidence="minutes",
    )
    before = services.judge_requirement(session, requirement, today=date(2026, 2, 1))
    assert len(before) == 4 and {r.period_label for r in before} == {"S1", "S2"}
    grants.generate_periods(session, grant, "quarter", 30, replace_open=True, today=date(2026, 2, 1))
    after = services.judge_requirement(session, requirement, today=date(2026, 2, 1))
    assert [(r.window_start, r.window_end) for r in after] == [(r.window_start, r.window_end) for r in before]
    assert [r.period_label for r in after] == ["Q1", "Q2", "Q3", "Q4"] and after[0].window_label == "Q1"
    # The deadlines were made by the generation itself: four reports and the requirement's next due date.
    period_deadlines = session.scalars(
        select(Deadline).where(Deadline.grant_id == grant.id, Deadline.source_kind == DeadlineSource.period)
    ).all()
    assert sorted(d.due_date for d in period_deadlines) == [
        date(2026, 4, 30),
        date(2026, 7, 30),
        date(2026, 10, 30),
        date(2027, 1, 30),
    ]
    owed = session.scalar(
        select(Deadline).where(Deadline.source_kind == DeadlineSource.requirement, Deadline.source_id == requirement.id)
    )
    assert owed.due_date == date(2026, 4, 20) and "(Q1)" in owed.title


def test_generated_periods_have_their_report_deadlines_at_once(session, world):
    grant = grants.create_grant(
        session,
        funder=session.get(Grant, world.grant_a).funder,
        reference="GN-1",
        title="New grant",
        recipient="Coalition",
        currency="USD",
        amount=Decimal("100"),
        start_date=date(2026, 1, 1),
        end_date=date(2026, 6, 30),
    )
    periods = grants.generate_periods(session, grant, "quarter", 45)
    due = {d.source_id: d.due_date for d in session.scalars(select(Deadline).where(Deadline.grant_id == grant.id))}
    assert due == {p.id: p.report_due for p in periods}


def test_custom_and_whole_grant_windows(session, quarterly):
    custom = services.create_requirement(
        session,
        quarterly,
        code="W1",
        title="Spring consultations",
        frequency="custom",
        window_start=date(2026, 3, 1),
        window_end=date(2026, 5, 31),
        rules=[{"rule": "meeting_count", "params": {"body": "RCM", "population": "sex_workers", "min_meetings": 1}}],
    )
    (row,) = services.judge_requirement(session, custom, today=date(2026, 6, 5))
    assert (row.window_start, row.window_end, row.status) == (date(2026, 3, 1), date(2026, 5, 31), "not_met")
    assert "between 1 Mar 2026 and 31 May 2026" in builder.describe_requirement(session, custom)
    whole = services.create_requirement(
        session, quarterly, code="W2", title="Over the grant", frequency="grant", rules=SEMESTER_RCM
    )
    (row,) = services.judge_requirement(session, whole, today=date(2026, 7, 1))
    assert row.status == "met" and row.window_label == "the whole grant"


def test_a_custom_window_needs_its_dates(session, quarterly):
    from core.errors import DomainValidationError

    with pytest.raises(DomainValidationError) as caught:
        services.create_requirement(
            session, quarterly, code="W3", title="Custom", frequency="custom", window_start=date(2026, 5, 1)
        )
    assert "window_end" in caught.value.errors


def test_the_matrix_and_the_deadline_agree_on_an_overdue_annual_audit(session, world):
    grant = session.get(Grant, world.grant_a)
    audit = services.create_requirement(
        session,
        grant,
        code="A1",
        title="Annual external audit",
        category="audit",
        frequency="annual",
        due_days=10,
        rules=[{"rule": "evidence_verified", "params": {"kind": "report", "linked_only": True}}],
    )
    today = date(2027, 1, 20)
    services.register_deadlines(session, audit, today=today)
    matrix = services.compliance_matrix(session, grant, today=today)
    (row,) = [r for rows in matrix.windows.values() for r in rows if r.requirement_id == audit.id]
    deadline = session.scalar(
        select(Deadline).where(Deadline.source_kind == DeadlineSource.requirement, Deadline.source_id == audit.id)
    )
    assert row.status == "overdue" and deadline.due_date == row.due_date == date(2027, 1, 10)
    assert deadline.state_on(today).value == "overdue"
