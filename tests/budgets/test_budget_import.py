"""Getting a budget in from a funder's budget file: spreading to the cent, preview and mapping, all or nothing,
re-import changes nothing, and an approved budget changes by revision."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from budgets.budget_import import spread

CATEGORY_NAMES = {
    "1": "Human Resources (HR)",
    "2": "Travel related costs (TRC)",
    "3": "External Professional services (EPS)",
    "10": "Communication Material and Publications (CMP)",
}


# ---------------------------------------------------------------- spreading


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=10**13),
    count=st.integers(min_value=1, max_value=60),
    profile=st.sampled_from(["even", "front", "back"]),
)
def test_a_spread_total_adds_up_to_the_cent_with_no_negative_period(total, count, profile):
    parts = spread(total, count, profile)
    assert len(parts) == count
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)


@settings(max_examples=200, deadline=None)
@given(total=st.integers(min_value=0, max_value=10**12), count=st.integers(min_value=2, max_value=40))
def test_an_even_spread_puts_equal_parts_first_and_the_remainder_on_the_last_period(total, count):
    parts = spread(total, count, "even")
    assert len(set(parts[:-1])) == 1
    assert 0 <= parts[-1] - parts[0] < count


@settings(max_examples=200, deadline=None)
@given(total=st.integers(min_value=10**4, max_value=10**12), count=st.integers(min_value=2, max_value=40))
def test_a_front_loaded_spread_plans_more_early_than_late(total, count):
    parts = spread(total, count, "front")
    assert parts[0] >= parts[-2]
    assert parts[0] > parts[-1] or total < count * count


def test_spreading_10000_over_three_quarters_gives_the_odd_cent_to_the_last():
    assert spread(1_000_000, 3, "even") == [333_333, 333_333, 333_334]
    assert spread(100, 3, "front") == [50, 33, 17]


def test_spreading_refuses_a_profile_it_does_not_know():
    with pytest.raises(ValueError, match="not a spreading profile"):
        spread(100, 3, "sideways")


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def quarterly(app, world):
    """A two-year Global Fund grant in USD with eight quarters and a large enough award."""
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        funder = services.create_funder(
            db.session, name="The Global Fund", code="GF", default_currency="USD", cost_categories="global_fund"
        )
        grant = services.create_grant(
            db.session,
            funder=funder,
            reference="GF-Q-2026",
            title="Quarterly grant",
            recipient="Coalition",
            currency="USD",
            amount=Decimal("5000000.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2027, 12, 31),
        )
        services.generate_periods(db.session, grant, "quarter", 45)
        db.session.commit()
        return grant.id


def budget_workbook(lines: int = 100, quarters: int = 8, *, only_totals: set[int] = frozenset()) -> bytes:
    """A funder-style budget sheet: a title block, a header row, one row per line with a column per quarter."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Detailed budget"
    sheet.append(["Code", "Line name", "Cost grouping", "Module", *[f"Q{q}" for q in range(1, quarters + 1)], "Total"])
    codes = list(CATEGORY_NAMES)
    for n in range(1, lines + 1):
        category = codes[n % len(codes)]
        amounts = [Decimal(100 * n + q) + Decimal("0.25") for q in range(1, quarters + 1)]
        total = sum(amounts)
        if n in only_totals:
            sheet.append(
                [f"L-{n:03d}", f"Budget line {n}", CATEGORY_NAMES[category], "KP", *[None] * quarters, float(total)]
            )
        else:
            sheet.append(
                [
                    f"L-{n:03d}",
                    f"Budget line {n}",
                    CATEGORY_NAMES[category],
                    "KP",
                    *[float(a) for a in amounts],
                    float(total),
                ]
            )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _stage(app, grant_id: int, content: bytes, name: str = "budget.xlsx") -> int:
    from budgets import budget_import
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Grant

    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        staged = budget_import.stage(db.session, db.session.get(Grant, grant_id), name, content, by="finance")
        db.session.commit()
        return staged.id


def _run(app, import_id: int, **kw):
    from budgets import budget_import
    from budgets.models import BudgetPlanImport
    from core.audit import Actor, acting_as
    from core.extensions import db

    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        staged = db.session.get(BudgetPlanImport, import_id)
        mapping = kw.pop("mapping", None) or dict(staged.mapping)
        result = budget_import.run(db.session, staged, mapping, **kw)
        db.session.commit()
        return result


