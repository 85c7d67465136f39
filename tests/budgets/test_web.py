"""Budgets through the web UI and the REST API: who may see and change what, and bad input."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select


def _count(app, model) -> int:
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


# ---------------------------------------------------------------- expenditures in the UI


def test_finance_records_an_expenditure_through_the_form(app, client_for, budget):
    from budgets.models import Expenditure
    from core.extensions import db

    response = client_for("Finance").post(
        "/expenditures/add",
        data={
            "line": str(budget.line_hr),
            "spent_on": "2026-02-03",
            "amount": "120.50",
            "currency": "usd",
            "description": "Fees",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        item = db.session.scalar(select(Expenditure))
        assert (item.amount, item.currency, item.converted_amount, item.period.label) == (
            Decimal("120.50"),
            "USD",
            Decimal("120.50"),
            "S1",
        )


def test_form_refuses_a_non_numeric_amount_and_saves_nothing(app, client_for, budget):
    from budgets.models import Expenditure

    page = (
        client_for("Finance")
        .post(
            "/expenditures/add",
            data={
                "line": str(budget.line_hr),
                "spent_on": "2026-02-03",
                "amount": "lots",
                "currency": "USD",
            },
        )
        .get_data(as_text=True)
    )
    # The amount field says what is wrong (WTForms' words, or the locale-aware reader's).
    assert (
        "Not a valid decimal value" in page
        or "&#39;lots&#39; is not a number" in page
        or "'lots' is not a number" in page
    )
    assert _count(app, Expenditure) == 0


def test_form_refuses_a_date_outside_the_grant_with_a_clear_message(app, client_for, budget):
    from budgets.models import Expenditure

    page = (
        client_for("Finance")
        .post(
            "/expenditures/add",
            data={
                "line": str(budget.line_hr),
                "spent_on": "2025-12-31",
                "amount": "5",
                "currency": "USD",
            },
            follow_redirects=True,
        )
        .get_data(as_text=True)
    )
    assert "2025-12-31 is outside grant GA-1" in page
    assert _count(app, Expenditure) == 0


def test_program_user_cannot_record_expenditures(app, client_for, budget):
    from budgets.models import Expenditure

    client_for("Program").post(
        "/expenditures/add",
        data={
            "line": str(budget.line_hr),
            "spent_on": "2026-02-03",
            "amount": "5",
            "currency": "USD",
        },
    )
    assert _count(app, Expenditure) == 0


def test_program_user_sees_only_their_grants_expenditures(app, client_for, budget, spend):
    mine = spend(budget.line_hr, "11.00", description="visible spending")
    theirs = spend(budget.line_b, "22.00", "EUR", description="hidden spending")
    client = client_for("Program")
    page = client.get("/expenditures/list/").get_data(as_text=True)
    assert "visible spending" in page and "hidden spending" not in page
    assert client.get(f"/expenditures/show/{mine}").status_code == 200
    assert "hidden spending" not in client.get(f"/expenditures/show/{theirs}", follow_redirects=True).get_data(
        as_text=True
    )


def test_program_user_cannot_see_another_grants_budget_lines(client_for, budget):
    client = client_for("Program")
    page = client.get("/budget-lines/list/").get_data(as_text=True)
    assert "Coordinator" in page and "Secret line" not in page
    assert "Secret line" not in client.get(f"/budget-lines/show/{budget.line_b}", follow_redirects=True).get_data(
        as_text=True
    )


def test_donor_and_auditor_cannot_change_budget_lines(app, client_for, budget):
    from budgets.models import BudgetLine
    from core.extensions import db

    for role in ("Donor", "Auditor"):
        client = client_for(role)
        client.post(
            f"/budget-lines/edit/{budget.line_hr}", data={"code": "HACK", "description": "x", "cost_category": "STAFF"}
        )
        client.post(f"/budget-lines/delete/{budget.line_hr}")
    with app.app_context():
        assert db.session.get(BudgetLine, budget.line_hr).code == "HR-1"


def test_donor_cannot_list_expenditures(client_for, budget, spend):
    spend(budget.line_hr, "11.00", description="payee details")
    page = client_for("Donor").get("/expenditures/list/", follow_redirects=True).get_data(as_text=True)
    assert "payee details" not in page


# ---------------------------------------------------------------- budget vs actual page


def test_donor_sees_budget_vs_actual_of_the_grant_they_fund(client_for, world, budget, spend):
    spend(budget.line_travel, "600.00")
    page = client_for("Donor").get(f"/budget-report/grant/{world.grant_a}?period_id={world.period_a1}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Budget vs actual" in text and "<svg" in text
    assert "TRAVEL" in text and "Needs the funder" in text


def test_donor_cannot_see_other_grants_budget(client_for, world, budget):
    response = client_for("Donor").get(f"/budget-report/grant/{world.grant_b}")
    assert response.status_code == 404


def test_grant_page_shows_a_budget_panel_linking_to_the_report(client_for, world, budget, spend):
    spend(budget.line_hr, "500.00")
    page = client_for("Program").get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert 'data-panel="Budget"' in page
    assert f"/budget-report/grant/{world.grant_a}" in page
    assert "16.7%" in page  # 500 of 3000 spent


# ---------------------------------------------------------------- revisions in the UI


def _draft_revision(app, world, amount="100.00"):
    from budgets import services
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        revision = services.create_revision(
            db.session,
            db.session.get(Grant, world.grant_a),
            title="Move",
            justification="why",
            moves=[{"from": "HR-1", "to": "TR-1", "period": "S1", "amount": amount}],
        )
        db.session.commit()
        return revision.id


def test_finance_submits_and_approves_a_revision_in_the_ui(app, client_for, world, budget):
    from budgets.models import BudgetRevision, RevisionStatus
    from core.extensions import db

    revision_id = _draft_revision(app, world)
    client = client_for("Finance")
    assert "After approval" in client.get(f"/budget-revisions/show/{revision_id}").get_data(as_text=True)
    client.post(f"/budget-revisions/{revision_id}/submit")
    client.post(f"/budget-revisions/{revision_id}/decide", data={"decision": "approve", "note": "ok"})
    with app.app_context():
        revision = db.session.get(BudgetRevision, revision_id)
        assert revision.status == RevisionStatus.approved and revision.decided_by == "finance"


def test_ui_refuses_a_revision_that_makes_a_line_negative(app, client_for, world, budget):
    from budgets.models import BudgetRevision, RevisionStatus
    from core.extensions import db

    revision_id = _draft_revision(app, world, "1500.00")
    client = client_for("Finance")
    client.post(f"/budget-revisions/{revision_id}/submit")
    page = client.post(
        f"/budget-revisions/{revision_id}/decide", data={"decision": "approve"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "cannot go negative" in page
    with app.app_context():
        assert db.session.get(BudgetRevision, revision_id).status == RevisionStatus.submitted


def test_auditor_cannot_approve_a_revision(app, client_for, world, budget):
    from budgets.models import BudgetRevision, RevisionStatus
    from core.extensions import db

    revision_id = _draft_revision(app, world)
    client_for("Auditor").post(f"/budget-revisions/{revision_id}/submit")
    with app.app_context():
        assert db.session.get(BudgetRevision, revision_id).status == RevisionStatus.draft


# ---------------------------------------------------------------- imports in the UI


def test_finance_imports_a_csv_through_upload_preview_and_confirm(app, client_for, world, budget):
    from budgets.models import BudgetImport, Expenditure
    from core.extensions import db

    client = client_for("Finance")
    content = b"Date,Line,Amount,Currency\n2026-02-03,HR-1,10.00,USD\n"
    response = client.post(
        "/budget-imports/upload",
        data={"grant_id": str(world.grant_a), "file": (io.BytesIO(content), "a.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with app.app_context():
        import_id = db.session.scalar(select(BudgetImport.id))
    preview = client.get(f"/budget-imports/show/{import_id}").get_data(as_text=True)
    assert 'id="import-preview"' in preview and "HR-1" in preview
    client.post(
        f"/budget-imports/{import_id}/confirm",
        data={
            "map_date": "Date",
            "map_line": "Line",
            "map_amount": "Amount",
            "map_currency": "Currency",
            "date_order": "iso",
        },
    )
    assert _count(app, Expenditure) == 1


def test_rejected_import_offers_its_error_report_only_to_those_allowed(app, client_for, world, budget):
    from budgets.models import BudgetImport, Expenditure
    from core.extensions import db

    client = client_for("Finance")
    content = b"Date,Line,Amount,Currency\n2026-02-03,HR-1,abc,USD\n"
    client.post(
        "/budget-imports/upload",
        data={"grant_id": str(world.grant_a), "file": (io.BytesIO(content), "a.csv")},
        content_type="multipart/form-data",
    )
    with app.app_context():
        import_id = db.session.scalar(select(BudgetImport.id))
    client.post(
        f"/budget-imports/{import_id}/confirm",
        data={
            "map_date": "Date",
            "map_line": "Line",
            "map_amount": "Amount",
            "map_currency": "Currency",
            "date_order": "iso",
        },
    )
    assert _count(app, Expenditure) == 0
    report = client.get(f"/budget-imports/{import_id}/errors.csv")
    assert report.status_code == 200 and report.mimetype == "text/csv"
    assert "2,Amount,'abc' is not a number" in report.get_data(as_text=True)
    denied = client_for("Program").get(f"/budget-imports/{import_id}/errors.csv")
    assert denied.status_code != 200 or "is not a number" not in denied.get_data(as_text=True)


def test_upload_under_a_grant_the_user_cannot_see_is_refused(app, client_for, world, budget):
    from budgets.models import BudgetImport

    client_for("Program").post(
        "/budget-imports/upload",
        data={
            "grant_id": str(world.grant_b),
            "file": (io.BytesIO(b"Date,Line,Amount\n2026-02-03,B-1,1\n"), "a.csv"),
        },
        content_type="multipart/form-data",
    )
    assert _count(app, BudgetImport) == 0


# ---------------------------------------------------------------- REST API


def test_api_budget_vs_actual_for_the_donor_of_the_grant(api_for, world, budget, spend):
    spend(budget.line_travel, "600.00")
    response = api_for("Donor").get(f"/api/v1/budget_report/{world.grant_a}?by=category&period_id={world.period_a1}")
    assert response.status_code == 200
    body = response.json
    travel = next(r for r in body["report"]["rows"] if r["key"] == "TRAVEL")
    assert (travel["planned"], travel["actual"], travel["variance"]) == ("500.00", "600.00", "-100.00")
    assert [f["key"] for f in body["variance_flags"]] == ["TRAVEL", "TR-1"]
    assert api_for("Donor").get(f"/api/v1/budget_report/{world.grant_b}").status_code == 404


def test_api_lists_only_visible_expenditures_and_hides_others(api_for, budget, spend):
    spend(budget.line_hr, "11.00")
    theirs = spend(budget.line_b, "22.00", "EUR")
    api = api_for("Program")
    listed = api.get("/api/v1/expenditures/").json
    assert listed["count"] == 1
    assert api.get(f"/api/v1/expenditures/{theirs}").status_code == 404
    assert api_for("Donor").get("/api/v1/expenditures/").status_code == 403


def test_api_refuses_bad_expenditures_and_saves_nothing(app, api_for, budget):
    from budgets.models import Expenditure

    api = api_for("Finance")
    base = {"line": budget.line_hr, "spent_on": "2026-02-03", "amount": "10.00", "currency": "USD"}
    not_a_number = api.post("/api/v1/expenditures/", json=base | {"amount": "ten"})
    assert not_a_number.status_code in (400, 422) and "amount" in not_a_number.json["message"]
    no_rate = api.post("/api/v1/expenditures/", json=base | {"currency": "EUR"})
    assert (
        no_rate.status_code == 422
        and "no EUR→USD exchange rate for 2026-02-03" in no_rate.json["message"]["currency"][0]
    )
    unknown = api.post("/api/v1/expenditures/", json=base | {"currency": "ABC"})
    assert unknown.status_code == 422 and "ISO 4217" in unknown.json["message"]["currency"][0]
    outside = api.post("/api/v1/expenditures/", json=base | {"spent_on": "2027-03-01"})
    assert outside.status_code == 422 and "outside grant GA-1" in outside.json["message"]["spent_on"][0]
    assert _count(app, Expenditure) == 0
    created = api.post("/api/v1/expenditures/", json=base)
    assert created.status_code == 201
    assert _count(app, Expenditure) == 1


def test_program_cannot_write_budgets_through_the_api(app, api_for, world, budget):
    from budgets.models import BudgetLine, Expenditure

    api = api_for("Program")
    assert (
        api.post(
            "/api/v1/expenditures/",
            json={"line": budget.line_hr, "spent_on": "2026-02-03", "amount": "1", "currency": "USD"},
        ).status_code
        == 403
    )
    assert (
        api.post(
            "/api/v1/budget_lines/",
            json={"grant": world.grant_a, "code": "N", "description": "n", "cost_category": "ACT"},
        ).status_code
        == 403
    )
    assert api.delete(f"/api/v1/budget_lines/{budget.line_hr}").status_code == 403
    assert _count(app, Expenditure) == 0 and _count(app, BudgetLine) == 3


def test_api_revision_workflow_and_auditor_refused(app, api_for, world, budget):
    revision_id = _draft_revision(app, world)
    assert api_for("Auditor").post(f"/api/v1/budget_revisions/{revision_id}/submit").status_code == 403
    api = api_for("Finance")
    assert api.post(f"/api/v1/budget_revisions/{revision_id}/submit").json["status"] == "submitted"
    decided = api.post(f"/api/v1/budget_revisions/{revision_id}/decide", json={"decision": "approve"})
    assert decided.status_code == 200 and decided.json["version"] == 2
    again = api.post(f"/api/v1/budget_revisions/{revision_id}/decide", json={"decision": "reject"})
    assert again.status_code == 422


def test_api_exchange_rate_and_policy(app, api_for, world, budget, spend):
    from budgets.models import Expenditure
    from core.extensions import db

    api = api_for("Finance")
    bad = api.post(
        "/api/v1/exchange_rates/",
        json={"rate_date": "2026-02-01", "from_currency": "USD", "to_currency": "QQQ", "rate": "2"},
    )
    assert bad.status_code == 422
    policy = api.post(
        "/api/v1/rate_policies/",
        json={"grant": world.grant_a, "method": "fixed", "fixed_currency": "XCD", "fixed_rate": "2.70"},
    )
    assert policy.status_code == 201, policy.json
    item_id = spend(budget.line_hr, "27.00", "XCD")
    with app.app_context():
        assert db.session.get(Expenditure, item_id).converted_amount == Decimal("10.00")
    assert api_for("Program").get("/api/v1/rate_policies/").json["count"] == 1


def test_api_line_in_a_grant_the_user_cannot_see_is_refused(app, api_for, world, budget):
    """Even a writer is refused a parent grant outside their sight: checked with a Finance user's view of a missing grant."""
    from budgets.models import BudgetLine

    response = api_for("Finance").post(
        "/api/v1/budget_lines/", json={"grant": 999999, "code": "N", "description": "n", "cost_category": "ACT"}
    )
    assert response.status_code in (400, 422)
    assert _count(app, BudgetLine) == 3


