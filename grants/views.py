"""Flask-AppBuilder views for funders, grants, reporting periods and memberships."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, cast

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, ModelView, expose
from flask_appbuilder.fieldwidgets import Select2ManyWidget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from wtforms import SelectField, SelectMultipleField

from core import clock
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_, current_language, day, lazy_gettext, number
from core.formatting import gettext as _
from core.forms import country_codes, currency_code, non_negative, not_before
from core.periods import PeriodLength
from grants import services
from grants.access import (
    FilterUsersOfVisibleGrants,
    GrantScopedViewMixin,
    ValidatedViewMixin,
    flash_domain_error,
    visible_funders_filter,
)
from grants.closing.views import closing_link, closing_links, may_close_periods
from grants.deadlines.services import describe_days
from grants.models import (
    INDIRECT_BASE_LABELS,
    Funder,
    Grant,
    GrantMembership,
    IndirectBase,
    PeriodStatus,
    ReportingPeriod,
)
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


_PRESET_LABELS = {
    "global_fund": lazy_gettext("Global Fund cost groupings"),
    "generic": lazy_gettext("Generic categories"),
}
# How the indirect cost bases read on the form and the grant page.
_BASE_LABELS = {
    IndirectBase.total_direct: lazy_gettext("Total direct costs"),
    IndirectBase.modified_direct: lazy_gettext("Modified direct costs"),
}


def _categories_text(categories: Any) -> str:
    if not categories:
        return _("none yet: edit the funder to add them")
    return "; ".join(_category_words(c) for c in categories)


def _category_words(category: Any) -> str:
    """ "EQUIP Equipment", or "EQUIP Equipment (retired)" in the reader's language."""
    if category.get("retired"):
        return _("%(code)s %(name)s (retired)", code=category.get("code"), name=category.get("name"))
    return f"{category.get('code')} {category.get('name')}"


def _category_rows(categories: Any) -> list[dict[str, Any]]:
    return [
        {"code": str(c.get("code")), "name": str(c.get("name")), "retired": bool(c.get("retired")), "saved": True}
        for c in categories or []
    ]


