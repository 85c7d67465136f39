"""What indicators adds to grants and exports: a requirement rule, evidence targets, a deadline check, a dataset.

Loaded by the composition root after all models. Grants declares the
extension points and never imports indicators; the arrows point down from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.datasets import (
    Column,
    Dataset,
    FigureKind,
    FigureQuery,
    Measure,
    add_dataset,
    add_figure_kind,
    as_fraction,
)
from core.formatting import N_, day, in_reader_language, lazy_gettext, ngettext, number
from core.formatting import gettext as _
from grants import landing
from grants.closing.checklist import CHECKLIST, ClosingContext, Fix, Level, Line, named
from grants.compliance.rules import RULES, RuleContext, RuleResult, RuleType, Status, fmt_day
from grants.deadlines.missing import MISSING_WORK, listed, reported_period
from grants.deadlines.models import Deadline
from grants.evidence.models import EvidenceLink
from grants.evidence.targets import TARGETS, TargetKind, describe_target_problem, resolve
from indicators import progress as indicator_read
from indicators.models import Category, Dimension, Indicator, IndicatorCode, Result, ResultStatus, indicator_dimensions
from indicators.models import Target as IndicatorTarget
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
        problems.append(_("at_risk_percent must not be above min_percent"))
    return problems


def indicator_rule(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    indicator_id = params["indicator_id"]
    minimum = Decimal(params["min_percent"])
    at_risk = (
        Decimal(params["at_risk_percent"]) if params.get("at_risk_percent") is not None else minimum * Decimal("0.8")
    )
    target = describe_target_problem(ctx.session, "indicator", indicator_id, ctx.grant.id)
    if target:
        return RuleResult(Status.not_evaluable, _("Cannot evaluate: %(problem)s.", problem=target))
    percent = indicator_achievement(ctx.session, indicator_id, ctx.period.id)
    found = resolve(ctx.session, "indicator", indicator_id)
    name = found.label if found else f"#{indicator_id}"
    if percent is None:
        if ctx.past_due:
            return RuleResult(
                Status.not_met,
                _(
                    "No result or no target for indicator %(name)s in %(window)s; due %(date)s.",
                    name=name,
                    window=ctx.window,
                    date=fmt_day(ctx.due),
                ),
            )
        return RuleResult(
            Status.pending, _("No result for indicator %(name)s in %(window)s yet.", name=name, window=ctx.window)
        )
    percent = Decimal(percent).quantize(Decimal("0.1"))
    sentence = _(
        "Indicator %(name)s reached %(percent)s%% of its %(window)s target (needed %(minimum)s%%).",
        name=name,
        percent=number(percent, 1),
        window=ctx.window,
        minimum=number(minimum.normalize()),
    )
    if percent >= minimum:
        return RuleResult(Status.met, sentence)
    if percent >= at_risk or not ctx.window_over:
        return RuleResult(Status.at_risk, sentence)
    return RuleResult(Status.not_met, sentence)


RULES.add(
    "indicator_achievement",
    RuleType(
        "indicator_achievement",
        lazy_gettext("Indicator at or above a percentage of its target"),
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
    return [
        ngettext(
            "%(num)d indicator without results for %(period)s: %(codes)s",
            "%(num)d indicators without results for %(period)s: %(codes)s",
            len(empty),
            period=period.label,
            codes=listed(empty),
        )
    ]


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
        title=N_("Indicator progress"),
        columns=(
            Column("code", N_("Code"), "text", 12),
            Column("indicator", N_("Indicator"), "text", 44),
            Column("period", N_("Period"), "text", 8),
            Column("unit", N_("Unit"), "text", 11),
            Column("baseline", N_("Baseline"), "number"),
            Column("target", N_("Target"), "number"),
            Column("actual", N_("Actual"), "number"),
            Column("numerator", N_("Numerator"), "number"),
            Column("denominator", N_("Denominator"), "number"),
            Column("achievement", N_("Achievement"), "percent", 12),
            Column("rating", N_("Rating"), "text", 8),
            Column("cumulative_target", N_("Cumulative target"), "number", 14),
            Column("cumulative_actual", N_("Cumulative actual"), "number", 14),
            Column("cumulative_achievement", N_("Cumulative achievement"), "percent", 14),
            Column("cumulative_rating", N_("Cumulative rating"), "text", 10),
            Column("lop_target", N_("Life-of-grant target"), "number", 14),
            Column("result_status", N_("Result status"), "text", 12),
        ),
        rows=_indicator_progress,
    ),
    order=20,
)


# ---------------------------------------------------------------- disaggregated dataset: indicator x category

# Columns a funder's layout often has one of each (PEPFAR: Age, Sex, KeyPop); a row fills the one of its dimension.
_DIMENSION_COLUMNS = {"country": "country", "gender": "sex", "age": "age", "keypop": "key_population"}


def _grant_categories(session: Session, grant_id: int) -> list[Category]:
    """The categories of every dimension the grant's indicators are split by, in the dimensions' order."""
    dimension_ids = select(indicator_dimensions.c.dimension_id).join(
        Indicator, Indicator.id == indicator_dimensions.c.indicator_id
    )
    return list(
        session.scalars(
            select(Category)
            .join(Dimension, Dimension.id == Category.dimension_id)
            .where(Category.dimension_id.in_(dimension_ids.where(Indicator.grant_id == grant_id)))
            .order_by(Dimension.code, Category.sort_order, Category.code)
        )
    )


def _indicator_by_category(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    # Submitted and verified results only, as in indicator_progress; one dimension at a time.
    codes = {i.id: i.code for i in session.scalars(select(Indicator).where(Indicator.grant_id == grant.id))}
    for category in _grant_categories(session, grant.id):
        dimension = category.dimension
        rows = indicator_progress(session, grant.id, period.id if period else None, category, include_drafts=False)
        for row in rows:
            # Only categories with a figure: an empty category would only take room in a funder's block.
            if not row.applicable or (row.target is None and row.actual is None and row.cumulative_actual is None):
                continue
            record = {
                "code": row.funder_code,
                "indicator_code": codes.get(row.indicator_id, row.indicator_code),
                "indicator": row.indicator_name,
                "period": row.period_label,
                "dimension": dimension.name,
                "category": category.code,
                "category_name": category.name,
                "country": None,
                "sex": None,
                "age": None,
                "key_population": None,
                "target": row.target,
                "actual": row.actual,
                "achievement": as_fraction(row.achievement_pct),
                "rating": row.rating,
                "cumulative_target": row.cumulative_target,
                "cumulative_actual": row.cumulative_actual,
                "cumulative_achievement": as_fraction(row.cumulative_achievement_pct),
                "result_status": row.result_status,
            }
            column = _DIMENSION_COLUMNS.get(dimension.code)
            if column:
                record[column] = category.name
            yield record


add_dataset(
    Dataset(
        name="indicator_progress_by_category",
        title=N_("Indicator progress by category"),
        columns=(
            Column("code", N_("Code"), "text", 12),
            Column("indicator_code", N_("Our code"), "text", 10),
            Column("indicator", N_("Indicator"), "text", 44),
            Column("period", N_("Period"), "text", 8),
            Column("dimension", N_("Disaggregation"), "text", 14),
            Column("category", N_("Category code"), "text", 9),
            Column("category_name", N_("Category"), "text", 18),
            Column("country", N_("Country"), "text", 14),
            Column("sex", N_("Sex/gender"), "text", 12),
            Column("age", N_("Age band"), "text", 10),
            Column("key_population", N_("Key population"), "text", 16),
            Column("target", N_("Target"), "number"),
            Column("actual", N_("Actual"), "number"),
            Column("achievement", N_("Achievement"), "percent", 12),
            Column("rating", N_("Rating"), "text", 8),
            Column("cumulative_target", N_("Cumulative target"), "number", 14),
            Column("cumulative_actual", N_("Cumulative actual"), "number", 14),
            Column("cumulative_achievement", N_("Cumulative achievement"), "percent", 14),
            Column("result_status", N_("Result status"), "text", 12),
        ),
        rows=_indicator_by_category,
    ),
    order=21,
)


# ---------------------------------------------------------------- single figures: one indicator's target, result, ...

_UNIT_WORDS = {"number": "number", "percentage": "percentage", "currency": "amount", "yes_no": "yes/no"}


def _indicator_codes(session: Session, grant: Any) -> dict[str, int]:
    """Code -> indicator id: the grant's own codes, then its funder's crosswalk codes, then other funders'."""
    found: dict[str, int] = {}
    own = list(session.execute(select(Indicator.code, Indicator.id).where(Indicator.grant_id == grant.id)))
    crosswalk = list(
        session.execute(
            select(IndicatorCode.code, IndicatorCode.indicator_id, IndicatorCode.funder_id).where(
                IndicatorCode.grant_id == grant.id
            )
        )
    )
    for code, indicator_id in own:
        found[code] = indicator_id
    for code, indicator_id, funder_id in crosswalk:
        if funder_id == grant.funder_id:
            found.setdefault(code, indicator_id)
    for code, indicator_id, _funder in crosswalk:
        found.setdefault(code, indicator_id)
    return found


