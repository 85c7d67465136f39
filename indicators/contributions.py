"""What indicators adds to grants and exports: a requirement rule, evidence targets, a deadline check, a dataset.

Loaded by the composition root after all models. Grants declares the
extension points and never imports indicators; the arrows point down from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy.orm import Session

from core.datasets import Column, Dataset, add_dataset, as_fraction
from grants.compliance.rules import RULES, RuleContext, RuleResult, RuleType, Status, fmt_day, fmt_percent
from grants.deadlines.missing import MISSING_WORK, listed, reported_period
from grants.deadlines.models import Deadline
from grants.evidence.targets import TARGETS, TargetKind, describe_target_problem, resolve
from indicators.models import Indicator, Result
from indicators.services import indicator_achievement, indicator_progress

# ---------------------------------------------------------------- what evidence can support

TARGETS.add("indicator", TargetKind("indicator", Indicator), order=20)
TARGETS.add("indicator_result", TargetKind("indicator result", Result), order=30)


# ---------------------------------------------------------------- requirement rule: indicator at >= N% of target


class IndicatorParams(Schema):
    class Meta:
        unknown = RAISE

    indicator_id = fields.Integer(required=True, strict=True)
    min_percent = fields.Decimal(load_default=Decimal("100"), validate=validate.Range(min=0, max=10000), places=2)
    at_risk_percent = fields.Decimal(load_default=None, allow_none=True, validate=validate.Range(min=0, max=10000))


def _indicator_check(session: Session, grant_id: int, params: dict[str, Any]) -> list[str]:
    problem = describe_target_problem(session, "indicator", params["indicator_id"], grant_id)
    problems = [problem] if problem else []
    at_risk = params.get("at_risk_percent")
    if at_risk is not None and at_risk > params["min_percent"]:
        problems.append("at_risk_percent must not be above min_percent")
    return problems


def indicator_rule(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    indicator_id = params["indicator_id"]
    minimum = Decimal(params["min_percent"])
    at_risk = (
        Decimal(params["at_risk_percent"]) if params.get("at_risk_percent") is not None else minimum * Decimal("0.8")
    )
    target = describe_target_problem(ctx.session, "indicator", indicator_id, ctx.grant.id)
    if target:
        return RuleResult(Status.not_evaluable, f"Cannot evaluate: {target}.")
    percent = indicator_achievement(ctx.session, indicator_id, ctx.period.id)
    found = resolve(ctx.session, "indicator", indicator_id)
    name = f"indicator {found.label}" if found else f"indicator #{indicator_id}"
    if percent is None:
        if ctx.past_due:
            return RuleResult(
                Status.not_met, f"No result or no target for {name} in {ctx.window}; due {fmt_day(ctx.due)}."
            )
        return RuleResult(Status.pending, f"No result for {name} in {ctx.window} yet.")
    percent = Decimal(percent).quantize(Decimal("0.1"))
    sentence = f"{name} reached {percent}% of its {ctx.window} target (needed {fmt_percent(minimum)}%)."
    if percent >= minimum:
        return RuleResult(Status.met, sentence)
    if percent >= at_risk or not ctx.window_over:
        return RuleResult(Status.at_risk, sentence)
    return RuleResult(Status.not_met, sentence)


RULES.add(
    "indicator_achievement",
    RuleType(
        "indicator_achievement",
        "Indicator at or above N% of target",
        IndicatorParams,
        indicator_rule,
        _indicator_check,
    ),
    order=20,
)


# ---------------------------------------------------------------- still missing for a deadline


def indicators_without_results(session: Session, deadline: Deadline) -> list[str]:
    """'2 indicators without results for S1: KP-1c, HR-TRAIN' for a report on a period."""
    period = reported_period(session, deadline)
    if period is None:
        return []
    rows = indicator_progress(session, deadline.grant_id, period.id)
    empty = sorted(
        {row.indicator_code for row in rows if row.disaggregation is None and row.applicable and row.actual is None}
    )
    if not empty:
        return []
    noun = "indicator" if len(empty) == 1 else "indicators"
    return [f"{len(empty)} {noun} without results for {period.label}: {listed(empty)}"]


MISSING_WORK.add("indicators_without_results", indicators_without_results, order=10)


# ---------------------------------------------------------------- dataset


def _indicator_progress(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    # What leaves for a donor: submitted and verified results only, never drafts.
    for row in indicator_progress(session, grant.id, period.id if period else None, include_drafts=False):
        if not row.applicable:
            continue
        yield {
            "code": row.funder_code,
            "indicator": row.indicator_name,
            "period": row.period_label,
            "unit": row.unit,
            "baseline": row.baseline_value,
            "target": row.target,
            "actual": row.actual,
            "numerator": row.numerator,
            "denominator": row.denominator,
            "achievement": as_fraction(row.achievement_pct),
            "rating": row.rating,
            "cumulative_target": row.cumulative_target,
            "cumulative_actual": row.cumulative_actual,
            "cumulative_achievement": as_fraction(row.cumulative_achievement_pct),
            "cumulative_rating": row.cumulative_rating,
            "lop_target": row.lop_target,
            "result_status": row.result_status,
        }


add_dataset(
    Dataset(
        name="indicator_progress",
        title="Indicator progress",
        columns=(
            Column("code", "Code", "text", 12),
            Column("indicator", "Indicator", "text", 44),
            Column("period", "Period", "text", 8),
            Column("unit", "Unit", "text", 11),
            Column("baseline", "Baseline", "number"),
            Column("target", "Target", "number"),
            Column("actual", "Actual", "number"),
            Column("numerator", "Numerator", "number"),
            Column("denominator", "Denominator", "number"),
            Column("achievement", "Achievement", "percent", 12),
            Column("rating", "Rating", "text", 8),
            Column("cumulative_target", "Cumulative target", "number", 14),
            Column("cumulative_actual", "Cumulative actual", "number", 14),
            Column("cumulative_achievement", "Cumulative achievement", "percent", 14),
            Column("cumulative_rating", "Cumulative rating", "text", 10),
            Column("lop_target", "Life-of-grant target", "number", 14),
            Column("result_status", "Result status", "text", 12),
        ),
        rows=_indicator_progress,
    ),
    order=20,
)
