"""Requirement rules: each gives a status per period and says why; bad rules are refused by name."""

from datetime import date

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError
from grants.compliance import services
from grants.compliance.models import Requirement, RequirementWaiver
from grants.evidence import services as evidence
from grants.models import PeriodStatus, ReportingPeriod
from tests.grants.evidence.helpers import add_evidence, user

S1_OPEN = date(2026, 3, 15)  # inside S1 (Jan-Jun 2026), report due 14 Aug 2026
S1_CLOSED = date(2026, 7, 20)  # S1 over, report not yet due
S1_LATE = date(2026, 9, 1)  # past S1's due date


def requirement_count(session):
    return session.scalar(select(func.count(Requirement.id)))


def status_of(session, requirement, period_id, today):
    rows = [
        r
        for r in services.requirement_status(session, requirement.grant_id, period_id, today)
        if r.requirement_id == requirement.id
    ]
    assert len(rows) == 1
    return rows[0]


def kp_requirement(session, world, **params):
    return services.create_requirement(
        session,
        world.grant_a,
        code="R1",
        title="Sex workers at every RCM meeting",
        category="community_inclusion",
        rules=[
            {"rule": "consultation_representation", "params": {"body": "RCM", "population": "sex_workers", **params}}
        ],
    )


@pytest.fixture
def rcm(session):
    return evidence.create_body(session, code="RCM", name="Regional Coordinating Mechanism")


def meet(session, world, rcm, day, sex_workers):
    return evidence.record_consultation(
        session,
        grant=world.grant_a,
        body=rcm,
        held_on=day,
        title=f"RCM {day}",
        attendance={"government": 4, "sex_workers": sex_workers},
    )


# ---------------------------------------------------------------- bad rules


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ([{"rule": "evidence_verified", "params": {"kind": "minutes", "colour": "red"}}], "unknown parameter 'colour'"),
        ([{"rule": "evidence_verified", "params": {}}], "parameter 'kind'"),
        ([{"rule": "evidence_verified", "params": {"kind": "gossip"}}], "parameter 'kind'"),
        ([{"rule": "teleport", "params": {}}], "unknown rule 'teleport'"),
        (
            [{"rule": "consultation_representation", "params": {"body": "NOPE", "population": "sex_workers"}}],
            "no coordinating body with code 'NOPE'",
        ),
        (
            [{"rule": "consultation_representation", "params": {"body": "RCM", "population": "aliens"}}],
            "parameter 'population'",
        ),
        ([{"rule": "report_submitted", "params": {"grace_days": -3}}], "parameter 'grace_days'"),
        ("not a list", "must be a list"),
    ],
)
def test_bad_rules_are_refused_naming_the_parameter_and_nothing_is_saved(session, world, rcm, rules, words):
    before = requirement_count(session)
    with pytest.raises(DomainValidationError) as caught:
        services.create_requirement(session, world.grant_a, code="RX", title="Bad", rules=rules)
    assert words in " ".join(caught.value.errors["rules"])
    session.rollback()
    assert requirement_count(session) == before


def test_a_rule_referencing_another_grants_indicator_is_refused(app, session, world):
    indicators = pytest.importorskip("indicators.services")
    grant_b = session.get(type(session.get(ReportingPeriod, world.period_b1).grant), world.grant_b)
    foreign = indicators.create_indicator(session, grant_b, code="B-1", name="Secret indicator", unit="number")
    before = requirement_count(session)
    with pytest.raises(DomainValidationError) as caught:
        services.create_requirement(
            session,
            world.grant_a,
            code="R9",
            title="Reach",
            rules=[{"rule": "indicator_achievement", "params": {"indicator_id": foreign.id, "min_percent": 80}}],
        )
    assert f"indicator #{foreign.id} belongs to another grant" in caught.value.errors["rules"][0]
    with pytest.raises(DomainValidationError) as caught:
        services.create_requirement(session, world.grant_a, code="R9", title="Reach", linked_indicators=str(foreign.id))
    assert "belongs to another grant" in caught.value.errors["linked_indicators"][0]
    session.rollback()
    assert requirement_count(session) == before


def test_unknown_expected_evidence_kind_is_named(session, world):
    with pytest.raises(DomainValidationError) as caught:
        services.create_requirement(session, world.grant_a, code="R1", title="x", expected_evidence="minutes,selfies")
    assert "selfies" in caught.value.errors["expected_evidence"][0]