def _indicator_items(session: Session, grant: Any) -> list[tuple[str, str]]:
    indicators = list(
        session.scalars(
            select(Indicator).where(Indicator.grant_id == grant.id).order_by(Indicator.sort_order, Indicator.code)
        )
    )
    items = [(i.code, f"{i.code} — {i.name}") for i in indicators]
    names = {i.id: i for i in indicators}
    seen = {code for code, _text in items}
    for code, indicator_id, funder_id in session.execute(
        select(IndicatorCode.code, IndicatorCode.indicator_id, IndicatorCode.funder_id)
        .where(IndicatorCode.grant_id == grant.id)
        .order_by(IndicatorCode.code)
    ):
        indicator = names.get(indicator_id)
        if code in seen or indicator is None:
            continue
        seen.add(code)
        whose = "funder's code" if funder_id == grant.funder_id else "another funder's code"
        items.append((code, f"{code} ({whose} for {indicator.code}) — {indicator.name}"))
    return items


def _indicator_categories(session: Session, grant: Any) -> list[tuple[str, str]]:
    return [
        (f"{c.dimension.code}={c.code}", f"{c.dimension.name}: {c.name}") for c in _grant_categories(session, grant.id)
    ]


def _indicator_values(
    session: Session, grant: Any, period: Any, queries: Sequence[FigureQuery]
) -> Mapping[FigureQuery, Any]:
    codes = _indicator_codes(session, grant)
    wanted = {q for q in queries if q.item in codes}
    indicators = {
        i.id: i
        for i in session.scalars(select(Indicator).where(Indicator.id.in_({codes[q.item] for q in wanted} or {0})))
    }
    answers: dict[FigureQuery, Any] = {}
    for category in {q.category for q in wanted}:
        rows = indicator_progress(
            session, grant.id, period.id if period else None, category or None, include_drafts=False
        )
        # Without a period, the grant's latest period: its cumulative figures run over the whole grant so far.
        by_indicator = {row.indicator_id: row for row in rows}
        for query in (q for q in wanted if q.category == category):
            indicator = indicators[codes[query.item]]
            row = by_indicator.get(indicator.id)
            answers[query] = _indicator_measure(indicator, row, query.measure)
    return answers


