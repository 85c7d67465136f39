"""Views for getting a budget in: the budget file import, the planning grid, and the import of rates."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select

from budgets import budget_import, rate_import
from budgets.budget_import import LinePlan, cents_text, parse_money_cents
from budgets.import_views import ErrorReportMixin, start_job, username
from budgets.imports import DATE_ORDERS, problem_text
from budgets.models import BudgetAllocation, BudgetLine, BudgetPlanImport, ImportStatus, retired_codes
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import decimal_mark, lazy_gettext, number
from core.formatting import gettext as _
from core.money import DECIMAL_MARKS
from grants.access import GrantScopedViewMixin, flash_domain_error
from grants.models import Grant, ReportingPeriod
from grants.services import can_see_grant, visible_grants

TEMPLATES = str(Path(__file__).resolve().parent / "templates")


def money_text(cents: int, currency: str) -> str:
    """Cents as the reader writes money, with the currency after: 1,234.50 USD / 1.234,50 USD."""
    return f"{number(Decimal(cents).scaleb(-2), 2)} {currency}".strip()


def _typed(text: str) -> str:
    """A plain amount ("1234.50") as the reader types it: with their decimal mark, without grouping."""
    return text.replace(".", ",") if decimal_mark() == "," else text


def _category_options(categories: list[dict[str, Any]], keep: str | None = None) -> list[tuple[str, str]]:
    """(code, "code name") for the drop-down: active categories, and a retired one only where a line has it."""
    retired = retired_codes(categories)
    return [
        (str(c["code"]), f"{c['code']} {c['name']}" + (" " + _("(retired)") if str(c["code"]) in retired else ""))
        for c in categories
        if str(c["code"]) not in retired or str(c["code"]) == keep
    ]


class BudgetPlanImportView(ErrorReportMixin, GrantScopedViewMixin, ModelView):
    """Budget files: upload → preview and mapping → import (or a revision) or a row-by-row error report."""

    template_folder = TEMPLATES
    datamodel = SQLAInterface(BudgetPlanImport)
    error_report = staticmethod(budget_import.error_report_csv)
    error_report_name = "budget-import-{id}-errors.csv"
    class_permission_name = "BudgetImports"
    route_base = "/budget-file-imports"
    list_title = lazy_gettext("Imports of budgets")
    base_permissions = ["can_list", "can_show", "can_add", "can_delete", "can_download"]
    list_columns = ["grant", "filename", "status", "row_count", "lines_added", "lines_changed", "created_at"]
    show_template = "budgets/budget_import_show.html"
    search_columns = ["grant", "filename", "status", "created_at"]
    base_order = ("created_at", "desc")
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "filename": lazy_gettext("File"),
        "status": lazy_gettext("Status"),
        "row_count": lazy_gettext("Rows"),
        "lines_added": lazy_gettext("Lines added"),
        "lines_changed": lazy_gettext("Lines changed"),
        "lines_unchanged": lazy_gettext("Lines already so"),
        "created_at": lazy_gettext("Uploaded"),
    }
    formatters_columns = {"status": lambda s: s.value if s is not None else ""}
    method_permission_name = {"upload": "add", "add": "add", "confirm": "add", "errors_csv": "download"}

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        return redirect(url_for(f"{type(self).__name__}.upload", grant_id=request.args.get("grant_id", type=int)))

    @expose("/upload", methods=["GET", "POST"])
    @has_access
    def upload(self) -> Any:
        grants = visible_grants(db.session, g.user)
        selected = request.form.get("grant_id", type=int) or request.args.get("grant_id", type=int)
        if request.method == "POST":
            upload = request.files.get("file")
            if selected is None or not can_see_grant(db.session, g.user, selected):
                flash(_("grant: choose a grant you have access to"), "danger")
            elif upload is None or not upload.filename:
                flash(_("file: choose a CSV or XLSX budget file"), "danger")
            else:
                try:
                    staged = budget_import.stage(
                        db.session, db.session.get(Grant, selected), upload.filename, upload.read(), by=username()
                    )
                    db.session.commit()
                except DomainValidationError as exc:
                    db.session.rollback()
                    flash_domain_error(exc)
                else:
                    return redirect(url_for(f"{type(self).__name__}.show", pk=staged.id))
        return self.render_template(
            "budgets/budget_import_upload.html", title=_("Import a budget"), grants=grants, selected=selected
        )

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        staged = self.datamodel.get(pk, self._base_filters)
        if staged is None:
            abort(404)
        grant = staged.grant
        periods = list(
            db.session.scalars(
                select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id).order_by(ReportingPeriod.start_date)
            )
        )
        chosen_mark = request.args.get("decimal_mark")
        if chosen_mark in DECIMAL_MARKS and staged.status != ImportStatus.imported:
            # The decimal mark chosen on the preview is kept with the file: the import reads amounts with it.
            staged.mapping = {**(staged.mapping or {}), "_decimal_mark": chosen_mark}
            db.session.commit()
        mapping = dict(staged.mapping or {})
        categories = budget_import.categories_of(db.session, grant)
        rows = staged.rows if staged.status != ImportStatus.imported else None
        decimal_mark = budget_import.decimal_mark_of(staged)
        return self.render_template(
            self.show_template,
            title=_("Budget import: %(file)s", file=staged.filename),
            item=staged,
            problem_text=problem_text,
            grant=grant,
            rows=(rows or [])[:10],
            has_rows=rows is not None,
            periods=periods,
            fields=budget_import.FIELDS,
            layouts=budget_import.LAYOUTS,
            profiles=budget_import.PROFILES,
            mapping=mapping,
            prefix=budget_import.PERIOD_PREFIX,
            category_options=_category_options(categories),
            category_values=budget_import.category_values(staged, mapping.get("category")) if rows else [],
            chosen_categories=mapping.get("_categories") or {},
            resolve=lambda raw: budget_import.resolve_category(categories, raw),
            can_add=self.appbuilder.sm.has_access("can_add", "BudgetImports"),
            approved=budget_import.is_approved(db.session, grant.id),
            decimal_mark=decimal_mark,
            decimal_marks=DECIMAL_MARKS,
            amounts=budget_import.amounts_preview(staged, mapping, decimal_mark) if rows else [],
        )

    @expose("/<int:pk>/confirm", methods=["POST"])
    @has_access
    def confirm(self, pk: int) -> Any:
        staged = self.datamodel.get(pk, self._base_filters)
        if staged is None:
            abort(404)
        mapping = {f: request.form.get(f"map_{f}", "") for f in budget_import.FIELDS}
        for period in staged.grant.periods:
            key = budget_import.PERIOD_PREFIX + period.label
            mapping[key] = request.form.get(f"map_{key}", "")
        mapping["_layout"] = request.form.get("layout", "wide")
        choices = {
            request.form.get(f"catvalue-{i}", ""): request.form.get(f"catcode-{i}", "")
            for i in range(min(request.form.get("catcount", type=int) or 0, 200))
        }
        if staged.status != ImportStatus.imported and staged.row_count > current_app.config["JOB_IMPORT_ROWS"]:
            # A large file is imported off the request (core.jobs); its page follows the job.
            return start_job(
                "budget_file_import",
                staged.grant_id,
                {
                    "import_id": staged.id,
                    "mapping": mapping,
                    "profile": request.form.get("profile", "even"),
                    "category_choices": {k: v for k, v in choices.items() if k and v},
                    "default_category": request.form.get("default_category") or None,
                },
                redirect(url_for(f"{type(self).__name__}.show", pk=pk)),
            )
        try:
            result = budget_import.run(
                db.session,
                staged,
                mapping,
                profile=request.form.get("profile", "even"),
                category_choices={k: v for k, v in choices.items() if k and v},
                default_category=request.form.get("default_category") or None,
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            outcome = result.outcome
            if outcome is None:
                flash(
                    _(
                        "Nothing imported: %(count)s problems. Download the error report, "
                        "fix the file and upload it again.",
                        count=len(result.errors),
                    ),
                    "danger",
                )
            elif outcome.revision is not None:
                flash(
                    _(
                        "The budget is approved, so the file became draft revision %(revision)s: "
                        "review it and submit it for approval.",
                        revision=outcome.revision.id,
                    ),
                    "warning",
                )
            elif outcome.added or outcome.changed:
                flash(
                    _(
                        "Budget imported: %(added)s lines added, %(changed)s changed, %(unchanged)s already so.",
                        added=outcome.added,
                        changed=outcome.changed,
                        unchanged=outcome.unchanged,
                    ),
                    "success",
                )
            else:
                flash(
                    _("Nothing to change: the %(count)s lines of the file are already so.", count=outcome.unchanged),
                    "success",
                )
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))


class BudgetGridView(BaseView):
    """A grant's budget as one table of inputs: lines, totals and the planned amount of every period."""

    template_folder = TEMPLATES
    route_base = "/budget-grid"
    class_permission_name = "BudgetLines"
    method_permission_name = {"index": "list", "grant": "list"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self) -> Any:
        return self.render_template(
            "budgets/grid_index.html", title=_("Budget grid"), grants=visible_grants(db.session, g.user)
        )

    @expose("/grant/<int:grant_id>", methods=["GET", "POST"])
    @has_access
    def grant(self, grant_id: int) -> Any:
        if not can_see_grant(db.session, g.user, grant_id):
            abort(404)
        grant = db.session.get(Grant, grant_id)
        can_edit = bool(self.appbuilder.sm.has_access("can_edit", "BudgetLines"))
        periods = list(
            db.session.scalars(
                select(ReportingPeriod).where(ReportingPeriod.grant_id == grant_id).order_by(ReportingPeriod.start_date)
            )
        )
        lines = list(
            db.session.scalars(select(BudgetLine).where(BudgetLine.grant_id == grant_id).order_by(BudgetLine.code))
        )
        categories = budget_import.categories_of(db.session, grant)
        errors: dict[str, str] = {}
        typed: dict[str, str] | None = None
        if request.method == "POST":
            if not can_edit:
                abort(403)
            typed = {k: v for k, v in request.form.items() if k != "csrf_token"}
            plans, errors = _grid_plans(grant, lines, periods, categories, typed)
            if not errors:
                try:
                    outcome = budget_import.apply_plan(
                        db.session,
                        grant,
                        plans,
                        title="Budget grid changes",
                        justification=f"Changed in the budget grid by {username() or 'an unknown user'}.",
                    )
                    db.session.commit()
                except DomainValidationError as exc:
                    db.session.rollback()
                    errors = {"grand-total": " ".join(m for ms in exc.errors.values() for m in ms)}
                else:
                    if outcome.revision is not None:
                        flash(
                            _(
                                "The budget is approved, so your changes became draft revision %(revision)s: "
                                "submit it for approval.",
                                revision=outcome.revision.id,
                            ),
                            "warning",
                        )
                    elif outcome.added or outcome.changed:
                        flash(
                            _(
                                "Saved: %(added)s lines added, %(changed)s changed.",
                                added=outcome.added,
                                changed=outcome.changed,
                            ),
                            "success",
                        )
                    else:
                        flash(_("Nothing changed."), "info")
                    return redirect(url_for("BudgetGridView.grant", grant_id=grant_id))
            flash(_("Not saved: correct the cells marked in red."), "danger")
        planned: dict[int, dict[int, int]] = {}
        for line_id, period_id, cents in db.session.execute(
            select(BudgetAllocation.line_id, BudgetAllocation.period_id, BudgetAllocation.amount_cents).where(
                BudgetAllocation.grant_id == grant_id
            )
        ):
            planned.setdefault(line_id, {})[period_id] = int(cents)
        values: dict[str, str] = {}
        for line in lines:
            values[f"name-{line.id}"] = line.description
            values[f"cat-{line.id}"] = line.cost_category
            values[f"total-{line.id}"] = "" if line.total is None else _typed(f"{line.total:.2f}")
            for period in periods:
                values[f"cell-{line.id}-{period.id}"] = _typed(cents_text(planned.get(line.id, {}).get(period.id, 0)))
        if typed is not None:
            values.update(typed)
        period_sums = {p.id: sum(planned.get(line.id, {}).get(p.id, 0) for line in lines) for p in periods}
        line_sums = {line.id: sum(planned.get(line.id, {}).values()) for line in lines}
        return self.render_template(
            "budgets/grid.html",
            title=_("Budget grid — %(grant)s", grant=grant.reference),
            grant=grant,
            periods=periods,
            lines=lines,
            values=values,
            errors=errors,
            options={line.id: _category_options(categories, line.cost_category) for line in lines},
            new_options=_category_options(categories),
            period_sums={k: money_text(v, "").strip() for k, v in period_sums.items()},
            line_sums={k: money_text(v, "").strip() for k, v in line_sums.items()},
            grand=money_text(sum(period_sums.values()), grant.currency),
            award=money_text(int(grant.amount * 100), grant.currency),
            profiles=budget_import.PROFILES,
            can_edit=can_edit,
            approved=budget_import.is_approved(db.session, grant_id),
            has_categories=bool(categories),
        )


