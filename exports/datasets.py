"""Named datasets and fields: what a mapping or a built-in report can ask for.

The datasets themselves are contributed by the domains (budgets'
``budget_vs_actual``, indicators' ``indicator_progress``, ...) to
``core.datasets.DATASETS`` from their ``contributions`` modules: exports reads
the registry and never queries the domains' tables itself. The arrow points
one way: the domains know nothing of exports.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from core import clock
from core.datasets import DATASETS, FIGURES, Column, Dataset, FigureKind, FigureQuery
from core.formatting import gettext as _
from core.formatting import lazy_gettext
from core.money import country_name
from exports.builtin import ReportColumn
from exports.mapping import Catalogue, FigureCatalogue
from grants.evidence.models import is_shared_with_donors

__all__ = [
    "Column",
    "Dataset",
    "FIELD_LABELS",
    "FIELD_NAMES",
    "FigureQuery",
    "all_datasets",
    "all_figure_kinds",
    "catalogue",
    "dataset_title",
    "figure_values",
    "field_values",
    "report_column",
    "rows_of",
]


def all_datasets() -> dict[str, Dataset]:
    """Every dataset the installed domains offer, in the order they are listed."""
    return dict(DATASETS.items())


def all_figure_kinds() -> dict[str, FigureKind]:
    """Every kind of single figure the installed domains offer (indicator, budget line, ...)."""
    return dict(FIGURES.items())


def catalogue() -> Catalogue:
    return Catalogue(
        fields=FIELD_NAMES,
        datasets={name: d.keys for name, d in DATASETS.items()},
        figures={
            name: FigureCatalogue(
                measures=[m.key for m in kind.measures],
                scopes=[key for key, _ in kind.scopes],
                categories=kind.categories is not None,
            )
            for name, kind in FIGURES.items()
        },
    )


def figure_values(
    session: Session, grant: Any, period: Any, kind_name: str, queries: Sequence[FigureQuery]
) -> dict[FigureQuery, Any]:
    """Ask one kind for many figures at once; a query whose item does not exist is left out."""
    kind = FIGURES[kind_name]
    return dict(kind.values(session, grant, period, list(dict.fromkeys(queries))))


def report_column(column: Column) -> ReportColumn:
    """A dataset's column as a report column, its header in the language in force.

    Domains mark their headers with ``N_`` or ``lazy_gettext``; either way the header
    is looked up in the catalogues here, when the workbook is written.
    """
    return ReportColumn(_(str(column.header)), column.kind, column.width)


def dataset_title(dataset: Dataset) -> str:
    """A dataset's title in the language in force (sheet names and title rows of built-in reports)."""
    return _(str(dataset.title))


def rows_of(session: Session, dataset: Dataset, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    """The dataset's rows, with one last guard: a row with a sensitivity not shared with donors never leaves."""
    for row in dataset.rows(session, grant, period):
        if "sensitivity" in row and not is_shared_with_donors(row["sensitivity"]):
            continue
        yield dict(row)


# ---------------------------------------------------------------- grants: single fields

# What people pick in the mapper, in their language (the keys are what a mapping file names).
FIELD_LABELS = {
    "grant.reference": lazy_gettext("Grant reference"),
    "grant.title": lazy_gettext("Grant title"),
    "grant.recipient": lazy_gettext("Recipient"),
    "grant.currency": lazy_gettext("Grant currency"),
    "grant.amount": lazy_gettext("Grant amount"),
    "grant.start_date": lazy_gettext("Grant start date"),
    "grant.end_date": lazy_gettext("Grant end date"),
    "grant.status": lazy_gettext("Grant status"),
    "grant.countries": lazy_gettext("Countries"),
    "funder.name": lazy_gettext("Funder name"),
    "funder.code": lazy_gettext("Funder code"),
    "period.label": lazy_gettext("Period"),
    "period.start_date": lazy_gettext("Period start date"),
    "period.end_date": lazy_gettext("Period end date"),
    "period.report_due": lazy_gettext("Report due date"),
    "period.status": lazy_gettext("Period status"),
    "report.date": lazy_gettext("Date of the report"),
}
FIELD_NAMES = list(FIELD_LABELS)


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
        "period.status": period.status.value.replace("_", " ") if period else "",
        "report.date": clock.today(),
    }
