"""Money and currencies: Decimal amounts read by decimal mark, ISO 4217 codes (via pycountry), column types."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

import pycountry
from sqlalchemy import BigInteger, Float, Integer, Numeric, SmallInteger
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import NoInspectionAvailable

from core.formatting import gettext as _
from core.formatting import lazy_gettext

# Amounts: 18 digits, 2 decimals. Rates: enough scale for pegs like 2.70 and cross rates.
MONEY = Numeric(18, 2)
RATE = Numeric(20, 10)
CENT = Decimal("0.01")
MONEY_INTEGER_DIGITS = 16  # MONEY's 18 digits less its 2 decimals


@functools.lru_cache(maxsize=1024)
def is_currency_code(code: str | None) -> bool:
    """True for an active ISO 4217 alphabetic code such as ``XCD`` or ``EUR``."""
    if not code or len(code) != 3 or not code.isalpha() or not code.isupper():
        return False
    return pycountry.currencies.get(alpha_3=code) is not None


def currency_name(code: str) -> str:
    found = pycountry.currencies.get(alpha_3=code)
    return found.name if found else code


def currency_choices() -> list[tuple[str, str]]:
    return sorted((c.alpha_3, f"{c.alpha_3} — {c.name}") for c in pycountry.currencies)


def to_decimal(value: object, field: str = "amount") -> Decimal:
    """Parse a user-entered amount exactly (a point as decimal mark); floats are refused because they are not exact."""
    if isinstance(value, float) or isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(_("%(field)s: %(value)s is not a number", field=field, value=repr(value)))
    try:
        return parse_amount(value, ".", integer_digits=None)
    except AmountError as exc:
        raise ValueError(_("%(field)s: %(problem)s", field=field, problem=exc)) from None


# -- reading amounts as people write them ----------------------------------------------------------

DECIMAL_MARKS = {".": lazy_gettext("a point (1,234.56)"), ",": lazy_gettext("a comma (1.234,56)")}
# Spaces (plain, no-break, narrow, thin) and apostrophes group thousands whatever the decimal mark.
_SPACING = str.maketrans("", "", " \u00a0\u202f\u2009\u2007'\u2019")
_MINUS = ("-", "\u2212", "\u2013")
_CURRENCY_PREFIX = re.compile(
    r"^[A-Z]{0,3}[$\u20ac\u00a3\u00a5\u20a6\u20b5\u20b9\u20b1\u20a1]|^[A-Z]{3}(?=[\d.,(+\-\u2212\u2013])"
)  # "USD -0.01" too: how core.formatting.amount writes a negative amount
_CURRENCY_SUFFIX = re.compile(r"(?<=[\d.,)])(?:[$\u20ac\u00a3\u00a5\u20a6\u20b5\u20b9\u20b1\u20a1]|[A-Z]{3})$")
_SHAPES: dict[str, re.Pattern[str]] = {}


class AmountError(ValueError):
    """An amount that cannot be read; the message says what is wrong in words, without the field name."""


def _shape(decimal_mark: str) -> re.Pattern[str]:
    if decimal_mark not in _SHAPES:
        group = re.escape("," if decimal_mark == "." else ".")
        mark = re.escape(decimal_mark)
        whole = rf"(?:\d{{1,3}}(?:{group}\d{{3}})+|\d{{1,2}}(?:{group}\d{{2}})+{group}\d{{3}}|\d+)"
        _SHAPES[decimal_mark] = re.compile(rf"^(?P<whole>{whole})?(?:{mark}(?P<fraction>\d+))?$")
    return _SHAPES[decimal_mark]


def _fits(value: Decimal, integer_digits: int | None) -> bool:
    if integer_digits is None or value.is_zero():
        return True
    return value.adjusted() < integer_digits


def _too_big(text: str, integer_digits: int) -> AmountError:
    largest = "9" * integer_digits
    return AmountError(
        _(
            "'%(text)s' is too large: at most %(digits)s digits before the decimal mark (%(largest)s)",
            text=text,
            digits=integer_digits,
            largest=largest,
        )
    )


def parse_amount(
    value: object, decimal_mark: str = ".", *, integer_digits: int | None = MONEY_INTEGER_DIGITS
) -> Decimal:
    """An amount written by a person or a spreadsheet, read with the given decimal mark and never guessed.

    ``decimal_mark`` is "." or ","; the other one may group thousands (``1.000,50`` with
    a comma is 1000.50), as may spaces and apostrophes. Exponents (``1E+20``), ``NaN``,
    ``Infinity`` and amounts with more than ``integer_digits`` digits before the mark are
    refused. Accounting negatives ``(12.50)`` and currency signs (``$``, ``EC$``, ``€``,
    ``USD``) are read. Raises ``AmountError`` saying what is wrong.
    """
    if decimal_mark not in DECIMAL_MARKS:
        raise AmountError(_("'%(mark)s' is not a decimal mark; choose a point or a comma", mark=decimal_mark))
    if isinstance(value, bool):
        raise AmountError(_("'%(text)s' is not a number", text=value))
    if isinstance(value, float):
        # Spreadsheet cells hold floats; repr gives the shortest exact decimal text.
        if value != value or value in (float("inf"), float("-inf")):
            raise AmountError(_("is not a finite number"))
        value = Decimal(repr(value))
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise AmountError(_("'%(text)s' is not a finite number", text=value))
        if not _fits(value, integer_digits):
            raise _too_big(f"{value}", integer_digits or 0)
        return value
    if not isinstance(value, str):
        raise AmountError(_("'%(text)s' is not a number", text=value))
    text = value.strip()
    if not text:
        raise AmountError(_("is empty; an amount is required"))
    compact = text.translate(_SPACING)
    negative = False
    if compact.startswith("(") and compact.endswith(")"):
        negative, compact = True, compact[1:-1]
    compact = _CURRENCY_SUFFIX.sub("", _CURRENCY_PREFIX.sub("", compact.upper()))
    if compact[:1] in _MINUS or compact[:1] == "+":
        negative ^= compact[:1] in _MINUS
        compact = _CURRENCY_PREFIX.sub("", compact[1:])
    match = _shape(decimal_mark).match(compact)
    if not match or not (match.group("whole") or match.group("fraction")):
        lowered = compact.lower()
        if lowered in ("nan", "inf", "infinity", "snan") or "nan" in lowered or "inf" in lowered:
            raise AmountError(_("'%(text)s' is not a finite number", text=text))
        if re.fullmatch(r"[\d.,]*\d[eE][+-]?\d+", compact):
            raise AmountError(_("'%(text)s' is written with an exponent; write the amount out in digits", text=text))
        other = "," if decimal_mark == "." else "."
        if _shape(other).match(compact) and any(ch.isdigit() for ch in compact):
            if decimal_mark == ".":
                raise AmountError(
                    _(
                        "'%(text)s' is not written with a point as decimal mark; "
                        "if amounts are written like 1.234,56, choose a comma",
                        text=text,
                    )
                )
            raise AmountError(
                _(
                    "'%(text)s' is not written with a comma as decimal mark; "
                    "if amounts are written like 1,234.56, choose a point",
                    text=text,
                )
            )
        raise AmountError(_("'%(text)s' is not a number", text=text))
    whole = re.sub(r"\D", "", match.group("whole") or "0")
    fraction = match.group("fraction") or ""
    result = Decimal(f"{whole}.{fraction}" if fraction else whole)
    if not _fits(result, integer_digits):
        raise _too_big(text, integer_digits or 0)
    return -result if negative else result


def ambiguous_separator(value: object) -> str | None:
    """ "." or "," when ``value`` reads differently with each decimal mark ("1.000", "2,500"), else None."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"[(+\-]?\D{0,4}\d{1,3}([.,])\d{3}\D{0,4}\)?", value.strip())
    return match.group(1) if match else None


