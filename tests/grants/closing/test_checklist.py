"""The checklist that closes a period: each line says what is missing, in words, and links the form that fixes it."""

from __future__ import annotations

import datetime as dt
from datetime import date

import pytest
from sqlalchemy import event

from core import clock
from grants.closing.checklist import CHECKLIST, Level, build_checklist

AFTER_S1 = dt.datetime(2026, 7, 20, 9, 0, tzinfo=dt.UTC)  # S1 (Jan–Jun 2026) is over, its report due 14 Aug


def _grant_and_s1(session, world):
    from grants.models import Grant, ReportingPeriod

    return session.get(Grant, world.grant_a), session.get(ReportingPeriod, world.period_a1)


def _user(session, world, role):
    from flask_appbuilder.security.sqla.models import User

    return session.get(User, world.users[role])


def _lines(checklist):
    return {line.key: line for line in checklist.lines}


def _indicator_with_target(session, grant, period, code):
    from indicators import services

    indicator = services.create_indicator(session, grant, code=code, name=f"Indicator {code}", unit="number")
    services.set_target(session, indicator, period, value="10")
    return indicator


def test_every_domain_contributes_its_lines_in_the_order_people_close_a_period(app):
    assert CHECKLIST.keys() == [
        "results_entered",
        "results_verified",
        "result_evidence",
        "evidence",
        "consultations",
        "requirements",
        "spending",
        "variance",
    ]


def test_an_empty_period_names_what_is_missing_and_links_the_forms(app, world, session):
    grant, s1 = _grant_and_s1(session, world)
    _indicator_with_target(session, grant, s1, "KP-1")
    session.flush()
    with clock.frozen_at(AFTER_S1):
        checklist = build_checklist(session, grant, s1)
    lines = _lines(checklist)
    assert "result_evidence" not in lines  # no result, so no evidence on results to ask for
    assert lines["results_entered"].level == Level.missing
    assert "0 of 1 indicator measured in S1 have a result; 1 still need one." in lines["results_entered"].summary
    assert lines["results_entered"].details == ("KP-1 Indicator KP-1: no result",)
    fix = lines["results_entered"].fixes[0]
    assert (fix.endpoint, dict(fix.args)) == ("ResultView.record", {"indicator": fix.args[0][1], "period": s1.id})
    assert lines["evidence"].level == Level.missing
    assert "No evidence is dated in S1 (1 Jan 2026 to 30 Jun 2026)" in lines["evidence"].summary
    assert lines["consultations"].level == Level.attention
    assert lines["requirements"].level == Level.done
    assert lines["spending"].level == Level.attention
    assert "No spending is recorded for S1" in lines["spending"].summary
    assert lines["variance"].level == Level.done
    assert checklist.level == Level.missing
    assert checklist.summary.startswith("2 missing")


def test_the_checklist_turns_green_when_results_evidence_and_spending_are_in(app, world, session):
    from budgets import services as budgets
    from grants.evidence import consultations
    from grants.evidence import services as evidence
    from indicators import services as indicators

    grant, s1 = _grant_and_s1(session, world)
    from grants import services as grants

    program, finance = _user(session, world, "Program"), _user(session, world, "Finance")
    grants.add_member(session, grant, finance, "finance")  # a colleague on the grant verifies (four eyes)
    indicator = _indicator_with_target(session, grant, s1, "KP-1")
    with clock.frozen_at(AFTER_S1):
        result = indicators.record_result(session, indicator, s1, user=program, value="12", status="submitted")
        indicators.verify_result(session, result, finance)
        minutes = evidence.create_evidence(
            session,
            None,
            grant=grant,
            title="RCM minutes, 10 March",
            kind="minutes",
            evidence_date=date(2026, 3, 10),
            uploaded_by=program,
            url="https://example.org/minutes",
        )
        evidence.verify_evidence(session, minutes, finance, "verified")
        body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
        meeting = consultations.record_consultation(
            session, grant=grant, body=body, held_on=date(2026, 3, 10), title="Quarterly meeting"
        )
        evidence.link_evidence(session, minutes, "consultation", meeting.id)
        evidence.link_evidence(session, minutes, "indicator_result", result.id)
        budgets.create_line(
            session, grant, code="1.1", description="Outreach", cost_category="ACT", planned={"S1": "400"}
        )
        budgets.record_expenditure(
            session, grant, line="1.1", spent_on=date(2026, 5, 2), amount="350.00", currency="USD"
        )
        session.flush()
        checklist = build_checklist(session, grant, s1)
    lines = _lines(checklist)
    assert {key: line.level for key, line in lines.items()} == dict.fromkeys(lines, Level.done)
    assert lines["spending"].summary == (
        "1 expenditure recorded for S1, USD 350.00 (planned: USD 400.00); the latest dated 2 May 2026."
    )
    assert checklist.summary == "All 8 checks are done: the period is ready to report."


def test_a_draft_blocks_and_a_result_awaiting_verification_asks_for_a_colleague(app, world, session):
    from indicators import services as indicators

    grant, s1 = _grant_and_s1(session, world)
    program = _user(session, world, "Program")
    first = _indicator_with_target(session, grant, s1, "KP-1")
    second = _indicator_with_target(session, grant, s1, "KP-2")
    with clock.frozen_at(AFTER_S1):
        indicators.record_result(session, first, s1, user=program, value="3")
        indicators.record_result(session, second, s1, user=program, value="4", status="submitted")
        session.flush()
        verified = _lines(build_checklist(session, grant, s1))["results_verified"]
    assert verified.level == Level.missing
    assert verified.summary == (
        "0 of 2 results verified. 1 draft is not submitted (drafts never reach the donor). "
        "1 awaiting verification by a colleague (not the person who entered it)."
    )
    assert verified.details == ("KP-1: draft, submit it", "KP-2: awaiting verification")
    assert [fix.endpoint for fix in verified.fixes] == ["ResultView.show", "ResultView.show"]