def test_a_code_is_unique_within_a_grant(session, world):
    services.create_requirement(session, world.grant_a, code="R1", title="first")
    with pytest.raises(DomainValidationError, match="already a requirement"):
        services.create_requirement(session, world.grant_a, code="R1", title="second")
    services.create_requirement(session, world.grant_b, code="R1", title="same code, other grant")


# ---------------------------------------------------------------- key population representation


def test_a_meeting_without_a_sex_worker_puts_the_period_at_risk(session, world, rcm):
    meet(session, world, rcm, date(2026, 2, 12), 2)
    meet(session, world, rcm, date(2026, 5, 21), 0)
    requirement = kp_requirement(session, world)
    row = status_of(session, requirement, world.period_a1, S1_CLOSED)
    assert row.status == "at_risk"
    assert "1 of 2 RCM meeting(s) in S1 had fewer than 1 sex worker representative (21 May 2026: 0)" in row.explanation
    strict = services.update_requirement(
        session,
        requirement,
        rules=[
            {
                "rule": "consultation_representation",
                "params": {"body": "RCM", "population": "sex_workers", "shortfall_status": "not_met"},
            }
        ],
    )
    assert status_of(session, strict, world.period_a1, S1_CLOSED).status == "not_met"


def test_every_meeting_with_representation_is_met(session, world, rcm):
    meet(session, world, rcm, date(2026, 2, 12), 2)
    meet(session, world, rcm, date(2026, 5, 21), 1)
    row = status_of(session, kp_requirement(session, world), world.period_a1, S1_CLOSED)
    assert row.status == "met" and "All 2 RCM meeting(s) in S1" in row.explanation
    assert len(row.consultation_ids) == 2


def test_no_meeting_is_not_met_once_the_period_is_over_and_pending_before(session, world, rcm):
    requirement = kp_requirement(session, world)
    assert status_of(session, requirement, world.period_a1, S1_OPEN).status == "pending"
    assert status_of(session, requirement, world.period_a1, S1_CLOSED).status == "not_met"


def test_a_higher_minimum_counts(session, world, rcm):
    meet(session, world, rcm, date(2026, 2, 12), 1)
    assert (
        status_of(session, kp_requirement(session, world, min_count=2), world.period_a1, S1_CLOSED).status == "at_risk"
    )


# ---------------------------------------------------------------- evidence present and verified


def evidence_requirement(session, world, **params):
    return services.create_requirement(
        session,
        world.grant_a,
        code="R2",
        title="Minutes",
        due_days=30,
        rules=[{"rule": "evidence_verified", "params": {"kind": "minutes", **params}}],
    )


def test_verified_evidence_meets_the_requirement(app, session, world):
    item = add_evidence(app, session, world, day=date(2026, 2, 12))
    evidence.verify_evidence(session, item, user(app, session, world, "Finance"), "verified")
    row = status_of(session, evidence_requirement(session, world), world.period_a1, S1_LATE)
    assert row.status == "met" and item.id in row.evidence_ids


def test_unverified_evidence_is_at_risk_before_the_due_date_and_not_met_after(app, session, world):
    add_evidence(app, session, world, day=date(2026, 2, 12))
    requirement = evidence_requirement(session, world)
    assert status_of(session, requirement, world.period_a1, date(2026, 7, 10)).status == "at_risk"
    late = status_of(session, requirement, world.period_a1, date(2026, 8, 15))
    assert late.status == "not_met" and "await verification" in late.explanation


def test_missing_evidence_is_overdue_after_the_due_date(session, world):
    requirement = evidence_requirement(session, world)
    assert status_of(session, requirement, world.period_a1, S1_OPEN).status == "pending"
    row = status_of(session, requirement, world.period_a1, date(2026, 8, 15))
    assert row.status == "overdue" and "due 30 Jul 2026" in row.explanation