def guess_decimal_mark(values: Iterable[object]) -> str:
    """The decimal mark the texts show unambiguously (``12,50``, ``1.234,5``), a point when they don't say."""
    votes = {".": 0, ",": 0}
    for value in values:
        if not isinstance(value, str):
            continue
        text = value.strip().translate(_SPACING)
        last = re.search(r"([.,])(\d+)\D*$", text)
        if last is None:
            continue
        separators = set(re.findall(r"[.,]", text))
        if len(separators) == 2 or len(last.group(2)) != 3:
            votes[last.group(1)] += 1
    return "," if votes[","] > votes["."] else "."


def numbers_out_of_range(record: object, model: type | None = None) -> dict[str, list[str]]:
    """Numbers a record's columns cannot hold (non-finite, too many digits, beyond an integer column), by field.

    ``model``: the mapped class whose columns to check when ``record`` is a plain object of values (bulk writes).
    """
    problems: dict[str, list[str]] = {}
    try:
        mapped: type[object] = model if model is not None else type(record)
        mapper = sa_inspect(mapped)
    except NoInspectionAvailable:
        return problems
    if mapper is None:
        return problems
    for column in mapper.columns:
        value = getattr(record, column.key, None)
        if value is None or isinstance(value, bool):
            continue
        kind = column.type
        if isinstance(kind, Numeric) and not isinstance(kind, Float) and isinstance(value, (Decimal, float, int)):
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            if not number.is_finite():
                problems.setdefault(column.key, []).append(_("is not a finite number"))
            elif kind.precision is not None and not _fits(number, kind.precision - (kind.scale or 0)):
                problems.setdefault(column.key, []).append(
                    _(
                        "is too large: at most %(digits)s digits before the decimal mark",
                        digits=kind.precision - (kind.scale or 0),
                    )
                )
        elif isinstance(kind, Integer) and isinstance(value, int):
            bits = 63 if isinstance(kind, BigInteger) else 15 if isinstance(kind, SmallInteger) else 31
            if not -(2**bits) <= value < 2**bits:
                problems.setdefault(column.key, []).append(_("%(value)s is out of range", value=value))
    return problems


def quantize_money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def percent(
    part: Decimal | int, whole: Decimal | int, places: int = 1, rounding: str = ROUND_HALF_UP
) -> Decimal | None:
    """``part`` as a percentage of ``whole``, rounded to ``places`` decimals; None when ``whole`` is zero.

    Callers decide what a zero ``whole`` means for them (no figure, or 100% of nothing).
    """
    if not whole:
        return None
    if type(part) is int and type(whole) is int and rounding == ROUND_HALF_UP:
        # Whole cents: the same ROUND_HALF_UP (ties away from zero) in integer arithmetic,
        # four times cheaper than Decimal division, three times per budget report row.
        units = (200 * 10**places * abs(part) + abs(whole)) // (2 * abs(whole))
        pct = Decimal(units).scaleb(-places)
        return pct.copy_negate() if (part < 0) != (whole < 0) else pct
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal(1).scaleb(-places), rounding=rounding)


def is_country_code(code: str) -> bool:
    return len(code) == 2 and pycountry.countries.get(alpha_2=code.upper()) is not None


def country_name(code: str) -> str:
    found = pycountry.countries.get(alpha_2=code.upper())
    return found.name if found else code
