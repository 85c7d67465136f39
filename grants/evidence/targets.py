"""What an evidence item can be linked to: a small registry of target kinds and their resolvers.

A resolver turns (session, id) into a ``Target`` (its grant and a label) or
None. Requirements register themselves from ``grants.compliance``;
consultations are ours; indicator results, indicators, expenditures and budget
lines belong to packages built separately, so they are found by table name at
call time rather than imported here (the package may not be installed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Target:
    kind: str
    id: int
    grant_id: int | None
    label: str


Resolver = Callable[[Session, int], "Target | None"]
_resolvers: dict[str, Resolver] = {}
_labels: dict[str, str] = {}


def register_target(kind: str, resolver: Resolver, label: str) -> None:
    _resolvers[kind] = resolver
    _labels[kind] = label


def target_kinds() -> dict[str, str]:
    """Every kind an evidence item can be linked to that is available now, with its label."""
    return {kind: _labels[kind] for kind in _resolvers if _available(kind)}


def _available(kind: str) -> bool:
    resolver = _resolvers[kind]
    check = getattr(resolver, "available", None)
    return check() if check else True


def resolve(session: Session, kind: str, target_id: Any) -> Target | None:
    resolver = _resolvers.get(kind)
    if resolver is None or not _available(kind):
        return None
    try:
        target_id = int(target_id)
    except (TypeError, ValueError):
        return None
    with session.no_autoflush:
        return resolver(session, target_id)


def describe_target_problem(session: Session, kind: str | None, target_id: Any, grant_id: int | None) -> str | None:
    """Why (kind, id) cannot be linked from evidence of ``grant_id``, in words; None if it can."""
    if kind not in _resolvers:
        known = ", ".join(sorted(target_kinds())) or "none"
        return f"'{kind}' is not something evidence can support; choose one of: {known}"
    if not _available(kind):
        return f"linking to a {_labels[kind]} needs its module, which is not installed"
    target = resolve(session, kind, target_id)
    if target is None:
        return f"there is no {_labels[kind]} #{target_id}"
    if target.grant_id != grant_id:
        return f"{_labels[kind]} #{target_id} belongs to another grant"
    return None


# ---------------------------------------------------------------- built-in resolvers


def _mapped_class(table_name: str) -> type | None:
    from flask_appbuilder import Model

    for mapper in Model.registry.mappers:
        if getattr(mapper.local_table, "name", None) == table_name:
            return mapper.class_
    return None


def _grant_of(row: Any) -> int | None:
    grant_id = getattr(row, "grant_id", None)
    if grant_id is not None:
        return grant_id
    # Records reached through a parent (expenditure -> budget line -> grant).
    for parent in ("budget_line", "line", "indicator", "result"):
        owner = getattr(row, parent, None)
        if owner is not None and getattr(owner, "grant_id", None) is not None:
            return owner.grant_id
    return None


def table_resolver(kind: str, *table_names: str) -> Resolver:
    """Resolve ids in whichever of ``table_names`` is mapped (the owning package may be absent)."""

    def find_class() -> type | None:
        for name in table_names:
            cls = _mapped_class(name)
            if cls is not None:
                return cls
        return None

    def resolver(session: Session, target_id: int) -> Target | None:
        cls = find_class()
        row = session.get(cls, target_id) if cls is not None else None
        if row is None:
            return None
        return Target(kind, target_id, _grant_of(row), str(row))

    resolver.available = lambda: find_class() is not None  # type: ignore[attr-defined]
    resolver.model = find_class  # type: ignore[attr-defined]
    return resolver


def _consultation(session: Session, target_id: int) -> Target | None:
    from grants.evidence.models import Consultation

    row = session.get(Consultation, target_id)
    return Target("consultation", row.id, row.grant_id, str(row)) if row else None


register_target("consultation", _consultation, "consultation")
register_target("indicator", table_resolver("indicator", "indicators"), "indicator")
register_target("indicator_result", table_resolver("indicator_result", "indicator_results"), "indicator result")
register_target("budget_line", table_resolver("budget_line", "budget_lines"), "budget line")
register_target("expenditure", table_resolver("expenditure", "expenditures"), "expenditure")