def _indicator_measure(indicator: Indicator, row: Any, measure: str) -> Any:
    fixed = {
        "code": indicator.code,
        "name": indicator.name,
        "definition": indicator.definition or "",
        "unit": _UNIT_WORDS.get(indicator.unit.value, indicator.unit.value),
        "baseline": indicator.baseline_value,
        "baseline_date": indicator.baseline_date,
        "lop_target": indicator.lop_target,
        "means_of_verification": indicator.means_of_verification or "",
    }
    if measure in fixed:
        return fixed[measure]
    if row is None or not row.applicable:
        return None
    return {
        "funder_code": row.funder_code,
        "target": row.target,
        "result": row.actual,
        "numerator": row.numerator,
        "denominator": row.denominator,
        "achievement": as_fraction(row.achievement_pct),
        "rating": row.rating,
        "cumulative_target": row.cumulative_target,
        "cumulative_result": row.cumulative_actual,
        "cumulative_achievement": as_fraction(row.cumulative_achievement_pct),
        "cumulative_rating": row.cumulative_rating,
    }.get(measure)


add_figure_kind(
    FigureKind(
        name="indicator",
        title=N_("Indicator"),
        item_label=N_("indicator code"),
        measures=(
            Measure("name", N_("Name"), "text"),
            Measure("code", N_("Our code"), "text"),
            Measure("funder_code", N_("The funder's code"), "text"),
            Measure("definition", N_("Definition"), "text"),
            Measure("unit", N_("Unit"), "text"),
            Measure("baseline", N_("Baseline")),
            Measure("baseline_date", N_("Baseline date"), "date"),
            Measure("target", N_("Target for the period")),
            Measure("result", N_("Result for the period")),
            Measure("numerator", N_("Numerator of the result")),
            Measure("denominator", N_("Denominator of the result")),
            Measure("achievement", N_("Achievement for the period"), "percent"),
            Measure("rating", N_("Rating for the period"), "text"),
            Measure("cumulative_target", N_("Cumulative target")),
            Measure("cumulative_result", N_("Cumulative result")),
            Measure("cumulative_achievement", N_("Cumulative achievement"), "percent"),
            Measure("cumulative_rating", N_("Cumulative rating"), "text"),
            Measure("lop_target", N_("Life-of-grant target")),
            Measure("means_of_verification", N_("Source (means of verification)"), "text"),
        ),
        items=_indicator_items,
        values=_indicator_values,
        categories=_indicator_categories,
    ),
    order=20,
)


