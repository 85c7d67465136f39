"""Flask-AppBuilder views for funders, grants, reporting periods and memberships."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from flask import flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, ModelView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access

from core import clock
from core.errors import DomainValidationError
from core.extensions import db
from core.forms import country_codes, currency_code, non_negative, not_before
from core.periods import PeriodLength
from grants import services
from grants.access import FilterUsersOfVisibleGrants, GrantScopedViewMixin, ValidatedViewMixin, flash_domain_error
from grants.models import Funder, Grant, GrantMembership, PeriodStatus, ReportingPeriod
from grants.page import Panel, grant_panels, register_panel


class SavedByOperation:
    """FAB's add and edit forms save through the domain's ``save`` operation; FAB then commits once."""

    save: Any = None  # staticmethod(services.save_...)

    def pre_add(self, item: Any) -> None:
        super().pre_add(item)  # type: ignore[misc]
        self._save(item)

    def pre_update(self, item: Any) -> None:
        super().pre_update(item)  # type: ignore[misc]
        self._save(item)

    def _save(self, item: Any) -> None:
        try:
            self.save(db.session, item)
        except Exception:
            db.session.rollback()  # so the form page can still render
            raise


class FunderView(SavedByOperation, ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(Funder)
    class_permission_name = "Funders"
    route_base = "/funders"
    list_title = "Funders"
    list_columns = ["name", "code", "default_currency"]
    show_columns = ["name", "code", "default_currency", "cost_categories", "notes"]
    add_columns = edit_columns = ["name", "code", "default_currency", "notes"]
    search_columns = ["name", "code", "default_currency"]
    validators_columns = {"default_currency": [currency_code]}
    label_columns = {"default_currency": "Default currency (ISO 4217)"}
    save = staticmethod(services.save_funder)


class ReportingPeriodView(SavedByOperation, GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(ReportingPeriod)
    class_permission_name = "ReportingPeriods"
    route_base = "/periods"
    list_title = "Reporting periods"
    list_columns = ["grant", "label", "start_date", "end_date", "report_due", "status"]
    show_columns = ["grant", "label", "start_date", "end_date", "report_due", "status"]
    add_columns = edit_columns = ["grant", "label", "start_date", "end_date", "report_due", "status"]
    search_columns = ["grant", "label", "status", "report_due"]
    order_columns = ["label", "start_date", "end_date", "report_due"]
    base_order = ("start_date", "asc")
    validators_columns = {
        "end_date": [not_before("start_date", "start date")],
        "report_due": [not_before("end_date", "end of the period")],
    }
    label_columns = {"report_due": "Report due"}
    save = staticmethod(services.save_period)


class GrantMembershipView(SavedByOperation, GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(GrantMembership)
    class_permission_name = "GrantMemberships"
    route_base = "/memberships"
    list_title = "Grant members"
    # Search by user lists only people on the grants one can see, not every account.
    search_form_query_rel_fields = {"user": [["id", FilterUsersOfVisibleGrants, lambda: None]]}
    list_columns = ["grant", "user", "role"]
    add_columns = edit_columns = show_columns = ["grant", "user", "role"]
    search_columns = ["grant", "user", "role"]
    save = staticmethod(services.save_membership)


class GrantView(SavedByOperation, GrantScopedViewMixin, ModelView):
    """The grant page: details, periods, members, and a panel from each domain."""

    grant_column = "id"
    parent_relation = None
    datamodel = SQLAInterface(Grant)
    class_permission_name = "Grants"
    route_base = "/grants"
    list_title = "Grants"
    show_template = "grant_show.html"
    list_columns = ["reference", "title", "funder", "currency", "amount", "start_date", "end_date", "status"]
    show_fieldsets = [
        ("Agreement", {"fields": ["reference", "title", "funder", "recipient", "status", "countries"]}),
        ("Money and dates", {"fields": ["currency", "amount", "start_date", "end_date"]}),
        ("Notes", {"fields": ["description"], "expanded": False}),
    ]
    add_columns = edit_columns = [
        "funder",
        "reference",
        "title",
        "recipient",
        "currency",
        "amount",
        "start_date",
        "end_date",
        "status",
        "countries",
        "description",
    ]
    search_columns = ["reference", "title", "funder", "status", "currency", "start_date", "end_date"]
    order_columns = ["reference", "title", "amount", "start_date", "end_date", "status"]
    base_order = ("start_date", "desc")
    related_views = [ReportingPeriodView, GrantMembershipView]
    validators_columns = {
        "currency": [currency_code],
        "amount": [non_negative],
        "end_date": [not_before("start_date", "start date")],
        "countries": [country_codes],
    }
    label_columns = {"countries": "Countries (ISO codes, e.g. LC,GD)", "currency": "Currency (ISO 4217)"}
    formatters_columns = {"amount": lambda amount: f"{amount:,.2f}"}
    # generate_periods changes records: it needs can_edit, like the edit form.
    method_permission_name = {"generate_periods": "edit"}
    save = staticmethod(services.save_grant)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        grant = self.datamodel.get(pk, self._base_filters)
        if grant is None:
            return self.render_template("grant_missing.html"), 404
        widgets = self._show(pk)
        return self.render_template(
            self.show_template,
            pk=pk,
            title=f"{grant.reference} — {grant.title}",
            widgets=widgets,
            related_views=self._related_views,
            allowed_related={v.__class__.__name__ for v in self._related_views if self.related_view_allowed(v)},
            grant=grant,
            panels=grant_panels(db.session, grant, g.user),
            can_edit=self.appbuilder.sm.has_access("can_edit", "Grants"),
            length_choices=[(p.value, p.value) for p in PeriodLength],
        )

    @expose("/<int:pk>/generate-periods", methods=["POST"])
    @has_access
    def generate_periods(self, pk: int) -> Any:
        """Create the grant's periods from a rule: length and days from period end to report."""
        grant = self.datamodel.get(pk, self._base_filters)
        if grant is None:
            return self.render_template("grant_missing.html"), 404
        try:
            due_days = int(request.form.get("due_days", ""))
        except ValueError:
            flash("due_days: enter a whole number of days, e.g. 45", "danger")
            return redirect(url_for("GrantView.show", pk=pk))
        try:
            created = services.generate_periods(
                db.session,
                grant,
                request.form.get("length", ""),
                due_days,
                replace_open=request.form.get("replace") == "1",
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        except ValueError:
            db.session.rollback()
            flash("length: choose month, quarter, semester or year", "danger")
        else:
            flash(f"Created {len(created)} reporting periods for {grant.reference}", "success")
        return redirect(url_for("GrantView.show", pk=pk))


def reporting_panel(session: Any, grant: Grant, user: Any) -> Panel:
    """Where the grant stands on reporting: the next report due and what was accepted."""
    today = clock.today()
    upcoming = [p for p in grant.periods if p.report_due and p.status == PeriodStatus.open]
    rows: list[tuple[str, Any]] = [("Periods", ", ".join(p.label for p in grant.periods) or "none yet")]
    if upcoming:
        # Every upcoming period has a report_due date (filtered above).
        nearest = min(upcoming, key=lambda p: cast(date, p.report_due))
        days = (cast(date, nearest.report_due) - today).days
        when = f"in {days} days" if days >= 0 else f"{-days} days overdue"
        rows.append(("Next report", f"{nearest.label} due {nearest.report_due} ({when})"))
    done = [p.label for p in grant.periods if p.status != PeriodStatus.open]
    rows.append(("Submitted or accepted", ", ".join(done) or "none yet"))
    rows.append(("Members", str(len(grant.memberships))))
    return Panel(title="Reporting", order=10, rows=rows)


def register(appbuilder: AppBuilder) -> None:
    register_panel(reporting_panel)
    appbuilder.add_view(GrantView, "Grants", icon="fa-folder-open", category="Grants")
    appbuilder.add_view(ReportingPeriodView, "Reporting periods", icon="fa-calendar", category="Grants")
    appbuilder.add_view(GrantMembershipView, "Memberships", icon="fa-users", category="Grants")
    appbuilder.add_view(FunderView, "Funders", icon="fa-university", category="Grants")
