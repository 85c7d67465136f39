"""Pages for shared costs and allocation keys: record a payment split over grants, keep keys, re-run them.

Thin: every change goes through ``budgets.sharing``. A shared cost names every grant it is
split over. Who may open this page (finance staff and auditors by role) sees a cost whole only
when they see every grant it is split over; someone who sees only some of them (an auditor of
one grant) sees only those grants' parts: no total paid, no other grant's name or amount, no
allocation key naming other grants, and no change or delete (``CostShown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select

from budgets import sharing
from budgets.models import AllocationKey, BudgetLine, SharedCost, SplitMethod
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import gettext as _
from core.formatting import lazy_gettext, ngettext
from core.formatting import number as fmt_number
from grants.access import current_user_or_none, visible_grant_ids
from grants.models import Grant

TEMPLATES = str(Path(__file__).resolve().parent / "templates")
FORM_ROWS = 6
METHOD_LABELS = {
    SplitMethod.percent.value: lazy_gettext("by percentage"),
    SplitMethod.amount.value: lazy_gettext("by amount"),
    SplitMethod.key.value: lazy_gettext("by an allocation key"),
}


def _visible_lines() -> list[tuple[int, str]]:
    """(line id, "GA-1 · HR-1 Coordinator (USD)") for every budget line the user's grants have."""
    ids = visible_grant_ids()
    query = (
        select(BudgetLine.id, Grant.reference, BudgetLine.code, BudgetLine.description, Grant.currency)
        .join(Grant, Grant.id == BudgetLine.grant_id)
        .order_by(Grant.reference, BudgetLine.code)
    )
    if ids is not None:
        query = query.where(BudgetLine.grant_id.in_(ids))
    return [(i, f"{ref} · {code} {desc} ({ccy})") for i, ref, code, desc, ccy in db.session.execute(query)]


def _visible_line(line_id: Any) -> BudgetLine | None:
    try:
        line = db.session.get(BudgetLine, int(line_id))
    except (TypeError, ValueError):
        return None
    ids = visible_grant_ids()
    if line is None or (ids is not None and line.grant_id not in ids):
        return None
    return line


def _all_visible(grant_ids: set[int]) -> bool:
    ids = visible_grant_ids()
    return ids is None or grant_ids <= set(ids)


def _cost_or_404(pk: int) -> SharedCost:
    cost = db.session.get(SharedCost, pk)
    if cost is None or not _all_visible({p.grant_id for p in cost.parts}):
        abort(404)
    return cost


def _key_or_404(pk: int) -> AllocationKey:
    key = db.session.get(AllocationKey, pk)
    if key is None or not _all_visible({s.grant_id for s in key.shares}):
        abort(404)
    return key


@dataclass(frozen=True)
class CostShown:
    """A shared cost as this user may see it: every part (``whole``) or only their grants' parts."""

    cost: SharedCost
    parts: list[Any]  # the Expenditure parts on grants the user sees
    whole: bool  # True when the user sees every grant the cost is split over
    key_shown: bool  # the allocation key's name, only when the user sees every grant of the key


def _shown_costs(costs: Any) -> list[CostShown]:
    ids = visible_grant_ids()
    shown = []
    for cost in costs:
        parts = [p for p in cost.parts if ids is None or p.grant_id in ids]
        if not parts:
            continue
        whole = len(parts) == len(cost.parts)
        key_shown = cost.key is not None and whole and _all_visible({s.grant_id for s in cost.key.shares})
        shown.append(CostShown(cost, parts, whole, key_shown))
    return shown


def _visible_keys() -> list[AllocationKey]:
    keys = db.session.scalars(select(AllocationKey).order_by(AllocationKey.name)).all()
    return [k for k in keys if _all_visible({s.grant_id for s in k.shares})]


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


def _rows(form: Any, prefix: str, value_name: str) -> list[dict[str, str]]:
    count = max(FORM_ROWS, len([k for k in form if k.startswith(f"{prefix}_line_")]))
    return [
        {"line_id": form.get(f"{prefix}_line_{i}", ""), value_name: form.get(f"{prefix}_{value_name}_{i}", "")}
        for i in range(count)
    ]


def _money(value: Any) -> str:
    """An amount the reader's way (1,234.50 / 1.234,50 / 1 234,50)."""
    return fmt_number(Decimal(value))


