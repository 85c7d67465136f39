"""Flask-AppBuilder views for budgets: lines, planned amounts, expenditures, rates, revisions, imports, budget vs actual, Odoo links."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, SelectField
from wtforms.validators import NumberRange, Optional

from budgets import charts, imports, odoo_sync, rates, services
from budgets.import_views import ErrorReportMixin, start_job, username
from budgets.models import (
    BudgetAllocation,
    BudgetImport,
    BudgetLine,
    BudgetRevision,
    BudgetRevisionItem,
    BudgetVersion,
    ExchangeRate,
    Expenditure,
    ImportStatus,
    OdooAccountMap,
    OdooAmountBasis,
    OdooLink,
    RatePolicy,
    VarianceRule,
)
from budgets.plan_views import BudgetGridView, BudgetPlanImportView, RateImportView
from budgets.report import (
    budget_vs_actual,
    burn_series,
    day_label,
    grant_totals,
    monthly_actuals,
    period_as_of,
    period_window,
    variance_flags,
)
from budgets.sharing_views import AllocationKeyView, SharedCostView
from core import clock
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_, label, lazy_gettext, moment, pct
from core.formatting import amount as money
from core.formatting import gettext as _
from core.forms import currency_code
from core.jobs import shown
from core.money import DECIMAL_MARKS
from grants.access import (
    FilterVisibleGrants,
    GrantScopedViewMixin,
    ValidatedViewMixin,
    ensure_parent_visible,
    flash_domain_error,
)
from grants.models import Grant, ReportingPeriod
from grants.page import Panel, register_panel
from grants.services import can_see_grant, visible_grants

_VISIBLE = [["grant_id", FilterVisibleGrants, lambda: None]]
# FAB's blueprints resolve template folders against FAB's own package; an absolute path finds ours.
TEMPLATES = str(Path(__file__).resolve().parent / "templates")


def _odoo_env() -> Any:
    """The GRANTKEEPER_ODOO_* settings the app was started with."""
    return current_app.config["GK_SETTINGS"].odoo_env


def _save(operation: Any, item: Any, *, grant_scoped: bool = True) -> None:
    """Hand a form's record to its write operation, which derives and flushes (the checks run at the flush)
    before FAB's one commit; a refusal is rolled back before FAB flashes it."""
    try:
        if grant_scoped:
            services.derive_grant(item)
            ensure_parent_visible(item)
        operation(db.session, item)
    except DomainValidationError:
        db.session.rollback()
        raise


class BudgetAllocationView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(BudgetAllocation)
    class_permission_name = "BudgetLines"
    route_base = "/budget-allocations"
    parent_relation = None
    list_title = lazy_gettext("Planned amounts")
    list_columns = ["line", "period", "amount"]
    show_columns = add_columns = edit_columns = ["line", "period", "amount"]
    search_columns = ["grant", "line", "period"]
    add_form_query_rel_fields = edit_form_query_rel_fields = {"line": _VISIBLE, "period": _VISIBLE}
    label_columns = {
        "line": lazy_gettext("Budget line"),
        "period": lazy_gettext("Period"),
        "amount": lazy_gettext("Planned (grant currency)"),
    }

    def pre_add(self, item: Any) -> None:
        _save(services.save_allocation, item)

    def pre_update(self, item: Any) -> None:
        _save(services.save_allocation, item)


class ExpenditureView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(Expenditure)
    class_permission_name = "Expenditures"
    route_base = "/expenditures"
    parent_relation = None
    list_title = lazy_gettext("Expenditures")
    list_columns = ["spent_on", "grant", "line", "description", "amount", "currency", "converted_amount", "source"]
    show_fieldsets = [
        (
            lazy_gettext("Expenditure"),
            {"fields": ["grant", "line", "period", "spent_on", "description", "amount", "currency"]},
        ),
        (lazy_gettext("Conversion into the grant's currency"), {"fields": ["converted_amount", "rate", "rate_source"]}),
        (lazy_gettext("Origin"), {"fields": ["source", "external_ref", "is_shared", "created_at"]}),
    ]
    add_columns = edit_columns = ["line", "spent_on", "amount", "currency", "description"]
    # Not "line": FAB's filter widget would render every budget line of every grant as a choice on each page.
    search_columns = ["grant", "spent_on", "currency", "source", "description", "external_ref"]
    order_columns = ["spent_on", "amount", "converted_amount", "currency", "source"]
    base_order = ("spent_on", "desc")
    add_form_query_rel_fields = edit_form_query_rel_fields = {"line": _VISIBLE}
    validators_columns = {"currency": [currency_code]}
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "period": lazy_gettext("Period"),
        "description": lazy_gettext("Description"),
        "amount": lazy_gettext("Amount"),
        "currency": lazy_gettext("Currency"),
        "source": lazy_gettext("Source"),
        "created_at": lazy_gettext("Recorded at"),
        "spent_on": lazy_gettext("Date"),
        "converted_amount": lazy_gettext("In grant currency"),
        "rate": lazy_gettext("Rate (grant currency per unit)"),
        "rate_source": lazy_gettext("Rate used"),
        "external_ref": lazy_gettext("External reference"),
        "line": lazy_gettext("Budget line"),
        "is_shared": lazy_gettext("Shared cost"),
    }
    description_columns = {"amount": lazy_gettext("A negative amount records a refund or correction.")}

    def pre_add(self, item: Any) -> None:
        _save(services.create_expenditure, item)

    def pre_update(self, item: Any) -> None:
        _save(services.update_expenditure, item)

    def pre_delete(self, item: Any) -> None:
        services.check_not_a_part(item)


