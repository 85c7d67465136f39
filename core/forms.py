"""WTForms validators that say in words what is wrong with a field, shared by all domains."""

from __future__ import annotations

from typing import Any

from wtforms.validators import ValidationError

from core.money import is_country_code, is_currency_code


def currency_code(form: Any, field: Any) -> None:
    value = (field.data or "").strip().upper()
    field.data = value
    if not is_currency_code(value):
        raise ValidationError(f"'{value}' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)")


def country_codes(form: Any, field: Any) -> None:
    codes = [c.strip().upper() for c in (field.data or "").split(",") if c.strip()]
    bad = [c for c in codes if not is_country_code(c)]
    if bad:
        raise ValidationError(f"not ISO 3166 country codes: {', '.join(bad)} (e.g. LC, GD)")
    field.data = ",".join(codes)


def non_negative(form: Any, field: Any) -> None:
    if field.data is not None and field.data < 0:
        raise ValidationError("must not be negative")


def not_before(other: str, label: str | None = None) -> Any:
    def _check(form: Any, field: Any) -> None:
        start = getattr(form, other).data if hasattr(form, other) else None
        if field.data is not None and start is not None and field.data < start:
            raise ValidationError(f"is before the {label or other.replace('_', ' ')}")

    return _check