def _planned(app, grant_id: int) -> dict[tuple[str, str], Decimal]:
    from budgets.models import BudgetAllocation, BudgetLine
    from core.extensions import db
    from grants.models import ReportingPeriod

    with app.app_context():
        rows = db.session.execute(
            select(BudgetLine.code, ReportingPeriod.label, BudgetAllocation.amount)
            .join(BudgetAllocation, BudgetAllocation.line_id == BudgetLine.id)
            .join(ReportingPeriod, ReportingPeriod.id == BudgetAllocation.period_id)
            .where(BudgetLine.grant_id == grant_id)
        ).all()
        return {(code, label): Decimal(amount) for code, label, amount in rows}


# ---------------------------------------------------------------- importing a budget file


def test_finance_imports_a_100_line_8_quarter_budget_workbook_as_the_funder_laid_it_out(app, quarterly):
    from budgets.models import BudgetLine
    from core.extensions import db

    import_id = _stage(app, quarterly, budget_workbook(only_totals={7, 8}))
    with app.app_context():
        from budgets.models import BudgetPlanImport

        staged = db.session.get(BudgetPlanImport, import_id)
        assert staged.row_count == 100
        assert staged.mapping["code"] == "Code"
        assert staged.mapping["name"] == "Line name"
        assert staged.mapping["category"] == "Cost grouping"
        assert staged.mapping["total"] == "Total"
        assert staged.mapping["p:Q1"] == "Q1" and staged.mapping["p:Q8"] == "Q8"
    result = _run(app, import_id, profile="even")
    assert result.errors == []
    assert result.outcome.added == 100
    planned = _planned(app, quarterly)
    assert len(planned) == 800
    assert planned[("L-001", "Q1")] == Decimal("101.25")
    assert planned[("L-100", "Q8")] == Decimal("10008.25")
    # Line 7 had only its total (8 × 700 + 36 + 2.00 = 5638.00): spread evenly, the remainder on Q8.
    seven = [planned[("L-007", f"Q{q}")] for q in range(1, 9)]
    assert sum(seven) == Decimal("5638.00")
    assert seven[:7] == [Decimal("704.75")] * 7 and seven[7] == Decimal("704.75")
    with app.app_context():
        line = db.session.scalar(select(BudgetLine).where(BudgetLine.code == "L-002"))
        assert line.cost_category == "3"  # "External Professional services (EPS)" matched by name
        assert line.total == Decimal("1638.00")
        assert line.description == "Budget line 2"


def test_importing_the_same_budget_file_again_changes_nothing(app, quarterly):
    from core.audit import AuditEntry
    from core.extensions import db

    content = budget_workbook(lines=20)
    _run(app, _stage(app, quarterly, content))
    before = _planned(app, quarterly)
    with app.app_context():
        audit_rows = db.session.scalar(select(func.count(AuditEntry.id)))
    again = _run(app, _stage(app, quarterly, content))
    assert again.errors == []
    assert (again.outcome.added, again.outcome.changed, again.outcome.unchanged) == (0, 0, 20)
    assert again.outcome.revision is None
    assert _planned(app, quarterly) == before
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditEntry.id))) == audit_rows


def test_a_bad_row_refuses_the_whole_budget_file_with_a_row_by_row_report(app, quarterly):
    from budgets import budget_import
    from budgets.models import BudgetLine, BudgetPlanImport
    from core.extensions import db

    csv = (
        b"Code,Line name,Cost category,Total,Q1,Q2,Q3,Q4,Q5,Q6,Q7,Q8\n"
        b"HR-1,Coordinator,1,8000,1000,1000,1000,1000,1000,1000,1000,1000\n"
        b"TR-1,Travel,Flights,4000,,,,,,,,\n"
        b"TR-2,Ferry,2,100,abc,,,,,,,\n"
        b"EP-1,Trainer,3,900,100,100,100,100,100,100,100,100\n"
        b",No code,3,10,,,,,,,,\n"
    )
    result = _run(app, _stage(app, quarterly, csv, "budget.csv"))
    assert result.outcome is None
    problems = [(e["row"], e["column"], e["problem"]) for e in result.errors]
    assert (
        3,
        "Cost category",
        "'Flights' is not one of the funder's cost categories; choose the one it means",
    ) in problems
    assert (4, "Q1", "'abc' is not a number") in problems
    assert any(
        row == 5 and "the periods add up to 800.00 USD but the total says 900.00 USD" in p for row, _c, p in problems
    )
    assert any(row == 6 and column == "Code" for row, column, _p in problems)
    with app.app_context():
        assert db.session.scalar(select(func.count(BudgetLine.id)).where(BudgetLine.grant_id == quarterly)) == 0
        report = budget_import.error_report_csv(db.session.scalars(select(BudgetPlanImport)).one())
    assert report.splitlines()[0] == "row,column,problem"
    assert "3,Cost category,'Flights' is not one of the funder's cost categories" in report


