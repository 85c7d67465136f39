"""How values read on screen: one way for amounts, numbers, dates, moments, percentages and labels.

Registered once as Jinja filters by the app factory (``amount``, ``number``,
``day``, ``moment``, ``pct``, ``label``, ``show``) and used by views for FAB's
``formatters_columns``. People never see ``None``, ``3.0000``, microseconds,
``period_average`` or ``[]``: they see "—", "3", "1 Dec 2026, 13:10",
"Period average" and "none".

Numbers and dates are written with Babel in English (thousands separators,
month names), moments in the organisation's zone from ``core.clock``.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from markupsafe import Markup

from core import clock

LOCALE = "en_GB"
NOTHING = "—"

# Words that a plain capitalisation would get wrong.
_WORDS = {
    "lop": "life of grant",
    "ccm": "CCM",
    "rcm": "RCM",
    "hiv": "HIV",
    "api": "API",
    "cli": "command line",
    "url": "URL",
    "csv": "CSV",
    "xlsx": "XLSX",
    "id": "ID",
    "sha256": "SHA-256",
    "odoo": "Odoo",
    "iptt": "IPTT",
    "pct": "%",
}


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def number(value: Any, places: int | None = None) -> str:
    """A number with thousands separators: 21800 → "21,800", Decimal("3.0000") → "3".

    ``places`` fixes the decimals; without it trailing zeros go, except that an
    amount stored with cents keeps them (4300.00 → "4,300.00").
    """
    found = _decimal(value)
    if found is None:
        return NOTHING if value is None or isinstance(value, Decimal) else str(value)
    if places is None and found.as_tuple().exponent == -2:
        places = 2  # stored with cents: an amount
    if places is not None:
        pattern = "#,##0" + ("." + "0" * places if places > 0 else "")
        return format_decimal(found, format=pattern, locale=LOCALE, decimal_quantization=True)
    exponent = found.normalize().as_tuple().exponent
    decimals = max(0, -exponent) if isinstance(exponent, int) else 0
    pattern = "#,##0" + ("." + "#" * min(decimals, 10) if decimals else "")
    return format_decimal(found, format=pattern, locale=LOCALE, decimal_quantization=True)


def amount(value: Any, currency: str | None = None) -> str:
    """Money as people write it: "USD 21,800.00" (always two decimals), "—" for nothing."""
    found = _decimal(value)
    if found is None:
        return NOTHING
    text = number(found, 2)
    return f"{currency} {text}" if currency else text


def pct(value: Any, places: int = 1) -> str:
    """A percentage given as 0–100: 75 → "75%", 92.46 → "92.5%", None → "—"."""
    found = _decimal(value)
    if found is None:
        return NOTHING
    pattern = "#,##0" + ("." + "#" * places if places > 0 else "")
    return format_decimal(found, format=pattern, locale=LOCALE, decimal_quantization=True) + "%"


def day(value: Any) -> str:
    """A date as "1 Dec 2026" (a moment gives its day in the organisation's zone)."""
    if value is None:
        return NOTHING
    if isinstance(value, dt.datetime):
        value = clock.local(value).date()
    if isinstance(value, dt.date):
        return format_date(value, "d MMM y", locale=LOCALE)
    return str(value)


def moment(value: Any) -> str:
    """A stored moment in the organisation's zone, to the minute: "1 Dec 2026, 13:10"."""
    if value is None:
        return NOTHING
    if isinstance(value, dt.datetime):
        local = clock.local(value)
        return f"{day(local.date())}, {local:%H:%M}"
    if isinstance(value, dt.date):
        return day(value)
    return str(value)


def words(name: str) -> str:
    """An identifier in words: "period_average" → "Period average", "ExportRecord" → "Export record"."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(name)).replace("_", " ").replace("-", " ").strip()
    parts = [_WORDS.get(part.lower(), part.lower()) for part in text.split()]
    if not parts:
        return ""
    first = parts[0]
    parts[0] = first if first[:1].isupper() else first[:1].upper() + first[1:]
    return " ".join(parts)


def label(value: Any) -> str:
    """An enum member (or a stored enum value) as people say it: "on_track" → "On track".

    An enum may give its own wording with a ``label`` attribute.
    """
    if value is None:
        return NOTHING
    if isinstance(value, enum.Enum):
        own = getattr(value, "label", None)
        if isinstance(own, str) and own:
            return own
        value = value.value
    return words(str(value))


def yes_no(value: Any) -> str:
    if value is None:
        return NOTHING
    return "Yes" if value else "No"


def listing(value: Any) -> str:
    """A list as a sentence fragment; [] → "none". Dicts with a name read "code — name"."""
    if not value:
        return "none"
    parts = []
    for item in value:
        if isinstance(item, Mapping):
            code, name = item.get("code"), item.get("name")
            parts.append(f"{code} — {name}" if code and name else str(name or code or show(item)))
        else:
            parts.append(show(item))
    return ", ".join(parts)


def show(value: Any) -> str | Markup:
    """Any value as plain text for a page: the default formatter of every list and show column."""
    if value is None:
        return NOTHING
    if isinstance(value, Markup):
        return value
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, enum.Enum):
        return label(value)
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, dt.datetime):
        return moment(value)
    if isinstance(value, dt.date):
        return day(value)
    if isinstance(value, (list, tuple, set)):
        return listing(list(value))
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return "; ".join(f"{words(str(k))}: {show(v)}" for k, v in value.items())
    if isinstance(value, str) and value == "":
        return NOTHING
    if isinstance(value, str) and value.strip() in ("[]", "{}"):
        return "none"  # an empty list some library already turned into text
    return str(value)


FILTERS = {
    "amount": amount,
    "number": number,
    "pct": pct,
    "day": day,
    "moment": moment,
    "label": label,
    "words": words,
    "yes_no": yes_no,
    "listing": listing,
    "show": show,
}