def _errors_by_form_row(errors: dict[str, list[str]], rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The service numbers the non-empty rows it was given; the form numbers every row shown."""
    kept = [i for i, r in enumerate(rows) if r["code"] or r["name"]]
    result: dict[str, list[str]] = {}
    for key, messages in errors.items():
        if key.startswith("row ") and key[4:].isdigit() and int(key[4:]) - 1 < len(kept):
            result[str(kept[int(key[4:]) - 1])] = messages
        else:
            result.setdefault("_", []).extend(messages)
    return result


class FunderView(SavedByOperation, ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(Funder)
    class_permission_name = "Funders"
    route_base = "/funders"
    list_title = lazy_gettext("Funders")
    add_title = lazy_gettext("Add a funder")
    edit_title = lazy_gettext("Edit a funder")
    show_title = lazy_gettext("Funder")
    list_columns = ["name", "code", "default_currency"]
    show_columns = ["name", "code", "default_currency", "cost_categories", "notes"]
    add_columns = edit_columns = ["name", "code", "default_currency", "indirect_cap_percent", "notes"]
    search_columns = ["name", "code", "default_currency"]
    base_filters = visible_funders_filter()
    validators_columns = {"default_currency": [currency_code]}
    label_columns = {
        "name": lazy_gettext("Name"),
        "code": lazy_gettext("Code"),
        "notes": lazy_gettext("Notes"),
        "default_currency": lazy_gettext("Default currency (ISO 4217)"),
        "indirect_cap_percent": lazy_gettext("Cap on indirect costs (%)"),
    }
    save = staticmethod(services.save_funder)
    # Cost categories are edited in a table on the edit page (no JSON to type), posted to cost_categories.
    template_folder = str(Path(__file__).resolve().parent / "templates")
    edit_template = "grants/funder_edit.html"
    formatters_columns = {"cost_categories": _categories_text}
    label_columns["cost_categories"] = lazy_gettext("Cost categories")
    method_permission_name = {"cost_categories": "edit"}

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: Any) -> Any:
        widgets = self._edit(pk)
        if not widgets:
            return self.post_edit_redirect()
        funder = self.datamodel.get(pk, self._base_filters)
        return self.render_template(
            self.edit_template,
            title=self.edit_title,
            widgets=widgets,
            related_views=self._related_views,
            funder=funder,
            rows=_category_rows(funder.cost_categories),
            presets=_PRESET_LABELS,
        )

    @expose("/<int:pk>/cost-categories", methods=["GET", "POST"])
    @has_access
    def cost_categories(self, pk: int) -> Any:
        funder = self.datamodel.get(pk, self._base_filters)
        if funder is None:
            abort(404)
        rows = _category_rows(funder.cost_categories)
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            count = request.form.get("rows", type=int) or 0
            rows = [
                {
                    "code": (request.form.get(f"code-{i}") or "").strip(),
                    "name": (request.form.get(f"name-{i}") or "").strip(),
                    "retired": request.form.get(f"retired-{i}") == "1",
                    "saved": request.form.get(f"saved-{i}") == "1",
                }
                for i in range(min(count, 500))
            ]
            try:
                services.set_cost_categories(
                    db.session,
                    funder,
                    [r for r in rows if r["code"] or r["name"]],
                    preset=request.form.get("preset") or None,
                )
                db.session.commit()
            except DomainValidationError as exc:
                db.session.rollback()
                errors = _errors_by_form_row(exc.errors, rows)
                flash(_("Cost categories not saved: see the messages next to the rows."), "danger")
            else:
                flash(
                    _(
                        "Saved %(count)s cost categories of %(funder)s",
                        count=len(funder.cost_categories),
                        funder=funder.name,
                    ),
                    "success",
                )
                return redirect(url_for("FunderView.edit", pk=pk))
        return self.render_template(
            "grants/funder_categories.html",
            title=_("Cost categories — %(funder)s", funder=funder.name),
            funder=funder,
            rows=rows + [{"code": "", "name": "", "retired": False, "saved": False}],
            errors=errors,
            presets=_PRESET_LABELS,
        )


class ReportingPeriodView(SavedByOperation, GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(ReportingPeriod)
    class_permission_name = "ReportingPeriods"
    route_base = "/periods"
    list_title = lazy_gettext("Reporting periods")
    add_title = lazy_gettext("Add a reporting period")
    edit_title = lazy_gettext("Edit a reporting period")
    show_title = lazy_gettext("Reporting period")
    list_columns = ["grant", "label", "start_date", "end_date", "report_due", "status", "closing"]
    show_columns = ["grant", "label", "start_date", "end_date", "report_due", "status", "closing"]
    add_columns = edit_columns = ["grant", "label", "start_date", "end_date", "report_due", "status"]
    search_columns = ["grant", "label", "status", "report_due"]
    order_columns = ["label", "start_date", "end_date", "report_due"]
    base_order = ("start_date", "asc")
    validators_columns = {
        "end_date": [not_before("start_date", lazy_gettext("start date"))],
        "report_due": [not_before("end_date", lazy_gettext("end of the period"))],
    }
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "label": lazy_gettext("Label"),
        "start_date": lazy_gettext("Start date"),
        "end_date": lazy_gettext("End date"),
        "report_due": lazy_gettext("Report due"),
        "status": lazy_gettext("Status"),
        "closing": lazy_gettext("Checklist and report"),
    }
    formatters_columns = {"closing": closing_link}
    save = staticmethod(services.save_period)


class GrantMembershipView(SavedByOperation, GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(GrantMembership)
    class_permission_name = "GrantMemberships"
    route_base = "/memberships"
    list_title = lazy_gettext("Grant members")
    add_title = lazy_gettext("Add a grant member")
    edit_title = lazy_gettext("Edit a grant member")
    show_title = lazy_gettext("Grant member")
    # Search by user lists only people on the grants one can see, not every account.
    search_form_query_rel_fields = {"user": [["id", FilterUsersOfVisibleGrants, lambda: None]]}
    list_columns = ["grant", "user", "role"]
    add_columns = edit_columns = show_columns = ["grant", "user", "role"]
    search_columns = ["grant", "user", "role"]
    label_columns = {"grant": lazy_gettext("Grant"), "user": lazy_gettext("User"), "role": lazy_gettext("Role")}
    save = staticmethod(services.save_membership)


def _funders_for_categories() -> list[Funder]:
    """The funder whose categories a grant form offers: the one chosen in the posted form, the grant's own
    (edit page), or every funder the user sees (a new grant before a funder is chosen)."""
    posted = request.form.get("funder", type=int) if request.method == "POST" else None
    if posted is not None:
        funder = db.session.get(Funder, posted)
        return [funder] if funder is not None else []
    pk = (request.view_args or {}).get("pk")
    if pk is not None and str(pk).isdigit():
        grant = db.session.get(Grant, int(pk))
        if grant is not None:
            return [grant.funder]
    query = db.session.query(Funder).order_by(Funder.name)
    for column, flt, _value in visible_funders_filter():
        query = flt(column, SQLAInterface(Funder)).apply(query, None)
    return list(query)


def excluded_category_choices() -> list[tuple[str, str]]:
    """The cost categories a grant may leave out of its indirect cost base, in words ("EQUIP Equipment")."""
    funders = _funders_for_categories()
    choices: dict[str, str] = {}
    for funder in funders:
        for category in funder.cost_categories or []:
            code = str(category.get("code"))
            label = _category_words(category)
            if len(funders) > 1:
                label += f" — {funder.name}"
            choices.setdefault(code, label)
    return list(choices.items())


def _excluded_text(codes: Any) -> str:
    """The grant page's list of categories left out of the indirect cost base, with their names."""
    if not codes:
        return _("none")
    names = dict(excluded_category_choices())
    return ", ".join(names.get(str(code), str(code)) for code in codes)


def _base_choices() -> list[tuple[str, str]]:
    return [(base.value, str(_BASE_LABELS[base])) for base in INDIRECT_BASE_LABELS]


def _as_base(value: Any) -> IndirectBase | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, IndirectBase) else IndirectBase(value)