class SharedCostView(BaseView):
    """Shared costs: a list, a form to record or change one (split by %, amount or key), and delete."""

    template_folder = TEMPLATES
    route_base = "/shared-costs"
    class_permission_name = "SharedCosts"
    method_permission_name = {"costs": "list", "add": "add", "edit": "edit", "delete": "delete"}
    default_view = "costs"

    @expose("/list/")
    @has_access
    def costs(self) -> Any:
        costs = db.session.scalars(select(SharedCost).order_by(SharedCost.spent_on.desc(), SharedCost.id.desc())).all()
        visible = _shown_costs(costs)
        sm = self.appbuilder.sm
        return self.render_template(
            "budgets/shared_costs.html",
            title=_("Shared costs"),
            costs=visible,
            methods=METHOD_LABELS,
            money=_money,
            current=sharing.key_is_current,
            can_add=sm.has_access("can_add", "SharedCosts"),
            can_edit=sm.has_access("can_edit", "SharedCosts"),
            can_delete=sm.has_access("can_delete", "SharedCosts"),
        )

    def _form(self, cost: SharedCost | None, errors: dict[str, list[str]] | None = None) -> Any:
        if request.method == "POST":
            values = dict(request.form)
            rows = _rows(request.form, "part", "share")
        elif cost is not None:
            values = {
                "spent_on": cost.spent_on.isoformat(),
                "description": cost.description,
                "amount": str(cost.amount),
                "currency": cost.currency,
                "method": cost.method.value,
                "key_id": str(cost.key_id or ""),
            }
            rows = [{"line_id": str(p.line_id), "share": f"{Decimal(p.share or 0).normalize():f}"} for p in cost.parts]
            rows += [{"line_id": "", "share": ""}] * max(0, FORM_ROWS - len(rows))
        else:
            values = {"method": SplitMethod.percent.value, "spent_on": ""}
            rows = [{"line_id": "", "share": ""} for _ in range(FORM_ROWS)]
        return self.render_template(
            "budgets/shared_cost_form.html",
            title=_("Change a shared cost") if cost else _("Record a shared cost"),
            cost=cost,
            values=values,
            rows=rows,
            errors=errors or {},
            lines=_visible_lines(),
            keys=_visible_keys(),
            methods=METHOD_LABELS,
        )

    def _save(self, cost: SharedCost | None) -> Any:
        form = request.form
        errors: dict[str, list[str]] = {}
        spent_on = _parse_date(form.get("spent_on", ""))
        if spent_on is None:
            errors["spent_on"] = [_("is required: the date the money was paid, e.g. 2026-04-16")]
        parts = []
        for number, row in enumerate(_rows(form, "part", "share"), start=1):
            if not row["line_id"] and not row["share"].strip():
                continue
            line = _visible_line(row["line_id"]) if row["line_id"] else None
            if row["line_id"] and line is None:
                errors.setdefault("parts", []).append(
                    _("part %(number)s: choose a budget line from the list", number=number)
                )
                continue
            parts.append({"line": line, "share": row["share"]})
        key = None
        if form.get("method") == SplitMethod.key.value:
            key = next((k for k in _visible_keys() if str(k.id) == form.get("key_id")), None)
        user = current_user_or_none()
        try:
            if errors:
                raise DomainValidationError(errors)
            fields: dict[str, Any] = {
                "spent_on": spent_on,
                "amount": form.get("amount", ""),
                "currency": form.get("currency", ""),
                "description": form.get("description", ""),
                "method": form.get("method", ""),
                "parts": parts,
                "key": key,
            }
            if cost is None:
                cost = sharing.record_shared_cost(db.session, created_by=user.username if user else None, **fields)
            else:
                cost = sharing.update_shared_cost(db.session, cost, **fields)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            if cost is not None:
                cost = db.session.get(SharedCost, cost.id) if cost.id else None
            return self._form(cost, exc.errors)
        flash(self._saved_message(cost), "success")
        return redirect(url_for("SharedCostView.costs"))

    @staticmethod
    def _saved_message(cost: SharedCost) -> str:
        parts = "; ".join(
            f"{p.grant.reference} {p.line.code}: {_money(p.amount)} {p.currency} = {_money(p.converted_amount)} "
            f"{p.grant.currency}"
            for p in cost.parts
        )
        return _(
            "Shared cost saved: %(description)s, %(amount)s %(currency)s — %(parts)s",
            description=cost.description,
            amount=_money(cost.amount),
            currency=cost.currency,
            parts=parts,
        )

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        if request.method == "POST":
            return self._save(None)
        return self._form(None)

    @expose("/<int:pk>/edit", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: int) -> Any:
        cost = _cost_or_404(pk)
        if request.method == "POST":
            return self._save(cost)
        return self._form(cost)

    @expose("/<int:pk>/delete", methods=["POST"])
    @has_access
    def delete(self, pk: int) -> Any:
        cost = _cost_or_404(pk)
        description = cost.description
        sharing.delete_shared_cost(db.session, cost)
        db.session.commit()
        flash(
            _("Shared cost deleted: %(description)s; every grant's part of it is gone.", description=description),
            "success",
        )
        return redirect(url_for("SharedCostView.costs"))


