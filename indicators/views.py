"""Flask-AppBuilder views for indicators: definitions, donor codes, dimensions, targets, results, the IPTT."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import StringField
from wtforms.validators import Optional

from core import clock
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_, decimal_mark, lazy_gettext, pct
from core.formatting import gettext as _
from core.money import AmountError, parse_amount
from core.storage import file_store
from grants import services as grant_services
from grants.access import (
    FilterVisibleGrants,
    GrantScopedViewMixin,
    ValidatedViewMixin,
    current_user_or_none,
    flash_domain_error,
)
from grants.evidence import attach
from grants.evidence import services as evidence_services
from grants.evidence.models import DEFAULT_SENSITIVITY, KIND_LABELS, EvidenceKind, Sensitivity
from grants.evidence.uploads import DEFAULT_MAX_BYTES
from grants.models import ROLE_LABELS, VERIFYING_ROLE_CHOICES, Grant, GrantMembership, MemberRole, ReportingPeriod
from grants.page import Panel, register_panel
from grants.services import can_see_grant, visible_grants
from indicators import progress, services
from indicators.chart import progress_chart
from indicators.models import (
    CLOSED_PERIOD_STATUSES,
    Category,
    CumulativeMode,
    Dimension,
    Direction,
    Indicator,
    IndicatorCode,
    IndicatorUnit,
    Result,
    ResultStatus,
    Target,
    clean_titles,
    fmt,
    period_status_word,
    shown,
    title_label_lazy,
    title_languages,
    wording,
)

TEMPLATES = "indicators"
VISIBLE_INDICATORS = {"indicator": [["grant_id", FilterVisibleGrants, lambda: None]]}
VISIBLE_PERIODS = {"period": [["grant_id", FilterVisibleGrants, lambda: None]]}
FIGURE_LABELS = {
    "grant": lazy_gettext("Grant"),
    "indicator": lazy_gettext("Indicator"),
    "period": lazy_gettext("Period"),
    "numerator": lazy_gettext("Numerator"),
    "denominator": lazy_gettext("Denominator"),
    "comment": lazy_gettext("Comment"),
    "status": lazy_gettext("Status"),
    "entered_by": lazy_gettext("Entered by"),
    "entered_at": lazy_gettext("Entered on"),
    "verified_by": lazy_gettext("Verified by"),
    "verified_at": lazy_gettext("Verified on"),
}


def sees_drafts() -> bool:
    """Whoever may read raw results sees drafts in progress figures; a donor sees submitted ones only."""
    return current_app.appbuilder.sm.has_access("can_list", "IndicatorResults")


class _DerivedGrantMixin:
    """Targets, results and codes derive fields (their grant, who entered) in the operation, before the row check."""

    def _before_save(self, item: Any) -> None:
        services.prepare_save(item, user=current_user_or_none())
        super()._before_save(item)  # type: ignore[misc]


class DimensionCategoryView(ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(Category)
    class_permission_name = "Dimensions"
    route_base = "/dimension-categories"
    list_title = lazy_gettext("Disaggregation categories")
    list_columns = ["dimension", "code", "name", "sort_order"]
    add_columns = edit_columns = show_columns = ["dimension", "code", "name", "sort_order"]
    label_columns = {
        "dimension": lazy_gettext("Dimension"),
        "code": lazy_gettext("Code"),
        "name": lazy_gettext("Name"),
        "sort_order": lazy_gettext("Order"),
    }
    search_columns = ["dimension", "code", "name"]
    order_columns = ["code", "name", "sort_order"]


class DimensionView(ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(Dimension)
    class_permission_name = "Dimensions"
    route_base = "/dimensions"
    list_title = lazy_gettext("Disaggregation dimensions")
    list_columns = ["code", "name", "exhaustive"]
    add_columns = edit_columns = show_columns = ["code", "name", "exhaustive", "description"]
    search_columns = ["code", "name", "exhaustive"]
    related_views = [DimensionCategoryView]
    label_columns = {
        "code": lazy_gettext("Code"),
        "name": lazy_gettext("Name"),
        "exhaustive": lazy_gettext("Exhaustive"),
        "description": lazy_gettext("Description"),
    }
    description_columns = {
        "exhaustive": lazy_gettext(
            "Every person falls in exactly one category, so the parts must add up to the total "
            "(country, sex/gender, age band). Leave unticked where people can be in several or none."
        ),
    }


class IndicatorCodeView(_DerivedGrantMixin, GrantScopedViewMixin, ModelView):
    parent_relation = None
    add_form_query_rel_fields = edit_form_query_rel_fields = VISIBLE_INDICATORS
    datamodel = SQLAInterface(IndicatorCode)
    class_permission_name = "IndicatorCodes"
    route_base = "/indicator-codes"
    list_title = lazy_gettext("Donor indicator codes (crosswalk)")
    list_columns = ["indicator", "funder", "code", "name"]
    add_columns = edit_columns = show_columns = ["indicator", "funder", "code", "name"]
    search_columns = ["indicator", "funder", "code"]
    label_columns = {
        "indicator": lazy_gettext("Indicator"),
        "funder": lazy_gettext("Funder"),
        "code": lazy_gettext("The funder's code"),
        "name": lazy_gettext("The funder's name for it"),
    }


class _FigureView(_DerivedGrantMixin, GrantScopedViewMixin, ModelView):
    """Shared by targets and results: pick an indicator and period of a visible grant; enter parts."""

    # The indicator as its reader names it (its repr, the name entered first, is what the audit trail keeps).
    formatters_columns = {
        "indicator": lambda indicator: f"{indicator.code} {indicator.shown_name}" if indicator else "—"
    }

    parent_relation = None
    add_form_query_rel_fields = edit_form_query_rel_fields = {**VISIBLE_INDICATORS, **VISIBLE_PERIODS}
    show_template = f"{TEMPLATES}/figure_show.html"
    list_template = f"{TEMPLATES}/figure_list.html"
    method_permission_name = {"record": "add"}
    figure_kind = "target"

    def _show_extras(self, item: Any) -> dict[str, Any]:
        return {}

    def pre_delete(self, item: Any) -> None:
        services.prepare_delete(item)  # FAB flashes the message and deletes nothing

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        widgets = self._show(pk)
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=widgets,
            related_views=self._related_views,
            item=item,
            kind=self.figure_kind,
            fmt=shown,
            wording=wording,
            record_endpoint=f"{type(self).__name__}.record",
            can_record=self.appbuilder.sm.has_access("can_add", self.class_permission_name),
            **self._show_extras(item),
        )

    @expose("/record", methods=["GET", "POST"])
    @has_access
    def record(self) -> Any:
        """Enter the total and the parts per category for one indicator and period."""
        session = db.session
        user = current_user_or_none()
        indicator_id = request.values.get("indicator", type=int)
        period_id = request.values.get("period", type=int)
        indicator = session.get(Indicator, indicator_id) if indicator_id else None
        if indicator is not None and not can_see_grant(session, user, indicator.grant_id):
            abort(404)
        period = session.get(ReportingPeriod, period_id) if period_id else None
        if period is not None and not can_see_grant(session, user, period.grant_id):
            abort(404)
        if indicator is None or period is None:
            return self._render_chooser(indicator)
        existing = session.scalar(
            select(type(self).model()).where(
                type(self).model().indicator_id == indicator.id, type(self).model().period_id == period.id
            )
        )
        form_values = self._form_values(existing)
        if request.method == "POST":
            form_values = dict(request.form)
            try:
                record = self._save(session, indicator, period, request.form, user)
                self._after_save(session, record, user)
                session.commit()
            except DomainValidationError as exc:
                session.rollback()
                flash_domain_error(exc)
                return self._render_form(indicator, period, form_values, existing), 422
            saved = (
                _("Saved the target of %(indicator)s for %(period)s", indicator=indicator.code, period=period.label)
                if self.figure_kind == "target"
                else _(
                    "Saved the result of %(indicator)s for %(period)s", indicator=indicator.code, period=period.label
                )
            )
            flash(saved, "success")
            return redirect(url_for(f"{type(self).__name__}.show", pk=record.id))
        return self._render_form(indicator, period, form_values, existing)

    @classmethod
    def model(cls) -> Any:
        return cls.datamodel.obj

    def _render_chooser(self, indicator: Indicator | None) -> Any:
        user = current_user_or_none()
        grants = visible_grants(db.session, user)
        grant_ids = [grant.id for grant in grants]
        indicators = list(
            db.session.scalars(
                select(Indicator)
                .where(Indicator.grant_id.in_(grant_ids))
                .order_by(Indicator.grant_id, Indicator.sort_order)
            )
        )
        periods = list(
            db.session.scalars(
                select(ReportingPeriod)
                .where(ReportingPeriod.grant_id.in_(grant_ids))
                .order_by(ReportingPeriod.grant_id, ReportingPeriod.start_date)
            )
        )
        return self.render_template(
            f"{TEMPLATES}/figure_choose.html",
            title=_("Enter a target") if self.figure_kind == "target" else _("Enter a result"),
            kind=self.figure_kind,
            indicators=indicators,
            periods=periods,
            chosen=indicator,
            today=clock.today(),
            action=url_for(f"{type(self).__name__}.record"),
            wording_period=period_status_word,
        )

    def _render_form(self, indicator: Indicator, period: ReportingPeriod, values: dict[str, Any], existing: Any) -> Any:
        return self.render_template(
            f"{TEMPLATES}/figure_form.html",
            title=(
                _("Target: %(indicator)s, %(period)s", indicator=indicator.code, period=period.label)
                if self.figure_kind == "target"
                else _("Result: %(indicator)s, %(period)s", indicator=indicator.code, period=period.label)
            ),
            kind=self.figure_kind,
            indicator=indicator,
            period=period,
            values=values,
            existing=existing,
            is_percentage=indicator.unit == IndicatorUnit.percentage,
            closed=period.status in CLOSED_PERIOD_STATUSES,
            statuses=[
                (ResultStatus.draft.value, _("Draft")),
                (ResultStatus.submitted.value, _("Submitted for verification")),
            ],
            action=url_for(f"{type(self).__name__}.record", indicator=indicator.id, period=period.id),
            not_started=period.start_date > clock.today(),
            wording_period=period_status_word,
            **self._form_extras(indicator, period, existing),
        )

    @staticmethod
    def _form_values(existing: Any) -> dict[str, Any]:
        if existing is None:
            return {}
        values: dict[str, Any] = {
            "value": typed_back(existing.value),
            "numerator": typed_back(existing.numerator),
            "denominator": typed_back(existing.denominator),
            "comment": existing.comment or "",
            "status": getattr(existing, "status", None) and existing.status.value,
        }
        for part in existing.values:
            for name in ("value", "numerator", "denominator"):
                amount = getattr(part, name)
                values[f"part-{part.category_id}-{name}"] = typed_back(amount)
        return values

    @staticmethod
    def _parts_from_form(indicator: Indicator, form: Any) -> dict[int, dict[str, Any]]:
        parts: dict[int, dict[str, Any]] = {}
        for dimension in indicator.dimensions:
            for category in dimension.categories:
                raw = {name: form.get(f"part-{category.id}-{name}") for name in ("value", "numerator", "denominator")}
                if any((v or "").strip() for v in raw.values()):
                    label = f"{dimension.name} {category.code}"
                    parts[category.id] = {name: read_typed(v, f"{label} {name}") for name, v in raw.items()}
        return parts

    def _save(self, session: Any, indicator: Indicator, period: ReportingPeriod, form: Any, user: Any) -> Any:
        raise NotImplementedError

    def _after_save(self, session: Any, record: Any, user: Any) -> None:
        """What else the form asked for, in the same transaction (results: their evidence)."""

    def _form_extras(self, indicator: Indicator, period: ReportingPeriod, existing: Any) -> dict[str, Any]:
        return {}


class TargetView(_FigureView):
    datamodel = SQLAInterface(Target)
    class_permission_name = "IndicatorTargets"
    route_base = "/indicator-targets"
    list_title = lazy_gettext("Indicator targets")
    show_title = lazy_gettext("Target")
    figure_kind = "target"
    list_columns = ["grant", "indicator", "period", "value", "numerator", "denominator"]
    show_columns = ["indicator", "period", "value", "numerator", "denominator", "comment"]
    add_columns = edit_columns = ["indicator", "period", "value", "numerator", "denominator", "comment"]
    search_columns = ["indicator", "period"]
    order_columns = ["value"]
    label_columns = {**FIGURE_LABELS, "value": lazy_gettext("Target (a percentage for % indicators)")}

    def _save(self, session: Any, indicator: Indicator, period: ReportingPeriod, form: Any, user: Any) -> Any:
        return services.set_target(
            session,
            indicator,
            period,
            value=read_typed(form.get("value"), "value"),
            numerator=read_typed(form.get("numerator"), "numerator"),
            denominator=read_typed(form.get("denominator"), "denominator"),
            comment=form.get("comment") or None,
            disaggregation=self._parts_from_form(indicator, form),
        )


class ResultView(_FigureView):
    datamodel = SQLAInterface(Result)
    class_permission_name = "IndicatorResults"
    route_base = "/indicator-results"
    list_title = lazy_gettext("Indicator results")
    show_title = lazy_gettext("Result")
    figure_kind = "result"
    # Reaching the verify page is a matter of reading results; the grant's four-eyes policy decides who may
    # verify (services.verification_refusal), so finance members can verify where the grant names them.
    method_permission_name = {"record": "add", "verify": "show", "submit": "edit", "reopen": "edit", "policy": "show"}
    list_columns = [
        "grant",
        "indicator",
        "period",
        "value",
        "numerator",
        "denominator",
        "status",
        "entered_by",
        "verified_by",
    ]
    show_columns = [
        "indicator",
        "period",
        "value",
        "numerator",
        "denominator",
        "comment",
        "status",
        "entered_by",
        "entered_at",
        "verified_by",
        "verified_at",
    ]
    add_columns = ["indicator", "period", "value", "numerator", "denominator", "comment", "status"]
    edit_columns = ["value", "numerator", "denominator", "comment", "status"]
    search_columns = ["indicator", "period", "status", "entered_by", "verified_by"]
    order_columns = ["value", "status"]
    base_order = ("id", "desc")
    label_columns = {**FIGURE_LABELS, "value": lazy_gettext("Result (a percentage for % indicators)")}

    def _show_extras(self, item: Any) -> dict[str, Any]:
        user = current_user_or_none()
        sm = self.appbuilder.sm
        can_edit = sm.has_access("can_edit", self.class_permission_name)
        refusal = services.verification_refusal(db.session, item, user)
        grant = item.grant or db.session.get(Grant, item.grant_id)
        return {
            "can_verify": item.status == ResultStatus.submitted and refusal is None,
            "refusal": refusal,
            "entered_by_me": user is not None and user.id == item.entered_by_id,
            "can_submit": can_edit and item.status == ResultStatus.draft,
            "can_reopen": can_edit and item.status == ResultStatus.verified,
            "evidence": evidence_services.evidence_for_target(db.session, user, "indicator_result", item.id),
            "can_attach": sm.has_access("can_add", "IndicatorResults") and sm.has_access("can_add", "Evidence"),
            "policy": verifier_wording(grant),
            "can_set_policy": sm.has_access("can_edit", "Grants") and can_see_grant(db.session, user, item.grant_id),
        }

    def _form_extras(self, indicator: Indicator, period: ReportingPeriod, existing: Any) -> dict[str, Any]:
        user = current_user_or_none()
        may_attach = self.appbuilder.sm.has_access("can_add", "Evidence")
        linked = (
            {e.id for e in evidence_services.evidence_for_target(db.session, user, "indicator_result", existing.id)}
            if existing is not None
            else set()
        )
        # Only evidence of this grant that this user may see: never a flat list of everything.
        candidates = attach.candidates(db.session, user, indicator.grant_id, linked) if may_attach else []
        return {
            "may_attach": may_attach,
            "evidence_candidates": candidates,
            "linked_evidence": evidence_services.evidence_for_target(db.session, user, "indicator_result", existing.id)
            if existing is not None
            else [],
            "kinds": [(k.value, KIND_LABELS[k]) for k in EvidenceKind],
            "sensitivities": [(s.value, s.label) for s in Sensitivity],
            "default_sensitivity": DEFAULT_SENSITIVITY.value,
            "default_evidence_date": min(period.end_date, clock.today()).isoformat(),
        }

    def _save(self, session: Any, indicator: Indicator, period: ReportingPeriod, form: Any, user: Any) -> Any:
        return services.record_result(
            session,
            indicator,
            period,
            user=user,
            value=read_typed(form.get("value"), "value"),
            numerator=read_typed(form.get("numerator"), "numerator"),
            denominator=read_typed(form.get("denominator"), "denominator"),
            comment=form.get("comment") or None,
            status=form.get("status") or ResultStatus.draft.value,
            disaggregation=self._parts_from_form(indicator, form),
        )

    def _after_save(self, session: Any, record: Any, user: Any) -> None:
        """Link the evidence chosen and store the one uploaded, with the result, all or nothing."""
        if not self.appbuilder.sm.has_access("can_add", "Evidence"):
            return
        attach.attach_evidence(
            session,
            file_store(),
            target_kind="indicator_result",
            target_id=record.id,
            grant_id=record.grant_id,
            user=user,
            existing=request.form.getlist("evidence"),
            new=attach.new_evidence_from(request.form, request.files),
            max_bytes=int(current_app.config.get("EVIDENCE_MAX_BYTES", DEFAULT_MAX_BYTES)),
        )

    @expose("/<int:pk>/verify", methods=["POST"])
    @has_access
    def verify(self, pk: int) -> Any:
        """Four eyes: a colleague, not the person who entered the result, confirms it."""
        user = current_user_or_none()
        return self.record_action(pk, lambda r: services.verify_result(db.session, r, user), _("Result verified"))

    @expose("/policy/<int:grant_id>", methods=["GET", "POST"])
    @has_access
    def policy(self, grant_id: int) -> Any:
        """The grant chooses which member roles may verify its results (never their own)."""
        session = db.session
        user = current_user_or_none()
        grant = session.get(Grant, grant_id)
        if grant is None or not can_see_grant(session, user, grant_id):
            abort(404)
        may_change = self.appbuilder.sm.has_access("can_edit", "Grants")
        chosen = grant.verifying_roles
        if request.method == "POST":
            if not may_change:
                abort(403)
            chosen = request.form.getlist("roles")
            try:
                grant_services.set_verifying_roles(session, grant, chosen)
                session.commit()
            except DomainValidationError as exc:
                session.rollback()
                flash_domain_error(exc)
            else:
                flash(
                    _(
                        "On %(grant)s, results are now verified by: %(who)s.",
                        grant=grant.reference,
                        who=verifier_wording(grant),
                    ),
                    "success",
                )
                return redirect(request.args.get("next") or url_for("ResultView.policy", grant_id=grant.id))
        members = session.execute(
            select(GrantMembership.role, func.count(GrantMembership.id))
            .where(GrantMembership.grant_id == grant.id)
            .group_by(GrantMembership.role)
        ).all()
        return self.render_template(
            f"{TEMPLATES}/verification_policy.html",
            title=_("Who verifies results — %(grant)s", grant=grant.reference),
            grant=grant,
            choices=[(role.value, ROLE_LABELS[role]) for role in VERIFYING_ROLE_CHOICES],
            chosen=chosen,
            members={role.value: count for role, count in members},
            may_change=may_change,
        )

    @expose("/<int:pk>/submit", methods=["POST"])
    @has_access
    def submit(self, pk: int) -> Any:
        return self.record_action(
            pk, lambda r: services.submit_result(db.session, r), _("Result submitted for verification")
        )

    @expose("/<int:pk>/reopen", methods=["POST"])
    @has_access
    def reopen(self, pk: int) -> Any:
        return self.record_action(
            pk, lambda r: services.reopen_result(db.session, r), _("Result returned to submitted")
        )


class IndicatorView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(Indicator)
    class_permission_name = "Indicators"
    route_base = "/indicators"
    list_title = lazy_gettext("Indicators")
    list_columns = ["grant", "code", "shown_name", "unit", "direction", "cumulative_mode", "lop_target"]
    show_fieldsets = [
        (
            lazy_gettext("Indicator"),
            {"fields": ["grant", "code", "name", "names", "definition", "unit", "direction", "cumulative_mode"]},
        ),
        (lazy_gettext("Baseline and target"), {"fields": ["baseline_value", "baseline_date", "lop_target"]}),
        (lazy_gettext("Data"), {"fields": ["dimensions", "means_of_verification", "responsible", "codes"]}),
    ]
    # The name in each other language: optional, saved into ``titles`` (blank dropped, trimmed).
    add_form_extra_fields = edit_form_extra_fields = {
        f"title_{language}": StringField(title_label_lazy(language), validators=[Optional()])
        for language in title_languages()
    }
    add_columns = edit_columns = [
        "grant",
        "code",
        "name",
        *(f"title_{language}" for language in title_languages()),
        "definition",
        "unit",
        "direction",
        "cumulative_mode",
        "baseline_value",
        "baseline_date",
        "lop_target",
        "means_of_verification",
        "responsible",
        "dimensions",
        "sort_order",
    ]
    search_columns = ["grant", "code", "name", "unit"]
    order_columns = ["code", "name", "sort_order"]
    base_order = ("sort_order", "asc")
    related_views = [TargetView, ResultView, IndicatorCodeView]
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "code": lazy_gettext("Code"),
        "name": lazy_gettext("Name"),
        "shown_name": lazy_gettext("Name"),
        "unit": lazy_gettext("Unit"),
        "direction": lazy_gettext("Direction"),
        "dimensions": lazy_gettext("Disaggregations"),
        "sort_order": lazy_gettext("Order"),
        "lop_target": lazy_gettext("Life-of-grant target"),
        "cumulative_mode": lazy_gettext("Cumulative"),
        "responsible": lazy_gettext("Responsible person"),
        "codes": lazy_gettext("Donor codes"),
        "definition": lazy_gettext("Definition"),
        "baseline_value": lazy_gettext("Baseline"),
        "baseline_date": lazy_gettext("Baseline date"),
        "means_of_verification": lazy_gettext("Means of verification"),
        "names": lazy_gettext("Name in other languages"),
    }
    description_columns = {
        "code": lazy_gettext("Unique within the grant, e.g. KP-1c"),
        "unit": lazy_gettext("Percentage: results are entered as numerator and denominator"),
        "direction": lazy_gettext("Decrease is good: less is better (achievement is target ÷ actual)"),
        "cumulative_mode": lazy_gettext(
            "Sum of the periods: add the periods up; latest period: the most recent one; highest reached: the "
            "highest level so far"
        ),
        "dimensions": lazy_gettext("How targets and results can be split (country, sex/gender, ...)"),
    }

    def pre_add(self, item: Any) -> None:
        self._take_titles(item)
        super().pre_add(item)

    def pre_update(self, item: Any) -> None:
        self._take_titles(item)
        super().pre_update(item)

    @staticmethod
    def _take_titles(item: Indicator) -> None:
        item.titles = clean_titles({language: request.form.get(f"title_{language}") for language in title_languages()})

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk, self._base_filters)
        titles = (item.titles if item is not None else None) or {}
        for language in title_languages():
            field = getattr(form, f"title_{language}", None)
            if field is not None:
                field.data = titles.get(language, "")


class IndicatorProgressView(BaseView):
    """The IPTT: rows are indicators, columns are periods with target, actual and %; with charts."""

    route_base = "/indicator-progress"
    class_permission_name = "IndicatorProgress"
    default_view = "index"
    method_permission_name = {"index": "list", "iptt": "show"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        grants = visible_grants(db.session, current_user_or_none())
        return self.render_template(f"{TEMPLATES}/progress_index.html", title=_("Indicator progress"), grants=grants)

    @expose("/<int:grant_id>")
    @has_access
    def iptt(self, grant_id: int) -> Any:
        session = db.session
        if not can_see_grant(session, current_user_or_none(), grant_id):
            abort(404)
        grant = session.get(Grant, grant_id)
        chosen = request.args.get("disaggregation") or None
        try:
            rows = progress.indicator_progress(session, grant_id, disaggregation=chosen, include_drafts=sees_drafts())
        except DomainValidationError as exc:
            flash_domain_error(exc)
            chosen = None
            rows = progress.indicator_progress(session, grant_id, include_drafts=sees_drafts())
        table = progress.iptt_table(rows)
        cumulative = request.args.get("view") == "cumulative"
        charts = {
            key: progress_chart(entry["rows"], cumulative=cumulative)
            for key, entry in table.items()
            if entry["first"].applicable
        }
        categories = list(
            session.execute(
                select(Dimension, Category)
                .join(Category, Category.dimension_id == Dimension.id)
                .order_by(Dimension.code, Category.sort_order, Category.code)
            )
        )
        sm = self.appbuilder.sm
        return self.render_template(
            f"{TEMPLATES}/iptt.html",
            title=_("Indicator progress — %(grant)s", grant=grant.reference),
            grant=grant,
            table=table,
            periods=progress.iptt_periods(rows, grant),
            charts=charts,
            fmt=shown,
            wording=wording,
            chosen=chosen,
            categories=categories,
            cumulative=cumulative,
            drafts_included=sees_drafts(),
            can_enter_results=sm.has_access("can_add", "IndicatorResults"),
            can_enter_targets=sm.has_access("can_add", "IndicatorTargets"),
            summary=progress.rating_summary(rows),
            latest=progress.latest_reported_period(rows),
            rating_legend=progress.rating_legend(),
            rating_word=progress.rating_word,
            wording_period=period_status_word,
            IndicatorUnit=IndicatorUnit,
            CumulativeMode=CumulativeMode,
            Direction=Direction,
            ResultStatus=ResultStatus,
        )


def typed_back(value: Decimal | None) -> str:
    """A stored figure as the reader types it into the entry form: "12.5" / "12,5", no thousands separators."""
    if value is None:
        return ""
    return fmt(value).replace(".", decimal_mark())


def read_typed(value: Any, field: str) -> Decimal | None:
    """A figure typed into the entry form, read with the reader's decimal mark (``core.money.parse_amount``)."""
    if value is None or not str(value).strip():
        return None
    try:
        return parse_amount(str(value), decimal_mark(), integer_digits=None)
    except AmountError as exc:
        raise DomainValidationError({field: [str(exc)]}) from None


