"""Named datasets and fields: what a mapping or a built-in report can ask for.

Each dataset is a thin adapter over one domain service (budgets'
``budget_vs_actual``, indicators' ``indicator_progress``, ...): exports reads
the domains only through their services and never queries their tables
itself. The arrow points one way: the domains know nothing of exports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from exports.builtin import ColumnKind, ReportColumn
from exports.mapping import Catalogue

RowSource = Callable[[Session, Any, Any], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: ColumnKind = "text"
    width: float | None = None

    def report_column(self) -> ReportColumn:
        return ReportColumn(self.header, self.kind, self.width)


@dataclass(frozen=True)
class Dataset:
    """A table a domain offers: its columns, and a function producing its rows for a grant/period."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: RowSource

    @property
    def keys(self) -> list[str]:
        return [column.key for column in self.columns]


def all_datasets() -> dict[str, Dataset]:
    return {dataset.name: dataset for dataset in DATASETS}


def catalogue() -> Catalogue:
    return Catalogue(fields=FIELD_NAMES, datasets={d.name: d.keys for d in DATASETS})


def rows_of(session: Session, dataset: Dataset, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    """The dataset's rows, with one last guard: a row marked confidential never leaves."""
    for row in dataset.rows(session, grant, period):
        if str(row.get("sensitivity", "")).lower() == "confidential":
            continue
        yield dict(row)


# ---------------------------------------------------------------- grants: fields and periods

FIELD_NAMES = [
    "grant.reference", "grant.title", "grant.recipient", "grant.currency", "grant.amount",
    "grant.start_date", "grant.end_date", "grant.status", "grant.countries",
    "funder.name", "funder.code",
    "period.label", "period.start_date", "period.end_date", "period.report_due",
    "report.date",
]


def field_values(session: Session, grant: Any, period: Any) -> dict[str, Any]:
    """The single values a mapping can place in a cell, for one grant and (optionally) a period."""
    from grants.money import country_name

    return {
        "grant.reference": grant.reference,
        "grant.title": grant.title,
        "grant.recipient": grant.recipient,
        "grant.currency": grant.currency,
        "grant.amount": grant.amount,
        "grant.start_date": grant.start_date,
        "grant.end_date": grant.end_date,
        "grant.status": grant.status.value,
        "grant.countries": ", ".join(country_name(c) for c in grant.country_codes),
        "funder.name": grant.funder.name,
        "funder.code": grant.funder.code,
        "period.label": period.label if period else "",
        "period.start_date": period.start_date if period else grant.start_date,
        "period.end_date": period.end_date if period else grant.end_date,
        "period.report_due": period.report_due if period else None,
        "report.date": date.today(),
    }


def _periods(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    for p in grant.periods:
        yield {"label": p.label, "start_date": p.start_date, "end_date": p.end_date,
               "report_due": p.report_due, "status": p.status.value}


DATASETS: list[Dataset] = [
    Dataset(
        name="reporting_periods",
        title="Reporting periods",
        columns=(
            Column("label", "Period", "text", 10), Column("start_date", "Start", "date"),
            Column("end_date", "End", "date"), Column("report_due", "Report due", "date"),
            Column("status", "Status", "text", 12),
        ),
        rows=_periods,
    ),
]


def _fraction(pct: Any) -> Any:
    """Services give percentages as 0–100; a spreadsheet's % format wants fractions."""
    return None if pct is None else pct / 100


# ---------------------------------------------------------------- indicators


def _indicator_progress(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    from indicators.services import indicator_progress

    # What leaves for a donor: submitted and verified results only, never drafts.
    for row in indicator_progress(session, grant.id, period.id if period else None, include_drafts=False):
        if not row.applicable:
            continue
        yield {
            "code": row.funder_code, "indicator": row.indicator_name, "period": row.period_label,
            "unit": row.unit, "baseline": row.baseline_value, "target": row.target, "actual": row.actual,
            "numerator": row.numerator, "denominator": row.denominator,
            "achievement": _fraction(row.achievement_pct), "rating": row.rating,
            "cumulative_target": row.cumulative_target, "cumulative_actual": row.cumulative_actual,
            "cumulative_achievement": _fraction(row.cumulative_achievement_pct),
            "cumulative_rating": row.cumulative_rating, "lop_target": row.lop_target,
            "result_status": row.result_status,
        }


DATASETS.append(
    Dataset(
        name="indicator_progress",
        title="Indicator progress",
        columns=(
            Column("code", "Code", "text", 12), Column("indicator", "Indicator", "text", 44),
            Column("period", "Period", "text", 8), Column("unit", "Unit", "text", 11),
            Column("baseline", "Baseline", "number"), Column("target", "Target", "number"),
            Column("actual", "Actual", "number"), Column("numerator", "Numerator", "number"),
            Column("denominator", "Denominator", "number"), Column("achievement", "Achievement", "percent", 12),
            Column("rating", "Rating", "text", 8), Column("cumulative_target", "Cumulative target", "number", 14),
            Column("cumulative_actual", "Cumulative actual", "number", 14),
            Column("cumulative_achievement", "Cumulative achievement", "percent", 14),
            Column("cumulative_rating", "Cumulative rating", "text", 10),
            Column("lop_target", "Life-of-grant target", "number", 14),
            Column("result_status", "Result status", "text", 12),
        ),
        rows=_indicator_progress,
    )
)


# ---------------------------------------------------------------- budgets

_BVA_COLUMNS = (
    Column("code", "Code", "text", 12), Column("name", "Budget line / cost category", "text", 40),
    Column("cost_category", "Cost category", "text", 10),
    Column("planned", "Planned", "money"), Column("actual", "Actual", "money"),
    Column("variance", "Variance", "money"), Column("variance_pct", "Variance %", "percent"),
    Column("cumulative_planned", "Cumulative planned", "money", 17),
    Column("cumulative_actual", "Cumulative actual", "money", 17),
    Column("cumulative_variance", "Cumulative variance", "money", 17),
    Column("budget", "Total budget", "money"), Column("burn_rate", "Burn rate", "percent"),
    Column("remaining", "Remaining", "money"),
)


def _budget_rows(by: str):
    def rows(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
        from budgets.report import budget_vs_actual

        report = budget_vs_actual(session, grant.id, period.id if period else None, by=by)
        for row in [*report.rows, *([report.total] if report.total else [])]:
            yield {
                "code": row.key, "name": row.name, "cost_category": row.cost_category,
                "planned": row.planned, "actual": row.actual, "variance": row.variance,
                "variance_pct": _fraction(row.variance_pct), "cumulative_planned": row.cumulative_planned,
                "cumulative_actual": row.cumulative_actual, "cumulative_variance": row.cumulative_variance,
                "budget": row.budget, "burn_rate": _fraction(row.burn_rate), "remaining": row.remaining,
            }

    return rows


def _ledger(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    from budgets.ledger import expenditure_ledger

    for row in expenditure_ledger(session, grant.id, period.id if period else None):
        yield {
            "date": row.spent_on, "period": row.period, "line": row.line_code, "line_description": row.line_description,
            "cost_category": row.cost_category, "description": row.description, "amount": row.amount,
            "currency": row.currency, "rate": row.rate, "converted_amount": row.converted_amount,
            "rate_source": row.rate_source, "source": row.source, "reference": row.external_ref,
        }


def _variance_flags(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    from budgets.report import variance_flags

    for flag in variance_flags(session, grant.id, period.id if period else None):
        yield {"level": flag.level, "code": flag.key, "name": flag.name, "planned": flag.planned,
               "actual": flag.actual, "overspend": flag.overspend, "overspend_pct": _fraction(flag.overspend_pct),
               "threshold": _fraction(flag.threshold_percent), "message": flag.message}


DATASETS.extend([
    Dataset("budget_vs_actual", "Budget vs actual by line", _BVA_COLUMNS, _budget_rows("line")),
    Dataset("budget_vs_actual_categories", "Budget vs actual by category", _BVA_COLUMNS, _budget_rows("category")),
    Dataset(
        "expenditure_ledger", "Expenditure ledger",
        (
            Column("date", "Date", "date"), Column("period", "Period", "text", 8), Column("line", "Line", "text", 10),
            Column("line_description", "Budget line", "text", 30), Column("cost_category", "Cost category", "text", 10),
            Column("description", "Description", "text", 40), Column("amount", "Amount", "money"),
            Column("currency", "Currency", "text", 9), Column("rate", "Rate", "number"),
            Column("converted_amount", "In grant currency", "money", 16), Column("rate_source", "Rate used", "text", 36),
            Column("source", "Source", "text", 9), Column("reference", "Reference", "text", 24),
        ),
        _ledger,
    ),
    Dataset(
        "variance_flags", "Lines needing donor approval",
        (
            Column("level", "Level", "text", 9), Column("code", "Code", "text", 10), Column("name", "Name", "text", 36),
            Column("planned", "Planned", "money"), Column("actual", "Actual", "money"),
            Column("overspend", "Overspend", "money"), Column("overspend_pct", "Overspend %", "percent"),
            Column("threshold", "Threshold", "percent"), Column("message", "Why", "text", 60),
        ),
        _variance_flags,
    ),
])


# ---------------------------------------------------------------- evidence and compliance


def _evidence(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    from grants.evidence.services import evidence_register

    # Never confidential: an export can end up on a donor's desk (include_confidential stays False).
    for row in evidence_register(session, grant.id):
        if period is not None and not (period.start_date <= row.evidence_date <= period.end_date):
            continue
        yield {
            "date": row.evidence_date, "title": row.title, "kind": row.kind, "sensitivity": row.sensitivity,
            "status": row.status, "file": row.file_name or row.url or "", "sha256": row.sha256 or "",
            "verified_at": row.verified_at.date() if row.verified_at else None, "supports": row.supports,
        }


def _requirements(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    from grants.compliance.services import requirement_status

    for row in requirement_status(session, grant.id, period.id if period else None):
        yield {
            "code": row.requirement_code, "requirement": row.requirement_title, "category": row.category,
            "period": row.period_label, "due": row.due_date, "status": row.status_label,
            "explanation": row.explanation, "waiver": row.waiver_justification or "",
        }


DATASETS.extend([
    Dataset(
        "evidence_register", "Evidence register",
        (
            Column("date", "Date", "date"), Column("title", "Title", "text", 40), Column("kind", "Kind", "text", 16),
            Column("sensitivity", "Sensitivity", "text", 11), Column("status", "Status", "text", 11),
            Column("file", "File or link", "text", 30), Column("sha256", "SHA-256", "text", 20),
            Column("verified_at", "Verified", "date"), Column("supports", "Supports", "text", 30),
        ),
        _evidence,
    ),
    Dataset(
        "requirement_status", "Compliance matrix",
        (
            Column("code", "Code", "text", 10), Column("requirement", "Requirement", "text", 44),
            Column("category", "Category", "text", 16), Column("period", "Period", "text", 8),
            Column("due", "Due", "date"), Column("status", "Status", "text", 12),
            Column("explanation", "Why", "text", 70), Column("waiver", "Waiver justification", "text", 30),
        ),
        _requirements,
    ),
])