class AllocationKeyView(BaseView):
    """Allocation keys (rent 60/40 by floor space): their weights, and re-running the costs that follow them."""

    template_folder = TEMPLATES
    route_base = "/allocation-keys"
    class_permission_name = "AllocationKeys"
    method_permission_name = {"keys": "list", "add": "add", "edit": "edit", "rerun": "edit"}
    default_view = "keys"

    @expose("/list/")
    @has_access
    def keys(self) -> Any:
        keys = _visible_keys()
        stale = {
            k.id: sum(1 for c in sharing.costs_following(db.session, k) if not sharing.key_is_current(c)) for k in keys
        }
        sm = self.appbuilder.sm
        return self.render_template(
            "budgets/allocation_keys.html",
            title=_("Allocation keys"),
            keys=keys,
            stale=stale,
            can_add=sm.has_access("can_add", "AllocationKeys"),
            can_edit=sm.has_access("can_edit", "AllocationKeys"),
        )

    def _form(self, key: AllocationKey | None, errors: dict[str, list[str]] | None = None) -> Any:
        if request.method == "POST":
            values = dict(request.form)
            rows = _rows(request.form, "share", "weight")
        elif key is not None:
            values = {"name": key.name, "basis": key.basis or ""}
            rows = [{"line_id": str(s.line_id), "weight": f"{Decimal(s.weight).normalize():f}"} for s in key.shares]
            rows += [{"line_id": "", "weight": ""}] * max(0, FORM_ROWS - len(rows))
        else:
            values = {}
            rows = [{"line_id": "", "weight": ""} for _ in range(FORM_ROWS)]
        return self.render_template(
            "budgets/allocation_key_form.html",
            title=_("Change an allocation key") if key else _("New allocation key"),
            key=key,
            values=values,
            rows=rows,
            errors=errors or {},
            lines=_visible_lines(),
        )

    def _save(self, key: AllocationKey | None) -> Any:
        form = request.form
        errors: dict[str, list[str]] = {}
        shares = []
        for number, row in enumerate(_rows(form, "share", "weight"), start=1):
            if not row["line_id"] and not row["weight"].strip():
                continue
            line = _visible_line(row["line_id"]) if row["line_id"] else None
            if row["line_id"] and line is None:
                errors.setdefault("shares", []).append(
                    _("row %(number)s: choose a budget line from the list", number=number)
                )
                continue
            shares.append({"line": line, "weight": row["weight"]})
        since = None
        if form.get("rerun"):
            since = _parse_date(form.get("rerun_from", "")) if form.get("rerun_from") else None
            if form.get("rerun_from") and since is None:
                errors["rerun_from"] = [_("is not a date, e.g. 2026-07-01 (empty: every cost following the key)")]
        try:
            if errors:
                raise DomainValidationError(errors)
            key = sharing.save_allocation_key(
                db.session, key, name=form.get("name", ""), basis=form.get("basis"), shares=shares
            )
            changed = sharing.rerun_key(db.session, key, since) if form.get("rerun") else None
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            if key is not None and key.id:
                key = db.session.get(AllocationKey, key.id)
            return self._form(key, exc.errors)
        message = _("Allocation key saved: %(key)s.", key=key.name)
        if changed is not None:
            message += " " + ngettext(
                "%(num)d shared cost split again by the new weights (see the audit trail for before and after).",
                "%(num)d shared costs split again by the new weights (see the audit trail for before and after).",
                changed,
            )
        flash(message, "success")
        return redirect(url_for("AllocationKeyView.keys"))

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        return self._save(None) if request.method == "POST" else self._form(None)

    @expose("/<int:pk>/edit", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: int) -> Any:
        key = _key_or_404(pk)
        return self._save(key) if request.method == "POST" else self._form(key)

    @expose("/<int:pk>/rerun", methods=["POST"])
    @has_access
    def rerun(self, pk: int) -> Any:
        key = _key_or_404(pk)
        try:
            changed = sharing.rerun_key(db.session, key)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            for messages in exc.errors.values():
                for message in messages:
                    flash(message, "danger")
        else:
            flash(
                ngettext(
                    "%(num)d shared cost of %(key)s split again by its weights.",
                    "%(num)d shared costs of %(key)s split again by its weights.",
                    changed,
                    key=key.name,
                ),
                "success",
            )
        return redirect(url_for("AllocationKeyView.keys"))
