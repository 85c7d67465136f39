"""The budget grid: lines, totals and every period's planned amount in one page and one form post."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select


def _grid_form(client, grant_id: int) -> dict[str, str]:
    """The grid's inputs as the page shows them (what a browser would post back unchanged)."""
    import re

    html = client.get(f"/budget-grid/grant/{grant_id}").get_data(as_text=True)
    form: dict[str, str] = {}
    for name, value in re.findall(r'<input name="([^"]+)" id="[^"]+" value="([^"]*)"', html):
        form[name] = value
    for name, body in re.findall(r'<select name="([^"]+)" id="[^"]+".*?>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        form[name] = chosen.group(1) if chosen else ""
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    form["csrf_token"] = token.group(1) if token else ""
    return form


def _planned(app, line_id: int) -> dict[str, Decimal]:
    from budgets.models import BudgetAllocation
    from core.extensions import db

    with app.app_context():
        return {
            a.period.label: Decimal(a.amount)
            for a in db.session.scalars(select(BudgetAllocation).where(BudgetAllocation.line_id == line_id))
        }


def _raise_award(app, grant_id: int, amount: str) -> None:
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        db.session.get(Grant, grant_id).amount = Decimal(amount)
        db.session.commit()


def test_finance_sees_every_line_and_period_of_a_budget_in_one_table(finance_client, world, budget):
    html = finance_client.get(f"/budget-grid/grant/{world.grant_a}").get_data(as_text=True)
    assert 'id="line-HR-1"' in html and 'id="line-TR-1"' in html
    assert f'name="cell-{budget.line_hr}-{world.period_a1}"' in html
    assert 'value="1000.00"' in html
    assert "Secret line" not in html


def test_finance_changes_a_period_in_the_grid_with_one_post(app, finance_client, world, budget):
    _raise_award(app, world.grant_a, "10000")
    form = _grid_form(finance_client, world.grant_a)
    form[f"cell-{budget.line_hr}-{budget.period_a2}"] = "1,250.50"
    response = finance_client.post(f"/budget-grid/grant/{world.grant_a}", data=form)
    assert response.status_code == 302
    assert _planned(app, budget.line_hr) == {"S1": Decimal("1000.00"), "S2": Decimal("1250.50")}
    assert _planned(app, budget.line_travel) == {"S1": Decimal("500.00"), "S2": Decimal("500.00")}


def test_a_refused_grid_keeps_every_typed_cell_and_says_what_is_wrong_next_to_it(app, finance_client, world, budget):
    _raise_award(app, world.grant_a, "10000")
    form = _grid_form(finance_client, world.grant_a)
    form[f"cell-{budget.line_hr}-{world.period_a1}"] = "12x"
    form[f"cell-{budget.line_travel}-{world.period_a1}"] = "777.00"
    form[f"total-{budget.line_travel}"] = "1000.00"
    response = finance_client.post(f"/budget-grid/grant/{world.grant_a}", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="cell-{budget.line_hr}-{world.period_a1}-error">&#39;12x&#39; is not a number' in html
    assert 'value="12x"' in html and 'value="777.00"' in html
    assert f'id="total-{budget.line_travel}-error">the periods add up to 1,277.00 USD, not this total' in html
    assert _planned(app, budget.line_hr)["S1"] == Decimal("1000.00")
    assert _planned(app, budget.line_travel)["S1"] == Decimal("500.00")


def test_the_grid_refuses_a_budget_above_the_grant_amount(app, finance_client, world, budget):
    form = _grid_form(finance_client, world.grant_a)  # the grant is 1,000 USD; 3,000 is planned already
    form[f"cell-{budget.line_hr}-{world.period_a1}"] = "900"
    html = finance_client.post(f"/budget-grid/grant/{world.grant_a}", data=form).get_data(as_text=True)
    assert "more than the grant&#39;s amount of 1,000.00 USD" in html
    assert _planned(app, budget.line_hr)["S1"] == Decimal("1000.00")


def test_a_new_line_with_only_a_total_is_spread_over_the_periods(app, finance_client, world, budget):
    from budgets.models import BudgetLine
    from core.extensions import db

    _raise_award(app, world.grant_a, "10000")
    form = _grid_form(finance_client, world.grant_a)
    form.update({"code-new": "EQ-1", "name-new": "Laptop", "cat-new": "EQUIP", "total-new": "1000.01"})
    response = finance_client.post(f"/budget-grid/grant/{world.grant_a}", data=form)
    assert response.status_code == 302
    with app.app_context():
        line = db.session.scalar(select(BudgetLine).where(BudgetLine.code == "EQ-1"))
        assert line.total == Decimal("1000.01") and line.cost_category == "EQUIP"
        line_id = line.id
    assert _planned(app, line_id) == {"S1": Decimal("500.00"), "S2": Decimal("500.01")}


def test_a_program_user_sees_the_grid_read_only_and_cannot_post_it(program_client, world, budget):
    html = program_client.get(f"/budget-grid/grant/{world.grant_a}").get_data(as_text=True)
    assert "readonly" in html and 'id="save-grid"' not in html
    response = program_client.post(f"/budget-grid/grant/{world.grant_a}", data={})
    assert response.status_code in (302, 403)


def test_nobody_opens_the_grid_of_a_grant_they_do_not_see(program_client, world, budget):
    assert program_client.get(f"/budget-grid/grant/{world.grant_b}").status_code == 404


def test_grid_changes_to_an_approved_budget_become_a_draft_revision(app, finance_client, world, budget):
    from budgets import services
    from budgets.models import BudgetRevision
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Grant

    _raise_award(app, world.grant_a, "10000")
    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        services.snapshot_budget(db.session, db.session.get(Grant, world.grant_a), "Agreed")
        db.session.commit()
    form = _grid_form(finance_client, world.grant_a)
    form[f"cell-{budget.line_hr}-{world.period_a1}"] = "800"
    form[f"cell-{budget.line_travel}-{world.period_a1}"] = "700"
    response = finance_client.post(f"/budget-grid/grant/{world.grant_a}", data=form)
    assert response.status_code == 302
    assert _planned(app, budget.line_hr)["S1"] == Decimal("1000.00")  # unchanged until approved
    with app.app_context():
        revision = db.session.scalars(select(BudgetRevision)).one()
        assert [(i.from_line.code, i.to_line.code, i.amount) for i in revision.items] == [
            ("HR-1", "TR-1", Decimal("200.00"))
        ]
