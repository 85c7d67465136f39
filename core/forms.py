"""Input checks that say in words what is wrong with a field, shared by all domains: WTForms validators for
the forms, and the guards every REST API schema gets (ids, numbers that fit their columns)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError as MarshmallowError
from wtforms import DecimalField
from wtforms.validators import ValidationError

from core import formatting
from core.formatting import gettext as _
from core.formatting import lazy_gettext
from core.money import AmountError, is_country_code, is_currency_code, parse_amount


def read_typed_number(text: Any) -> Any:
    """A number typed in a form, read the reader's way: "1.234,50" in Dutch, "1 234,50" in French.

    The one reader of typed and imported amounts (``core.money.parse_amount``) with
    the decimal mark of the reader's locale; None for an empty field. Raises
    ``AmountError`` saying what is wrong.
    """
    if text is None or not str(text).strip():
        return None
    return parse_amount(str(text), formatting.decimal_mark(), integer_digits=None)


class LocaleDecimalField(DecimalField):
    """A decimal form field that shows and reads numbers with the reader's decimal mark and grouping.

    Every Numeric column of every Flask-AppBuilder form gets it (``app/i18n.py`` puts it
    in FAB's conversion table); the column's size is still checked by ``number_fits``.
    """

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        try:
            self.data = read_typed_number(valuelist[0])
        except AmountError as exc:
            self.data = None
            raise ValueError(str(exc)) from None

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if self.data is None:
            return ""
        return formatting.number(self.data)


def currency_code(form: Any, field: Any) -> None:
    value = (field.data or "").strip().upper()
    field.data = value
    if not is_currency_code(value):
        raise ValidationError(_("'%(code)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)", code=value))


def country_codes(form: Any, field: Any) -> None:
    codes = [c.strip().upper() for c in (field.data or "").split(",") if c.strip()]
    bad = [c for c in codes if not is_country_code(c)]
    if bad:
        raise ValidationError(_("not ISO 3166 country codes: %(codes)s (e.g. LC, GD)", codes=", ".join(bad)))
    field.data = ",".join(codes)


def non_negative(form: Any, field: Any) -> None:
    if field.data is not None and field.data < 0:
        raise ValidationError(_("must not be negative"))


def not_before(other: str, label: str | None = None) -> Any:
    def _check(form: Any, field: Any) -> None:
        start = getattr(form, other).data if hasattr(form, other) else None
        if field.data is not None and start is not None and field.data < start:
            raise ValidationError(_("is before the %(field)s", field=label or other.replace("_", " ")))

    return _check


def number_fits(integer_digits: int | None) -> Any:
    """A typed number must be finite and fit its column (e.g. 16 digits before the mark for an amount)."""

    def _check(form: Any, field: Any) -> None:
        if field.data is None:
            return
        try:
            parse_amount(field.data, ".", integer_digits=integer_digits)
        except AmountError as exc:
            raise ValidationError(str(exc)) from None

    _check.number_fits = True  # type: ignore[attr-defined]
    return _check


def with_number_checks(validators: dict[str, list[Any]], model: Any) -> dict[str, list[Any]]:
    """``validators_columns`` plus ``number_fits`` on every Numeric column of ``model`` that lacks it."""
    from sqlalchemy import Float, Numeric
    from sqlalchemy import inspect as sa_inspect

    result = {name: list(checks) for name, checks in (validators or {}).items()}
    for column in sa_inspect(model).columns:
        kind = column.type
        if isinstance(kind, Numeric) and not isinstance(kind, Float):
            checks = result.setdefault(column.key, [])
            if not any(getattr(check, "number_fits", False) for check in checks):
                digits = None if kind.precision is None else kind.precision - (kind.scale or 0)
                checks.append(number_fits(digits))
    return result


_ID_LIMIT = 2**31


def _as_id(value: Any) -> int:
    """A record id from JSON: a whole number (or its digits), within what an id column holds."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MarshmallowError(_("must be the id of a record (a whole number), not a list or an object"))
    if isinstance(value, str) and not value.strip().isdigit():
        raise MarshmallowError(_("'%(value)s' is not the id of a record (a whole number)", value=value))
    number = int(value)
    if not 0 < number < _ID_LIMIT:
        raise MarshmallowError(_("there is no record with the id %(number)s", number=number))
    return number


def guard_api_schema(schema: Any, model: Any) -> None:
    """Refuse in words, field by field, what would otherwise reach the database and answer 500.

    Relations take an id (or a list of ids) in range; numbers must be finite and fit their
    column; whole numbers must fit a 32-bit column.
    """
    from marshmallow import fields as mf
    from marshmallow import validate
    from marshmallow_sqlalchemy.fields import Related, RelatedList
    from sqlalchemy import BigInteger, Float, Integer, Numeric
    from sqlalchemy import inspect as sa_inspect

    columns = {column.key: column for column in sa_inspect(model).columns}
    for name, field in schema.fields.items():
        if isinstance(field, RelatedList):
            inner = field.inner
            original_list = field._deserialize

            def _ids(value: Any, attr: Any, data: Any, _original: Any = original_list, **kwargs: Any) -> Any:
                if not isinstance(value, list):
                    raise MarshmallowError(_("must be a list of record ids"))
                return _original([_as_id(item) for item in value], attr, data, **kwargs)

            field._deserialize = _ids  # type: ignore[method-assign]
            if isinstance(inner, Related):
                _guard_related(inner)
        elif isinstance(field, Related):
            _guard_related(field)
        elif isinstance(field, mf.Decimal) or isinstance(field, mf.Float):
            column = columns.get(name)
            kind = column.type if column is not None else None
            digits = None
            if isinstance(kind, Numeric) and not isinstance(kind, Float) and kind.precision is not None:
                digits = kind.precision - (kind.scale or 0)
            field.validators.append(_number_validator(digits))
        elif isinstance(field, mf.Integer):
            column = columns.get(name)
            bits = 63 if column is not None and isinstance(column.type, BigInteger) else 31
            if column is None or isinstance(column.type, Integer):
                field.validators.append(
                    validate.Range(-(2**bits), 2**bits - 1, error=lazy_gettext("must be between {min} and {max}"))
                )


def _guard_related(field: Any) -> None:
    original = field._deserialize

    def _one(value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"id"}:
            value = value["id"]
        return original(_as_id(value), attr, data, **kwargs)

    field._deserialize = _one


def _number_validator(integer_digits: int | None) -> Any:
    def _check(value: Any) -> None:
        if value is None:
            return
        try:
            parse_amount(value if not isinstance(value, float) else value, ".", integer_digits=integer_digits)
        except AmountError as exc:
            raise MarshmallowError(str(exc)) from None

    return _check
