"""Variance both ways: over- and under-spending beyond the funder's threshold, each warning naming its window."""

from __future__ import annotations

from datetime import date
from decimal import Decimal


def _rule(app, world, direction: str, threshold: str = "15") -> None:
    from budgets import services
    from budgets.models import VarianceRule
    from core.extensions import db
    from grants.models import Funder

    with app.app_context():
        db.session.query(VarianceRule).delete()
        services.add_variance_rule(
            db.session, db.session.get(Funder, world.funder_id), threshold_percent=threshold, direction=direction
        )
        db.session.commit()


def test_under_spending_beyond_the_threshold_is_flagged_cumulative_to_the_period_end(app, world, budget, spend):
    from budgets.report import variance_flags
    from core.extensions import db

    _rule(app, world, "both")
    spend(budget.line_hr, "900.00")  # HR: 1,000.00 planned in S1
    spend(budget.line_travel, "100.00")  # Travel: 500.00 planned in S1, 400.00 under
    with app.app_context():
        flags = variance_flags(db.session, world.grant_a, world.period_a1)
        assert [(f.level, f.key, f.direction) for f in flags] == [
            ("category", "TRAVEL", "under"),
            ("line", "TR-1", "under"),
        ]
        assert flags[0].window == "cumulative to 30 Jun 2026"
        assert flags[0].message == (
            "cost category TRAVEL Travel, cumulative to 30 Jun 2026: under-spent by 400.00 USD, "
            "more than 15% of its planned amount (75.00 USD); the funder will ask why"
        )
        assert flags[0].overspend == Decimal("-400.00")


def test_overspending_still_needs_approval_and_says_its_window(app, world, budget, spend):
    from budgets.report import variance_flags
    from core.extensions import db

    _rule(app, world, "both")
    spend(budget.line_hr, "1000.00")
    spend(budget.line_travel, "600.00")
    with app.app_context():
        flags = variance_flags(db.session, world.grant_a, world.period_a1, window="period")
        assert [(f.key, f.direction, f.window) for f in flags] == [
            ("TRAVEL", "over", "in S1 2026"),
            ("TR-1", "over", "in S1 2026"),
        ]
        assert flags[0].message.endswith("needs the funder's approval")
        assert "cost category TRAVEL Travel, in S1 2026: overspent by 100.00 USD" in flags[0].message


def test_a_rule_for_overspending_only_does_not_flag_under_spending(app, world, budget, spend):
    from budgets.report import variance_flags
    from core.extensions import db

    _rule(app, world, "over")
    spend(budget.line_hr, "10.00")
    with app.app_context():
        assert variance_flags(db.session, world.grant_a, world.period_a1) == []


def test_whole_grant_under_spending_is_flagged_only_once_the_grant_has_ended(app, world, budget, spend):
    from budgets.report import variance_flags
    from core.extensions import db

    _rule(app, world, "under")
    spend(budget.line_hr, "2000.00")
    spend(budget.line_travel, "100.00")
    with app.app_context():
        assert variance_flags(db.session, world.grant_a, window="whole", as_of=date(2026, 10, 1)) == []
        flags = variance_flags(db.session, world.grant_a, window="whole", as_of=date(2027, 2, 1))
        assert {(f.key, f.window) for f in flags} == {("TRAVEL", "whole grant"), ("TR-1", "whole grant")}
        assert "under-spent by 900.00 USD" in flags[0].message


def test_the_report_page_puts_each_warning_above_the_table_of_its_window(app, world, budget, spend, client_for):

    _rule(app, world, "both")
    spend(budget.line_hr, "1000.00")
    spend(budget.line_travel, "900.00")  # over in S1 and cumulatively; whole grant (1,000 planned): under 100
    page = client_for("Finance").get(f"/budget-report/grant/{world.grant_a}?period_id={world.period_a1}")
    text = page.get_data(as_text=True)
    main, cumulative = text.index('id="budget-vs-actual"'), text.index('id="budget-cumulative"')
    period_warning = text.index("Needs the funder's attention — in S1 2026")
    cumulative_warning = text.index("Needs the funder's attention — cumulative to 30 Jun 2026")
    assert period_warning < main < cumulative_warning < cumulative
    assert "TRAVEL Travel, in S1 2026: overspent by 400.00 USD" in text