def _category_choices(with_retired: bool) -> Any:
    """The cost categories of the funders of the grants the user sees, grouped by funder, for a drop-down."""

    def choices() -> dict[str, list[tuple[str, str]]]:
        funders = {grant.funder_id: grant.funder for grant in visible_grants(db.session, g.user)}
        grouped: dict[str, list[tuple[str, str]]] = {}
        for funder in sorted(funders.values(), key=lambda f: f.name):
            options = [
                (str(c["code"]), f"{c['code']} {c['name']}" + (" " + _("(retired)") if c.get("retired") else ""))
                for c in funder.cost_categories or []
                if with_retired or not c.get("retired")
            ]
            if options:
                grouped[funder.name] = options
        return grouped

    return choices


class BudgetLineView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(BudgetLine)
    class_permission_name = "BudgetLines"
    route_base = "/budget-lines"
    list_title = lazy_gettext("Budget lines")
    list_columns = ["grant", "code", "description", "cost_category", "total", "module", "intervention"]
    show_columns = ["grant", "code", "description", "cost_category", "total", "module", "intervention", "notes"]
    add_columns = edit_columns = [
        "grant",
        "code",
        "description",
        "cost_category",
        "total",
        "module",
        "intervention",
        "notes",
    ]
    search_columns = ["grant", "code", "description", "cost_category", "module", "intervention"]
    order_columns = ["code", "cost_category", "description"]
    base_order = ("code", "asc")
    related_views = [BudgetAllocationView, ExpenditureView]
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "code": lazy_gettext("Code"),
        "description": lazy_gettext("Description"),
        "module": lazy_gettext("Module"),
        "intervention": lazy_gettext("Intervention"),
        "notes": lazy_gettext("Notes"),
        "cost_category": lazy_gettext("Cost category"),
        "total": lazy_gettext("Total (grant currency)"),
    }
    description_columns = {
        "cost_category": lazy_gettext("One of the grant's funder's cost categories (edited on the funder's page)."),
        "total": lazy_gettext("The line's agreed total; the budget grid checks the periods against it."),
    }
    add_form_extra_fields = {
        "cost_category": SelectField(
            lazy_gettext("Cost category"), choices=_category_choices(False), validate_choice=False
        )
    }
    edit_form_extra_fields = {
        "cost_category": SelectField(
            lazy_gettext("Cost category"), choices=_category_choices(True), validate_choice=False
        )
    }


