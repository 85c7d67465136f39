"""No input answers 500: numbers too large or not finite, odd JSON bodies, unknown action and filter names."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select


@pytest.fixture
def line_id(app, world) -> int:
    """One budget line on grant A (planned 1000 in S1), with the funder's generic cost categories."""
    from budgets import services
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Funder, Grant
    from grants.services import GENERIC_COST_CATEGORIES

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        db.session.get(Funder, world.funder_id).cost_categories = [dict(c) for c in GENERIC_COST_CATEGORIES]
        line = services.create_line(
            db.session,
            db.session.get(Grant, world.grant_a),
            code="HR-1",
            description="Coordinator",
            cost_category="STAFF",
            planned={"S1": "1000"},
        )
        db.session.commit()
        return line.id


def _count(app, model) -> int:
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


@pytest.mark.parametrize("typed", ["1e309", "1E+20", "NaN", "Infinity", "12345678901234567890"])
def test_an_amount_that_cannot_be_stored_is_refused_next_to_its_field_in_the_form(
    typed, app, world, line_id, finance_client
):
    from budgets.models import Expenditure

    before = _count(app, Expenditure)
    response = finance_client.post(
        "/expenditures/add",
        data={"line": str(line_id), "spent_on": "2026-02-03", "amount": typed, "currency": "USD"},
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    refusals = ("too large", "not a finite number", "Not a valid decimal", "written with an exponent")
    assert any(refusal in page for refusal in refusals)
    assert f'value="{typed}"' in page  # what the user typed stays in the field
    assert _count(app, Expenditure) == before


def test_an_api_amount_too_large_is_refused_by_field(app, world, line_id, api_for):
    from budgets.models import Expenditure

    api = api_for("Finance")
    for amount in ("1E+20", "123456789012345678", 1e20):
        response = api.post(
            "/api/v1/expenditures/",
            json={"line": line_id, "spent_on": "2026-02-03", "amount": amount, "currency": "USD"},
        )
        assert response.status_code == 422, response.get_data(as_text=True)
        assert "too large" in response.json["message"]["amount"][0]
    assert _count(app, Expenditure) == 0


def test_a_relation_given_as_an_object_or_list_is_refused_in_words(app, world, line_id, api_for):
    api = api_for("Admin")
    for line in ({"name": "HR-1"}, [line_id], 2**40, "HR-1", True):
        response = api.post(
            "/api/v1/expenditures/",
            json={"line": line, "spent_on": "2026-02-03", "amount": "10", "currency": "USD"},
        )
        assert response.status_code == 422, (line, response.get_data(as_text=True))
        assert "line" in response.json["message"]


def test_a_relation_given_as_an_object_with_its_id_is_read(app, world, line_id, api_for):
    response = api_for("Finance").post(
        "/api/v1/expenditures/",
        json={"line": {"id": line_id}, "spent_on": "2026-02-03", "amount": "10", "currency": "USD"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_a_json_array_as_a_body_is_a_bad_request(app, world, api_for):
    api = api_for("Admin")
    assert api.put(f"/api/v1/grants/{world.grant_a}", json=[1, 2]).status_code == 400
    assert api.post("/api/v1/grants/", json=["title"]).status_code == 400
    assert api.put(f"/api/v1/grants/{world.grant_a}", json="GA-1").status_code == 400


def test_ids_beyond_32_bits_are_simply_not_found(app, world, api_for):
    api = api_for("Admin")
    huge = 2**40
    assert api.get(f"/api/v1/grants/{huge}").status_code == 404
    assert api.put(f"/api/v1/grants/{huge}", json={"title": "x"}).status_code == 404
    assert api.delete(f"/api/v1/grants/{huge}").status_code == 404


def test_a_query_number_no_column_holds_is_read_as_absent(app, world, api_for):
    response = api_for("Admin").get(f"/api/v1/deadlines/mine?grant={2**77}&scope=all")
    assert response.status_code == 200


def test_deleting_a_line_with_expenditures_is_refused_in_words(app, world, line_id, api_for):
    from budgets import services
    from budgets.models import BudgetLine
    from core.extensions import db as database

    with app.app_context():
        line = database.session.get(BudgetLine, line_id)
        services.record_expenditure(
            database.session, line.grant, line=line, spent_on=date(2026, 2, 1), amount="120.00", currency="USD"
        )
        database.session.commit()
    response = api_for("Admin").delete(f"/api/v1/budget_lines/{line_id}")
    assert response.status_code == 422, response.get_data(as_text=True)
    message = response.json["message"]["_"][0]
    assert "cannot be deleted" in message and "expenditures" in message
    assert "SQL" not in message and "Violation" not in message
    with app.app_context():
        assert database.session.get(BudgetLine, line_id) is not None


def test_an_unknown_action_on_a_record_is_not_found(app, world, admin_client):
    assert admin_client.post(f"/grants/action/no_such_action/{world.grant_a}").status_code == 404
    response = admin_client.post("/grants/action_post", data={"action": "no_such_action", "rowid": [world.grant_a]})
    assert response.status_code == 404


@pytest.mark.parametrize("view", ["evidence", "expenditures", "grants"])
def test_a_search_filter_that_does_not_exist_is_a_bad_request(view, app, world, admin_client):
    assert admin_client.get(f"/{view}/list/?_flt_3_grant=1").status_code == 400
    assert admin_client.get(f"/{view}/list/?_flt_0_no_such_column=1").status_code == 400


# -- the REST API, walked with schemathesis -----------------------------------------------------------

EXAMPLES_PER_OPERATION = int(__import__("os").environ.get("GRANTKEEPER_SCHEMATHESIS_EXAMPLES", "6"))


def test_no_api_operation_answers_a_server_error_to_generated_input(app, world, line_id, api_for):
    """Every operation of /api/v1/_openapi, a few generated requests each, as an admin: never a 5xx."""
    import schemathesis

    admin = api_for("Admin")
    spec = admin.get("/api/v1/_openapi").json
    schema = schemathesis.openapi.from_dict(spec)
    headers = dict(admin.headers)
    server_errors: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        _walk(result.ok(), app, headers, server_errors)
    assert operations > 50
    assert server_errors == [], "\n".join(sorted(set(server_errors))[:60])


def _walk(operation, app, headers, server_errors):
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case):
        response = case.call(app=app, headers=headers)
        if response.status_code >= 500:
            server_errors.append(
                f"{operation.method.upper()} {case.formatted_path} -> {response.status_code}: "
                f"{str(case.body)[:160]} {case.query}"
            )

    call()
