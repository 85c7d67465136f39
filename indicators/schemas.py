"""Marshmallow schemas for the indicators API: entering a figure with its parts, and progress rows."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from indicators.models import ResultStatus


class FigureInSchema(Schema):
    """A target or a result as the API receives it.

    ``disaggregation`` maps "dimension=code" (or a category id) to a value, to
    ``[numerator, denominator]`` for a percentage, or to ``{"value"|"numerator"|"denominator": ...}``.
    Numbers may be JSON numbers or strings; they are read as exact decimals.
    """

    class Meta:
        unknown = EXCLUDE

    indicator = fields.Integer(required=True)
    period = fields.Integer(required=True)
    value = fields.Raw(load_default=None, allow_none=True)
    numerator = fields.Raw(load_default=None, allow_none=True)
    denominator = fields.Raw(load_default=None, allow_none=True)
    comment = fields.String(load_default=None, allow_none=True)
    disaggregation = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)


class ResultInSchema(FigureInSchema):
    status = fields.String(
        load_default=ResultStatus.draft.value,
        validate=validate.OneOf([ResultStatus.draft.value, ResultStatus.submitted.value]),
    )


def _decimal() -> fields.Decimal:
    return fields.Decimal(as_string=True, allow_none=True)


class PartOutSchema(Schema):
    category = fields.Function(lambda part: f"{part.category.dimension.code}={part.category.code}")
    value = _decimal()
    numerator = _decimal()
    denominator = _decimal()


class FigureOutSchema(Schema):
    id = fields.Integer()
    indicator = fields.Function(lambda f: f.indicator.code)
    period = fields.Function(lambda f: f.period.label)
    value = _decimal()
    numerator = _decimal()
    denominator = _decimal()
    comment = fields.String(allow_none=True)
    status = fields.Function(lambda f: f.status.value if getattr(f, "status", None) else None)
    disaggregation = fields.Function(lambda f: PartOutSchema(many=True).dump(f.values))


class ProgressRowSchema(Schema):
    """indicators.progress.ProgressRow as JSON: decimals as strings, dates as ISO."""

    grant_reference = fields.String()
    indicator_id = fields.Integer()
    indicator_code = fields.String()
    indicator_name = fields.String()
    unit = fields.String()
    direction = fields.String()
    cumulative_mode = fields.String()
    funder_code = fields.String()
    donor_codes = fields.Dict(keys=fields.String(), values=fields.String())
    period_id = fields.Integer()
    period_label = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    period_status = fields.String()
    disaggregation = fields.String(allow_none=True)
    applicable = fields.Boolean()
    baseline_value = _decimal()
    lop_target = _decimal()
    target = _decimal()
    actual = _decimal()
    numerator = _decimal()
    denominator = _decimal()
    result_status = fields.String(allow_none=True)
    achievement_pct = _decimal()
    rating = fields.String(allow_none=True)
    band = fields.String(allow_none=True)
    on_track = fields.Boolean(allow_none=True)
    cumulative_target = _decimal()
    cumulative_actual = _decimal()
    cumulative_achievement_pct = _decimal()
    cumulative_rating = fields.String(allow_none=True)
    cumulative_on_track = fields.Boolean(allow_none=True)
    lop_achievement_pct = _decimal()
