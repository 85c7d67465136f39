"""What budgets adds to grants and exports: a requirement rule, evidence targets, a deadline check, datasets.

Loaded by the composition root after all models. Grants declares the
extension points and never imports budgets; the arrows point down from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from marshmallow import RAISE, Schema, fields
from sqlalchemy.orm import Session

from budgets.ledger import expenditure_ledger
from budgets.models import BudgetLine, Expenditure
from budgets.report import budget_vs_actual, variance_flags
from core.datasets import Column, Dataset, add_dataset, as_fraction
from grants.compliance.rules import RULES, RuleContext, RuleResult, RuleType, Status
from grants.deadlines.missing import MISSING_WORK, listed, reported_period
from grants.deadlines.models import Deadline
from grants.evidence.targets import TARGETS, TargetKind

# ---------------------------------------------------------------- requirement rule: variance within the threshold


class BudgetParams(Schema):
    class Meta:
        unknown = RAISE

    cost_categories = fields.List(fields.String(), load_default=list)


def budget_variance(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    flags = list(variance_flags(ctx.session, ctx.grant.id, ctx.period.id))
    wanted = set(params["cost_categories"])
    if wanted:
        flags = [f for f in flags if str(getattr(f, "cost_category", "")) in wanted]
    if not flags:
        return RuleResult(
            Status.met, f"Spending to the end of {ctx.period.label} is within the funder's variance rules."
        )
    names = "; ".join(str(getattr(f, "message", None) or getattr(f, "name", f)) for f in flags[:3])
    more = f" and {len(flags) - 3} more" if len(flags) > 3 else ""
    sentence = f"{len(flags)} budget row(s) beyond the funder's variance threshold without approval: {names}{more}."
    return RuleResult(Status.not_met if ctx.window_over else Status.at_risk, sentence)


RULES.add(
    "budget_variance",
    RuleType(
        "budget_variance",
        "Budget variance within the funder's threshold",
        BudgetParams,
        budget_variance,
    ),
    order=30,
)


# ---------------------------------------------------------------- what evidence can support

TARGETS.add("budget_line", TargetKind("budget line", BudgetLine), order=40)
TARGETS.add("expenditure", TargetKind("expenditure", Expenditure), order=50)


# ---------------------------------------------------------------- still missing for a deadline


def budget_lines_over_threshold(session: Session, deadline: Deadline) -> list[str]:
    """Budget lines overspent beyond the funder's variance rule, up to the deadline's period."""
    period = reported_period(session, deadline)
    if period is None:
        return []
    lines = [
        f"{flag.key} {flag.name}"
        for flag in variance_flags(session, deadline.grant_id, period.id)
        if flag.level == "line"
    ]
    if not lines:
        return []
    noun = "budget line" if len(lines) == 1 else "budget lines"
    return [f"{len(lines)} {noun} over the variance threshold (needs the funder's approval): {listed(lines)}"]


MISSING_WORK.add("budget_lines_over_threshold", budget_lines_over_threshold, order=20)


# ---------------------------------------------------------------- datasets

_BVA_COLUMNS = (
    Column("code", "Code", "text", 12),
    Column("name", "Budget line / cost category", "text", 40),
    Column("cost_category", "Cost category", "text", 10),
    Column("planned", "Planned", "money"),
    Column("actual", "Actual", "money"),
    Column("variance", "Variance", "money"),
    Column("variance_pct", "Variance %", "percent"),
    Column("cumulative_planned", "Cumulative planned", "money", 17),
    Column("cumulative_actual", "Cumulative actual", "money", 17),
    Column("cumulative_variance", "Cumulative variance", "money", 17),
    Column("budget", "Total budget", "money"),
    Column("burn_rate", "Burn rate", "percent"),
    Column("remaining", "Remaining", "money"),
)


def _budget_rows(by: Literal["line", "category"]) -> Callable[[Session, Any, Any], Iterator[dict[str, Any]]]:
    def rows(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
        report = budget_vs_actual(session, grant.id, period.id if period else None, by=by)
        for row in [*report.rows, *([report.total] if report.total else [])]:
            yield {
                "code": row.key,
                "name": row.name,
                "cost_category": row.cost_category,
                "planned": row.planned,
                "actual": row.actual,
                "variance": row.variance,
                "variance_pct": as_fraction(row.variance_pct),
                "cumulative_planned": row.cumulative_planned,
                "cumulative_actual": row.cumulative_actual,
                "cumulative_variance": row.cumulative_variance,
                "budget": row.budget,
                "burn_rate": as_fraction(row.burn_rate),
                "remaining": row.remaining,
            }

    return rows


def _ledger(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    for row in expenditure_ledger(session, grant.id, period.id if period else None):
        yield {
            "date": row.spent_on,
            "period": row.period,
            "line": row.line_code,
            "line_description": row.line_description,
            "cost_category": row.cost_category,
            "description": row.description,
            "amount": row.amount,
            "currency": row.currency,
            "rate": row.rate,
            "converted_amount": row.converted_amount,
            "rate_source": row.rate_source,
            "source": row.source,
            "reference": row.external_ref,
        }


def _variance_flags(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    for flag in variance_flags(session, grant.id, period.id if period else None):
        yield {
            "level": flag.level,
            "code": flag.key,
            "name": flag.name,
            "planned": flag.planned,
            "actual": flag.actual,
            "overspend": flag.overspend,
            "overspend_pct": as_fraction(flag.overspend_pct),
            "threshold": as_fraction(flag.threshold_percent),
            "message": flag.message,
        }


add_dataset(Dataset("budget_vs_actual", "Budget vs actual by line", _BVA_COLUMNS, _budget_rows("line")), order=30)
add_dataset(
    Dataset("budget_vs_actual_categories", "Budget vs actual by category", _BVA_COLUMNS, _budget_rows("category")),
    order=31,
)
add_dataset(
    Dataset(
        "expenditure_ledger",
        "Expenditure ledger",
        (
            Column("date", "Date", "date"),
            Column("period", "Period", "text", 8),
            Column("line", "Line", "text", 10),
            Column("line_description", "Budget line", "text", 30),
            Column("cost_category", "Cost category", "text", 10),
            Column("description", "Description", "text", 40),
            Column("amount", "Amount", "money"),
            Column("currency", "Currency", "text", 9),
            Column("rate", "Rate", "number"),
            Column("converted_amount", "In grant currency", "money", 16),
            Column("rate_source", "Rate used", "text", 36),
            Column("source", "Source", "text", 9),
            Column("reference", "Reference", "text", 24),
        ),
        _ledger,
    ),
    order=32,
)
add_dataset(
    Dataset(
        "variance_flags",
        "Lines needing donor approval",
        (
            Column("level", "Level", "text", 9),
            Column("code", "Code", "text", 10),
            Column("name", "Name", "text", 36),
            Column("planned", "Planned", "money"),
            Column("actual", "Actual", "money"),
            Column("overspend", "Overspend", "money"),
            Column("overspend_pct", "Overspend %", "percent"),
            Column("threshold", "Threshold", "percent"),
            Column("message", "Why", "text", 60),
        ),
        _variance_flags,
    ),
    order=33,
)