def _grid_plans(
    grant: Grant,
    lines: list[BudgetLine],
    periods: list[ReportingPeriod],
    categories: list[dict[str, Any]],
    form: dict[str, str],
) -> tuple[list[LinePlan], dict[str, str]]:
    """The grid's inputs as a plan, or a message per input (keyed by the input's name)."""
    errors: dict[str, str] = {}
    reader_mark = decimal_mark()  # the grid is typed the reader's way, as every form's amounts are
    codes = {str(c["code"]) for c in categories}
    retired = retired_codes(categories)
    profile = form.get("profile", "even")
    if profile not in budget_import.PROFILES:
        errors["profile"] = _("choose how a total is spread")
        profile = "even"
    plans: list[LinePlan] = []

    def money(name: str) -> int | None:
        try:
            return parse_money_cents(form.get(name, ""), reader_mark)
        except ValueError as exc:
            errors[name] = str(exc)
            return None

    def one(prefix: str, code: str, keep_category: str | None, row: int) -> LinePlan | None:
        name = (form.get(f"name-{prefix}") or "").strip()
        category = (form.get(f"cat-{prefix}") or "").strip()
        if not name:
            errors[f"name-{prefix}"] = _("a line needs a name")
        if not category:
            errors[f"cat-{prefix}"] = _("choose a cost category")
        elif codes and category not in codes:
            errors[f"cat-{prefix}"] = _("'%(category)s' is not one of the funder's cost categories", category=category)
        elif category in retired and category != keep_category:
            errors[f"cat-{prefix}"] = _("this category is retired; choose one still in use")
        total = money(f"total-{prefix}")
        raw_cells = {p.id: form.get(f"cell-{prefix}-{p.id}", "").strip() for p in periods}
        cells = {p.id: money(f"cell-{prefix}-{p.id}") for p in periods}
        if any(f"cell-{prefix}-{p.id}" in errors for p in periods) or f"total-{prefix}" in errors:
            return None
        if total is not None and not any(raw_cells.values()):
            values = budget_import.spread(total, len(periods), profile) if periods else []
            filled = dict(zip([p.id for p in periods], values))
        else:
            filled = {pid: cents or 0 for pid, cents in cells.items()}
            summed = sum(filled.values())
            if total is not None and summed != total:
                errors[f"total-{prefix}"] = _(
                    "the periods add up to %(sum)s, not this total; "
                    "correct a period or the total (or empty the periods to spread the total)",
                    sum=money_text(summed, grant.currency),
                )
                return None
        return LinePlan(code, name[:300], category, total, filled, row=row)

    for row, line in enumerate(lines, start=1):
        plan = one(str(line.id), line.code, line.cost_category, row)
        if plan is not None:
            plans.append(plan)
    new_code = (form.get("code-new") or "").strip()
    new_filled = (
        new_code
        or any((form.get(f"{k}-new") or "").strip() for k in ("name", "total"))
        or any((form.get(f"cell-new-{p.id}") or "").strip() for p in periods)
    )
    if new_filled:
        if not new_code:
            errors["code-new"] = _("a new line needs a code")
        elif len(new_code) > 40:
            errors["code-new"] = _("is longer than 40 characters")
        elif any(line.code == new_code for line in lines):
            errors["code-new"] = _("'%(code)s' is already a line of this budget", code=new_code)
        plan = one("new", new_code, None, len(lines) + 1)
        if plan is not None and "code-new" not in errors:
            plans.append(plan)
    if not errors:
        budget = sum(sum(p.cells.values()) for p in plans)
        award = int(grant.amount * 100)
        if budget > award:
            errors["grand-total"] = _(
                "the budget adds up to %(budget)s, more than the grant's amount of %(award)s",
                budget=money_text(budget, grant.currency),
                award=money_text(award, grant.currency),
            )
    return plans, errors


