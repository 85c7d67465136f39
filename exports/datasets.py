"""Named datasets and fields: what a mapping or a built-in report can ask for.

The datasets themselves are contributed by the domains (budgets'
``budget_vs_actual``, indicators' ``indicator_progress``, ...) to
``core.datasets.DATASETS`` from their ``contributions`` modules: exports reads
the registry and never queries the domains' tables itself. The arrow points
one way: the domains know nothing of exports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from core import clock
from core.datasets import DATASETS, Column, Dataset
from core.money import country_name
from exports.builtin import ReportColumn
from exports.mapping import Catalogue

__all__ = [
    "Column",
    "Dataset",
    "FIELD_NAMES",
    "all_datasets",
    "catalogue",
    "field_values",
    "report_column",
    "rows_of",
]


def all_datasets() -> dict[str, Dataset]:
    """Every dataset the installed domains offer, in the order they are listed."""
    return dict(DATASETS.items())


def catalogue() -> Catalogue:
    return Catalogue(fields=FIELD_NAMES, datasets={name: d.keys for name, d in DATASETS.items()})


def report_column(column: Column) -> ReportColumn:
    return ReportColumn(column.header, column.kind, column.width)


def rows_of(session: Session, dataset: Dataset, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    """The dataset's rows, with one last guard: a row marked confidential never leaves."""
    for row in dataset.rows(session, grant, period):
        if str(row.get("sensitivity", "")).lower() == "confidential":
            continue
        yield dict(row)


# ---------------------------------------------------------------- grants: single fields

FIELD_NAMES = [
    "grant.reference",
    "grant.title",
    "grant.recipient",
    "grant.currency",
    "grant.amount",
    "grant.start_date",
    "grant.end_date",
    "grant.status",
    "grant.countries",
    "funder.name",
    "funder.code",
    "period.label",
    "period.start_date",
    "period.end_date",
    "period.report_due",
    "report.date",
]


def field_values(session: Session, grant: Any, period: Any) -> dict[str, Any]:
    """The single values a mapping can place in a cell, for one grant and (optionally) a period."""
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
        "report.date": clock.today(),
    }
