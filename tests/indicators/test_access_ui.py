"""The indicators web UI: who sees and changes what, entry of disaggregated figures, verification, the IPTT."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from grants.models import PeriodStatus, ReportingPeriod
from indicators import progress, services
from indicators.models import Indicator, Result, ResultStatus, ResultValue, Target

D = Decimal


def page(client, url):
    response = client.get(url)
    return response.status_code, response.get_data(as_text=True)


def count(app, model):
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def category_id(app, key):
    from core.extensions import db

    with app.app_context():
        return progress.find_category(db.session, key).id


@pytest.fixture
def submitted(app, world, ind):
    """A submitted T-1 S1 result entered by the program user, and its id."""
    from core.extensions import db

    with app.app_context():
        result = services.record_result(
            db.session,
            db.session.get(Indicator, ind.trained),
            db.session.get(ReportingPeriod, world.period_a1),
            user=db.session.get(User, world.users["Program"]),
            value=12,
            status="submitted",
        )
        services.set_target(db.session, result.indicator, result.period, value=10)
        db.session.commit()
        return result.id


@pytest.mark.parametrize(
    ("role", "sees_b"), [("Admin", True), ("Finance", True), ("Program", False), ("Donor", False), ("Auditor", False)]
)
def test_indicator_list_shows_only_visible_grants(client_for, ind, role, sees_b):
    status, html = page(client_for(role), "/indicators/list/")
    assert status == 200
    assert "KP-1c" in html
    assert ("Secret indicator" in html) is sees_b


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_another_grants_indicator_cannot_be_opened(client_for, ind, role):
    assert client_for(role).get(f"/indicators/show/{ind.other_grant_indicator}").status_code == 404


def test_program_cannot_edit_or_delete_another_grants_indicator(program_client, app, ind):
    response = program_client.post(f"/indicators/edit/{ind.other_grant_indicator}", data={"name": "hijacked"})
    assert response.status_code == 404
    assert program_client.post(f"/indicators/delete/{ind.other_grant_indicator}").status_code == 404
    from core.extensions import db

    with app.app_context():
        assert db.session.get(Indicator, ind.other_grant_indicator).name == "Secret indicator"


def test_program_cannot_create_an_indicator_under_an_invisible_grant(program_client, app, world, ind):
    before = count(app, Indicator)
    program_client.post(
        "/indicators/add",
        data={
            "grant": world.grant_b,
            "code": "SNEAK",
            "name": "x",
            "unit": "number",
            "direction": "increase",
            "cumulative_mode": "sum",
        },
    )
    assert count(app, Indicator) == before


def test_program_creates_an_indicator_on_own_grant(program_client, app, world, ind):
    response = program_client.post(
        "/indicators/add",
        data={
            "grant": world.grant_a,
            "code": "NEW-1",
            "name": "New one",
            "unit": "number",
            "direction": "increase",
            "cumulative_mode": "sum",
            "sort_order": "5",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    from core.extensions import db

    with app.app_context():
        assert db.session.scalar(select(Indicator).where(Indicator.code == "NEW-1")).grant_id == world.grant_a


def test_duplicate_indicator_code_in_the_form_is_named(program_client, app, world, ind):
    before = count(app, Indicator)
    response = program_client.post(
        "/indicators/add",
        data={
            "grant": world.grant_a,
            "code": "KP-1c",
            "name": "Again",
            "unit": "number",
            "direction": "increase",
            "cumulative_mode": "sum",
            "sort_order": "0",
        },
        follow_redirects=True,
    )
    assert "already an indicator of GA-1" in response.get_data(as_text=True)
    assert count(app, Indicator) == before


def test_result_form_offers_only_visible_indicators_and_periods(program_client, ind):
    status, html = page(program_client, "/indicator-results/add")
    assert status == 200
    assert "KP-1c" in html and "Secret indicator" not in html and "GB-1" not in html


def test_program_cannot_add_a_result_to_another_grants_indicator(program_client, app, world, ind):
    program_client.post(
        "/indicator-results/add",
        data={"indicator": ind.other_grant_indicator, "period": world.period_b1, "value": "3", "status": "draft"},
    )
    assert count(app, Result) == 0


@pytest.mark.parametrize("role", ["Donor", "Auditor", "Finance"])
def test_read_only_roles_cannot_change_indicator_records(client_for, app, world, ind, role):
    client = client_for(role)
    assert client.get("/indicators/add").status_code == 403
    assert client.post(f"/indicators/delete/{ind.coverage}").status_code == 403
    assert client.post(f"/indicators/edit/{ind.coverage}", data={"name": "x"}).status_code == 403
    assert client.get("/indicator-targets/add").status_code == 403
    response = client.post(
        f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}", data={"value": "3"}
    )
    assert response.status_code == 403
    assert count(app, Result) == 0


def test_donor_does_not_see_raw_results_but_sees_progress(donor_client, world, ind):
    assert donor_client.get("/indicator-results/list/").status_code == 403
    status, html = page(donor_client, f"/indicator-progress/{world.grant_a}")
    assert status == 200 and "KP-1c" in html


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_progress_table_of_an_invisible_grant_is_404(client_for, world, ind, role):
    assert client_for(role).get(f"/indicator-progress/{world.grant_b}").status_code == 404


# ---------------------------------------------------------------- entering figures with their parts


def test_program_enters_a_result_by_country_and_gender(program_client, app, world, ind):
    lc, gd, f = category_id(app, "country=LC"), category_id(app, "country=GD"), category_id(app, "gender=F")
    response = program_client.post(
        f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}",
        data={
            "value": "30",
            f"part-{lc}-value": "20",
            f"part-{gd}-value": "10",
            f"part-{f}-value": "30",
            "status": "submitted",
            "comment": "Two trainings",
        },
    )
    assert response.status_code == 302
    from core.extensions import db

    with app.app_context():
        result = db.session.scalar(select(Result))
        assert result.value == D(30) and result.status == ResultStatus.submitted
        assert result.entered_by_id == db.session.scalar(select(User.id).where(User.username == "program"))
        assert sorted((p.category.code, p.value) for p in result.values) == [("F", D(30)), ("GD", D(10)), ("LC", D(20))]


def test_entry_form_refuses_parts_that_do_not_add_up_and_keeps_what_was_typed(program_client, app, world, ind):
    lc, gd = category_id(app, "country=LC"), category_id(app, "country=GD")
    response = program_client.post(
        f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}",
        data={"value": "32", f"part-{lc}-value": "20", f"part-{gd}-value": "10", "status": "draft"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "add up to 30" in html and "the total is 32" in html
    assert 'value="32"' in html  # the form comes back as typed
    assert count(app, Result) == 0 and count(app, ResultValue) == 0


def test_entry_form_refuses_a_zero_denominator(program_client, app, world, ind):
    response = program_client.post(
        f"/indicator-results/record?indicator={ind.coverage}&period={world.period_a1}",
        data={"numerator": "5", "denominator": "0", "status": "draft"},
    )
    assert response.status_code == 422
    assert "must be greater than 0 for a percentage" in response.get_data(as_text=True)
    assert count(app, Result) == 0


def test_entry_form_refuses_a_target_for_a_closed_period(program_client, app, world, ind):
    from core.extensions import db

    with app.app_context():
        db.session.get(ReportingPeriod, world.period_a1).status = PeriodStatus.accepted
        db.session.commit()
    response = program_client.post(
        f"/indicator-targets/record?indicator={ind.trained}&period={world.period_a1}", data={"value": "40"}
    )
    assert response.status_code == 422
    assert "S1 is accepted: its targets can no longer be set or changed" in response.get_data(as_text=True)
    assert count(app, Target) == 0


def test_entry_form_for_another_grants_period_is_refused(admin_client, app, world, ind):
    response = admin_client.post(
        f"/indicator-results/record?indicator={ind.trained}&period={world.period_b1}", data={"value": "3"}
    )
    assert response.status_code == 422
    assert "is a period of GB-1, not of GA-1" in response.get_data(as_text=True)
    assert count(app, Result) == 0


def test_program_cannot_open_the_entry_form_for_another_grants_indicator(program_client, world, ind):
    url = f"/indicator-results/record?indicator={ind.other_grant_indicator}&period={world.period_b1}"
    assert program_client.get(url).status_code == 404
    assert program_client.post(url, data={"value": "3"}).status_code == 404


# ---------------------------------------------------------------- verification


def test_the_person_who_entered_a_result_gets_no_verify_button_and_cannot_verify(program_client, app, submitted):
    status, html = page(program_client, f"/indicator-results/show/{submitted}")
    assert status == 200 and 'id="verify-button"' not in html
    assert "a colleague on the grant must verify it" in html
    response = program_client.post(f"/indicator-results/{submitted}/verify", follow_redirects=True)
    assert "cannot verify it" in response.get_data(as_text=True)
    from core.extensions import db

    with app.app_context():
        assert db.session.get(Result, submitted).status == ResultStatus.submitted


def test_a_colleague_verifies_from_the_result_page(admin_client, app, world, submitted):
    status, html = page(admin_client, f"/indicator-results/show/{submitted}")
    assert 'id="verify-button"' in html
    admin_client.post(f"/indicator-results/{submitted}/verify")
    from core.extensions import db

    with app.app_context():
        result = db.session.get(Result, submitted)
        assert result.status == ResultStatus.verified and result.verified_by_id == world.users["Admin"]


@pytest.mark.parametrize(
    ("role", "reason"),
    [
        ("Auditor", "Donors and auditors read results; they do not verify them."),
        ("Finance", "you are not a member of this grant"),
    ],
)
def test_who_the_grant_does_not_name_cannot_verify_and_is_told_why(client_for, app, submitted, role, reason):
    client = client_for(role)
    html = client.get(f"/indicator-results/show/{submitted}").get_data(as_text=True)
    assert 'id="verify-refusal"' in html and reason in html and 'id="verify-button"' not in html
    refused = client.post(f"/indicator-results/{submitted}/verify", follow_redirects=True).get_data(as_text=True)
    assert reason in refused
    from core.extensions import db

    with app.app_context():
        assert db.session.get(Result, submitted).status == ResultStatus.submitted


def test_a_finance_member_verifies_when_the_grant_names_finance(client_for, app, world, submitted):
    from core.extensions import db
    from grants import services as grant_services
    from grants.models import Grant, MemberRole

    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        grant_services.add_member(db.session, grant, db.session.get(User, world.users["Finance"]), MemberRole.finance)
        db.session.commit()
    finance = client_for("Finance")
    assert 'id="verify-button"' in finance.get(f"/indicator-results/show/{submitted}").get_data(as_text=True)
    finance.post(f"/indicator-results/{submitted}/verify")
    with app.app_context():
        assert db.session.get(Result, submitted).verified_by_id == world.users["Finance"]


def test_setting_status_verified_in_the_edit_form_is_refused(program_client, app, submitted):
    response = program_client.post(
        f"/indicator-results/edit/{submitted}", data={"value": "12", "status": "verified"}, follow_redirects=True
    )
    assert "use the Verify action" in response.get_data(as_text=True)
    from core.extensions import db

    with app.app_context():
        assert db.session.get(Result, submitted).status == ResultStatus.submitted


# ---------------------------------------------------------------- the IPTT and the grant page


def test_iptt_shows_target_actual_percentage_rating_and_a_chart(program_client, world, submitted):
    status, html = page(program_client, f"/indicator-progress/{world.grant_a}")
    assert status == 200
    assert 'data-indicator="T-1"' in html
    assert "120%" in html and "A1" in html  # 12 against a target of 10
    assert "<svg" in html and 'class="bar-actual"' in html and 'class="bar-target"' in html


def test_iptt_filtered_by_country(program_client, app, world, ind):
    from core.extensions import db

    with app.app_context():
        program = db.session.get(User, world.users["Program"])
        trained = db.session.get(Indicator, ind.trained)
        period = db.session.get(ReportingPeriod, world.period_a1)
        services.set_target(db.session, trained, period, value=40, disaggregation={"country=LC": 25, "country=GD": 15})
        services.record_result(
            db.session, trained, period, user=program, value=46, disaggregation={"country=LC": 30, "country=GD": 16}
        )
        db.session.commit()
    status, html = page(program_client, f"/indicator-progress/{world.grant_a}?disaggregation=country=GD")
    assert status == 200
    assert "106.7%" in html  # GD: 16 of 15
    assert "not disaggregated this way" in html  # G-1 has no country split


def test_grant_page_panel_summarises_ratings_and_links_the_iptt(program_client, world, submitted):
    status, html = page(program_client, f"/grants/show/{world.grant_a}")
    assert status == 200
    assert 'data-panel="Indicators"' in html
    assert "A1: 1" in html and f"/indicator-progress/{world.grant_a}" in html


def test_a_target_of_an_accepted_period_cannot_be_deleted_from_the_list(program_client, app, world, ind):
    from core.extensions import db

    with app.app_context():
        target = services.set_target(
            db.session,
            db.session.get(Indicator, ind.trained),
            db.session.get(ReportingPeriod, world.period_a1),
            value=10,
        )
        target_id = target.id
        db.session.get(ReportingPeriod, world.period_a1).status = PeriodStatus.accepted
        db.session.commit()
    response = program_client.post(f"/indicator-targets/delete/{target_id}", follow_redirects=True)
    assert "S1 is accepted: its figures can no longer be deleted" in response.get_data(as_text=True)
    assert count(app, Target) == 1