class ExchangeRateView(ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(ExchangeRate)
    class_permission_name = "ExchangeRates"
    route_base = "/exchange-rates"
    list_title = lazy_gettext("Exchange rates")
    list_columns = ["rate_date", "from_currency", "to_currency", "rate", "source"]
    show_columns = add_columns = edit_columns = ["rate_date", "from_currency", "to_currency", "rate", "source"]
    search_columns = ["rate_date", "from_currency", "to_currency", "source"]
    base_order = ("rate_date", "desc")
    validators_columns = {"from_currency": [currency_code], "to_currency": [currency_code]}
    label_columns = {"rate": lazy_gettext("Rate (1 from = rate × to)")}

    def pre_add(self, item: Any) -> None:
        _save(rates.save_rate, item, grant_scoped=False)

    def pre_update(self, item: Any) -> None:
        _save(rates.save_rate, item, grant_scoped=False)

    def pre_delete(self, item: Any) -> None:
        _save(rates.delete_rate, item, grant_scoped=False)


class RatePolicyView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(RatePolicy)
    class_permission_name = "RatePolicies"
    route_base = "/rate-policies"
    list_title = lazy_gettext("Grant rate policies")
    list_columns = ["grant", "method", "fixed_currency", "fixed_rate"]
    show_columns = add_columns = edit_columns = ["grant", "method", "fixed_currency", "fixed_rate", "notes"]
    search_columns = ["grant", "method"]
    label_columns = {"fixed_rate": lazy_gettext("Fixed rate (1 grant currency = rate × fixed currency)")}
    description_columns = {
        "method": lazy_gettext(
            "Fixed: one agreed rate (XCD is pegged at 2.70 per USD); transaction date: the rate of the "
            "day spent; period average: the mean rate of the reporting period."
        ),
    }

    def pre_add(self, item: Any) -> None:
        _save(rates.save_policy, item)

    def pre_update(self, item: Any) -> None:
        _save(rates.save_policy, item)


class VarianceRuleView(ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(VarianceRule)
    class_permission_name = "VarianceRules"
    route_base = "/variance-rules"
    list_title = lazy_gettext("Funders' variance rules")
    list_columns = ["funder", "cost_category", "basis", "direction", "threshold_percent", "description"]
    show_columns = add_columns = edit_columns = [
        "funder",
        "cost_category",
        "basis",
        "direction",
        "threshold_percent",
        "description",
    ]
    search_columns = ["funder", "cost_category", "basis"]
    label_columns = {
        "threshold_percent": lazy_gettext("Threshold (%)"),
        "cost_category": lazy_gettext("Cost category (empty: every category)"),
    }
    description_columns = {
        "basis": lazy_gettext(
            "Category budget: overspend beyond N% of the category's own budget; "
            "total budget: overspend beyond N% of the grant's total budget."
        ),
        "direction": lazy_gettext("over: flag overspending; under: flag under-spending; both: flag either."),
    }


class BudgetRevisionItemView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(BudgetRevisionItem)
    class_permission_name = "BudgetRevisions"
    route_base = "/budget-revision-items"
    parent_relation = None
    list_title = lazy_gettext("Moves of money")
    list_columns = ["revision", "period", "from_line", "to_line", "to_period", "amount"]
    show_columns = add_columns = edit_columns = ["revision", "period", "from_line", "to_line", "to_period", "amount"]
    search_columns = ["revision", "from_line", "to_line", "period"]
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "revision": _VISIBLE,
        "from_line": _VISIBLE,
        "to_line": _VISIBLE,
        "period": _VISIBLE,
        "to_period": _VISIBLE,
    }
    label_columns = {
        "period": lazy_gettext("From period"),
        "from_line": lazy_gettext("From line"),
        "to_line": lazy_gettext("To line"),
        "to_period": lazy_gettext("To period"),
    }
    description_columns = {
        "to_period": lazy_gettext(
            "Empty: the money stays in the same period. Choose another period to move money between periods "
            "(of the same line or another line)."
        ),
    }

    def pre_add(self, item: Any) -> None:
        _save(services.save_revision_item, item)

    def pre_update(self, item: Any) -> None:
        _save(services.save_revision_item, item)

    def pre_delete(self, item: Any) -> None:
        services.check_revision_item_deletable(item)


class BudgetRevisionView(GrantScopedViewMixin, ModelView):
    template_folder = TEMPLATES
    datamodel = SQLAInterface(BudgetRevision)
    class_permission_name = "BudgetRevisions"
    route_base = "/budget-revisions"
    list_title = lazy_gettext("Budget revisions")
    show_template = "budgets/revision_show.html"
    list_columns = ["grant", "title", "status", "submitted_at", "decided_at", "version_number"]
    show_columns = [
        "grant",
        "title",
        "justification",
        "status",
        "created_at",
        "submitted_at",
        "decided_at",
        "decided_by",
        "decision_note",
        "version_number",
    ]
    add_columns = ["grant", "title", "justification"]
    edit_columns = ["title", "justification"]
    search_columns = ["grant", "title", "status"]
    order_columns = ["title", "status", "submitted_at", "decided_at"]
    base_order = ("created_at", "desc")
    related_views = [BudgetRevisionItemView]
    label_columns = {"version_number": lazy_gettext("Budget version")}
    method_permission_name = {"submit": "edit", "decide": "edit"}

    def pre_update(self, item: Any) -> None:
        _save(services.update_revision, item)

    def pre_delete(self, item: Any) -> None:
        services.check_revision_deletable(item)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        revision = self.datamodel.get(pk, self._base_filters)
        if revision is None:
            abort(404)
        effects = services.revision_effects(db.session, revision)
        lines = {
            l.id: l for l in db.session.scalars(select(BudgetLine).where(BudgetLine.grant_id == revision.grant_id))
        }
        periods = {
            p.id: p
            for p in db.session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == revision.grant_id))
        }
        rows = [
            (lines[l].code, lines[l].description, periods[p].label, before, after)
            for (l, p), (before, after) in sorted(effects.items(), key=lambda kv: (lines[kv[0][0]].code, kv[0][1]))
        ]
        return self.render_template(
            self.show_template,
            pk=pk,
            title=str(revision),
            widgets=self._show(pk),
            related_views=self._related_views,
            revision=revision,
            effects=rows,
            notes=services.revision_rule_notes(db.session, revision),
            can_edit=self.appbuilder.sm.has_access("can_edit", "BudgetRevisions"),
        )

    @expose("/<int:pk>/submit", methods=["POST"])
    @has_access
    def submit(self, pk: int) -> Any:
        return self.record_action(pk, lambda r: services.submit_revision(db.session, r), _("Revision submitted"))

    @expose("/<int:pk>/decide", methods=["POST"])
    @has_access
    def decide(self, pk: int) -> Any:
        note = (request.form.get("note") or "").strip() or None
        if request.form.get("decision") == "approve":
            return self.record_action(
                pk,
                lambda r: services.approve_revision(db.session, r, by=username(), note=note),
                _("Revision approved: the planned amounts changed and a new budget version was recorded"),
            )
        if request.form.get("decision") == "reject":
            return self.record_action(
                pk, lambda r: services.reject_revision(db.session, r, by=username(), note=note), _("Revision rejected")
            )
        flash(_("decision: choose approve or reject"), "danger")
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))