def test_a_category_the_user_picks_from_the_drop_down_is_used_for_the_files_own_word(app, quarterly):
    csv = b"Code,Line name,Cost category,Total\nTR-1,Travel,Flights,4000.00\n"
    result = _run(app, _stage(app, quarterly, csv, "budget.csv"), category_choices={"Flights": "2"}, profile="front")
    assert result.errors == []
    planned = _planned(app, quarterly)
    quarters = [planned[("TR-1", f"Q{q}")] for q in range(1, 9)]
    assert sum(quarters) == Decimal("4000.00")
    assert quarters[0] > quarters[-1]  # front-loaded


def test_a_budget_file_in_rows_per_line_and_period_is_read_too(app, quarterly):
    csv = (
        b"Line code,Description,Category,Period,Amount\n"
        b"HR-1,Coordinator,HR,Q1,1000\nHR-1,Coordinator,HR,Q2,1500.50\nTR-1,Travel,TRC,3,75\n"
    )
    import_id = _stage(app, quarterly, csv, "long.csv")
    result = _run(app, import_id)
    assert result.errors == []
    planned = _planned(app, quarterly)
    assert planned[("HR-1", "Q2")] == Decimal("1500.50")
    assert planned[("TR-1", "Q3")] == Decimal("75.00")
    assert planned[("HR-1", "Q5")] == Decimal("0.00")


def test_a_budget_larger_than_the_grant_is_refused(app, quarterly):
    csv = b"Code,Line name,Cost category,Total\nHR-1,Coordinator,1,5000000.01\n"
    result = _run(app, _stage(app, quarterly, csv, "big.csv"))
    assert result.outcome is None
    assert "more than the grant's amount of 5,000,000.00 USD" in result.errors[0]["problem"]


def test_a_retired_category_is_refused_for_a_new_line(app, quarterly):
    from core.extensions import db
    from grants import services
    from grants.models import Grant

    with app.app_context():
        funder = db.session.get(Grant, quarterly).funder
        rows = [dict(c, retired=(c["code"] == "2")) for c in funder.cost_categories]
        services.set_cost_categories(db.session, funder, rows)
        db.session.commit()
    result = _run(app, _stage(app, quarterly, b"Code,Line name,Cost category,Total\nTR-9,Taxi,2,80\n", "r.csv"))
    assert result.outcome is None
    assert "retired" in result.errors[0]["problem"]


def test_an_import_into_an_approved_budget_becomes_a_draft_revision_not_an_overwrite(app, quarterly):
    from budgets import services
    from budgets.models import BudgetRevision, RevisionStatus
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Grant

    first = b"Code,Line name,Cost category,Q1,Q2,Q3,Q4,Q5,Q6,Q7,Q8\nHR-1,Coordinator,1,1000,1000,1000,1000,1000,1000,1000,1000\nTR-1,Travel,2,500,500,500,500,500,500,500,500\n"
    _run(app, _stage(app, quarterly, first, "v1.csv"))
    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        services.snapshot_budget(db.session, db.session.get(Grant, quarterly), "Agreed with the funder")
        db.session.commit()
    agreed = _planned(app, quarterly)
    # Move 300 from HR-1 to a new line in Q2; rename TR-1.
    second = b"Code,Line name,Cost category,Q1,Q2,Q3,Q4,Q5,Q6,Q7,Q8\nHR-1,Coordinator,1,1000,700,1000,1000,1000,1000,1000,1000\nTR-1,Travel and ferries,2,500,500,500,500,500,500,500,500\nCM-1,Booklets,10,0,300,0,0,0,0,0,0\n"
    second_id = _stage(app, quarterly, second, "v2.csv")
    result = _run(app, second_id)
    assert result.errors == []
    assert result.outcome.revision is not None
    assert _planned(app, quarterly) == agreed  # nothing overwritten
    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        revision = db.session.scalars(select(BudgetRevision)).one()
        assert revision.status == RevisionStatus.draft
        moves = [(i.from_line.code, i.to_line.code, i.period.label, i.amount) for i in revision.items]
        assert moves == [("HR-1", "CM-1", "Q2", Decimal("300.00"))]
        services.submit_revision(db.session, revision)
        services.approve_revision(db.session, revision, by="lead")
        db.session.commit()
    after = _planned(app, quarterly)
    assert after[("HR-1", "Q2")] == Decimal("700.00")
    assert after[("CM-1", "Q2")] == Decimal("300.00")
    # The same file again, now approved, changes nothing and makes no second revision.
    again = _run(app, _stage(app, quarterly, second, "v2.csv"))
    assert again.errors == [] and again.outcome.revision is None
    with app.app_context():
        assert db.session.scalar(select(func.count(BudgetRevision.id))) == 1


