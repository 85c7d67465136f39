"""The REST API for shared costs and allocation keys: split a payment over grants, keep keys, re-run them.

Scoped like the pages: a cost (or key) is listed, shown and changed only by someone who sees every grant it
is split over; bad input is answered 422 naming the field; nothing is half-saved.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select


@pytest.fixture
def rates_in(app, world, budget):
    """USD→EUR for grant B (EUR); grant A is in USD."""
    from budgets import rates
    from core.extensions import db

    with app.app_context():
        rates.record_rate(db.session, date(2026, 4, 15), "USD", "EUR", "0.9")
        db.session.commit()
    return budget


def _rent(budget, **changes):
    body = {
        "spent_on": "2026-04-16",
        "amount": "1000.00",
        "currency": "USD",
        "description": "Office rent April",
        "method": "percent",
        "parts": [{"line": budget.line_hr, "share": "60"}, {"line": budget.line_b, "share": "40"}],
    }
    body.update(changes)
    return body


def _count(app, model):
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_finance_splits_a_payment_over_two_grants_each_part_in_its_grants_currency(app, api_for, rates_in):
    api = api_for("Finance")
    response = api.post("/api/v1/shared_costs/", json=_rent(rates_in))
    assert response.status_code == 201, response.json
    cost_id = response.json["id"]
    parts = {p["grant"]["reference"]: p for p in response.json["result"]["parts"]}
    assert parts["GA-1"]["amount"] == "600.00" and parts["GA-1"]["amount_in_grant_currency"] == "600.00"
    assert parts["GB-1"]["amount"] == "400.00" and parts["GB-1"]["amount_in_grant_currency"] == "360.00"
    assert parts["GB-1"]["grant_currency"] == "EUR"

    shown = api.get(f"/api/v1/shared_costs/{cost_id}").json["result"]
    assert shown["description"] == "Office rent April" and len(shown["parts"]) == 2
    listed = api.get("/api/v1/shared_costs/").json
    assert listed["count"] == 1 and Decimal(str(listed["result"][0]["amount"])) == Decimal("1000")


def test_a_split_by_amounts_that_do_not_add_up_is_refused_naming_the_parts_and_nothing_is_saved(app, api_for, rates_in):
    from budgets.models import Expenditure, SharedCost

    body = _rent(
        rates_in,
        method="amount",
        parts=[{"line": rates_in.line_hr, "share": "600"}, {"line": rates_in.line_b, "share": "300"}],
    )
    response = api_for("Finance").post("/api/v1/shared_costs/", json=body)
    assert response.status_code == 422
    assert "the parts add up to 900.00 USD, not the 1,000.00 USD paid" in response.json["message"]["parts"][0]
    assert _count(app, SharedCost) == 0 and _count(app, Expenditure) == 0


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"description": ""}, "description", "say what was paid for"),
        ({"spent_on": "16/04/2026"}, "spent_on", "is not a date written as YYYY-MM-DD"),
        ({"currency": "DOLLARS"}, "currency", "is not an ISO 4217 currency code"),
        ({"amount": "lots"}, "amount", ""),
        ({"method": "guess"}, "method", "choose a split by percentage, by amount or by an allocation key"),
        ({"parts": "HR 60"}, "parts", "must be a list"),
        ({"parts": [{"line": 99999, "share": "100"}]}, "parts", "a budget line you have access to"),
        ({"key": 99999, "method": "key", "parts": None}, "key", "an allocation key you have access to"),
        ({"colour": "red"}, "colour", "is not a field you can set here"),
    ],
)
def test_bad_input_is_answered_422_naming_the_field(app, api_for, rates_in, change, field, words):
    from budgets.models import SharedCost

    response = api_for("Finance").post("/api/v1/shared_costs/", json=_rent(rates_in, **change))
    assert response.status_code == 422, response.json
    assert words in " ".join(response.json["message"][field])
    assert _count(app, SharedCost) == 0


def test_a_cost_is_seen_only_by_someone_who_sees_every_grant_it_is_split_over(app, api_for, rates_in):
    finance = api_for("Finance")
    both = finance.post("/api/v1/shared_costs/", json=_rent(rates_in)).json["id"]
    only_a = finance.post(
        "/api/v1/shared_costs/",
        json=_rent(rates_in, description="Auditor fee", parts=[{"line": rates_in.line_hr, "share": "100"}]),
    ).json["id"]
    auditor = api_for("Auditor")  # a member of grant A only
    listed = auditor.get("/api/v1/shared_costs/").json
    assert [row["description"] for row in listed["result"]] == ["Auditor fee"]
    assert auditor.get(f"/api/v1/shared_costs/{both}").status_code == 404
    assert auditor.get(f"/api/v1/shared_costs/{only_a}").status_code == 200
    assert auditor.post("/api/v1/shared_costs/", json=_rent(rates_in)).status_code == 403
    info = auditor.get("/api/v1/shared_costs/_info").get_data(as_text=True)
    assert "GB-1" not in info


def test_finance_changes_a_split_and_the_parts_follow(app, api_for, rates_in):
    from budgets.models import Expenditure

    api = api_for("Finance")
    cost_id = api.post("/api/v1/shared_costs/", json=_rent(rates_in)).json["id"]
    response = api.put(
        f"/api/v1/shared_costs/{cost_id}",
        json={"parts": [{"line": rates_in.line_hr, "share": "50"}, {"line": rates_in.line_b, "share": "50"}]},
    )
    assert response.status_code == 200, response.json
    assert sorted(p["amount"] for p in response.json["result"]["parts"]) == ["500.00", "500.00"]
    refused = api.put(f"/api/v1/shared_costs/{cost_id}", json={"amount": "0"})
    assert refused.status_code == 422 and "amount" in refused.json["message"]
    assert _count(app, Expenditure) == 2
    assert api.delete(f"/api/v1/shared_costs/{cost_id}").status_code == 200
    assert _count(app, Expenditure) == 0


def test_a_key_is_kept_changed_and_re_run_with_each_part_before_and_after_in_the_audit_trail(app, api_for, rates_in):
    from core.audit import AuditEntry
    from core.extensions import db

    api = api_for("Finance")
    created = api.post(
        "/api/v1/allocation_keys/",
        json={
            "name": "Rent by floor space",
            "basis": "floor space (m²)",
            "shares": [{"line": rates_in.line_hr, "weight": "60"}, {"line": rates_in.line_b, "weight": "40"}],
        },
    )
    assert created.status_code == 201, created.json
    key_id = created.json["id"]
    assert [s["weight"] for s in api.get(f"/api/v1/allocation_keys/{key_id}").json["result"]["shares"]] == ["60", "40"]
    cost = api.post("/api/v1/shared_costs/", json=_rent(rates_in, method="key", key=key_id, parts=None)).json
    part_a = next(p for p in cost["result"]["parts"] if p["grant"]["reference"] == "GA-1")
    assert part_a["amount"] == "600.00"

    changed = api.put(
        f"/api/v1/allocation_keys/{key_id}",
        json={"shares": [{"line": rates_in.line_hr, "weight": "50"}, {"line": rates_in.line_b, "weight": "50"}]},
    )
    assert changed.status_code == 200, changed.json
    rerun = api.post(f"/api/v1/allocation_keys/{key_id}/rerun", json={})
    assert rerun.status_code == 200 and rerun.json["changed"] == 1
    parts = api.get(f"/api/v1/shared_costs/{cost['id']}").json["result"]["parts"]
    assert sorted(p["amount"] for p in parts) == ["500.00", "500.00"]
    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(
                AuditEntry.table_name == "expenditures",
                AuditEntry.record_id == str(part_a["id"]),
                AuditEntry.action == "update",
            )
        ).all()
        assert any(e.changes.get("amount") == ["600.00", "500.00"] for e in entries), [e.changes for e in entries]


def test_allocation_key_input_is_checked_naming_the_field(app, api_for, rates_in):
    from budgets.models import AllocationKey

    api = api_for("Finance")
    assert api.post("/api/v1/allocation_keys/", json={"name": "K", "shares": []}).json["message"]["shares"]
    bad_weight = api.post(
        "/api/v1/allocation_keys/", json={"name": "K", "shares": [{"line": rates_in.line_hr, "weight": "-1"}]}
    )
    assert bad_weight.status_code == 422 and "more than zero" in bad_weight.json["message"]["shares"][0]
    api.post("/api/v1/allocation_keys/", json={"name": "K", "shares": [{"line": rates_in.line_hr, "weight": "1"}]})
    twice = api.post(
        "/api/v1/allocation_keys/", json={"name": "K", "shares": [{"line": rates_in.line_hr, "weight": "1"}]}
    )
    assert twice.status_code == 422 and "already an allocation key" in twice.json["message"]["name"][0]
    assert _count(app, AllocationKey) == 1
    assert api.post("/api/v1/allocation_keys/99999/rerun", json={}).status_code == 404


def test_a_key_over_a_grant_the_user_cannot_see_is_not_listed(app, api_for, rates_in):
    api_for("Finance").post(
        "/api/v1/allocation_keys/",
        json={
            "name": "Both",
            "shares": [{"line": rates_in.line_hr, "weight": "1"}, {"line": rates_in.line_b, "weight": "1"}],
        },
    )
    listed = api_for("Auditor").get("/api/v1/allocation_keys/").json
    assert listed["count"] == 0
