"""The indicators REST API (JWT): row-level rules, entering figures with parts, verification, the IPTT as JSON."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from grants.models import PeriodStatus, ReportingPeriod
from indicators import progress, services
from indicators.models import Indicator, IndicatorCode, Result, ResultStatus, ResultValue, Target

D = Decimal


def count(app, model):
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def submitted(app, world, ind):
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
        db.session.commit()
        return result.id


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("Admin", {"KP-1c", "T-1", "G-1", "B-1"}),
        ("Finance", {"KP-1c", "T-1", "G-1", "B-1"}),
        ("Program", {"KP-1c", "T-1", "G-1"}),
        ("Donor", {"KP-1c", "T-1", "G-1"}),
        ("Auditor", {"KP-1c", "T-1", "G-1"}),
    ],
)
def test_indicator_list_is_filtered_by_membership(api_for, ind, role, expected):
    response = api_for(role).get("/api/v1/indicators/")
    assert response.status_code == 200
    assert {i["code"] for i in response.json["result"]} == expected


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_another_grants_indicator_is_404(api_for, ind, role):
    assert api_for(role).get(f"/api/v1/indicators/{ind.other_grant_indicator}").status_code == 404


def test_program_cannot_change_or_delete_another_grants_indicator(api_for, app, ind):
    api = api_for("Program")
    assert api.put(f"/api/v1/indicators/{ind.other_grant_indicator}", json={"name": "x"}).status_code == 404
    assert api.delete(f"/api/v1/indicators/{ind.other_grant_indicator}").status_code == 404
    assert count(app, Indicator) == 4


def test_program_cannot_create_an_indicator_under_an_invisible_grant(api_for, app, world, ind):
    response = api_for("Program").post("/api/v1/indicators/", json={"grant": world.grant_b, "code": "S", "name": "x"})
    assert response.status_code == 422
    assert count(app, Indicator) == 4


def test_program_creates_an_indicator_with_dimensions(api_for, app, world, ind):
    from core.extensions import db

    with app.app_context():
        country = progress.find_category(db.session, "country=LC").dimension_id
    response = api_for("Program").post(
        "/api/v1/indicators/",
        json={
            "grant": world.grant_a,
            "code": "API-1",
            "name": "From the API",
            "unit": "percentage",
            "dimensions": [country],
            "lop_target": "80",
        },
    )
    assert response.status_code == 201, response.json
    shown = api_for("Program").get(f"/api/v1/indicators/{response.json['id']}").json["result"]
    assert shown["unit"] == "percentage" and [d["code"] for d in shown["dimensions"]] == ["country"]


def test_program_cannot_add_a_result_for_another_grants_indicator_through_the_generic_endpoint(
    api_for, app, world, ind
):
    response = api_for("Program").post(
        "/api/v1/indicator_results/",
        json={"indicator": ind.other_grant_indicator, "period": world.period_b1, "value": "3"},
    )
    assert response.status_code == 422
    assert count(app, Result) == 0


def test_generic_result_post_records_who_entered_it(api_for, app, world, ind):
    response = api_for("Program").post(
        "/api/v1/indicator_results/", json={"indicator": ind.trained, "period": world.period_a1, "value": "3"}
    )
    assert response.status_code == 201, response.json
    from core.extensions import db

    with app.app_context():
        result = db.session.get(Result, response.json["id"])
        assert result.entered_by_id == world.users["Program"] and result.grant_id == world.grant_a


def test_generic_result_post_refuses_a_period_of_another_grant(api_for, app, world, ind):
    response = api_for("Admin").post(
        "/api/v1/indicator_results/", json={"indicator": ind.trained, "period": world.period_b1, "value": "3"}
    )
    assert response.status_code == 422
    assert "is a period of GB-1" in response.json["message"]["period"][0]
    assert count(app, Result) == 0


@pytest.mark.parametrize("role", ["Donor", "Auditor", "Finance"])
def test_read_only_roles_get_403_on_every_change(api_for, world, ind, role):
    api = api_for(role)
    assert api.post("/api/v1/indicators/", json={"grant": world.grant_a, "code": "Z", "name": "z"}).status_code == 403
    assert api.put(f"/api/v1/indicators/{ind.coverage}", json={"name": "z"}).status_code == 403
    assert api.delete(f"/api/v1/indicators/{ind.coverage}").status_code == 403
    record = {"indicator": ind.trained, "period": world.period_a1, "value": "3"}
    assert api.post("/api/v1/indicator_targets/record", json=record).status_code == 403
    assert api.post("/api/v1/indicator_results/record", json=record).status_code == 403
    assert api.post("/api/v1/dimensions/", json={"code": "z", "name": "z"}).status_code == 403


def test_donor_cannot_read_raw_results(api_for, ind):
    assert api_for("Donor").get("/api/v1/indicator_results/").status_code == 403


# ---------------------------------------------------------------- POST /record: total and parts together


def test_record_a_result_with_its_disaggregation(api_for, app, world, ind):
    response = api_for("Program").post(
        "/api/v1/indicator_results/record",
        json={
            "indicator": ind.coverage,
            "period": world.period_a1,
            "numerator": 55,
            "denominator": "100",
            "status": "submitted",
            "disaggregation": {"country=LC": [40, 60], "country=GD": [15, 40]},
        },
    )
    assert response.status_code == 200, response.json
    result = response.json["result"]
    assert result["value"] == "55.0000" and result["status"] == "submitted"
    assert {p["category"]: p["numerator"] for p in result["disaggregation"]} == {
        "country=LC": "40.0000",
        "country=GD": "15.0000",
    }
    figure = api_for("Auditor").get(f"/api/v1/indicator_results/{result['id']}/figure")
    assert figure.status_code == 200 and len(figure.json["result"]["disaggregation"]) == 2


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"value": 32, "disaggregation": {"country=LC": 20, "country=GD": 10}}, "disaggregation", "add up to 30"),
        ({"value": -1}, "value", "must not be negative"),
        (
            {"value": 5, "disaggregation": {"country=LC": 6, "country=GD": -1}},
            "Country GD: value",
            "must not be negative",
        ),
        ({"value": "lots"}, "value", "'lots' is not a number"),
        ({"value": 5, "disaggregation": {"country=ZZ": 5}}, "disaggregation", "no category 'country=ZZ'"),
    ],
)
def test_record_refuses_bad_counts_and_saves_nothing(api_for, app, world, ind, body, field, words):
    response = api_for("Program").post(
        "/api/v1/indicator_results/record", json={"indicator": ind.trained, "period": world.period_a1, **body}
    )
    assert response.status_code == 422
    assert words in " ".join(response.json["message"][field])
    assert count(app, Result) == 0 and count(app, ResultValue) == 0


def test_record_refuses_a_zero_denominator(api_for, app, world, ind):
    response = api_for("Program").post(
        "/api/v1/indicator_results/record",
        json={"indicator": ind.coverage, "period": world.period_a1, "numerator": 5, "denominator": 0},
    )
    assert response.status_code == 422
    assert response.json["message"]["denominator"] == ["must be greater than 0 for a percentage"]
    assert count(app, Result) == 0


def test_record_refuses_a_period_of_another_grant(api_for, app, world, ind):
    response = api_for("Admin").post(
        "/api/v1/indicator_results/record", json={"indicator": ind.trained, "period": world.period_b1, "value": 3}
    )
    assert response.status_code == 422
    assert "'S1' is a period of GB-1, not of GA-1" in response.json["message"]["period"][0]
    assert count(app, Result) == 0


def test_record_refuses_an_indicator_the_user_cannot_see(api_for, app, world, ind):
    response = api_for("Program").post(
        "/api/v1/indicator_results/record",
        json={"indicator": ind.other_grant_indicator, "period": world.period_b1, "value": 3},
    )
    assert response.status_code == 422 and "indicator" in response.json["message"]
    assert count(app, Result) == 0


def test_record_refuses_status_verified(api_for, app, world, ind):
    response = api_for("Program").post(
        "/api/v1/indicator_results/record",
        json={"indicator": ind.trained, "period": world.period_a1, "value": 3, "status": "verified"},
    )
    assert response.status_code == 422 and "status" in response.json["message"]
    assert count(app, Result) == 0


def test_target_for_a_closed_period_is_refused(api_for, app, world, ind):
    from core.extensions import db

    with app.app_context():
        db.session.get(ReportingPeriod, world.period_a1).status = PeriodStatus.submitted
        db.session.commit()
    for url, body in (("/api/v1/indicator_targets/record", {}), ("/api/v1/indicator_targets/", {})):
        response = api_for("Program").post(
            url, json={"indicator": ind.trained, "period": world.period_a1, "value": 40, **body}
        )
        assert response.status_code == 422
        assert "S1 is submitted" in response.json["message"]["period"][0]
    assert count(app, Target) == 0


# ---------------------------------------------------------------- verification


def test_api_refuses_verification_by_the_person_who_entered_it(api_for, app, submitted):
    response = api_for("Program").post(f"/api/v1/indicator_results/{submitted}/verify")
    assert response.status_code == 422
    assert "cannot verify it" in response.json["message"]["verified_by"][0]
    from core.extensions import db

    with app.app_context():
        assert db.session.get(Result, submitted).status == ResultStatus.submitted


def test_api_verification_by_a_colleague(api_for, app, world, submitted):
    response = api_for("Admin").post(f"/api/v1/indicator_results/{submitted}/verify")
    assert response.status_code == 200
    assert response.json["result"]["status"] == "verified"
    shown = api_for("Auditor").get(f"/api/v1/indicator_results/{submitted}").json["result"]
    assert shown["verified_by"]["username"] == "admin" and shown["entered_by"]["username"] == "program"


def test_a_donor_cannot_reach_verification_through_the_api(api_for, submitted):
    assert api_for("Donor").post(f"/api/v1/indicator_results/{submitted}/verify").status_code == 403


@pytest.mark.parametrize(("role", "reason"), [("Auditor", "do not verify"), ("Finance", "not a member")])
def test_the_api_says_why_the_grant_does_not_let_someone_verify(api_for, submitted, role, reason):
    response = api_for(role).post(f"/api/v1/indicator_results/{submitted}/verify")
    assert response.status_code == 422 and reason in response.json["message"]["verified_by"][0]


def test_generic_put_cannot_mark_a_result_verified(api_for, app, submitted):
    response = api_for("Program").put(f"/api/v1/indicator_results/{submitted}", json={"status": "verified"})
    assert response.status_code == 422
    assert "use the Verify action" in response.json["message"]["status"][0]


def test_program_cannot_verify_another_grants_result(api_for, app, world, ind):
    from core.extensions import db

    with app.app_context():
        result = services.record_result(
            db.session,
            db.session.get(Indicator, ind.other_grant_indicator),
            db.session.get(ReportingPeriod, world.period_b1),
            user=db.session.get(User, world.users["Admin"]),
            value=3,
            status="submitted",
        )
        db.session.commit()
        result_id = result.id
    assert api_for("Program").post(f"/api/v1/indicator_results/{result_id}/verify").status_code == 404


# ---------------------------------------------------------------- the IPTT as JSON and the crosswalk


def test_progress_json_for_a_visible_grant(api_for, app, world, submitted):
    response = api_for("Program").get(f"/api/v1/indicator_progress/{world.grant_a}")
    assert response.status_code == 200
    rows = {(r["indicator_code"], r["period_label"]): r for r in response.json["result"]}
    assert rows[("T-1", "S1")]["actual"] == "12.0000" and rows[("T-1", "S1")]["result_status"] == "submitted"


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_progress_json_of_an_invisible_grant_is_404(api_for, world, ind, role):
    assert api_for(role).get(f"/api/v1/indicator_progress/{world.grant_b}").status_code == 404


def test_donor_progress_json_leaves_drafts_out(api_for, app, world, ind):
    from core.extensions import db

    with app.app_context():
        services.record_result(
            db.session,
            db.session.get(Indicator, ind.trained),
            db.session.get(ReportingPeriod, world.period_a1),
            user=db.session.get(User, world.users["Program"]),
            value=12,
        )
        db.session.commit()
    donor_rows = api_for("Donor").get(f"/api/v1/indicator_progress/{world.grant_a}").json["result"]
    program_rows = api_for("Program").get(f"/api/v1/indicator_progress/{world.grant_a}").json["result"]
    pick = lambda rows: next(r for r in rows if r["indicator_code"] == "T-1" and r["period_label"] == "S1")  # noqa: E731
    assert pick(donor_rows)["actual"] is None and pick(program_rows)["actual"] == "12.0000"


def test_progress_json_filtered_by_category_and_period(api_for, world, ind):
    response = api_for("Program").get(
        f"/api/v1/indicator_progress/{world.grant_a}?disaggregation=country=LC&period_id={world.period_a1}"
    )
    assert response.status_code == 200
    assert {r["disaggregation"] for r in response.json["result"]} == {"country=LC"}
    assert {r["period_label"] for r in response.json["result"]} == {"S1"}
    bad = api_for("Program").get(f"/api/v1/indicator_progress/{world.grant_a}?period_id={world.period_b1}")
    assert bad.status_code == 422


def test_crosswalk_code_lookup_and_row_level_check(api_for, app, world, ind):
    api = api_for("Program")
    response = api.post(
        "/api/v1/indicator_codes/", json={"indicator": ind.coverage, "funder": world.funder_id, "code": "GF-KP-1c"}
    )
    assert response.status_code == 201, response.json
    lookup = api.get(f"/api/v1/indicator_codes/lookup?indicator={ind.coverage}&funder={world.funder_id}")
    assert lookup.json["result"]["code"] == "GF-KP-1c"
    assert (
        api.get(
            f"/api/v1/indicator_codes/lookup?indicator={ind.other_grant_indicator}&funder={world.funder_id}"
        ).status_code
        == 404
    )
    sneaky = api.post(
        "/api/v1/indicator_codes/",
        json={"indicator": ind.other_grant_indicator, "funder": world.funder_id, "code": "X"},
    )
    assert sneaky.status_code == 422
    assert count(app, IndicatorCode) == 1


def test_verified_result_and_closed_period_figures_cannot_be_deleted(api_for, app, world, submitted):
    api = api_for("Admin")
    assert api.post(f"/api/v1/indicator_results/{submitted}/verify").status_code == 200
    response = api.delete(f"/api/v1/indicator_results/{submitted}")
    assert response.status_code == 422 and "verified" in response.json["message"]["status"][0]
    from core.extensions import db

    with app.app_context():
        target = services.set_target(
            db.session,
            db.session.get(Indicator, ind_trained(db.session)),
            db.session.get(ReportingPeriod, world.period_a1),
            value=10,
        )
        target_id = target.id
        db.session.get(ReportingPeriod, world.period_a1).status = PeriodStatus.accepted
        db.session.commit()
    response = api_for("Program").delete(f"/api/v1/indicator_targets/{target_id}")
    assert response.status_code == 422 and "S1 is accepted" in response.json["message"]["period"][0]
    assert count(app, Target) == 1 and count(app, Result) == 1


def ind_trained(session):
    return session.scalar(select(Indicator.id).where(Indicator.code == "T-1"))


def test_program_deletes_a_draft_of_an_open_period(api_for, app, world, ind):
    created = api_for("Program").post(
        "/api/v1/indicator_results/", json={"indicator": ind.trained, "period": world.period_a1, "value": "3"}
    )
    assert api_for("Program").delete(f"/api/v1/indicator_results/{created.json['id']}").status_code == 200
    assert count(app, Result) == 0
