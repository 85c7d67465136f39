"""Named datasets: the tables the domains offer to exports, declared here so the arrows point down.

A domain describes a table with ``Dataset`` (its columns and a function giving
its rows for a grant and an optional period) and adds it to ``DATASETS`` from
its ``contributions`` module; ``exports`` reads the registry and never imports
the domains' services for data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