class ExcludedCategoriesField(SelectMultipleField):
    """The funder's cost categories as a multi-select; an empty choice is no category left out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("choices", excluded_category_choices)
        kwargs.setdefault("widget", Select2ManyWidget())
        super().__init__(*args, **kwargs)

    def pre_validate(self, form: Any) -> None:
        # Categories of another funder are refused by the grant's own rule, naming them; not "not a valid choice".
        return None

    def process_data(self, value: Any) -> None:
        self.data = list(value or [])


class GrantView(SavedByOperation, GrantScopedViewMixin, ModelView):
    """The grant page: details, periods, members, and a panel from each domain."""

    grant_column = "id"
    parent_relation = None
    datamodel = SQLAInterface(Grant)
    class_permission_name = "Grants"
    route_base = "/grants"
    list_title = lazy_gettext("Grants")
    add_title = lazy_gettext("Add a grant")
    edit_title = lazy_gettext("Edit a grant")
    show_title = lazy_gettext("Grant")
    show_template = "grant_show.html"
    list_columns = ["reference", "title", "funder", "currency", "amount", "start_date", "end_date", "status"]
    show_fieldsets = [
        (lazy_gettext("Agreement"), {"fields": ["reference", "title", "funder", "recipient", "status", "countries"]}),
        (lazy_gettext("Money and dates"), {"fields": ["currency", "amount", "start_date", "end_date"]}),
        (
            lazy_gettext("Indirect costs"),
            {"fields": ["indirect_rate", "indirect_base", "indirect_excluded"], "expanded": False},
        ),
        (lazy_gettext("Notes"), {"fields": ["description"], "expanded": False}),
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
        "indirect_rate",
        "indirect_base",
        "indirect_excluded",
        "description",
    ]
    add_form_extra_fields = edit_form_extra_fields = {
        "indirect_base": SelectField(
            lazy_gettext("Indirect costs are charged on"),
            choices=_base_choices,
            coerce=_as_base,
            default=IndirectBase.total_direct,
            description=lazy_gettext(
                "Total direct costs: every direct cost; modified direct costs: direct costs less the "
                "categories left out below."
            ),
        ),
        "indirect_excluded": ExcludedCategoriesField(
            lazy_gettext("Cost categories left out of the base"),
            description=lazy_gettext(
                "Only for a modified direct cost base: the funder's categories indirect costs are not charged on "
                "(e.g. equipment, sub-grants)."
            ),
        ),
    }
    search_columns = ["reference", "title", "funder", "status", "currency", "start_date", "end_date"]
    order_columns = ["reference", "title", "amount", "start_date", "end_date", "status"]
    base_order = ("start_date", "desc")
    related_views = [ReportingPeriodView, GrantMembershipView]
    validators_columns = {
        "currency": [currency_code],
        "amount": [non_negative],
        "end_date": [not_before("start_date", lazy_gettext("start date"))],
        "countries": [country_codes],
    }
    label_columns = {
        "reference": lazy_gettext("Reference"),
        "title": lazy_gettext("Title"),
        "funder": lazy_gettext("Funder"),
        "recipient": lazy_gettext("Recipient"),
        "status": lazy_gettext("Status"),
        "amount": lazy_gettext("Amount"),
        "start_date": lazy_gettext("Start date"),
        "end_date": lazy_gettext("End date"),
        "description": lazy_gettext("Description"),
        "countries": lazy_gettext("Countries (ISO codes, e.g. LC,GD)"),
        "currency": lazy_gettext("Currency (ISO 4217)"),
        "indirect_rate": lazy_gettext("Indirect cost rate (%)"),
        "indirect_base": lazy_gettext("Indirect costs are charged on"),
        "indirect_excluded": lazy_gettext("Cost categories left out of the base"),
    }
    description_columns = {
        "indirect_rate": lazy_gettext("Empty: the grant charges no indirect costs. Must not exceed the funder's cap."),
        "indirect_base": lazy_gettext(
            "Total direct costs: every direct cost; modified direct costs: direct costs less the "
            "categories left out below."
        ),
    }
    formatters_columns = {
        "amount": lambda amount: number(amount, 2),
        "indirect_base": lambda base: str(_BASE_LABELS.get(base, _BASE_LABELS[IndirectBase.total_direct])),
        "indirect_excluded": _excluded_text,
    }
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
            flash(_("due_days: enter a whole number of days, e.g. 45"), "danger")
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
            flash(_("length: choose month, quarter, semester or year"), "danger")
        else:
            flash(
                _("Created %(count)s reporting periods for %(grant)s", count=len(created), grant=grant.reference),
                "success",
            )
        return redirect(url_for("GrantView.show", pk=pk))


def _panel_day(value: date) -> str:
    """The due day as the reader writes it; English keeps the ISO date the panel has always shown."""
    return value.isoformat() if current_language() == "en" else day(value)


def reporting_panel(session: Any, grant: Grant, user: Any) -> Panel:
    """Where the grant stands on reporting: the next report due and what was accepted."""
    today = clock.today()
    upcoming = [p for p in grant.periods if p.report_due and p.status == PeriodStatus.open]
    rows: list[tuple[str, Any]] = [(_("Periods"), ", ".join(p.label for p in grant.periods) or _("none yet"))]
    if upcoming:
        # Every upcoming period has a report_due date (filtered above).
        nearest = min(upcoming, key=lambda p: cast(date, p.report_due))
        days = (cast(date, nearest.report_due) - today).days
        rows.append(
            (
                _("Next report"),
                _(
                    "%(period)s due %(date)s (%(when)s)",
                    period=nearest.label,
                    date=_panel_day(cast(date, nearest.report_due)),
                    when=describe_days(days),
                ),
            )
        )
    done = [p.label for p in grant.periods if p.status != PeriodStatus.open]
    rows.append((_("Submitted or accepted"), ", ".join(done) or _("none yet")))
    if grant.periods and may_close_periods():
        rows.insert(1, (_("Close a period"), closing_links(grant.periods)))
    rows.append((_("Members"), str(len(grant.memberships))))
    return Panel(title=_("Reporting"), order=10, rows=rows)


def register(appbuilder: AppBuilder) -> None:
    register_panel(reporting_panel)
    appbuilder.add_view(GrantView, N_("Grants"), icon="fa-folder-open", category=N_("Grants"))
    appbuilder.add_view(ReportingPeriodView, N_("Reporting periods"), icon="fa-calendar", category="Grants")
    appbuilder.add_view(GrantMembershipView, N_("Memberships"), icon="fa-users", category="Grants")
    appbuilder.add_view(FunderView, N_("Funders"), icon="fa-university", category="Grants")