class BudgetVersionView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(BudgetVersion)
    class_permission_name = "BudgetVersions"
    route_base = "/budget-versions"
    list_title = lazy_gettext("Budget versions")
    base_permissions = ["can_list", "can_show"]
    list_columns = ["grant", "number", "reason", "total", "created_at", "created_by"]
    show_columns = ["grant", "number", "reason", "total", "created_at", "created_by", "revision_id"]
    search_columns = ["grant", "number", "created_at"]
    base_order = ("created_at", "desc")
    label_columns = {
        "total": lazy_gettext("Total planned"),
        "revision_id": lazy_gettext("Made by budget revision number"),
    }


class BudgetImportView(ErrorReportMixin, GrantScopedViewMixin, ModelView):
    """Imports of actuals: upload → preview and mapping → import or a row-by-row error report."""

    template_folder = TEMPLATES
    datamodel = SQLAInterface(BudgetImport)
    error_report = staticmethod(imports.error_report_csv)
    class_permission_name = "BudgetImports"
    route_base = "/budget-imports"
    list_title = lazy_gettext("Imports of actuals")
    base_permissions = ["can_list", "can_show", "can_add", "can_delete", "can_download"]
    list_columns = [
        "grant",
        "filename",
        "status",
        "row_count",
        "imported_count",
        "unchanged_count",
        "error_count",
        "created_at",
        "created_by",
    ]
    show_template = "budgets/import_show.html"
    search_columns = ["grant", "filename", "status", "created_at"]
    base_order = ("created_at", "desc")
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "filename": lazy_gettext("File"),
        "status": lazy_gettext("Status"),
        "created_at": lazy_gettext("Uploaded"),
        "created_by": lazy_gettext("Uploaded by"),
        "imported_count": lazy_gettext("Imported"),
        "unchanged_count": lazy_gettext("Already there"),
        "error_count": lazy_gettext("Problems"),
        "row_count": lazy_gettext("Rows"),
    }
    method_permission_name = {"upload": "add", "add": "add", "confirm": "add", "errors_csv": "download"}

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        return redirect(url_for(f"{type(self).__name__}.upload"))

    @expose("/upload", methods=["GET", "POST"])
    @has_access
    def upload(self) -> Any:
        grants = visible_grants(db.session, g.user)
        if request.method == "POST":
            grant_id = request.form.get("grant_id", type=int)
            upload = request.files.get("file")
            if grant_id is None or not can_see_grant(db.session, g.user, grant_id):
                flash(_("grant: choose a grant you have access to"), "danger")
            elif upload is None or not upload.filename:
                flash(_("file: choose a CSV or XLSX file"), "danger")
            else:
                try:
                    staged = imports.stage_import(
                        db.session, db.session.get(Grant, grant_id), upload.filename, upload.read(), by=username()
                    )
                    db.session.commit()
                except DomainValidationError as exc:
                    db.session.rollback()
                    flash_domain_error(exc)
                else:
                    return redirect(url_for(f"{type(self).__name__}.show", pk=staged.id))
        return self.render_template(
            "budgets/import_upload.html",
            title=_("Import actuals"),
            grants=grants,
            selected=request.args.get("grant_id", type=int),
        )

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        staged = self.datamodel.get(pk, self._base_filters)
        if staged is None:
            abort(404)
        shown = None
        if staged.status != ImportStatus.imported and staged.content is not None:
            try:
                shown = imports.preview(staged, decimal_mark=request.args.get("decimal_mark"))
            except DomainValidationError as exc:
                flash_domain_error(exc)
        mapping = dict(staged.mapping or {})
        return self.render_template(
            self.show_template,
            title=_("Import: %(file)s", file=staged.filename),
            item=staged,
            preview=shown,
            problem_text=imports.problem_text,
            fields=imports.FIELDS,
            required=imports.REQUIRED,
            mapping=mapping,
            date_orders=imports.DATE_ORDERS,
            default_currency=mapping.get("_currency") or staged.grant.currency,
            date_order=mapping.get("_date_order") or "dayfirst",
            decimal_marks=DECIMAL_MARKS,
            can_add=self.appbuilder.sm.has_access("can_add", "BudgetImports"),
        )

    @expose("/<int:pk>/confirm", methods=["POST"])
    @has_access
    def confirm(self, pk: int) -> Any:
        staged = self.datamodel.get(pk, self._base_filters)
        if staged is None:
            abort(404)
        mapping = {field: request.form.get(f"map_{field}", "") for field in imports.FIELDS}
        if staged.status != ImportStatus.imported and staged.row_count > current_app.config["JOB_IMPORT_ROWS"]:
            # A large file is imported off the request (core.jobs); its page follows the job.
            params = {
                "import_id": staged.id,
                "mapping": mapping,
                "default_currency": request.form.get("default_currency"),
                "date_order": request.form.get("date_order", "dayfirst"),
                "decimal_mark": request.form.get("decimal_mark", "."),
            }
            return start_job(
                "actuals_import", staged.grant_id, params, redirect(url_for(f"{type(self).__name__}.show", pk=pk))
            )
        try:
            result = imports.run_import(
                db.session,
                staged,
                mapping,
                default_currency=request.form.get("default_currency"),
                date_order=request.form.get("date_order", "dayfirst"),
                decimal_mark=request.form.get("decimal_mark", "."),
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            if result.status == ImportStatus.imported:
                flash(
                    _(
                        "Imported %(imported)s expenditures; %(unchanged)s were already there",
                        imported=result.imported,
                        unchanged=result.unchanged,
                    ),
                    "success",
                )
            else:
                flash(
                    _(
                        "Nothing imported: %(count)s problems. Download the error report, fix the file and try again.",
                        count=len(result.errors),
                    ),
                    "danger",
                )
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))


