"""Named datasets: the tables the domains offer to exports, declared here so the arrows point down.

A domain describes a table with ``Dataset`` (its columns and a function giving
its rows for a grant and an optional period) and adds it to ``DATASETS`` from
its ``contributions`` module; ``exports`` reads the registry and never imports
the domains' services for data. Single figures (one indicator's target for a
period, one budget line's actual) come the same way through ``FIGURES``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from core.registry import Registry

ColumnKind = Literal["text", "money", "number", "percent", "date", "int"]
RowSource = Callable[[Session, Any, Any], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: ColumnKind = "text"
    width: float | None = None


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


DATASETS: Registry[Dataset] = Registry("dataset")


def add_dataset(dataset: Dataset, *, order: int = 0) -> Dataset:
    """Offer ``dataset`` to exports under its name; ``order`` places it in the catalogue."""
    return DATASETS.add(dataset.name, dataset, order=order)


def as_fraction(pct: Any) -> Any:
    """Services give percentages as 0–100; a spreadsheet's % format wants fractions."""
    return None if pct is None else pct / 100


# ---------------------------------------------------------------- single figures


@dataclass(frozen=True)
class Measure:
    """One figure an item offers, e.g. an indicator's "target" or a budget line's "actual"."""

    key: str
    label: str
    kind: ColumnKind = "number"


@dataclass(frozen=True)
class FigureQuery:
    """One figure asked of a kind: which item (a code), which measure, and its options.

    ``category`` is a disaggregation category as "dimension=code" (e.g. "country=LC");
    ``scope`` is one of the kind's scopes (budgets: "period", "cumulative", "grant").
    """

    item: str
    measure: str
    category: str | None = None
    scope: str | None = None


ItemList = Callable[[Session, Any], list[tuple[str, str]]]
FigureValues = Callable[[Session, Any, Any, Sequence[FigureQuery]], Mapping[FigureQuery, Any]]


@dataclass(frozen=True)
class FigureKind:
    """Single figures a domain offers a mapping: "indicator FCDO-1's target", "budget line 1.1's actual".

    ``items(session, grant)`` lists the items as (code, words) for the mapper's lists.
    ``values(session, grant, period, queries)`` answers every query whose item
    exists (a figure with no data yet is None); an item that does not exist is
    left out of the answer, so the caller can say which code is unknown.
    ``categories(session, grant)`` lists the disaggregation categories as
    ("dimension=code", words) when the kind has any.
    """

    name: str
    title: str
    item_label: str
    measures: tuple[Measure, ...]
    items: ItemList
    values: FigureValues
    categories: ItemList | None = None
    scopes: tuple[tuple[str, str], ...] = ()

    def measure(self, key: str) -> Measure | None:
        return next((m for m in self.measures if m.key == key), None)


FIGURES: Registry[FigureKind] = Registry("figure kind")


def add_figure_kind(kind: FigureKind, *, order: int = 0) -> FigureKind:
    """Offer single figures of ``kind`` to exports' mappings; ``order`` places it in the mapper's lists."""
    return FIGURES.add(kind.name, kind, order=order)
