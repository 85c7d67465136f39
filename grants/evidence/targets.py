"""What an evidence item can be linked to: the ``TARGETS`` registry of target kinds.

Each kind names the mapped class whose rows can be supported (every one has a
``grant_id``). Consultations register from ``grants.evidence.models``,
requirements from ``grants.compliance.models``; budget lines, expenditures,
indicators and indicator results from the ``contributions`` modules of
``budgets`` and ``indicators``, which this package never imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.formatting import gettext as _
from core.registry import Registry


@dataclass(frozen=True)
class Target:
    kind: str
    id: int
    grant_id: int | None
    label: str


@dataclass(frozen=True)
class TargetKind:
    """A kind of record evidence can support: how it is called, and its mapped class."""

    label: str
    model: Any  # a mapped class with ``id`` and ``grant_id``


TARGETS: Registry[TargetKind] = Registry("evidence target kind")


def target_kinds() -> dict[str, str]:
    """Every kind an evidence item can be linked to, with its label."""
    return {kind: target.label for kind, target in TARGETS.items()}


def shown_name(row: Any) -> str:
    """How a record is named to a reader: its ``shown_name`` where it has titles per language, else ``str(row)``."""
    shown = getattr(row, "shown_name", None)
    return str(shown) if shown is not None else str(row)


def resolve(session: Session, kind: str, target_id: Any) -> Target | None:
    target = TARGETS.get(kind)
    if target is None:
        return None
    try:
        target_id = int(target_id)
    except (TypeError, ValueError):
        return None
    with session.no_autoflush:
        row = session.get(target.model, target_id)
    return Target(kind, target_id, row.grant_id, shown_name(row)) if row is not None else None


def describe_target_problem(session: Session, kind: str | None, target_id: Any, grant_id: int | None) -> str | None:
    """Why (kind, id) cannot be linked from evidence of ``grant_id``, in words; None if it can."""
    target_kind = TARGETS.get(kind or "")
    if target_kind is None:
        known = ", ".join(sorted(target_kinds())) or "—"
        return _("'%(kind)s' is not something evidence can support; choose one of: %(known)s", kind=kind, known=known)
    target = resolve(session, kind or "", target_id)
    if target is None:
        return _("there is no %(kind)s #%(id)s", kind=target_kind.label, id=target_id)
    if target.grant_id != grant_id:
        return _("%(kind)s #%(id)s belongs to another grant", kind=target_kind.label, id=target_id)
    return None