def test_a_requirement_not_met_is_red_until_it_is_waived_with_a_reason(app, world, session):
    from grants.compliance import services as compliance

    grant, s1 = _grant_and_s1(session, world)
    requirement = compliance.create_requirement(
        session,
        grant,
        code="R-1",
        title="Audited financial statement",
        category="financial",
        frequency="per_period",
        rules=[{"rule": "evidence_verified", "params": {"kind": "report"}}],
    )
    session.flush()
    with clock.frozen_at(dt.datetime(2026, 9, 1, tzinfo=dt.UTC)):  # after S1's report was due
        line = _lines(build_checklist(session, grant, s1))["requirements"]
        assert line.level == Level.missing
        assert line.details[0].startswith("R-1 Audited financial statement: ")
        assert {fix.endpoint for fix in line.fixes} >= {"RequirementView.cell", "RequirementWaiverView.add"}
        compliance.waive(session, requirement, s1, justification="The donor agreed by e-mail on 3 Sep")
        session.flush()
        line = _lines(build_checklist(session, grant, s1))["requirements"]
    assert line.level == Level.done
    assert line.summary.startswith("1 of 1 requirement met, waived or not yet due in S1.")


def test_the_checklist_follows_a_grant_whose_periods_were_regenerated(app, world, session):
    from grants import services as grants
    from indicators import services as indicators

    grant, s1 = _grant_and_s1(session, world)
    old_id = s1.id
    quarters = grants.generate_periods(session, grant, "quarter", 30, replace_open=True)
    assert [p.label for p in quarters] == ["Q1", "Q2", "Q3", "Q4"]
    q1 = quarters[0]
    assert q1.id != old_id
    indicator = _indicator_with_target(session, grant, q1, "KP-1")
    with clock.frozen_at(AFTER_S1):
        indicators.record_result(session, indicator, q1, user=_user(session, world, "Program"), value="5")
        session.flush()
        lines = _lines(build_checklist(session, grant, q1))
        q2_lines = _lines(build_checklist(session, grant, quarters[1]))
    assert "Every indicator measured in Q1 has a result (1 indicator)." == lines["results_entered"].summary
    assert lines["results_verified"].details == ("KP-1: draft, submit it",)
    assert "No evidence is dated in Q1 (1 Jan 2026 to 31 Mar 2026)" in lines["evidence"].summary
    # Q2 has no target of KP-1, and KP-1 has targets elsewhere: it is not measured in Q2.
    assert q2_lines["results_entered"].summary == "Every indicator measured in Q2 has a result (0 indicators)."


def test_a_period_of_another_grant_is_refused(app, world, session):
    from grants.models import Grant, ReportingPeriod

    with pytest.raises(ValueError, match="is not a period of GA-1"):
        build_checklist(session, session.get(Grant, world.grant_a), session.get(ReportingPeriod, world.period_b1))


def _count_queries(session, grant, period) -> int:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        with clock.frozen_at(AFTER_S1):
            build_checklist(session, grant, period)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_the_checklist_runs_as_many_queries_for_forty_rows_as_for_four(app, world, session):
    from grants.evidence import services as evidence
    from indicators import services as indicators

    grant, s1 = _grant_and_s1(session, world)
    program = _user(session, world, "Program")

    def add(n: int, start: int) -> None:
        with clock.frozen_at(AFTER_S1):
            for i in range(start, start + n):
                indicator = _indicator_with_target(session, grant, s1, f"I-{i}")
                result = indicators.record_result(session, indicator, s1, user=program, value=str(i))
                item = evidence.create_evidence(
                    session,
                    None,
                    grant=grant,
                    title=f"Register {i}",
                    kind="report",
                    evidence_date=date(2026, 2, 1),
                    uploaded_by=program,
                    url=f"https://example.org/{i}",
                )
                evidence.link_evidence(session, item, "indicator_result", result.id)
        session.flush()

    add(4, 0)
    few = _count_queries(session, grant, s1)
    add(36, 4)
    many = _count_queries(session, grant, s1)
    assert many == few
    assert few < 40


def test_program_lead_opens_the_period_page_and_reads_the_checklist_in_words(app, world, program_client):
    response = program_client.get(f"/closing/{world.period_a1}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Close S1" in html
    assert "Results entered" in html and "Spending imported" in html and "Variance flags answered" in html
    assert 'data-level="missing"' in html and "✗ Missing" in html
    assert "Generate for S1" in html  # the report panel exports adds


def test_donor_and_auditor_cannot_open_a_period_page(app, world, donor_client, auditor_client):
    for client in (donor_client, auditor_client):
        assert client.get(f"/closing/{world.period_a1}").status_code in (302, 403)


def test_program_lead_cannot_open_the_period_page_of_a_grant_they_do_not_see(app, world, program_client):
    assert program_client.get(f"/closing/{world.period_b1}").status_code == 404


def test_grant_page_and_periods_list_link_the_period_pages(app, world, program_client, donor_client):
    page = program_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert f'href="/closing/{world.period_a1}"' in page and "Close S1" in page
    listing = program_client.get("/periods/list/").get_data(as_text=True)
    assert f'href="/closing/{world.period_a1}"' in listing
    donor_page = donor_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "/closing/" not in donor_page  # no link a donor cannot follow
    assert "/closing/" not in donor_client.get("/periods/list/").get_data(as_text=True)