def test_budget_line_code_unique_per_grant_through_the_api(api_for, world, budget):
    response = api_for("Finance").post(
        "/api/v1/budget_lines/",
        json={"grant": world.grant_a, "code": "HR-1", "description": "dup", "cost_category": "STAFF"},
    )
    assert response.status_code == 422
    assert "already a budget line" in response.json["message"]["code"][0]
    other_grant = api_for("Finance").post(
        "/api/v1/budget_lines/",
        json={"grant": world.grant_b, "code": "HR-1", "description": "fine", "cost_category": "STAFF"},
    )
    assert other_grant.status_code == 201


def test_demo_expenditure_dates_fit_their_periods():
    from budgets.demo import CORE_SPENDING, HIV_SPENDING

    assert all(date(2026, 1, 1) <= row[0] <= date(2027, 12, 31) for row in HIV_SPENDING)
    assert all(date(2026, 1, 1) <= row[0] <= date(2026, 12, 31) for row in CORE_SPENDING)


def test_api_deleting_a_rate_that_spending_needs_is_refused_with_422(app, api_for, world, budget, spend):
    """Grant A is in USD and spends EUR at the transaction-date rate: the only rate can't go."""
    from datetime import date

    from budgets.models import ExchangeRate, Expenditure
    from core.extensions import db

    api = api_for("Finance")
    rate = api.post(
        "/api/v1/exchange_rates/",
        json={"rate_date": "2026-02-01", "from_currency": "EUR", "to_currency": "USD", "rate": "1.10"},
    )
    assert rate.status_code == 201, rate.json
    assert (
        api.post("/api/v1/rate_policies/", json={"grant": world.grant_a, "method": "transaction_date"}).status_code
        == 201
    )
    item_id = spend(budget.line_hr, "100.00", "EUR", date(2026, 2, 1))
    refused = api.delete(f"/api/v1/exchange_rates/{rate.json['id']}")
    assert refused.status_code == 422
    assert "EUR" in str(refused.json["message"])
    with app.app_context():
        assert db.session.get(ExchangeRate, rate.json["id"]) is not None
        assert db.session.get(Expenditure, item_id).converted_amount == Decimal("110.00")


def test_api_correcting_a_rate_redoes_the_conversions(app, api_for, world, budget, spend):
    from datetime import date

    from budgets.models import Expenditure
    from core.extensions import db

    api = api_for("Finance")
    rate = api.post(
        "/api/v1/exchange_rates/",
        json={"rate_date": "2026-02-01", "from_currency": "EUR", "to_currency": "USD", "rate": "1.10"},
    )
    api.post("/api/v1/rate_policies/", json={"grant": world.grant_a, "method": "transaction_date"})
    item_id = spend(budget.line_hr, "100.00", "EUR", date(2026, 2, 1))
    assert api.put(f"/api/v1/exchange_rates/{rate.json['id']}", json={"rate": "1.20"}).status_code == 200
    with app.app_context():
        assert db.session.get(Expenditure, item_id).converted_amount == Decimal("120.00")
