"""The indicators services: definitions, crosswalk, targets, results, verification, and bad input refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from core.errors import DomainValidationError
from grants.models import Funder, Grant, PeriodStatus, ReportingPeriod
from indicators import progress, services
from indicators.models import Indicator, IndicatorCode, Result, ResultStatus, ResultValue, Target, TargetValue

D = Decimal


@pytest.fixture
def s(app, ind):
    from core.extensions import db

    with app.app_context():
        yield db.session
        db.session.rollback()


def user(s, world, role):
    return s.get(User, world.users[role])


def count(s, model):
    return s.scalar(select(func.count()).select_from(model))


def test_indicator_code_is_unique_within_a_grant_but_may_repeat_across_grants(s, world):
    grant_a = s.get(Grant, world.grant_a)
    with pytest.raises(DomainValidationError) as caught:
        services.create_indicator(s, grant_a, code="KP-1c", name="Duplicate")
    assert "'KP-1c' is already an indicator of GA-1" in caught.value.errors["code"][0]
    other = services.create_indicator(s, s.get(Grant, world.grant_b), code="KP-1c", name="Same code, other grant")
    assert other.id is not None


def test_indicator_refuses_unknown_unit_and_negative_baseline(s, world):
    grant_a = s.get(Grant, world.grant_a)
    with pytest.raises(DomainValidationError) as caught:
        services.create_indicator(s, grant_a, code="X", name="x", unit="litres")
    assert "'litres' is not one of number, percentage, currency, yes_no" in caught.value.errors["unit"][0]
    with pytest.raises(DomainValidationError) as caught:
        services.create_indicator(s, grant_a, code="X", name="x", baseline_value="-3")
    assert caught.value.errors["baseline_value"] == ["must not be negative"]


def test_unit_cannot_change_once_results_exist(s, world, ind):
    coverage = s.get(Indicator, ind.coverage)
    services.record_result(
        s, coverage, s.get(ReportingPeriod, world.period_a1), user=user(s, world, "Program"), numerator=1, denominator=2
    )
    with pytest.raises(DomainValidationError) as caught:
        services.update_indicator(s, coverage, unit="number")
    assert "already has targets or results" in caught.value.errors["unit"][0]


def test_crosswalk_gives_each_funder_its_own_code(s, world, ind):
    coverage = s.get(Indicator, ind.coverage)
    pepfar = Funder(name="PEPFAR", code="PEPFAR", default_currency="USD")
    s.add(pepfar)
    s.flush()
    services.set_indicator_code(s, coverage, pepfar, "KP_PREV (FSW)")
    assert services.indicator_code_for(s, coverage.id, pepfar.id) == "KP_PREV (FSW)"
    # No crosswalk entry for the grant's own funder: the indicator's own code.
    assert services.indicator_code_for(s, coverage.id, world.funder_id) == "KP-1c"
    # Setting it again changes the entry instead of adding a second one.
    services.set_indicator_code(s, coverage, pepfar, "KP_PREV")
    assert count(s, IndicatorCode) == 1
    assert services.indicator_by_funder_code(s, world.grant_a, pepfar.id, "KP_PREV").id == coverage.id


def test_progress_rows_carry_every_donor_code(s, world, ind):
    coverage = s.get(Indicator, ind.coverage)
    pepfar = Funder(name="PEPFAR", code="PEPFAR", default_currency="USD")
    s.add(pepfar)
    s.flush()
    services.set_indicator_code(s, coverage, pepfar, "KP_PREV (FSW)")
    services.set_indicator_code(s, coverage, s.get(Funder, world.funder_id), "GF-KP-1c")
    row = progress.indicator_progress(s, world.grant_a, indicator_ids=[coverage.id])[0]
    assert row.donor_codes == {"PEPFAR": "KP_PREV (FSW)", "TF": "GF-KP-1c"}
    assert row.funder_code == "GF-KP-1c"


# ---------------------------------------------------------------- bad input: clear message, nothing saved


def test_result_for_a_period_of_another_grant_is_refused(s, world, ind):
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            s.get(Indicator, ind.trained),
            s.get(ReportingPeriod, world.period_b1),
            user=user(s, world, "Program"),
            value=5,
        )
    message = caught.value.errors["period"][0]
    assert "'S1' is a period of GB-1, not of GA-1" in message
    assert count(s, Result) == 0


def test_result_moved_to_another_grants_period_by_a_direct_edit_is_refused_at_flush(s, world, ind):
    result = services.record_result(
        s,
        s.get(Indicator, ind.trained),
        s.get(ReportingPeriod, world.period_a1),
        user=user(s, world, "Program"),
        value=5,
    )
    result.period_id = world.period_b1
    result.period = s.get(ReportingPeriod, world.period_b1)
    with pytest.raises(DomainValidationError) as caught:
        s.flush()
    assert "is a period of GB-1" in caught.value.errors["period"][0]


def test_percentage_with_denominator_zero_is_refused(s, world, ind):
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            s.get(Indicator, ind.coverage),
            s.get(ReportingPeriod, world.period_a1),
            user=user(s, world, "Program"),
            numerator=3,
            denominator=0,
        )
    assert caught.value.errors["denominator"] == ["must be greater than 0 for a percentage"]
    assert count(s, Result) == 0


def test_percentage_result_needs_numerator_and_denominator(s, world, ind):
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            s.get(Indicator, ind.coverage),
            s.get(ReportingPeriod, world.period_a1),
            user=user(s, world, "Program"),
            value=40,
        )
    assert "KP-1c is a percentage: give numerator and denominator" in caught.value.errors["numerator"][0]


def test_negative_counts_are_refused_in_totals_and_parts(s, world, ind):
    trained = s.get(Indicator, ind.trained)
    period = s.get(ReportingPeriod, world.period_a1)
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(s, trained, period, user=user(s, world, "Program"), value=-4)
    assert caught.value.errors["value"] == ["must not be negative (got -4)"]
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            trained,
            period,
            user=user(s, world, "Program"),
            value=4,
            disaggregation={"country=LC": 6, "country=GD": -2},
        )
    assert caught.value.errors["Country GD: value"] == ["must not be negative (got -2)"]
    assert count(s, Result) == 0 and count(s, ResultValue) == 0


def test_parts_of_an_exhaustive_dimension_must_add_up_to_the_total(s, world, ind):
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            s.get(Indicator, ind.trained),
            s.get(ReportingPeriod, world.period_a1),
            user=user(s, world, "Program"),
            value=32,
            disaggregation={"country=LC": 20, "country=GD": 10},
        )
    message = caught.value.errors["disaggregation"][0]
    assert "Country" in message and "add up to 30" in message and "LC 20 + GD 10" in message
    assert "the total is 32" in message
    assert count(s, Result) == 0 and count(s, ResultValue) == 0


def test_percentage_parts_add_up_by_numerator_and_denominator(s, world, ind):
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            s.get(Indicator, ind.coverage),
            s.get(ReportingPeriod, world.period_a1),
            user=user(s, world, "Program"),
            numerator=30,
            denominator=50,
            disaggregation={"country=LC": (20, 30), "country=GD": (9, 20)},
        )
    message = caught.value.errors["disaggregation"][0]
    assert "numerators add up to 29" in message and "the total is 30" in message


def test_non_exhaustive_dimension_parts_need_not_add_up(s, world, ind):
    grant_a = s.get(Grant, world.grant_a)
    reached = services.create_indicator(s, grant_a, code="R-1", name="People reached", dimensions=["keypop"])
    result = services.record_result(
        s,
        reached,
        s.get(ReportingPeriod, world.period_a1),
        user=user(s, world, "Program"),
        value=50,
        disaggregation={"keypop=SW": 40, "keypop=TG": 15},
    )
    assert {part.category.code: part.value for part in result.values} == {"SW": D(40), "TG": D(15)}


def test_a_category_of_a_dimension_the_indicator_does_not_use_is_refused(s, world, ind):
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            s.get(Indicator, ind.groups),
            s.get(ReportingPeriod, world.period_a1),
            user=user(s, world, "Program"),
            value=2,
            disaggregation={"gender=F": 2},
        )
    assert "G-1 is not disaggregated by Sex/gender" in caught.value.errors["disaggregation"][0]


def test_unknown_category_is_named(s, world, ind):
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s,
            s.get(Indicator, ind.trained),
            s.get(ReportingPeriod, world.period_a1),
            user=user(s, world, "Program"),
            value=2,
            disaggregation={"country=XX": 2},
        )
    assert "no category 'country=XX'" in caught.value.errors["disaggregation"][0]


def test_target_for_a_closed_period_is_refused(s, world, ind):
    period = s.get(ReportingPeriod, world.period_a1)
    period.status = PeriodStatus.submitted
    s.flush()
    with pytest.raises(DomainValidationError) as caught:
        services.set_target(s, s.get(Indicator, ind.trained), period, value=10)
    assert "S1 is submitted: its targets can no longer be set or changed" in caught.value.errors["period"][0]
    assert count(s, Target) == 0


def test_existing_target_cannot_be_changed_once_the_period_is_accepted_even_directly(s, world, ind):
    period = s.get(ReportingPeriod, world.period_a1)
    target = services.set_target(s, s.get(Indicator, ind.trained), period, value=10)
    period.status = PeriodStatus.accepted
    s.flush()
    target.value = D(12)
    with pytest.raises(DomainValidationError) as caught:
        s.flush()
    assert "S1 is accepted" in caught.value.errors["period"][0]


def test_a_refused_figure_leaves_the_callers_other_work_alone(s, world, ind):
    """The check runs on a detached copy: the session keeps what the caller did before."""
    trained = s.get(Indicator, ind.trained)
    trained.definition = "Counted from attendance sheets"
    with pytest.raises(DomainValidationError):
        services.set_target(s, trained, s.get(ReportingPeriod, world.period_a1), value=-1)
    s.flush()
    assert s.get(Indicator, ind.trained).definition == "Counted from attendance sheets"
    assert count(s, Target) == 0


def test_replacing_a_result_updates_its_parts_in_place(s, world, ind):
    trained = s.get(Indicator, ind.trained)
    period = s.get(ReportingPeriod, world.period_a1)
    program = user(s, world, "Program")
    services.record_result(
        s, trained, period, user=program, value=30, disaggregation={"country=LC": 20, "country=GD": 10, "gender=F": 30}
    )
    s.commit()
    result = services.record_result(
        s, trained, period, user=program, value=31, disaggregation={"country=LC": 21, "country=GD": 10}
    )
    s.commit()
    assert result.value == D(31)
    assert sorted((p.category.code, p.value) for p in result.values) == [("GD", D(10)), ("LC", D(21))]
    assert count(s, Result) == 1 and count(s, ResultValue) == 2


def test_target_with_parts_by_country(s, world, ind):
    target = services.set_target(
        s,
        s.get(Indicator, ind.coverage),
        s.get(ReportingPeriod, world.period_a1),
        numerator=150,
        denominator=300,
        disaggregation={"country=LC": (100, 200), "country=GD": (50, 100)},
    )
    assert target.value == D(50)
    assert count(s, TargetValue) == 2


# ---------------------------------------------------------------- verification


def _submitted(s, world, ind, role="Program"):
    return services.record_result(
        s,
        s.get(Indicator, ind.trained),
        s.get(ReportingPeriod, world.period_a1),
        user=user(s, world, role),
        value=12,
        status="submitted",
    )


def test_the_person_who_entered_a_result_cannot_verify_it(s, world, ind):
    result = _submitted(s, world, ind)
    with pytest.raises(DomainValidationError) as caught:
        services.verify_result(s, result, user(s, world, "Program"))
    assert "cannot verify it" in caught.value.errors["verified_by"][0]
    s.refresh(result)
    assert result.status == ResultStatus.submitted and result.verified_by_id is None


def test_a_colleague_verifies_a_submitted_result(s, world, ind):
    result = _submitted(s, world, ind)
    services.verify_result(s, result, user(s, world, "Admin"))
    s.commit()
    assert result.status == ResultStatus.verified
    assert result.verified_by_id == world.users["Admin"] and result.verified_at is not None


def test_self_verification_is_refused_even_when_set_directly(s, world, ind):
    import datetime as dt

    result = _submitted(s, world, ind)
    result.status = ResultStatus.verified
    result.verified_by_id = result.entered_by_id
    result.verified_at = dt.datetime.now(dt.UTC)
    with pytest.raises(DomainValidationError) as caught:
        s.flush()
    assert "cannot verify it" in caught.value.errors["verified_by"][0]


def test_drafts_are_submitted_before_verification(s, world, ind):
    result = services.record_result(
        s,
        s.get(Indicator, ind.trained),
        s.get(ReportingPeriod, world.period_a1),
        user=user(s, world, "Program"),
        value=12,
    )
    with pytest.raises(DomainValidationError) as caught:
        services.verify_result(s, result, user(s, world, "Admin"))
    assert "only a submitted result can be verified" in caught.value.errors["status"][0]


def test_verified_result_is_locked_until_returned_to_submitted(s, world, ind):
    result = _submitted(s, world, ind)
    services.verify_result(s, result, user(s, world, "Admin"))
    s.commit()
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(s, result.indicator, result.period, user=user(s, world, "Program"), value=13)
    assert "is verified: return it to submitted first" in caught.value.errors["status"][0]
    result.value = D(14)
    with pytest.raises(DomainValidationError):
        s.flush()
    s.rollback()
    services.reopen_result(s, result)
    assert result.verified_by_id is None and result.verified_at is None
    changed = services.record_result(s, result.indicator, result.period, user=user(s, world, "Program"), value=13)
    assert changed.value == D(13) and changed.status == ResultStatus.draft


def test_yes_no_takes_only_one_or_zero(s, world, ind):
    policy = services.create_indicator(
        s, s.get(Grant, world.grant_a), code="P-1", name="Policy in place", unit="yes_no", cumulative_mode="latest"
    )
    with pytest.raises(DomainValidationError) as caught:
        services.record_result(
            s, policy, s.get(ReportingPeriod, world.period_a1), user=user(s, world, "Program"), value=2
        )
    assert "takes 1 (yes) or 0 (no)" in caught.value.errors["value"][0]


def test_a_result_needs_whoever_entered_it(s, world, ind):
    result = Result(indicator_id=ind.trained, period_id=world.period_a1, value=D(3))
    s.add(result)
    with pytest.raises(DomainValidationError) as caught:
        s.flush()
    assert "who entered this result" in caught.value.errors["entered_by"][0]


def test_a_result_added_through_a_generic_form_takes_its_grant_and_who_entered_it_from_the_operation(s, world, ind):
    import datetime as dt

    from core import clock

    program = user(s, world, "Program")
    noon = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    result = Result(indicator=s.get(Indicator, ind.groups), period=s.get(ReportingPeriod, world.period_a1), value=D(1))
    with clock.frozen_at(noon):
        services.prepare_save(result, user=program)
    assert (result.grant_id, result.entered_by_id, result.entered_at) == (world.grant_a, program.id, noon)
    s.add(result)
    s.flush()  # validation at flush accepts what the operation derived


def test_editing_a_result_through_a_generic_form_keeps_who_first_entered_it(s, world, ind):
    result = _submitted(s, world, ind)
    entered = (result.entered_by_id, result.entered_at)
    services.prepare_save(result, user=user(s, world, "Admin"))
    assert (result.entered_by_id, result.entered_at) == entered


def test_entering_and_verifying_a_result_are_stamped_by_the_one_clock(s, world, ind):
    import datetime as dt

    from core import clock

    entered, checked = (dt.datetime(2026, 4, day, 9, 0, tzinfo=dt.UTC) for day in (1, 3))
    with clock.frozen_at(entered):
        result = services.record_result(
            s,
            s.get(Indicator, ind.groups),
            s.get(ReportingPeriod, world.period_a1),
            user=user(s, world, "Program"),
            value=1,
            status="submitted",
        )
    with clock.frozen_at(checked):
        services.verify_result(s, result, user(s, world, "Admin"))
    s.commit()
    assert (clock.as_utc(result.entered_at), clock.as_utc(result.verified_at)) == (entered, checked)


def test_a_verified_result_is_refused_deletion_by_the_operation(s, world, ind):
    result = _submitted(s, world, ind)
    services.prepare_delete(result)  # a submitted result of an open period may go
    services.verify_result(s, result, user(s, world, "Admin"))
    with pytest.raises(DomainValidationError) as caught:
        services.prepare_delete(result)
    assert "return it to submitted before deleting it" in caught.value.errors["status"][0]
