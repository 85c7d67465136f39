"""Importing actuals from CSV and XLSX: preview, confirmed mapping, all-or-nothing, error report, idempotent re-import."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError

GOOD_CSV = (
    b"Date;Voucher;Budget code;Details;Amount;Ccy\n"
    b"03/02/2026;V-1;HR-1;Coordinator Feb;1,200.00;USD\n"
    b"04/02/2026;V-2;TR-1;Taxi;(20.00);USD\n"
    b"15/03/2026;V-3;TR-1;Ferry;54.00;USD\n"
)

MAPPING = {
    "date": "Date",
    "amount": "Amount",
    "line": "Budget code",
    "currency": "Ccy",
    "description": "Details",
    "reference": "Voucher",
}


def _stage(app, world, content: bytes, name: str = "actuals.csv"):
    from budgets import imports
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        staged = imports.stage_import(db.session, db.session.get(Grant, world.grant_a), name, content, by="finance")
        db.session.commit()
        return staged.id


def _run(app, import_id: int, mapping=MAPPING, **kw):
    from budgets import imports
    from budgets.models import BudgetImport
    from core.extensions import db

    with app.app_context():
        result = imports.run_import(db.session, db.session.get(BudgetImport, import_id), mapping, **kw)
        db.session.commit()
        return result


def _expenditures(app) -> int:
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count(Expenditure.id)))


def test_csv_preview_detects_columns_and_guesses_the_mapping(app, world, budget):
    from budgets import imports
    from budgets.models import BudgetImport
    from core.extensions import db

    import_id = _stage(app, world, GOOD_CSV)
    with app.app_context():
        staged = db.session.get(BudgetImport, import_id)
        shown = imports.preview(staged)
        assert shown.columns == ["Date", "Voucher", "Budget code", "Details", "Amount", "Ccy"]
        assert shown.sample[0][2] == "HR-1"
        assert shown.row_count == 3
        assert shown.guessed["date"] == "Date" and shown.guessed["amount"] == "Amount"
        assert shown.guessed["line"] == "Budget code" and shown.guessed["currency"] == "Ccy"
        assert staged.file_type == "csv"


def test_confirmed_csv_import_records_every_row(app, world, budget):
    from budgets.models import Expenditure, ExpenditureSource
    from core.extensions import db

    result = _run(app, _stage(app, world, GOOD_CSV))
    assert (result.status.value, result.imported, result.errors) == ("imported", 3, [])
    with app.app_context():
        rows = db.session.scalars(select(Expenditure).order_by(Expenditure.spent_on)).all()
        assert [(r.spent_on, r.amount) for r in rows] == [
            (date(2026, 2, 3), Decimal("1200.00")),
            (date(2026, 2, 4), Decimal("-20.00")),
            (date(2026, 3, 15), Decimal("54.00")),
        ]
        assert all(r.source == ExpenditureSource.import_ for r in rows)


def test_reimporting_the_same_file_changes_nothing(app, world, budget):
    _run(app, _stage(app, world, GOOD_CSV))
    again = _run(app, _stage(app, world, GOOD_CSV))
    assert (again.imported, again.unchanged) == (0, 3)
    assert _expenditures(app) == 3


def test_reimport_without_a_reference_column_uses_row_hashes_and_keeps_identical_rows(app, world, budget):
    content = b"Date,Line,Amount\n2026-02-03,TR-1,5.00\n2026-02-03,TR-1,5.00\n"
    mapping = {"date": "Date", "line": "Line", "amount": "Amount"}
    first = _run(app, _stage(app, world, content), mapping, default_currency="USD", date_order="iso")
    second = _run(app, _stage(app, world, content), mapping, default_currency="USD", date_order="iso")
    assert (first.imported, second.imported, second.unchanged) == (2, 0, 2)
    assert _expenditures(app) == 2


def test_a_file_with_bad_rows_imports_nothing_and_lists_every_problem(app, world, budget):
    from budgets import imports
    from budgets.models import BudgetImport
    from core.extensions import db

    content = (
        b"Date;Voucher;Budget code;Details;Amount;Ccy\n"
        b"03/02/2026;V-1;HR-1;fine;10.00;USD\n"
        b"04/02/2026;V-2;TR-1;bad amount;ten;USD\n"
        b"05/02/2026;V-3;B-1;other grant's line;5.00;USD\n"
        b"06/02/2026;V-4;TR-1;bad currency;5.00;XYZ\n"
        b"07/02/2027;V-5;TR-1;after the grant;5.00;USD\n"
        b"08/02/2026;V-6;TR-1;no rate;5.00;EUR\n"
    )
    import_id = _stage(app, world, content)
    result = _run(app, import_id)
    assert result.status.value == "rejected"
    assert _expenditures(app) == 0
    problems = {(e["row"], e["column"]): e["problem"] for e in result.errors}
    assert "'ten' is not a number" in problems[(3, "Amount")]
    assert "'B-1' is not a budget line of GA-1" in problems[(4, "Budget code")]
    assert "not an ISO 4217" in problems[(5, "Ccy")]
    assert "outside grant GA-1" in problems[(6, "Date")]
    assert "no EUR→USD exchange rate for 2026-02-08" in problems[(7, "Ccy")]
    with app.app_context():
        report = imports.error_report_csv(db.session.get(BudgetImport, import_id))
    assert report.splitlines()[0] == "row,column,problem"
    assert len(report.splitlines()) == 6


def test_xlsx_is_read_by_content_even_when_named_csv(app, world, budget):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Date", "Line", "Amount", "Currency", "Ref"])
    sheet.append([datetime(2026, 2, 3), "HR-1", 99.95, "USD", "X-1"])
    sheet.append(["2026-02-04", "TR-1", 10, "USD", "X-2"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    import_id = _stage(app, world, buffer.getvalue(), name="looks-like.csv")
    result = _run(
        app,
        import_id,
        {"date": "Date", "line": "Line", "amount": "Amount", "currency": "Currency", "reference": "Ref"},
        date_order="iso",
    )
    assert (result.status.value, result.imported) == ("imported", 2)
    from budgets.models import BudgetImport, Expenditure
    from core.extensions import db

    with app.app_context():
        assert db.session.get(BudgetImport, import_id).file_type == "xlsx"
        assert sorted(db.session.scalars(select(Expenditure.amount))) == [Decimal("10.00"), Decimal("99.95")]
        # The imported file itself is not kept once imported.
        assert db.session.get(BudgetImport, import_id).content is None


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"%PDF-1.4 some pdf bytes", "not a CSV or XLSX"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, ".xls"),
        (b"Date,Amount\n", "no data rows"),
    ],
)
def test_files_that_are_not_spreadsheets_are_refused(app, world, budget, content, words):
    with pytest.raises(DomainValidationError) as caught:
        _stage(app, world, content)
    assert words in caught.value.errors["file"][0]


def test_mapping_must_name_the_required_columns(app, world, budget):
    import_id = _stage(app, world, GOOD_CSV)
    with pytest.raises(DomainValidationError) as caught:
        _run(app, import_id, {"date": "Date", "amount": "Nope"})
    assert "choose the column" in caught.value.errors["line"][0]
    assert "'Nope' is not a column" in caught.value.errors["amount"][0]
    assert _expenditures(app) == 0


def test_error_report_cannot_smuggle_a_formula_into_excel(app, world, budget):
    from budgets import imports
    from budgets.models import BudgetImport
    from core.extensions import db

    content = b"Date,Line,Amount,Currency\n2026-02-03,=HYPERLINK(1),5,USD\n"
    import_id = _stage(app, world, content)
    _run(app, import_id, {"date": "Date", "line": "Line", "amount": "Amount", "currency": "Currency"}, date_order="iso")
    with app.app_context():
        report = imports.error_report_csv(db.session.get(BudgetImport, import_id))
    assert ",=" not in report and ',"=' not in report
