"""Actuals written the European way are read as the user says, and a file that writes amounts both ways is refused."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tests.budgets.test_imports import MAPPING, _expenditures, _run, _stage

EURO_CSV = (
    b"Date;Voucher;Budget code;Details;Amount;Ccy\n"
    b"03/02/2026;V-1;HR-1;Coordinator Feb;1.000,50;USD\n"
    b"04/02/2026;V-2;TR-1;Taxi;12,5;USD\n"
)


def test_a_european_amount_is_read_as_a_thousand_with_a_comma_as_decimal_mark(app, world, budget):
    from budgets.models import Expenditure
    from core.extensions import db

    import_id = _stage(app, world, EURO_CSV)
    result = _run(app, import_id, decimal_mark=",")
    assert result.imported == 2, result.errors
    with app.app_context():
        amounts = sorted(db.session.scalars(select(Expenditure.amount)))
        assert amounts == [Decimal("12.50"), Decimal("1000.50")]


def test_a_european_amount_read_with_a_point_is_refused_by_row_not_shrunk(app, world, budget):
    import_id = _stage(app, world, EURO_CSV)
    result = _run(app, import_id, decimal_mark=".")
    assert result.imported == 0
    problems = {(e["row"], e["column"]): e["problem"] for e in result.errors}
    assert "choose a comma" in problems[(2, "Amount")]
    assert _expenditures(app) == 0


def test_the_preview_shows_how_amounts_will_be_read_with_the_files_decimal_mark(app, world, budget):
    from budgets import imports
    from budgets.models import BudgetImport
    from core.extensions import db

    import_id = _stage(app, world, EURO_CSV)
    with app.app_context():
        staged = db.session.get(BudgetImport, import_id)
        shown = imports.preview(staged)
        assert shown.decimal_mark == ","
        assert shown.amounts == [("1.000,50", "1000.50"), ("12,5", "12.5")]
        with_point = imports.preview(staged, decimal_mark=".")
        assert "choose a comma" in with_point.amounts[0][1]


def test_a_file_writing_1000_and_1_000_is_refused_row_by_row(app, world, budget):
    content = (
        b"Date;Voucher;Budget code;Details;Amount;Ccy\n"
        b"03/02/2026;V-1;HR-1;Coordinator;1.000;USD\n"
        b"04/02/2026;V-2;TR-1;Taxi;1,000;USD\n"
        b"05/02/2026;V-3;TR-1;Ferry;54;USD\n"
    )
    import_id = _stage(app, world, content)
    for mark in (".", ","):
        result = _run(app, import_id, decimal_mark=mark)
        assert result.imported == 0
        rows = sorted(e["row"] for e in result.errors)
        assert rows == [2, 3]
        assert all("both as 1.000 and as 1,000" in e["problem"] for e in result.errors)
    assert _expenditures(app) == 0


def test_overflowing_and_non_finite_amounts_are_row_errors(app, world, budget):
    content = (
        b"Date;Voucher;Budget code;Details;Amount;Ccy\n"
        b"03/02/2026;V-1;HR-1;A;1e309;USD\n"
        b"04/02/2026;V-2;TR-1;B;1E+20;USD\n"
        b"05/02/2026;V-3;TR-1;C;NaN;USD\n"
        b"06/02/2026;V-4;TR-1;D;Infinity;USD\n"
        b"07/02/2026;V-5;TR-1;E;123456789012345678;USD\n"
    )
    import_id = _stage(app, world, content)
    result = _run(app, import_id)
    assert sorted(e["row"] for e in result.errors) == [2, 3, 4, 5, 6]
    assert all(e["column"] == "Amount" for e in result.errors)
    assert _expenditures(app) == 0


def test_the_import_page_offers_the_decimal_mark_and_shows_the_reading(app, world, budget, finance_client):
    import_id = _stage(app, world, EURO_CSV)
    page = finance_client.get(f"/budget-imports/show/{import_id}").get_data(as_text=True)
    assert 'id="amount-readings"' in page and "1000.50" in page
    assert 'name="decimal_mark"' in page
    response = finance_client.post(
        f"/budget-imports/{import_id}/confirm",
        data={**{f"map_{k}": v for k, v in MAPPING.items()}, "date_order": "dayfirst", "decimal_mark": ","},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Imported 2 expenditures" in response.get_data(as_text=True)


def test_rates_written_with_a_comma_are_read_with_a_comma(app, world):
    from budgets import rate_import
    from budgets.models import ExchangeRate
    from core.extensions import db

    content = b"date;from;to;rate\n2026-02-03;EUR;USD;1,0850\n"
    with app.app_context():
        refused = rate_import.import_rates(db.session, content, decimal_mark=".")
        assert refused.errors and "choose a comma" in refused.errors[0]["problem"]
        db.session.rollback()
        result = rate_import.import_rates(db.session, content, decimal_mark=",")
        assert result.errors == []
        db.session.commit()
        assert db.session.scalar(select(ExchangeRate.rate)) == Decimal("1.0850")