class BudgetReportView(BaseView):
    """The budget-vs-actual page of each grant, with its charts."""

    template_folder = TEMPLATES
    route_base = "/budget-report"
    class_permission_name = "BudgetReports"
    method_permission_name = {"index": "list", "grant": "show"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self) -> Any:
        grants = visible_grants(db.session, g.user)
        totals = grant_totals(db.session, [grant.id for grant in grants])
        return self.render_template(
            "budgets/report_index.html", title=_("Budget vs actual"), grants=grants, totals=totals
        )

    @expose("/grant/<int:grant_id>")
    @has_access
    def grant(self, grant_id: int) -> Any:
        if not can_see_grant(db.session, g.user, grant_id):
            abort(404)
        grant = db.session.get(Grant, grant_id)
        by = request.args.get("by", "category")
        period_id = request.args.get("period_id", type=int)
        version = request.args.get("version", type=int)
        try:
            report = budget_vs_actual(db.session, grant_id, period_id, by=by, version=version)  # type: ignore[arg-type]
        except DomainValidationError as exc:
            flash_domain_error(exc)
            return redirect(url_for("BudgetReportView.grant", grant_id=grant_id))
        categories = (
            report
            if by == "category" and version is None
            else budget_vs_actual(db.session, grant_id, period_id, by="category")
        )
        # Each warning sits above the table of the figures it is about, and says which window that is.
        today = clock.today()
        flags = variance_flags(db.session, grant_id, period_id, as_of=today, window="period" if period_id else "whole")
        window = period_window(report_period(grant, period_id)) if period_id else _("whole grant")
        cumulative_period = period_id or period_as_of(db.session, grant_id, today)
        cumulative_report, cumulative_flags, cumulative_window = None, [], ""
        if cumulative_period is not None:
            cumulative_report = (
                report
                if period_id
                else budget_vs_actual(db.session, grant_id, cumulative_period, by=by, version=version)  # type: ignore[arg-type]
            )
            cumulative_flags = variance_flags(db.session, grant_id, cumulative_period, as_of=today)
            cumulative_window = _(
                "cumulative to %(date)s", date=day_label(report_period(grant, cumulative_period).end_date)
            )
        series = burn_series(db.session, grant_id)
        cumulative: list[tuple[date, Decimal]] = []
        monthly = monthly_actuals(db.session, grant_id)
        running = Decimal(0)
        for month, amount in monthly:
            running += amount
            year, mon = (int(x) for x in month.split("-"))
            cumulative.append((_month_end(year, mon, grant.end_date), running))
        sm = self.appbuilder.sm
        return self.render_template(
            "budgets/report.html",
            title=_("Budget vs actual — %(grant)s", grant=grant.reference),
            grant=grant,
            report=report,
            periods=grant.periods,
            versions=services.versions(db.session, grant_id),
            flags=flags,
            window=window,
            cumulative_report=cumulative_report,
            cumulative_flags=cumulative_flags,
            cumulative_window=cumulative_window,
            by=by,
            period_id=period_id,
            version=version,
            bars=charts.category_bars(categories, cumulative=True),
            burn=charts.burn_line(
                grant.start_date,
                grant.end_date,
                [(d, p) for d, p, _a in series],
                cumulative,
                grant.currency,
                clock.today(),
            ),
            can_see_lines=sm.has_access("can_list", "BudgetLines"),
            can_see_expenditures=sm.has_access("can_list", "Expenditures"),
            can_import=sm.has_access("can_add", "BudgetImports"),
        )


def report_period(grant: Grant, period_id: int) -> ReportingPeriod:
    return next(p for p in grant.periods if p.id == period_id)


def _month_end(year: int, month: int, cap: date) -> date:
    from dateutil.relativedelta import relativedelta

    return min(date(year, month, 1) + relativedelta(months=1, days=-1), cap)