class RateImportView(BaseView):
    """Exchange rates from a CSV or XLSX file with the columns date, from, to, rate (and source)."""

    template_folder = TEMPLATES
    route_base = "/exchange-rates-import"
    class_permission_name = "ExchangeRates"
    method_permission_name = {"upload": "add"}
    default_view = "upload"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def upload(self) -> Any:
        errors: list[dict[str, Any]] = []
        report = None
        date_order = request.form.get("date_order", "iso")
        if request.method == "POST":
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                flash(_("file: choose a CSV or XLSX file of rates"), "danger")
            else:
                try:
                    result = rate_import.import_rates(
                        db.session,
                        upload.read(),
                        date_order=date_order,
                        decimal_mark=request.form.get("decimal_mark", "."),
                    )
                except DomainValidationError as exc:
                    db.session.rollback()
                    flash_domain_error(exc)
                else:
                    if result.errors:
                        db.session.rollback()
                        errors = result.errors
                        report = _error_csv_link(errors)
                        flash(_("Nothing imported: %(count)s problems, listed below.", count=len(errors)), "danger")
                    else:
                        db.session.commit()
                        flash(
                            _(
                                "Rates imported: %(added)s added, %(corrected)s corrected, %(unchanged)s already known; "
                                "%(redone)s conversions redone.",
                                added=result.added,
                                corrected=result.corrected,
                                unchanged=result.unchanged,
                                redone=result.conversions_redone,
                            ),
                            "success",
                        )
                        return redirect(url_for("ExchangeRateView.list"))
        return self.render_template(
            "budgets/rates_import.html",
            title=_("Import exchange rates"),
            errors=errors,
            report=report,
            date_orders=DATE_ORDERS,
            date_order=date_order,
            decimal_marks=DECIMAL_MARKS,
            decimal_mark=request.form.get("decimal_mark", "."),
        )


def _error_csv_link(errors: list[dict[str, Any]]) -> str:
    """The error report as a data: link, so a refused file needs no storing to be downloadable."""
    import csv
    import io

    from budgets.imports import _inert

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("row"), _("column"), _("problem")])
    for error in errors:
        writer.writerow([error["row"], _inert(error["column"]), _inert(error["problem"])])
    return "data:text/csv;base64," + base64.b64encode(out.getvalue().encode()).decode()