def verifier_wording(grant: Grant | None) -> str:
    """The grant's verifying roles in words: "grant lead, program or finance members"."""
    if grant is None:
        return ""
    names = [str(ROLE_LABELS[MemberRole(r)]) for r in grant.verifying_roles if r in MemberRole.__members__]
    if not names:
        return _("nobody (never the person who entered the result)")
    listed = names[0] if len(names) == 1 else _("%(roles)s or %(last)s", roles=", ".join(names[:-1]), last=names[-1])
    return _("%(roles)s members (never the person who entered the result)", roles=listed)


def indicator_panel(session: Any, grant: Any, user: Any) -> Panel | None:
    """The grant page's summary: ratings in the latest reported period, and a link to the IPTT."""
    sm = current_app.appbuilder.sm
    if not sm.has_access("can_show", "IndicatorProgress"):
        return None
    include_drafts = sm.has_access("can_list", "IndicatorResults")
    # Only the latest reported period's rows are shown: compute those (cumulative figures still
    # run from the first period), not the whole table.
    reported = progress.latest_reported(session, grant.id, include_drafts=include_drafts)
    rows = progress.indicator_progress(
        session, grant.id, reported[0] if reported else None, include_drafts=include_drafts
    )
    title = _("Indicators")
    link = (_("Indicator progress table (IPTT)"), url_for("IndicatorProgressView.iptt", grant_id=grant.id))
    if not rows:
        return Panel(title=title, order=30, rows=[(title, _("none defined yet"))], link=link)
    latest = progress.latest_reported_period(rows)
    indicator_count = len({row.indicator_id for row in rows})
    panel_rows: list[tuple[str, Any]] = [(title, indicator_count)]
    if sm.has_access("can_show", "IndicatorResults"):
        policy = (
            Markup('{} · <a href="{}">%s</a>') % _("change") if sm.has_access("can_edit", "Grants") else Markup("{}")
        )
        panel_rows.append(
            (
                _("Results verified by"),
                policy.format(verifier_wording(grant), url_for("ResultView.policy", grant_id=grant.id)),
            )
        )
    if latest is None:
        panel_rows.append((_("Results"), _("none reported yet")))
        return Panel(title=title, order=30, rows=panel_rows, link=link)
    summary = progress.rating_summary(rows)
    panel_rows.append((_("Latest reported period"), latest[1]))
    panel_rows.append(
        (
            _("Ratings in %(period)s", period=latest[1]),
            ", ".join(f"{progress.rating_word(name)}: {count}" for name, count in summary.items() if count) or "—",
        )
    )
    items = "".join(
        f"<li><strong>{Markup.escape(row.indicator_code)}</strong> "
        f"{Markup.escape(row.rating or _('not rated'))}"
        f"{' (' + pct(row.achievement_pct, 1) + ')' if row.achievement_pct is not None else ''}</li>"
        for row in rows
        if row.period_id == latest[0]
    )
    return Panel(
        title=title,
        order=30,
        rows=panel_rows,
        link=link,
        html=Markup(f'<ul class="list-unstyled indicator-ratings">{items}</ul>'),
    )


def register(appbuilder: AppBuilder) -> None:
    # FAB's view blueprints look for templates in FAB's package; ours come from this blueprint.
    app = current_app
    if "indicators_templates" not in app.blueprints:
        app.register_blueprint(Blueprint("indicators_templates", __name__, template_folder="templates"))
    category = N_("Indicators")
    appbuilder.add_view(IndicatorView, N_("Indicator definitions"), icon="fa-bullseye", category=category)
    appbuilder.add_view(IndicatorProgressView, N_("Indicator progress"), icon="fa-line-chart", category=category)
    appbuilder.add_view(TargetView, N_("Indicator targets"), icon="fa-flag-checkered", category=category)
    appbuilder.add_view(ResultView, N_("Indicator results"), icon="fa-check-square-o", category=category)
    appbuilder.add_view(IndicatorCodeView, N_("Donor indicator codes"), icon="fa-exchange", category=category)
    appbuilder.add_view(DimensionView, N_("Disaggregations"), icon="fa-sitemap", category=category)
    appbuilder.add_view(DimensionCategoryView, N_("Disaggregation categories"), icon="fa-tags", category=category)
    register_panel(indicator_panel)