# ---------------------------------------------------------------- lines of the period checklist (grants.closing)


def _period_results(ctx: ClosingContext) -> dict[str, Any]:
    """The grant's indicators, which of them expect a result in the period, and the period's results: four queries."""
    if "indicators" not in ctx.cache:
        session, grant_id, period_id = ctx.session, ctx.grant.id, ctx.period.id
        indicators = session.execute(
            select(Indicator.id, Indicator.code, Indicator.name, Indicator.titles)
            .where(Indicator.grant_id == grant_id)
            .order_by(Indicator.sort_order, Indicator.code)
        ).all()
        targeted = set(
            session.scalars(select(IndicatorTarget.indicator_id).where(IndicatorTarget.period_id == period_id))
        )
        with_targets = set(
            session.scalars(select(IndicatorTarget.indicator_id).where(IndicatorTarget.grant_id == grant_id).distinct())
        )
        results = session.execute(
            select(Result.id, Result.indicator_id, Result.status).where(Result.period_id == period_id)
        ).all()
        ids = [r.id for r in results]
        evidenced = (
            set(
                session.scalars(
                    select(EvidenceLink.target_id)
                    .where(
                        EvidenceLink.grant_id == grant_id,
                        EvidenceLink.target_kind == "indicator_result",
                        EvidenceLink.target_id.in_(ids),
                    )
                    .distinct()
                )
            )
            if ids
            else set()
        )
        ctx.cache["indicators"] = {
            "indicators": indicators,
            # An indicator with targets in other periods only is not measured in this one.
            "expected": [i for i in indicators if i.id in targeted or i.id not in with_targets],
            "results": {r.indicator_id: r for r in results},
            "evidenced": evidenced,
            "codes": {i.id: i.code for i in indicators},
        }
    return ctx.cache["indicators"]