def budget_panel(session: Any, grant: Grant, user: Any) -> Panel | None:
    """The grant page's budget panel: totals, burn, flags, a link to the full page."""
    if not current_app.appbuilder.sm.has_access("can_show", "BudgetReports"):
        return None
    summary = services.budget_summary(session, grant.id)
    total = summary["report"].total
    if not summary["lines"]:
        rows = [(_("Budget"), _("no budget lines yet"))]
        html = None
    else:
        rows = [
            (_("Budget"), f"{money(total.budget)} {grant.currency}"),
            (_("Spent to date"), f"{money(total.cumulative_actual)} {grant.currency}"),
            (_("Burn rate"), pct(total.burn_rate, 2)),
            (_("Remaining"), f"{money(total.remaining)} {grant.currency}"),
            (
                _("Needs donor approval"),
                _("%(count)s over the funder's variance rule", count=len(summary["flags"]))
                if summary["flags"]
                else _("nothing"),
            ),
        ]
        html = Markup(charts.mini_bar(total.cumulative_actual, total.budget))
    return Panel(
        title=_("Budget"),
        order=20,
        rows=rows,
        html=html,
        link=(_("Budget vs actual"), url_for("BudgetReportView.grant", grant_id=grant.id)),
    )


class OdooAccountMapView(GrantScopedViewMixin, ModelView):
    """Which budget line each Odoo general (expense) account's spending counts against, per grant."""

    datamodel = SQLAInterface(OdooAccountMap)
    class_permission_name = "OdooAccountMaps"
    route_base = "/odoo-account-maps"
    # Both the grant and the line choices are limited to visible grants (set here, not by the mixin).
    parent_relation = None
    list_title = lazy_gettext("Odoo account mappings")
    list_columns = ["grant", "odoo_account_id", "odoo_account_label", "line"]
    show_columns = add_columns = ["grant", "odoo_account_id", "odoo_account_label", "line"]
    edit_columns = ["odoo_account_id", "odoo_account_label", "line"]
    search_columns = ["grant", "odoo_account_id", "odoo_account_label"]
    order_columns = ["odoo_account_id", "odoo_account_label"]
    base_order = ("odoo_account_id", "asc")
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "grant": [["id", FilterVisibleGrants, lambda: None]],
        "line": _VISIBLE,
    }
    search_form_query_rel_fields = {"grant": [["id", FilterVisibleGrants, lambda: None]]}
    label_columns = {
        "odoo_account_id": lazy_gettext("Odoo account id"),
        "odoo_account_label": lazy_gettext("Odoo account"),
        "line": lazy_gettext("Budget line"),
    }
    description_columns = {
        "odoo_account_id": lazy_gettext(
            "The general (expense) account's id in Odoo, as the last sync listed it under unmapped accounts."
        ),
        "line": lazy_gettext("A budget line of the same grant."),
    }

    def _before_save(self, item: Any) -> None:
        services.derive_grant(item)
        super()._before_save(item)