def test_rejected_evidence_does_not_count_and_linked_only_needs_a_link(app, session, world):
    finance = user(app, session, world, "Finance")
    rejected = add_evidence(app, session, world, day=date(2026, 2, 12), title="Unsigned")
    evidence.verify_evidence(session, rejected, finance, "rejected", "unsigned")
    good = add_evidence(app, session, world, day=date(2026, 3, 12), title="Signed", content=b"%PDF-1.4\n% other\n")
    evidence.verify_evidence(session, good, finance, "verified")
    requirement = evidence_requirement(session, world, linked_only=True)
    assert status_of(session, requirement, world.period_a1, S1_LATE).status == "overdue"
    evidence.link_evidence(session, good, "requirement", requirement.id)
    row = status_of(session, requirement, world.period_a1, S1_LATE)
    assert row.status == "met" and row.evidence_ids == (good.id,)


# ---------------------------------------------------------------- reports, indicators, budgets


def test_report_submitted_by_its_due_date(session, world):
    requirement = services.create_requirement(
        session, world.grant_a, code="R3", title="Semester update", rules=[{"rule": "report_submitted", "params": {}}]
    )
    period = session.get(ReportingPeriod, world.period_a1)
    assert status_of(session, requirement, period.id, S1_OPEN).status == "pending"
    assert status_of(session, requirement, period.id, date(2026, 8, 5)).status == "at_risk"
    overdue = status_of(session, requirement, period.id, date(2026, 8, 20))
    assert overdue.status == "overdue" and "due on 14 Aug 2026" in overdue.explanation
    period.status = PeriodStatus.submitted
    assert status_of(session, requirement, period.id, date(2026, 8, 20)).status == "met"


def test_a_stored_rule_whose_package_is_gone_is_reported_not_evaluable(app, session, world):
    import indicators.services as indicators
    from grants.compliance.rules import RULES

    grant = session.get(ReportingPeriod, world.period_a1).grant
    indicator_id = indicators.create_indicator(session, grant, code="T-1", name="Trained", unit="number").id
    requirement = services.create_requirement(
        session,
        world.grant_a,
        code="R4",
        title="Reach",
        rules=[{"rule": "indicator_achievement", "params": {"indicator_id": indicator_id}}],
    )
    # Without indicators.contributions, the rule type is simply not registered.
    with RULES.replaced({k: rule for k, rule in RULES.items() if k != "indicator_achievement"}):
        row = status_of(session, requirement, world.period_a1, S1_CLOSED)
    assert row.status == "not_evaluable" and "unknown rule 'indicator_achievement'" in row.explanation


def test_indicator_rule_uses_the_indicators_achievement(app, session, world):
    indicators = pytest.importorskip("indicators.services")
    grant = session.get(ReportingPeriod, world.period_a1).grant
    period = session.get(ReportingPeriod, world.period_a1)
    trained = indicators.create_indicator(session, grant, code="T-1", name="Trained", unit="number")
    indicators.set_target(session, trained, period, value=100)
    indicators.record_result(session, trained, period, user=user(app, session, world, "Program"), value=70)
    requirement = services.create_requirement(
        session,
        world.grant_a,
        code="R5",
        title="Training reach",
        rules=[{"rule": "indicator_achievement", "params": {"indicator_id": trained.id, "min_percent": 90}}],
    )
    row = status_of(session, requirement, period.id, S1_LATE)
    assert row.status == "not_met" and "70.0% of its S1 target (needed 90%)" in row.explanation
    services.update_requirement(
        session,
        requirement,
        rules=[{"rule": "indicator_achievement", "params": {"indicator_id": trained.id, "min_percent": 60}}],
    )
    assert status_of(session, requirement, period.id, S1_LATE).status == "met"


def test_budget_rule_is_not_evaluable_without_the_budgets_contribution(app, session, world):
    from grants.compliance.rules import RULES

    requirement = services.create_requirement(
        session, world.grant_a, code="R6", title="Variance", rules=[{"rule": "budget_variance", "params": {}}]
    )
    with RULES.replaced({k: rule for k, rule in RULES.items() if k != "budget_variance"}):
        row = status_of(session, requirement, world.period_a1, S1_CLOSED)
    assert row.status == "not_evaluable" and "unknown rule 'budget_variance'" in row.explanation


# ---------------------------------------------------------------- combining, waivers, frequencies


