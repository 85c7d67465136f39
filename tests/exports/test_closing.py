"""Generate, review and publish a period's report: the period is submitted, its deadline closed, the donor has the file."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core import clock

PUBLISH_DAY = dt.datetime(2026, 8, 3, 10, 0, tzinfo=dt.UTC)  # S1 over, its report due 14 Aug 2026


def _generate(client, period_id, report="builtin:reporting_periods"):
    response = client.post(f"/period-report/{period_id}/generate", data={"report": report})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "/period-report/review/" in response.headers["Location"]
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def _fresh(db_session, model, pk):
    db_session.rollback()
    return db_session.get(model, pk)


@pytest.fixture
def frozen():
    with clock.frozen_at(PUBLISH_DAY):
        yield


def test_publishing_submits_the_period_closes_its_deadline_and_the_donor_gets_exactly_that_file(
    app, world, db_session, program_client, donor_client, store, frozen
):
    from exports import services
    from exports.models import ExportRecord
    from grants.deadlines.models import Deadline, DeadlineSource, DeadlineState
    from grants.deadlines.services import deadlines_for_user
    from grants.models import PeriodStatus, ReportingPeriod

    record_id = _generate(program_client, world.period_a1)
    assert donor_client.get(f"/exports/file/{record_id}").status_code == 404  # a draft: not the donor's yet
    page = program_client.get(f"/closing/{world.period_a1}").get_data(as_text=True)
    assert "Not published" in page and "Publish to the donor" in page

    response = program_client.post(f"/period-report/publish/{record_id}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/closing/{world.period_a1}")

    record = _fresh(db_session, ExportRecord, record_id)
    period = db_session.get(ReportingPeriod, world.period_a1)
    assert record.published and record.published_by == "program"
    assert period.status == PeriodStatus.submitted
    assert period.submitted_by == "program"
    assert clock.as_utc(period.submitted_at) == PUBLISH_DAY
    deadline = db_session.scalar(
        select(Deadline).where(Deadline.source_kind == DeadlineSource.period, Deadline.source_id == period.id)
    )
    assert deadline is not None and deadline.submitted_on == dt.date(2026, 8, 3)
    assert deadline.state_on(dt.date(2026, 9, 1)) == DeadlineState.submitted  # never overdue now
    from flask_appbuilder.security.sqla.models import User

    admin = db_session.get(User, world.users["Admin"])
    still_open = deadlines_for_user(db_session, admin, today=dt.date(2026, 9, 1), mine_only=False)
    assert deadline.id not in {row.deadline.id for row in still_open}  # no reminders: it is not open any more

    download = donor_client.get(f"/exports/file/{record_id}")
    assert download.status_code == 200
    assert download.data == services.export_bytes(store, record)

    page = program_client.get(f"/closing/{world.period_a1}").get_data(as_text=True)
    assert "Submitted to the donor on 3 Aug 2026 by program" in page
    assert "deadline closed on 3 Aug 2026" in page


def test_the_audit_trail_records_the_publication_and_the_submission_together(
    app, world, db_session, program_client, frozen
):
    from core.audit import AuditEntry

    record_id = _generate(program_client, world.period_a1)
    program_client.post(f"/period-report/publish/{record_id}")
    db_session.rollback()
    entries = list(db_session.scalars(select(AuditEntry).where(AuditEntry.username == "program")))
    tables = {(e.table_name, e.record_id) for e in entries if e.action == "update"}
    assert ("export_records", str(record_id)) in tables
    assert ("reporting_periods", str(world.period_a1)) in tables
    assert any(e.table_name == "deadlines" for e in entries)
    submitted = next(e for e in entries if e.table_name == "reporting_periods")
    assert submitted.changes["status"] == ["open", "submitted"]


def test_unpublishing_needs_a_reason_and_reopens_the_period_and_its_deadline(
    app, world, db_session, program_client, donor_client, frozen
):
    from core.audit import AuditEntry
    from exports.models import ExportRecord
    from grants.deadlines.models import Deadline, DeadlineSource
    from grants.models import PeriodStatus, ReportingPeriod

    record_id = _generate(program_client, world.period_a1)
    program_client.post(f"/period-report/publish/{record_id}")

    refused = program_client.post(f"/period-report/unpublish/{record_id}", data={"reason": "  "}, follow_redirects=True)
    assert "say why the file is taken back" in refused.get_data(as_text=True)
    assert _fresh(db_session, ExportRecord, record_id).published
    assert db_session.get(ReportingPeriod, world.period_a1).status == PeriodStatus.submitted

    program_client.post(f"/period-report/unpublish/{record_id}", data={"reason": "Wrong figures for KP-1"})
    record = _fresh(db_session, ExportRecord, record_id)
    period = db_session.get(ReportingPeriod, world.period_a1)
    assert not record.published and record.unpublish_reason == "Wrong figures for KP-1"
    assert record.unpublished_by == "program"
    assert period.status == PeriodStatus.open and period.submitted_at is None
    deadline = db_session.scalar(
        select(Deadline).where(Deadline.source_kind == DeadlineSource.period, Deadline.source_id == period.id)
    )
    assert deadline.submitted_on is None
    assert donor_client.get(f"/exports/file/{record_id}").status_code == 404
    audit = db_session.scalars(
        select(AuditEntry).where(AuditEntry.table_name == "export_records", AuditEntry.record_id == str(record_id))
    ).all()
    assert any(e.changes.get("unpublish_reason") == [None, "Wrong figures for KP-1"] for e in audit)
    page = program_client.get(f"/exports/show/{record_id}").get_data(as_text=True)
    assert "Not published: taken back from donors on 3 Aug 2026 by program (reason: Wrong figures for KP-1)" in page


def test_unpublish_service_refuses_without_a_reason_and_changes_nothing(app, world, db_session, store, frozen):
    from core.errors import DomainValidationError
    from exports import services
    from grants.models import Grant, PeriodStatus, ReportingPeriod

    grant = db_session.get(Grant, world.grant_a)
    period = db_session.get(ReportingPeriod, world.period_a1)
    record = services.run_export(
        db_session, store, grant=grant, period=period, user="finance", builtin="reporting_periods"
    )
    services.publish(db_session, record, user="finance")
    with pytest.raises(DomainValidationError) as refused:
        services.unpublish(db_session, record, user="finance", reason="")
    assert "reason" in refused.value.errors
    assert record.published and period.status == PeriodStatus.submitted


def test_review_lists_the_figures_that_changed_since_the_last_submission_then_says_nothing_changed(
    app, world, db_session, program_client, frozen
):
    first = _generate(program_client, world.period_a1)
    review = program_client.get(f"/period-report/review/{first}").get_data(as_text=True)
    assert "This is the first submission of this report for S1" in review
    program_client.post(f"/period-report/publish/{first}")  # S1 becomes submitted

    second = _generate(program_client, world.period_a1)
    review = program_client.get(f"/period-report/review/{second}").get_data(as_text=True)
    assert "1 figure changed since the last submission." in review
    assert "Reporting periods, S1, Status (E4)" in review
    assert "“open”" in review and "“submitted”" in review
    program_client.post(f"/period-report/publish/{second}")

    third = _generate(program_client, world.period_a1)
    review = program_client.get(f"/period-report/review/{third}").get_data(as_text=True)
    assert "Nothing changed: every figure is the same as in the last submission." in review


def test_the_period_page_offers_the_funders_mapped_template_first(app, world, program_client, uploaded):
    html = program_client.get(f"/closing/{world.period_a1}").get_data(as_text=True)
    assert f'<option value="template:{uploaded}" selected>Annual report (the funder&#39;s template)</option>' in html


def test_the_period_page_offers_the_built_in_report_without_a_mapped_template(app, world, program_client):
    html = program_client.get(f"/closing/{world.period_a1}").get_data(as_text=True)
    assert '<option value="builtin:indicator_progress" selected>' in html


def test_the_export_page_says_in_words_who_published_it_and_offers_publish(
    app, world, db_session, program_client, frozen
):
    from flask_appbuilder.security.sqla.models import User

    user = db_session.scalar(select(User).where(User.username == "program"))
    user.first_name, user.last_name = "Petra", "Alexander"
    db_session.commit()
    record_id = _generate(program_client, world.period_a1)
    page = program_client.get(f"/exports/show/{record_id}").get_data(as_text=True)
    assert "Not published" in page and "Published False" not in page
    assert f'action="/exports/{record_id}/publish"' in page
    program_client.post(f"/exports/{record_id}/publish")
    page = program_client.get(f"/exports/show/{record_id}").get_data(as_text=True)
    assert "Published to donors on 3 Aug 2026 by Petra Alexander" in page
    assert f'action="/exports/{record_id}/unpublish"' in page


def test_donor_sees_the_export_page_in_words_without_publish_buttons(
    app, world, db_session, program_client, donor_client, frozen
):
    record_id = _generate(program_client, world.period_a1)
    program_client.post(f"/period-report/publish/{record_id}")
    page = donor_client.get(f"/exports/show/{record_id}").get_data(as_text=True)
    assert "Published to donors on 3 Aug 2026" in page
    assert "/publish" not in page and "/unpublish" not in page and "/closing/" not in page


def test_donor_cannot_generate_review_or_publish(app, world, program_client, donor_client, frozen):
    record_id = _generate(program_client, world.period_a1)
    assert donor_client.post(
        f"/period-report/{world.period_a1}/generate", data={"report": "builtin:reporting_periods"}
    ).status_code in (302, 403)
    assert donor_client.get(f"/period-report/review/{record_id}").status_code in (302, 403)
    assert donor_client.post(f"/period-report/publish/{record_id}").status_code in (302, 403)
    assert donor_client.get(f"/exports/file/{record_id}").status_code == 404  # still not published


def test_a_program_lead_cannot_publish_an_export_of_a_grant_they_do_not_see(
    app, world, db_session, store, program_client, frozen
):
    from exports import services
    from exports.models import ExportRecord
    from grants.models import Grant, ReportingPeriod

    grant = db_session.get(Grant, world.grant_b)
    record = services.run_export(
        db_session,
        store,
        grant=grant,
        period=db_session.get(ReportingPeriod, world.period_b1),
        user="finance",
        builtin="reporting_periods",
    )
    db_session.commit()
    assert program_client.post(f"/period-report/publish/{record.id}").status_code == 404
    assert not _fresh(db_session, ExportRecord, record.id).published