def test_an_approved_budget_refuses_a_file_that_changes_a_periods_total(app, quarterly):
    from budgets import services
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Grant

    _run(app, _stage(app, quarterly, b"Code,Line name,Cost category,Total\nHR-1,Coordinator,1,8000\n", "a.csv"))
    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        services.snapshot_budget(db.session, db.session.get(Grant, quarterly), "Agreed")
        db.session.commit()
    result = _run(
        app, _stage(app, quarterly, b"Code,Line name,Cost category,Total\nHR-1,Coordinator,1,8800\n", "b.csv")
    )
    assert result.outcome is None
    assert any("Q1: the plan changes the period's total by +100.00 USD" in e["problem"] for e in result.errors)


def test_the_preview_is_read_from_the_rows_parsed_at_upload_not_from_the_file(app, quarterly, monkeypatch):
    from budgets import budget_import

    import_id = _stage(app, quarterly, budget_workbook(lines=5))

    def no_reparse(*_a, **_k):
        raise AssertionError("the file was parsed again")

    monkeypatch.setattr(budget_import, "read_rows", no_reparse)
    result = _run(app, import_id)
    assert result.outcome.added == 5


# ---------------------------------------------------------------- decimal mark


def test_a_budget_file_written_with_decimal_commas_is_read_with_the_comma_it_shows(app, quarterly):
    from budgets.models import BudgetPlanImport
    from core.extensions import db

    csv = b"Code;Line name;Cost category;Total\nHR-1;Coordinator;1;1.234,50\nTR-1;Travel;2;99,5\n"
    import_id = _stage(app, quarterly, csv, "comma.csv")
    with app.app_context():
        assert db.session.get(BudgetPlanImport, import_id).mapping["_decimal_mark"] == ","
    result = _run(app, import_id)
    assert result.errors == []
    planned = _planned(app, quarterly)
    assert sum(v for (code, _p), v in planned.items() if code == "HR-1") == Decimal("1234.50")
    assert sum(v for (code, _p), v in planned.items() if code == "TR-1") == Decimal("99.50")


def test_the_decimal_mark_chosen_on_the_preview_is_the_one_the_import_reads_with(app, quarterly, client_for):
    from budgets.models import BudgetPlanImport
    from core.extensions import db

    csv = b"Code,Line name,Cost category,Total\nHR-1,Coordinator,1,1000\nTR-1,Travel,2,12.50\n"
    import_id = _stage(app, quarterly, csv, "points.csv")
    page = client_for("Admin").get(f"/budget-file-imports/show/{import_id}?decimal_mark=,").get_data(as_text=True)
    assert 'id="budget-decimal-mark"' in page and "a comma (1.234,56)</strong>" in page
    with app.app_context():
        assert db.session.get(BudgetPlanImport, import_id).mapping["_decimal_mark"] == ","
    result = _run(app, import_id)
    # Read with a comma, "12.50" is no amount: refused by row, nothing saved.
    assert result.outcome is None
    assert [(e["row"], e["column"]) for e in result.errors] == [(3, "Total")]
    assert _planned(app, quarterly) == {}


def test_a_budget_file_mixing_1_000_and_1_000_refuses_the_ambiguous_amounts_by_row(app, quarterly):
    csv = b'Code,Line name,Cost category,Total\nHR-1,Coordinator,1,"1,000"\nTR-1,Travel,2,1.000\nEP-1,Audit,3,250\n'
    result = _run(app, _stage(app, quarterly, csv, "mixed.csv"))
    assert result.outcome is None
    assert [e["row"] for e in result.errors] == [2, 3]
    assert all("could be read as a thousand or as one" in e["problem"] for e in result.errors)
    assert _planned(app, quarterly) == {}