def test_the_worst_rule_decides_and_every_rule_explains_itself(session, world, rcm):
    meet(session, world, rcm, date(2026, 2, 12), 2)
    requirement = services.create_requirement(
        session,
        world.grant_a,
        code="R7",
        title="Both",
        due_days=10,
        rules=[
            {"rule": "consultation_representation", "params": {"body": "RCM", "population": "sex_workers"}},
            {"rule": "evidence_verified", "params": {"kind": "minutes"}},
        ],
    )
    row = status_of(session, requirement, world.period_a1, S1_LATE)
    assert row.status == "overdue"
    assert [r.status for r in row.rules] == ["met", "overdue"]
    assert row.explanation.startswith("0 of 1 verified minutes")


def test_a_waiver_needs_a_justification_and_is_audited(app, session, world):
    from core.audit import AuditEntry

    requirement = evidence_requirement(session, world)
    period = session.get(ReportingPeriod, world.period_a1)
    with pytest.raises(DomainValidationError) as caught:
        services.waive(session, requirement, period, "  ")
    assert "justification" in caught.value.errors
    assert session.scalar(select(func.count(RequirementWaiver.id))) == 0
    services.waive(
        session,
        requirement,
        period,
        "The RCM did not meet: elections postponed by the ministry.",
        user=user(app, session, world, "Program"),
        approved_by="Fund portfolio manager",
    )
    row = status_of(session, requirement, period.id, S1_LATE)
    assert row.status == "waived" and "elections postponed" in row.explanation
    audited = session.scalar(select(AuditEntry).where(AuditEntry.table_name == "requirement_waivers"))
    assert audited is not None and "elections postponed" in str(audited.changes["justification"])
    with pytest.raises(DomainValidationError, match="already waived"):
        services.waive(session, requirement, period, "A second waiver for the same period.")


def test_a_waiver_period_must_belong_to_the_requirements_grant(session, world):
    requirement = evidence_requirement(session, world)
    with pytest.raises(DomainValidationError) as caught:
        services.waive(session, requirement, session.get(ReportingPeriod, world.period_b1), "Because of reasons given.")
    assert "another grant" in caught.value.errors["period"][0]


def test_annual_and_once_requirements_are_judged_in_one_column(session, world):
    services.create_requirement(
        session, world.grant_a, code="A1", title="Audit", frequency="annual", expected_evidence="report"
    )
    services.create_requirement(
        session,
        world.grant_a,
        code="O1",
        title="Policy",
        frequency="once",
        due_date=date(2026, 3, 31),
        expected_evidence="policy",
    )
    rows = services.requirement_status(session, world.grant_a, today=S1_LATE)
    assert [(r.requirement_code, r.period_label) for r in rows] == [("A1", "S2"), ("O1", "S1")]
    assert rows[0].window_start == date(2026, 1, 1) and rows[0].window_end == date(2026, 12, 31)
    assert rows[1].status == "overdue" and rows[1].due_date == date(2026, 3, 31)
    assert [r.rule for r in rows[0].rules] == ["evidence_verified"]  # from the expected evidence kinds


def test_a_period_that_has_not_started_is_pending(session, world):
    requirement = evidence_requirement(session, world)
    rows = [
        r
        for r in services.requirement_status(session, world.grant_a, today=S1_OPEN)
        if r.requirement_id == requirement.id
    ]
    assert [r.status for r in rows] == ["pending", "pending"] and "starts on 1 Jul 2026" in rows[1].explanation


# ---------------------------------------------------------------- presets


def test_applying_the_global_fund_preset_creates_six_editable_requirements(session, world):
    grant = session.get(ReportingPeriod, world.period_a1).grant
    created = services.apply_preset(session, grant, "gf_ccm_eligibility")
    assert [r.code for r in created] == ["ER1", "ER2", "ER3", "ER4", "ER5", "ER6"]
    er4 = created[3]
    assert "key populations" in er4.title and er4.expected_kinds == ["minutes", "attendance_summary"]
    assert "conflict of interest" in created[5].title.lower()
    services.update_requirement(session, er4, title="ER4: KP representatives elected by their own sectors", due_days=60)
    assert er4.due_days == 60
    before = requirement_count(session)
    with pytest.raises(DomainValidationError) as caught:
        services.apply_preset(session, grant, "gf_ccm_eligibility")
    assert "already has requirement(s) ER1" in caught.value.errors["preset"][0]
    assert requirement_count(session) == before
    with pytest.raises(DomainValidationError, match="unknown preset"):
        services.apply_preset(session, grant, "imaginary")