class OdooLinkView(GrantScopedViewMixin, ModelView):
    """Each grant's analytic account in Odoo, its account mappings, and a Sync now button."""

    template_folder = TEMPLATES
    datamodel = SQLAInterface(OdooLink)
    class_permission_name = "OdooLinks"
    route_base = "/odoo-links"
    list_title = lazy_gettext("Odoo links")
    show_template = "budgets/odoo_link_show.html"
    list_columns = [
        "grant",
        "analytic_account_id",
        "analytic_account_name",
        "analytic_plan",
        "company_currency",
        "enabled",
        "last_sync_at",
        "last_status",
    ]
    show_columns = [
        "grant",
        "analytic_account_id",
        "analytic_account_name",
        "analytic_plan",
        "company_currency",
        "enabled",
        "last_sync_at",
        "last_status",
        "last_write_date",
    ]
    add_columns = [
        "grant",
        "analytic_account_id",
        "analytic_account_name",
        "analytic_plan",
        "company_currency",
        "amount_basis",
        "removal_limit_percent",
        "enabled",
    ]
    edit_columns = [
        "analytic_account_id",
        "analytic_account_name",
        "analytic_plan",
        "company_currency",
        "amount_basis",
        "removal_limit_percent",
        "enabled",
    ]
    search_columns = ["grant", "enabled", "last_status"]
    order_columns = ["last_sync_at", "last_status", "analytic_account_id"]
    validators_columns = {"company_currency": [currency_code]}
    label_columns = {
        "analytic_account_id": lazy_gettext("Odoo analytic account id"),
        "analytic_account_name": lazy_gettext("Analytic account"),
        "analytic_plan": lazy_gettext("Analytic plan"),
        "company_currency": lazy_gettext("Odoo company currency"),
        "last_sync_at": lazy_gettext("Last sync"),
        "last_status": lazy_gettext("Last result"),
        "last_write_date": lazy_gettext("Changes read up to (Odoo time, UTC)"),
        "amount_basis": lazy_gettext("Bills in another currency"),
        "removal_limit_percent": lazy_gettext("Ask before removing more than (%)"),
    }
    description_columns = {
        "analytic_account_id": lazy_gettext(
            "The id of the grant's analytic account in Odoo (Accounting → Analytic accounts). "
            "Checked against Odoo when saved, and before every sync."
        ),
        "analytic_plan": lazy_gettext(
            "The analytic plan the account belongs to, e.g. Grants. Empty: Odoo's Projects plan."
        ),
        "company_currency": lazy_gettext("The currency of Odoo's analytic amounts (the company's currency), e.g. XCD."),
        "amount_basis": lazy_gettext(
            "Which amount of a bill in another currency (e.g. a EUR invoice) the grant's rate policy "
            "converts: Odoo's amount in the company currency, or the bill's own amount and currency."
        ),
        "removal_limit_percent": lazy_gettext(
            "A sync that would remove more than this share of the spending imported from Odoo "
            "stops and asks for a confirmation first."
        ),
    }
    method_permission_name = {"sync": "edit", "map_account": "edit", "dismiss_account": "edit"}
    # FAB would mark the non-nullable flag "required", and a required checkbox cannot be unticked.
    add_form_extra_fields = edit_form_extra_fields = {
        "enabled": BooleanField(
            lazy_gettext("Enabled"), default=True, description=lazy_gettext("Only enabled links are synced.")
        ),
        "amount_basis": SelectField(
            lazy_gettext("Bills in another currency"),
            choices=[
                ("company", lazy_gettext("Convert Odoo's amount in the company currency")),
                ("bill", lazy_gettext("Convert the bill's own amount and currency")),
            ],
            default=OdooAmountBasis.company,
            coerce=lambda value: OdooAmountBasis(getattr(value, "value", value)),
            description=lazy_gettext("Which amount of a bill in another currency the grant's rate policy converts."),
        ),
        "removal_limit_percent": IntegerField(
            lazy_gettext("Ask before removing more than (%)"),
            default=25,
            validators=[
                Optional(),
                NumberRange(0, 100, message=lazy_gettext("must be a percentage between 0 and 100")),
            ],
            description=lazy_gettext(
                "A sync that would remove more than this share of the spending imported from Odoo "
                "stops and asks for a confirmation first."
            ),
        ),
    }

    def _before_save(self, item: Any) -> None:
        super()._before_save(item)
        try:
            sentence = odoo_sync.save_link_checked(db.session, item, _odoo_env())
            if item.enabled and item.account_checked_at is not None:
                removed = odoo_sync.remove_demo_rows(db.session, item)
                if removed:
                    sentence += " " + _("The demo's %(count)s stand-in Odoo expenditures were removed.", count=removed)
        except DomainValidationError:
            db.session.rollback()
            raise
        flash(sentence, "info")

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        link = self.datamodel.get(pk, self._base_filters)
        if link is None:
            abort(404)
        sm = self.appbuilder.sm
        mappings = list(
            db.session.scalars(
                select(OdooAccountMap)
                .where(OdooAccountMap.grant_id == link.grant_id)
                .order_by(OdooAccountMap.odoo_account_id)
            )
        )
        lines = list(
            db.session.scalars(select(BudgetLine).where(BudgetLine.grant_id == link.grant_id).order_by(BudgetLine.code))
        )
        return self.render_template(
            self.show_template,
            pk=pk,
            title=_("Odoo link — %(grant)s", grant=link.grant.reference),
            widgets=self._show(pk),
            related_views=self._related_views,
            link=link,
            mappings=mappings,
            lines=lines,
            problem=odoo_sync.configuration_problem(_odoo_env()),
            can_sync=sm.has_access("can_edit", "OdooLinks"),
            can_map=sm.has_access("can_add", "OdooAccountMaps") and sm.has_access("can_edit", "OdooAccountMaps"),
            can_see_maps=sm.has_access("can_list", "OdooAccountMaps"),
        )

    @expose("/<int:pk>/sync", methods=["POST"])
    @has_access
    def sync(self, pk: int) -> Any:
        link = self.datamodel.get(pk, self._base_filters)
        if link is None:
            abort(404)
        back = redirect(url_for(f"{type(self).__name__}.show", pk=pk))
        if not link.enabled:
            flash(_("This link is switched off: edit it and tick 'enabled' to sync it."), "warning")
            return back
        problem = odoo_sync.configuration_problem(_odoo_env())
        if problem:
            flash(_("Odoo sync failed, nothing saved: %(problem)s", problem=problem), "danger")
            return back
        # Off the request (core.jobs): the job's page follows it; one job per grant at a time.
        params = {
            "link_id": link.id,
            "full": request.form.get("full") == "1",
            "confirm_removals": request.form.get("confirm_removals") == "1",
        }
        return start_job("odoo_sync", link.grant_id, params, back)

    @expose("/<int:pk>/dismiss", methods=["POST"])
    @has_access
    def dismiss_account(self, pk: int) -> Any:
        """Leave an unmapped account out of the list (its spending stays not imported), or bring it back."""
        link = self.datamodel.get(pk, self._base_filters)
        account_id = request.form.get("odoo_account_id", type=int)
        if link is None or account_id is None:
            abort(404)
        dismissed = request.form.get("restore") != "1"
        odoo_sync.dismiss_account(db.session, link, account_id, dismissed=dismissed)
        db.session.commit()
        flash(
            _("Odoo account %(account)s is no longer listed; its spending is still not imported.", account=account_id)
            if dismissed
            else _("Odoo account %(account)s is listed again with the unmapped accounts.", account=account_id),
            "success",
        )
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))

    @expose("/<int:pk>/map", methods=["POST"])
    @has_access
    def map_account(self, pk: int) -> Any:
        """Map an account the last sync reported as unmapped, straight from the link's page."""
        link = self.datamodel.get(pk, self._base_filters)
        if link is None or not self.appbuilder.sm.has_access("can_add", "OdooAccountMaps"):
            abort(404)
        account_id = request.form.get("odoo_account_id", type=int)
        line = db.session.get(BudgetLine, request.form.get("line_id", type=int) or 0)
        if account_id is None or line is None:
            flash(_("line: choose the budget line this account's spending counts against"), "danger")
        else:
            try:
                odoo_sync.map_account(
                    db.session,
                    link.grant,
                    odoo_account_id=account_id,
                    line=line,
                    label=(request.form.get("label") or "").strip() or None,
                )
                db.session.commit()
            except DomainValidationError as exc:
                db.session.rollback()
                flash_domain_error(exc)
            else:
                flash(
                    _(
                        "Mapped Odoo account %(account)s to %(line)s; the next sync reads every line again "
                        "to import its spending.",
                        account=account_id,
                        line=line.code,
                    ),
                    "success",
                )
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))


