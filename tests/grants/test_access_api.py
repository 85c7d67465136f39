"""Row-level rules through the REST API (JWT), and bad input refused with 422 naming the field."""

import pytest
from sqlalchemy import func, select

from grants.models import Grant, ReportingPeriod

NEW_GRANT = {
    "reference": "API-1",
    "title": "From the API",
    "recipient": "Coalition",
    "currency": "XCD",
    "amount": "2700.00",
    "start_date": "2026-01-01",
    "end_date": "2026-12-31",
}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("Admin", {"GA-1", "GB-1"}),
        ("Finance", {"GA-1", "GB-1"}),
        ("Program", {"GA-1"}),
        ("Donor", {"GA-1"}),
        ("Auditor", {"GA-1"}),
    ],
)
def test_grant_list_is_filtered_by_membership(api_for, world, role, expected):
    response = api_for(role).get("/api/v1/grants/")
    assert response.status_code == 200
    assert {g["reference"] for g in response.json["result"]} == expected
    assert response.json["count"] == len(expected)


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_invisible_grant_and_its_periods_are_404(api_for, world, role):
    api = api_for(role)
    assert api.get(f"/api/v1/grants/{world.grant_b}").status_code == 404
    assert api.get(f"/api/v1/periods/{world.period_b1}").status_code == 404
    periods = api.get("/api/v1/periods/").json["result"]
    assert {p["grant"]["reference"] for p in periods} == {"GA-1"}


def test_program_cannot_change_or_delete_another_grants_period(api_for, world, app):
    api = api_for("Program")
    assert api.put(f"/api/v1/periods/{world.period_b1}", json={"label": "hijacked"}).status_code == 404
    assert api.delete(f"/api/v1/periods/{world.period_b1}").status_code == 404
    with app.app_context():
        from core.extensions import db

        assert db.session.get(ReportingPeriod, world.period_b1).label == "S1"


def test_program_cannot_create_a_period_under_an_invisible_grant(api_for, world, app):
    response = api_for("Program").post(
        "/api/v1/periods/",
        json={"grant": world.grant_b, "label": "S9", "start_date": "2026-01-01", "end_date": "2026-02-01"},
    )
    assert response.status_code == 422
    assert "grant" in response.json["message"]
    with app.app_context():
        from core.extensions import db

        assert db.session.scalar(select(ReportingPeriod).where(ReportingPeriod.label == "S9")) is None


def test_program_cannot_move_own_period_to_an_invisible_grant(api_for, world, app):
    response = api_for("Program").put(f"/api/v1/periods/{world.period_a1}", json={"grant": world.grant_b})
    assert response.status_code == 422
    with app.app_context():
        from core.extensions import db

        assert db.session.get(ReportingPeriod, world.period_a1).grant_id == world.grant_a


def test_program_creates_a_period_under_own_grant(api_for, world):
    response = api_for("Program").post(
        "/api/v1/periods/",
        json={"grant": world.grant_a, "label": "X1", "start_date": "2026-03-01", "end_date": "2026-03-31"},
    )
    assert response.status_code == 201, response.json
    assert response.json["result"]["label"] == "X1"


@pytest.mark.parametrize("role", ["Donor", "Auditor"])
def test_read_only_roles_get_403_on_every_change(api_for, world, role):
    api = api_for(role)
    assert api.post("/api/v1/grants/", json={**NEW_GRANT, "funder": world.funder_id}).status_code == 403
    assert api.put(f"/api/v1/grants/{world.grant_a}", json={"title": "x"}).status_code == 403
    assert api.delete(f"/api/v1/grants/{world.grant_a}").status_code == 403
    assert api.post("/api/v1/periods/", json={"grant": world.grant_a, "label": "Z"}).status_code == 403


def test_finance_creates_a_grant(api_for, world, app):
    response = api_for("Finance").post("/api/v1/grants/", json={**NEW_GRANT, "funder": world.funder_id})
    assert response.status_code == 201, response.json
    assert response.json["result"]["status"] == "active"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end_date": "2025-01-01"}, "end_date"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"currency": "ABC"}, "currency"),
        ({"reference": "GA-1"}, "reference"),
        ({"start_date": "31/12/2026"}, "start_date"),
    ],
)
def test_bad_grant_input_is_422_naming_the_field_and_saves_nothing(api_for, world, app, changes, field):
    response = api_for("Finance").post("/api/v1/grants/", json={**NEW_GRANT, "funder": world.funder_id, **changes})
    assert response.status_code == 422
    assert field in response.json["message"]
    with app.app_context():
        from core.extensions import db

        assert db.session.scalar(select(func.count()).select_from(Grant)) == 2


def test_api_without_token_is_401(app, world):
    assert app.test_client().get("/api/v1/grants/").status_code == 401


def test_api_refuses_browser_cookies(program_client, world):
    """The REST API is JWT-only: a cookie session has no CSRF protection there (FAB.md trap 9)."""
    assert program_client.get("/api/v1/grants/").status_code == 401


def test_openapi_spec_is_served_to_signed_in_users(api_for, app, world):
    assert app.test_client().get("/api/v1/_openapi").status_code == 401
    response = api_for("Program").get("/api/v1/_openapi")
    assert response.status_code == 200
    paths = response.json["paths"]
    assert {"/api/v1/grants/", "/api/v1/periods/", "/api/v1/funders/", "/api/v1/memberships/"} <= set(paths)
