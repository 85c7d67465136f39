"""REST API (JWT) for indicators, donor codes, dimensions, targets, results, verification and the IPTT."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import BaseApi, ModelRestApi, expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import ValidationError

from core.errors import DomainValidationError, ErrorCollector
from core.extensions import db
from core.formatting import gettext as _
from grants.access import GrantScopedApiMixin, ValidatedApiMixin, current_user_or_none
from grants.models import ReportingPeriod
from grants.services import can_see_grant
from indicators import services
from indicators.models import (
    Category,
    Dimension,
    Indicator,
    IndicatorCode,
    Result,
    Target,
    check_titles,
    clean_titles,
)
from indicators.progress import indicator_progress
from indicators.schemas import (
    FigureInSchema,
    FigureOutSchema,
    ProgressRowSchema,
    ResultInSchema,
)
from indicators.views import VISIBLE_INDICATORS, VISIBLE_PERIODS, sees_drafts

FIGURE_COLUMNS = [
    "id",
    "grant.id",
    "grant.reference",
    "indicator.id",
    "indicator.code",
    "period.id",
    "period.label",
    "value",
    "numerator",
    "denominator",
    "comment",
]


class _DerivedGrantApiMixin:
    """Targets, results and codes derive fields (their grant, who entered) in the operation, before the row check."""

    def pre_add(self, item: Any) -> None:
        services.prepare_save(item, user=current_user_or_none())
        super().pre_add(item)  # type: ignore[misc]

    def pre_update(self, item: Any) -> None:
        services.prepare_save(item, user=current_user_or_none())
        super().pre_update(item)  # type: ignore[misc]


class DimensionApi(ValidatedApiMixin, ModelRestApi):
    resource_name = "dimensions"
    class_permission_name = "Dimensions"
    datamodel = SQLAInterface(Dimension)
    list_columns = show_columns = ["id", "code", "name", "exhaustive", "description"]
    add_columns = edit_columns = ["code", "name", "exhaustive", "description"]
    search_columns = ["code", "name"]


class CategoryApi(ValidatedApiMixin, ModelRestApi):
    resource_name = "dimension_categories"
    class_permission_name = "Dimensions"
    datamodel = SQLAInterface(Category)
    list_columns = show_columns = ["id", "dimension.id", "dimension.code", "code", "name", "sort_order"]
    add_columns = edit_columns = ["dimension", "code", "name", "sort_order"]
    search_columns = ["dimension", "code"]


class IndicatorApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "indicators"
    class_permission_name = "Indicators"
    datamodel = SQLAInterface(Indicator)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "code",
        "name",
        "definition",
        "unit",
        "direction",
        "cumulative_mode",
        "baseline_value",
        "baseline_date",
        "lop_target",
        "means_of_verification",
        "responsible.id",
        "responsible.username",
        "sort_order",
        "dimensions.id",
        "dimensions.code",
        "titles",
    ]
    add_columns = [
        "grant",
        "code",
        "name",
        "titles",
        "definition",
        "unit",
        "direction",
        "cumulative_mode",
        "baseline_value",
        "baseline_date",
        "lop_target",
        "means_of_verification",
        "responsible",
        "sort_order",
        "dimensions",
    ]
    edit_columns = [c for c in add_columns if c != "grant"]
    order_columns = ["code", "name", "sort_order"]
    search_columns = ["grant", "code", "name", "unit"]

    def pre_add(self, item: Any) -> None:
        _take_titles(item)
        super().pre_add(item)

    def pre_update(self, item: Any) -> None:
        _take_titles(item)
        super().pre_update(item)


def _take_titles(item: Indicator) -> None:
    """``titles`` as given to the API: an object of language code to text; 422 on ``titles`` otherwise."""
    errors = ErrorCollector()
    check_titles(item.titles, errors, per_language=False)
    errors.raise_if_any()
    item.titles = clean_titles(item.titles)


class IndicatorCodeApi(_DerivedGrantApiMixin, GrantScopedApiMixin, ModelRestApi):
    parent_relation = None
    add_query_rel_fields = edit_query_rel_fields = VISIBLE_INDICATORS
    resource_name = "indicator_codes"
    class_permission_name = "IndicatorCodes"
    datamodel = SQLAInterface(IndicatorCode)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "indicator.id",
        "indicator.code",
        "funder.id",
        "funder.code",
        "code",
        "name",
    ]
    add_columns = ["indicator", "funder", "code", "name"]
    edit_columns = ["funder", "code", "name"]
    search_columns = ["indicator", "funder", "code"]

    @expose("/lookup", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def lookup(self) -> Any:
        """GET ?indicator=ID&funder=ID -> the funder's code for the indicator (the indicator's own if none)."""
        indicator_id = request.args.get("indicator", type=int)
        funder_id = request.args.get("funder", type=int)
        indicator = db.session.get(Indicator, indicator_id) if indicator_id else None
        if indicator is None or not can_see_grant(db.session, current_user_or_none(), indicator.grant_id):
            return self.response_404()
        if funder_id is None:
            return self.response_400(message=_("funder: give the funder's id"))
        code = services.indicator_code_for(db.session, indicator.id, funder_id)
        return self.response(200, result={"indicator": indicator.id, "funder": funder_id, "code": code})


class _FigureApi(_DerivedGrantApiMixin, GrantScopedApiMixin, ModelRestApi):
    parent_relation = None
    add_query_rel_fields = edit_query_rel_fields = {**VISIBLE_INDICATORS, **VISIBLE_PERIODS}
    in_schema: Any = FigureInSchema

    def _record_figure(self) -> Any:
        """Shared body of POST /record: the total and the parts in one call, all or nothing."""
        try:
            data = self.in_schema().load(request.get_json(silent=True) or {})
        except ValidationError as exc:
            return self.response_422(message=exc.messages)
        session = db.session
        user = current_user_or_none()
        indicator = session.get(Indicator, data["indicator"])
        if indicator is None or not can_see_grant(session, user, indicator.grant_id):
            return self.response_422(message={"indicator": [_("is not an indicator of a grant you have access to")]})
        period = session.get(ReportingPeriod, data["period"])
        if period is None or not can_see_grant(session, user, period.grant_id):
            return self.response_422(message={"period": [_("is not a period of a grant you have access to")]})
        try:
            record = self._save(session, indicator, period, data, user)
            session.commit()
        except DomainValidationError as exc:
            session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(200, result=FigureOutSchema().dump(record))

    def pre_delete(self, item: Any) -> None:
        services.prepare_delete(item)  # a refusal is answered with 422 by ValidatedApiMixin

    def _figure(self, pk: int) -> Any:
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            return self.response_404()
        return self.response(200, result=FigureOutSchema().dump(item))

    def _save(
        self, session: Any, indicator: Indicator, period: ReportingPeriod, data: dict[str, Any], user: Any
    ) -> Any:
        raise NotImplementedError


class TargetApi(_FigureApi):
    resource_name = "indicator_targets"
    class_permission_name = "IndicatorTargets"
    datamodel = SQLAInterface(Target)
    list_columns = show_columns = FIGURE_COLUMNS
    add_columns = ["indicator", "period", "value", "numerator", "denominator", "comment"]
    edit_columns = ["value", "numerator", "denominator", "comment"]
    search_columns = ["indicator", "period"]

    def _save(
        self, session: Any, indicator: Indicator, period: ReportingPeriod, data: dict[str, Any], user: Any
    ) -> Any:
        return services.set_target(
            session,
            indicator,
            period,
            value=data["value"],
            numerator=data["numerator"],
            denominator=data["denominator"],
            comment=data["comment"],
            disaggregation=data["disaggregation"],
        )

    @expose("/record", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def record(self) -> Any:
        """Set a target with its disaggregation: {indicator, period, value | numerator+denominator, disaggregation}."""
        return self._record_figure()

    @expose("/<int:pk>/figure", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def figure(self, pk: int) -> Any:
        """The target with its parts per category."""
        return self._figure(pk)


class ResultApi(_FigureApi):
    resource_name = "indicator_results"
    class_permission_name = "IndicatorResults"
    datamodel = SQLAInterface(Result)
    in_schema = ResultInSchema
    list_columns = show_columns = FIGURE_COLUMNS + [
        "status",
        "entered_by.id",
        "entered_by.username",
        "entered_at",
        "verified_by.id",
        "verified_by.username",
        "verified_at",
    ]
    add_columns = ["indicator", "period", "value", "numerator", "denominator", "comment", "status"]
    edit_columns = ["value", "numerator", "denominator", "comment", "status"]
    search_columns = ["indicator", "period", "status"]

    def _save(
        self, session: Any, indicator: Indicator, period: ReportingPeriod, data: dict[str, Any], user: Any
    ) -> Any:
        return services.record_result(
            session,
            indicator,
            period,
            user=user,
            value=data["value"],
            numerator=data["numerator"],
            denominator=data["denominator"],
            comment=data["comment"],
            status=data["status"],
            disaggregation=data["disaggregation"],
        )

    @expose("/record", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def record(self) -> Any:
        """Enter a result with its disaggregation: {indicator, period, value | numerator+denominator, status, disaggregation}."""
        return self._record_figure()

    @expose("/<int:pk>/figure", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def figure(self, pk: int) -> Any:
        """The result with its parts per category."""
        return self._figure(pk)

    @expose("/<int:pk>/verify", methods=["POST"])
    @protect()
    @safe
    @permission_name("get")  # whoever reads results may ask; the grant's four-eyes policy decides
    def verify(self, pk: int) -> Any:
        """Verify a submitted result. Refused (422, with the reason under ``verified_by``) for the person
        who entered it and for anyone whose role on the grant is not one of its verifying roles."""
        result = self.datamodel.get(pk, self._base_filters)
        if result is None:
            return self.response_404()
        try:
            services.verify_result(db.session, result, current_user_or_none())
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(200, result=FigureOutSchema().dump(result))


class IndicatorProgressApi(BaseApi):
    resource_name = "indicator_progress"
    class_permission_name = "IndicatorProgress"
    allow_browser_login = True  # the IPTT page links here; read-only

    @expose("/<int:grant_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def progress(self, grant_id: int) -> Any:
        """The IPTT as JSON: ?period_id=ID&disaggregation=country=LC. 404 for a grant you cannot see."""
        if not can_see_grant(db.session, current_user_or_none(), grant_id):
            return self.response_404()
        try:
            rows = indicator_progress(
                db.session,
                grant_id,
                request.args.get("period_id", type=int),
                request.args.get("disaggregation") or None,
                include_drafts=sees_drafts(),
            )
        except DomainValidationError as exc:
            return self.response_422(message=exc.errors)
        return self.response(200, result=ProgressRowSchema(many=True).dump(rows), count=len(rows))


def register(appbuilder: AppBuilder) -> None:
    for api in (DimensionApi, CategoryApi, IndicatorApi, IndicatorCodeApi, TargetApi, ResultApi, IndicatorProgressApi):
        appbuilder.add_api(api)