def odoo_panel(session: Any, grant: Grant, user: Any) -> Panel | None:
    """The grant page's Odoo panel: where the spending comes from and how the last sync went."""
    if not current_app.appbuilder.sm.has_access("can_show", "OdooLinks"):
        return None
    link = odoo_sync.link_for_grant(session, grant.id)
    if link is None:
        return None
    problem = odoo_sync.configuration_problem(_odoo_env())
    rows: list[tuple[str, Any]] = [
        (_("Analytic account"), f"{link.analytic_account_id} {link.analytic_account_name or ''}".strip()),
        (_("Sync"), _("enabled") if link.enabled else _("switched off")),
        (_("Connection"), _("not configured") if problem else _("configured")),
        (_("Last result"), label(link.last_status) if link.last_status else _("never")),
        (_("Last sync"), moment(link.last_sync_at) if link.last_sync_at else _("never")),
    ]
    if link.last_message:
        message = shown(link.last_message)  # stored in English, shown in the reader's language
        rows.append((_("Message"), message if len(message) <= 300 else message[:300] + "…"))
    return Panel(title="Odoo", order=25, rows=rows, link=(_("Odoo link"), url_for("OdooLinkView.show", pk=link.id)))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(BudgetReportView, N_("Budget vs actual"), icon="fa-bar-chart", category=N_("Budgets"))
    appbuilder.add_view(BudgetLineView, N_("Budget lines"), icon="fa-list", category="Budgets")
    appbuilder.add_view(ExpenditureView, N_("Expenditures"), icon="fa-money", category="Budgets")
    appbuilder.add_view(BudgetImportView, N_("Import actuals"), icon="fa-upload", category="Budgets")
    appbuilder.add_view(BudgetPlanImportView, N_("Import a budget"), icon="fa-upload", category="Budgets")
    appbuilder.add_view(BudgetGridView, N_("Budget grid"), icon="fa-table", category="Budgets")
    appbuilder.add_view(RateImportView, N_("Import exchange rates"), icon="fa-upload", category="Budgets")
    appbuilder.add_view(BudgetRevisionView, N_("Budget revisions"), icon="fa-exchange", category="Budgets")
    appbuilder.add_view(BudgetVersionView, N_("Budget versions"), icon="fa-history", category="Budgets")
    appbuilder.add_view(ExchangeRateView, N_("Exchange rates"), icon="fa-line-chart", category="Budgets")
    appbuilder.add_view(RatePolicyView, N_("Rate policies"), icon="fa-balance-scale", category="Budgets")
    appbuilder.add_view(VarianceRuleView, N_("Variance rules"), icon="fa-exclamation-triangle", category="Budgets")
    appbuilder.add_view(OdooLinkView, N_("Odoo links"), icon="fa-plug", category="Budgets")
    appbuilder.add_view(OdooAccountMapView, N_("Odoo account mappings"), icon="fa-random", category="Budgets")
    appbuilder.add_view(SharedCostView, N_("Shared costs"), icon="fa-pie-chart", category="Budgets")
    appbuilder.add_view(AllocationKeyView, N_("Allocation keys"), icon="fa-key", category="Budgets")
    appbuilder.add_view_no_menu(BudgetAllocationView)
    appbuilder.add_view_no_menu(BudgetRevisionItemView)
    register_panel(budget_panel)
    register_panel(odoo_panel)