def results_entered_line(ctx: ClosingContext) -> Line:
    data = _period_results(ctx)
    title = _("Results entered")
    if not data["indicators"]:
        return Line(
            "results_entered",
            title,
            Level.done,
            _("This grant has no indicators to report on."),
            fixes=(Fix.to(_("Add an indicator"), "IndicatorView.add", ("can_add", "Indicators")),),
        )
    expected = data["expected"]
    missing = [i for i in expected if i.id not in data["results"]]
    if not missing:
        return Line(
            "results_entered",
            title,
            Level.done,
            ngettext(
                "Every indicator measured in %(period)s has a result (%(num)d indicator).",
                "Every indicator measured in %(period)s has a result (%(num)d indicators).",
                len(expected),
                period=ctx.period.label,
            ),
        )
    if not ctx.started:
        level, when = Level.attention, " " + _("%(period)s has not started yet.", period=ctx.period.label)
    else:
        level, when = (Level.missing if ctx.period_over else Level.attention), ""
    return Line(
        "results_entered",
        title,
        level,
        ngettext(
            "%(done)d of %(num)d indicator measured in %(period)s have a result; %(missing)d still need one.",
            "%(done)d of %(num)d indicators measured in %(period)s have a result; %(missing)d still need one.",
            len(expected),
            done=len(expected) - len(missing),
            period=ctx.period.label,
            missing=len(missing),
        )
        + when,
        named(
            _("%(code)s %(name)s: no result", code=i.code, name=in_reader_language(i.name, i.titles)) for i in missing
        ),
        tuple(
            Fix.to(
                _("Enter the result of %(code)s", code=i.code),
                "ResultView.record",
                ("can_add", "IndicatorResults"),
                indicator=i.id,
                period=ctx.period.id,
            )
            for i in missing[:5]
        ),
    )


def results_verified_line(ctx: ClosingContext) -> Line:
    data = _period_results(ctx)
    title = _("Results verified")
    results = list(data["results"].values())
    if not results:
        if not data["indicators"]:
            return Line("results_verified", title, Level.done, _("No results to verify: the grant has no indicators."))
        return Line(
            "results_verified",
            title,
            Level.attention,
            _("No result is entered for %(period)s yet, so none is verified.", period=ctx.period.label),
        )
    drafts = [r for r in results if r.status == ResultStatus.draft]
    waiting = [r for r in results if r.status == ResultStatus.submitted]
    verified = len(results) - len(drafts) - len(waiting)
    summary = ngettext(
        "%(verified)d of %(num)d result verified.",
        "%(verified)d of %(num)d results verified.",
        len(results),
        verified=verified,
    )
    if drafts:
        summary += " " + ngettext(
            "%(num)d draft is not submitted (drafts never reach the donor).",
            "%(num)d drafts are not submitted (drafts never reach the donor).",
            len(drafts),
        )
    if waiting:
        summary += " " + _(
            "%(count)d awaiting verification by a colleague (not the person who entered it).", count=len(waiting)
        )
    codes = data["codes"]
    details = [_("%(code)s: draft, submit it", code=codes.get(r.indicator_id, "?")) for r in drafts] + [
        _("%(code)s: awaiting verification", code=codes.get(r.indicator_id, "?")) for r in waiting
    ]
    fixes = tuple(
        Fix.to(
            _("Open the result of %(code)s", code=codes.get(r.indicator_id, "?")),
            "ResultView.show",
            ("can_show", "IndicatorResults"),
            pk=r.id,
        )
        for r in (drafts + waiting)[:5]
    )
    level = Level.missing if drafts else Level.attention if waiting else Level.done
    return Line("results_verified", title, level, summary, named(details), fixes)


def result_evidence_line(ctx: ClosingContext) -> Line | None:
    data = _period_results(ctx)
    results = list(data["results"].values())
    if not results:
        return None
    bare = [r for r in results if r.id not in data["evidenced"]]
    codes = data["codes"]
    title = _("Evidence attached to results")
    if not bare:
        return Line(
            "result_evidence",
            title,
            Level.done,
            _("Every result of %(period)s has evidence attached.", period=ctx.period.label),
        )
    return Line(
        "result_evidence",
        title,
        Level.attention,
        ngettext(
            "%(num)d result has no evidence attached (a register, an attendance summary, a report).",
            "%(num)d results have no evidence attached (a register, an attendance summary, a report).",
            len(bare),
        ),
        named(_("%(code)s: no evidence", code=codes.get(r.indicator_id, "?")) for r in bare),
        tuple(
            Fix.to(
                _("Attach evidence to %(code)s", code=codes.get(r.indicator_id, "?")),
                "ResultView.show",
                ("can_show", "IndicatorResults"),
                pk=r.id,
            )
            for r in bare[:5]
        ),
    )


CHECKLIST.add("results_entered", results_entered_line, order=10)
CHECKLIST.add("results_verified", results_verified_line, order=20)
CHECKLIST.add("result_evidence", result_evidence_line, order=25)


# ---------------------------------------------------------------- start page: results to enter (program), progress (donor)


