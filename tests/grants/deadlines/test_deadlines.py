"""Deadlines: states from dates, period deadlines kept in step, requirement upserts, the urgency view."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select


def test_state_is_computed_from_dates_and_flags():
    from grants.deadlines.models import DeadlineState, deadline_state

    due = date(2026, 8, 14)
    assert deadline_state(due, date(2026, 7, 1)) == DeadlineState.upcoming
    assert deadline_state(due, date(2026, 8, 7)) == DeadlineState.due
    assert deadline_state(due, date(2026, 8, 14)) == DeadlineState.due
    assert deadline_state(due, date(2026, 8, 15)) == DeadlineState.overdue
    assert deadline_state(due, date(2026, 8, 15), submitted_on=date(2026, 8, 13)) == DeadlineState.submitted
    assert deadline_state(due, date(2026, 8, 15), waived=True) == DeadlineState.waived


def test_each_reporting_period_gets_one_deadline_and_sync_is_idempotent(app, world):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import Deadline, DeadlineSource
    from grants.models import PeriodStatus, ReportingPeriod

    with app.app_context():
        # Generating the periods made their deadlines at once: two semesters on each of GA-1 and GB-1.
        made = db.session.query(Deadline).filter(Deadline.source_kind == DeadlineSource.period).count()
        assert made == 4
        first = services.sync_period_deadlines(db.session, today=date(2026, 7, 1))
        db.session.commit()
        assert first.created == 0
        again = services.sync_period_deadlines(db.session, today=date(2026, 7, 1))
        assert (again.created, again.updated, again.removed) == (0, 0, 0)

        period = db.session.get(ReportingPeriod, world.period_a1)
        period.report_due = date(2026, 8, 20)
        period.status = PeriodStatus.submitted
        db.session.commit()
        moved = services.sync_period_deadlines(db.session, today=date(2026, 8, 10))
        db.session.commit()
        deadline = services.deadline_for_source(db.session, DeadlineSource.period, world.period_a1)
        assert moved.updated == 1
        assert deadline.due_date == date(2026, 8, 20)
        assert deadline.submitted_on == date(2026, 8, 10)
        assert deadline.title.startswith("Report for S1")

        db.session.delete(period)
        db.session.commit()
        gone = services.sync_period_deadlines(db.session, today=date(2026, 8, 10))
        db.session.commit()
        assert gone.removed == 1
        count = len(db.session.scalars(select(Deadline).where(Deadline.source_kind == DeadlineSource.period)).all())
        assert count == 3


def test_requirement_deadlines_are_upserted_by_source(app, world):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import DeadlineKind

    with app.app_context():
        first = services.upsert_deadline(
            db.session,
            grant_id=world.grant_a,
            source_kind="requirement",
            source_id=77,
            title="Safeguarding policy in place",
            due_date=date(2026, 6, 30),
            owner_id=world.users["Program"],
        )
        second = services.upsert_deadline(
            db.session,
            grant_id=world.grant_a,
            source_kind="requirement",
            source_id=77,
            title="Safeguarding and data-protection policy in place",
            due_date="2026-07-31",
        )
        db.session.commit()
        assert first.id == second.id
        assert second.due_date == date(2026, 7, 31)
        assert second.owner_id == world.users["Program"]  # kept when no owner is given
        assert second.kind == DeadlineKind.requirement


def test_bad_deadline_input_names_the_field_and_saves_nothing(app, world):
    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import Deadline, DeadlineSource

    with app.app_context():
        with pytest.raises(DomainValidationError) as error:
            services.create_deadline(db.session, grant_id=world.grant_a, title="", due_date="31/12/2026")
        assert "due_date" in error.value.errors
        with pytest.raises(DomainValidationError) as error:
            services.create_deadline(db.session, grant_id=world.grant_a, title=" ", due_date="2026-12-31")
        assert error.value.errors == {"title": ["is required"]}
        with pytest.raises(DomainValidationError) as error:
            # The program user is not a member of GB-1: they cannot own its deadline.
            services.create_deadline(
                db.session,
                grant_id=world.grant_b,
                title="Audit",
                due_date="2026-12-31",
                owner_id=world.users["Program"],
            )
        assert "owner" in error.value.errors
        with pytest.raises(DomainValidationError) as error:
            services.upsert_deadline(
                db.session, grant_id=world.grant_a, source_kind="wishes", source_id=1, title="x", due_date="2026-01-01"
            )
        assert "source_kind" in error.value.errors
        db.session.rollback()
        assert db.session.scalar(select(Deadline.id).where(Deadline.source_kind == DeadlineSource.manual)) is None


def test_period_deadline_date_is_changed_on_the_period_not_the_deadline(app, world):
    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import DeadlineSource

    with app.app_context():
        services.sync_period_deadlines(db.session, today=date(2026, 7, 1))
        db.session.commit()
        deadline = services.deadline_for_source(db.session, DeadlineSource.period, world.period_a1)
        with pytest.raises(DomainValidationError) as error:
            services.update_deadline(db.session, deadline, due_date="2026-12-01")
        assert "reporting period" in error.value.errors["due_date"][0]
        db.session.rollback()
        with pytest.raises(DomainValidationError):
            services.delete_deadline(db.session, deadline)


def test_marking_a_period_deadline_submitted_marks_the_report_submitted(app, world):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import DeadlineSource, DeadlineState
    from grants.models import PeriodStatus, ReportingPeriod

    with app.app_context():
        services.sync_period_deadlines(db.session, today=date(2026, 7, 1))
        deadline = services.deadline_for_source(db.session, DeadlineSource.period, world.period_a1)
        services.mark_submitted(db.session, deadline, on=date(2026, 8, 10))
        db.session.commit()
        assert db.session.get(ReportingPeriod, world.period_a1).status == PeriodStatus.submitted
        assert deadline.state_on(date(2026, 9, 1)) == DeadlineState.submitted


def test_my_deadlines_are_sorted_by_urgency_with_what_is_missing(app, world):
    from flask_appbuilder.security.sqla.models import User

    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.missing import MISSING_WORK

    def provider(session, deadline):
        return ["2 indicators without results for S1"] if deadline.title == "External audit 2025" else []

    MISSING_WORK.add("test: audit", provider)
    try:
        with app.app_context():
            services.sync_period_deadlines(db.session, today=date(2026, 8, 20))
            services.create_deadline(
                db.session,
                grant_id=world.grant_a,
                kind="audit",
                title="External audit 2025",
                due_date="2026-09-30",
                owner_id=world.users["Program"],
            )
            services.create_deadline(
                db.session,
                grant_id=world.grant_b,
                title="Secret board meeting",
                due_date="2026-08-21",
                owner_id=world.users["Finance"],
            )
            services.create_deadline(
                db.session,
                grant_id=world.grant_a,
                title="Board meeting",
                due_date="2026-08-25",
                owner_id=world.users["Program"],
            )
            db.session.commit()
            program = db.session.get(User, world.users["Program"])
            rows = services.deadlines_for_user(db.session, program, today=date(2026, 8, 20))
            titles = [(row.deadline.title.split(" (")[0], row.state.value) for row in rows]
            # S1 report (due 14 Aug) is overdue and unowned on a grant program leads; then the
            # board meeting due in 5 days; then the audit in September.
            assert titles == [
                ("Report for S1", "overdue"),
                ("Board meeting", "due"),
                ("External audit 2025", "upcoming"),
                ("Report for S2", "upcoming"),
            ]
            assert rows[2].missing == ["2 indicators without results for S1"]
            # GB-1's deadlines never show for the program user, even asking for "all".
            everything = services.deadlines_for_user(db.session, program, today=date(2026, 8, 20), mine_only=False)
            assert {row.deadline.grant.reference for row in everything} == {"GA-1"}
    finally:
        MISSING_WORK.remove("test: audit")