def _results_to_enter(ctx: landing.LandingContext) -> list[landing.LandingItem]:
    """Per grant and started, open period: indicators still without a result, and results still in draft."""
    items = []
    for grant in ctx.grants:
        started = {p.id for p in grant.periods if p.start_date <= ctx.today and p.status.value == "open"}
        if not started:
            continue
        rows = [
            row
            for row in indicator_progress(ctx.session, grant.id)
            if row.period_id in started and row.applicable and row.disaggregation is None
        ]
        for period in grant.periods:
            if period.id not in started:
                continue
            mine = [row for row in rows if row.period_id == period.id]
            empty = [row for row in mine if row.actual is None]
            drafts = [row for row in mine if row.result_status == ResultStatus.draft.value]
            if empty:
                first = empty[0]
                items.append(
                    landing.LandingItem(
                        ngettext(
                            "%(period)s: %(num)d indicator without a result: %(codes)s",
                            "%(period)s: %(num)d indicators without a result: %(codes)s",
                            len(empty),
                            period=period.label,
                            codes=", ".join(row.indicator_code for row in empty),
                        ),
                        landing.Link.to("ResultView.record", indicator=first.indicator_id, period=period.id),
                        "danger" if period.end_date < ctx.today else "warning",
                        _(
                            "%(period)s runs %(start)s to %(end)s",
                            period=period.label,
                            start=day(period.start_date),
                            end=day(period.end_date),
                        ),
                        grant.reference,
                    )
                )
            if drafts:
                items.append(
                    landing.LandingItem(
                        ngettext(
                            "%(period)s: %(num)d result still in draft: %(codes)s",
                            "%(period)s: %(num)d results still in draft: %(codes)s",
                            len(drafts),
                            period=period.label,
                            codes=", ".join(row.indicator_code for row in drafts),
                        ),
                        landing.Link.to("IndicatorProgressView.iptt", grant_id=grant.id),
                        "info",
                        _("submit them so they can be verified"),
                        grant.reference,
                    )
                )
    return items


def _progress(ctx: landing.LandingContext) -> list[landing.LandingItem]:
    """Each grant's latest reported period and its ratings: submitted and verified results only."""
    items = []
    for grant in ctx.grants:
        rows = indicator_progress(ctx.session, grant.id, include_drafts=False)
        link = landing.Link.to("IndicatorProgressView.iptt", grant_id=grant.id)
        if not rows:
            items.append(landing.LandingItem(_("No indicators defined yet"), link, "", None, grant.reference))
            continue
        latest = indicator_read.latest_reported_period(rows, ctx.today)
        if latest is None:
            items.append(landing.LandingItem(_("No results reported yet"), link, "", None, grant.reference))
            continue
        summary = indicator_read.rating_summary(rows, ctx.today)
        ratings = ", ".join(f"{count} {indicator_read.rating_word(name)}" for name, count in summary.items() if count)
        on_track = sum(1 for row in rows if row.period_id == latest[0] and row.on_track)
        rated = sum(1 for row in rows if row.period_id == latest[0] and row.on_track is not None)
        items.append(
            landing.LandingItem(
                _("Latest reported period %(period)s: %(ratings)s", period=latest[1], ratings=ratings),
                link,
                "success" if rated and on_track == rated else ("warning" if rated else ""),
                ngettext(
                    "%(on_track)d of %(num)d indicator on track",
                    "%(on_track)d of %(num)d indicators on track",
                    rated,
                    on_track=on_track,
                )
                if rated
                else None,
                grant.reference,
            )
        )
    return items


landing.add_section(
    "indicators.results_to_enter",
    landing.LandingSection(
        lazy_gettext("Results to enter"),
        landing.roles(landing.PROGRAM),
        _results_to_enter,
        lazy_gettext("Every started period has its results."),
        landing.Link.to("ResultView.list", lazy_gettext("All results")),
    ),
    order=20,
)
landing.add_section(
    "indicators.progress",
    landing.LandingSection(
        lazy_gettext("Progress"), landing.roles(landing.DONOR), _progress, lazy_gettext("No grants to show yet.")
    ),
    order=10,
)
