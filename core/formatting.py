"""How values read on screen: one way for amounts, numbers, dates, moments, percentages and labels.

Registered once as Jinja filters by the app factory (``amount``, ``number``,
``day``, ``moment``, ``pct``, ``label``, ``show``) and used by views for FAB's
``formatters_columns``. People never see ``None``, ``3.0000``, microseconds,
``period_average`` or ``[]``: they see "—", "3", "1 Dec 2026, 13:10",
"Period average" and "none".

Numbers and dates are written with Babel in the reader's locale (thousands
separators, decimal mark, month names: "1,234.50" / "1.234,50" / "1 234,50",
"1 Dec 2026" / "1 déc. 2026"), moments in the organisation's zone from
``core.clock``.

The reader's locale and the translations come from hooks the app sets
(``set_locale_provider``, ``set_translations_provider``), so this module never
imports Flask: without them it writes British English. ``in_locale`` forces a
locale for a block (an e-mail goes out in its recipient's language).
``gettext``, ``ngettext`` and ``lazy_gettext`` are the one way code below the
app marks and translates its strings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import functools
import gettext as _gettext_module
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal, get_decimal_symbol
from babel.support import LazyProxy
from markupsafe import Markup, escape

from core import clock

LOCALE = "en_GB"  # the default locale: British English
NOTHING = "—"

# ---------------------------------------------------------------- locale and translations

# Babel locales for the interface languages: English reads the British way.
FORMAT_LOCALES = {"en": "en_GB"}

LocaleProvider = Callable[[], "str | None"]
TranslationsProvider = Callable[[str], "_gettext_module.NullTranslations"]

_locale_provider: LocaleProvider | None = None
_translations_provider: TranslationsProvider | None = None
_forced: ContextVar[str | None] = ContextVar("grantkeeper_locale", default=None)


def set_locale_provider(provider: LocaleProvider | None) -> LocaleProvider | None:
    """The app's answer to "whose locale is this?" (e.g. the signed-in user's language); None: British English.

    Returns the provider it replaces (so a test can put it back).
    """
    global _locale_provider
    previous, _locale_provider = _locale_provider, provider
    return previous


def set_translations_provider(provider: TranslationsProvider | None) -> TranslationsProvider | None:
    """The app's catalogues: ``provider(language) -> gettext translations``; None: no translation.

    Returns the provider it replaces.
    """
    global _translations_provider
    previous, _translations_provider = _translations_provider, provider
    return previous


def current_language() -> str:
    """The language of the reader: "en", "es", "fr", "nl" (a forced one first, then the app's provider)."""
    found = _forced.get()
    if not found and _locale_provider is not None:
        try:
            found = _locale_provider()
        except RuntimeError:  # outside a request
            found = None
    return str(found or "en").replace("-", "_").split("_")[0] or "en"


def current_locale() -> str:
    """The Babel locale numbers and dates are written in: "en_GB", "es", "fr", "nl"."""
    forced = _forced.get()
    if forced and "_" in forced:
        return forced
    language = current_language()
    return FORMAT_LOCALES.get(language, language)


@contextlib.contextmanager
def in_locale(language: str | None) -> Iterator[None]:
    """Write and translate in ``language`` inside the block, whoever is signed in (e-mails, workbooks)."""
    token = _forced.set(language or "en")
    try:
        yield
    finally:
        _forced.reset(token)


def decimal_mark() -> str:
    """The reader's decimal mark, "." or ","; what ``core.money.parse_amount`` reads typed amounts with."""
    symbol = get_decimal_symbol(current_locale())
    return "," if symbol == "," else "."


def _translations() -> _gettext_module.NullTranslations | None:
    if _translations_provider is None:
        return None
    language = current_language()
    if language == "en":
        return None
    return _translations_provider(language)


def gettext(message: str, **values: Any) -> str:
    """``message`` in the reader's language, with ``%(name)s`` placeholders filled from ``values``."""
    translations = _translations()
    text = translations.gettext(message) if translations is not None else message
    return text % values if values else text


def ngettext(singular: str, plural: str, count: int, **values: Any) -> str:
    """The singular or plural form for ``count`` in the reader's language; ``%(num)d`` is the count."""
    translations = _translations()
    if translations is not None:
        text = translations.ngettext(singular, plural, count)
    else:
        text = singular if count == 1 else plural
    return text % {"num": count, **values}


class LazyText(LazyProxy):  # type: ignore[misc]
    """A lazily translated text that pages and JSON take like a string (FAB's labels and titles)."""

    def __html__(self) -> Markup:
        return escape(str(self))

    def __hash__(self) -> int:
        return hash(str(self))


def lazy_gettext(message: str, **values: Any) -> Any:
    """A string translated when it is shown, not when it is defined (module-level labels)."""
    return LazyText(gettext, message, enable_cache=False, **values)


def in_reader_language(default: str | None, titles: Mapping[str, str] | None) -> str:
    """A name the organisation entered, in the reader's language when it was given one.

    ``titles`` maps a language code to that language's text (``Indicator.titles``,
    ``Requirement.titles``); ``default`` is the text entered first, shown where the reader's
    language has none. Names are data: nothing here is looked up in the catalogues.
    """
    if titles:
        found = titles.get(current_language())
        if found and found.strip():
            return found
    return default or ""


def N_(message: str) -> str:
    """Marks ``message`` for the catalogues and returns it as is (FAB translates menu labels when it shows them)."""
    return message


_ = gettext

# Words that a plain capitalisation would get wrong.
_WORDS = {
    "lop": "life of grant",
    "ccm": "CCM",
    "rcm": "RCM",
    "hiv": "HIV",
    "api": "API",
    "iati": "IATI",
    "dac": "DAC",
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
        return format_decimal(found, format=pattern, locale=current_locale(), decimal_quantization=True)
    exponent = found.normalize().as_tuple().exponent
    decimals = max(0, -exponent) if isinstance(exponent, int) else 0
    pattern = "#,##0" + ("." + "#" * min(decimals, 10) if decimals else "")
    return format_decimal(found, format=pattern, locale=current_locale(), decimal_quantization=True)


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
    locale = current_locale()
    text = format_decimal(found, format=pattern, locale=locale, decimal_quantization=True)
    return text + _percent_suffix(locale)


def _percent_suffix(locale: str) -> str:
    """ "%" as the locale writes it after a number: "%" in English, " %" (no-break space) in French."""
    own = Locale.parse(locale).percent_formats.get(None)
    found = re.search(r"[0#](\S*?)(\s?%)", own.pattern if own is not None else "")
    return found.group(2).replace(" ", "\u00a0") if found else "%"


def day(value: Any) -> str:
    """A date as "1 Dec 2026" (a moment gives its day in the organisation's zone)."""
    if value is None:
        return NOTHING
    if isinstance(value, dt.datetime):
        value = clock.local(value).date()
    if isinstance(value, dt.date):
        return _short_date(value, current_locale())  # 1 Dec 2026, 1 déc. 2026, 1 dic 2026
    return str(value)


@functools.lru_cache(maxsize=4096)
def _short_date(value: dt.date, locale: str) -> str:
    """Babel's pattern formatting is slow and a sweep writes the same few dates 100,000 times."""
    return format_date(value, "d MMM y", locale=locale)


@functools.lru_cache(maxsize=4096)
def _long_date(value: dt.date, locale: str) -> str:
    return format_date(value, "EEEE d MMMM y" if locale.startswith("en") else "full", locale=locale)


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
    """An enum member (or a stored enum value) as people say it, in the reader's language: "on_track" → "On track".

    An enum may give its own wording with a ``label`` attribute. The worded text is looked up
    in the catalogues ("At risk" → "En riesgo"); ``core.labels`` lists every such word for them.
    """
    if value is None:
        return NOTHING
    if isinstance(value, enum.Enum):
        own = getattr(value, "label", None)
        if isinstance(own, (str, LazyText)) and str(own):
            return gettext(str(own))  # a lazy label is already in the reader's language
        value = value.value
    return gettext(words(str(value)))


def yes_no(value: Any) -> str:
    if value is None:
        return NOTHING
    return gettext("Yes") if value else gettext("No")


def listing(value: Any) -> str:
    """A list as a sentence fragment; [] → "none". Dicts with a name read "code — name"."""
    if not value:
        return gettext("none")
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
            return gettext("none")
        return "; ".join(f"{words(str(k))}: {show(v)}" for k, v in value.items())
    if isinstance(value, str) and value == "":
        return NOTHING
    if isinstance(value, str) and value.strip() in ("[]", "{}"):
        return gettext("none")  # an empty list some library already turned into text
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


def long_day(value: dt.date) -> str:
    """A date written out for a letter: "Tuesday 1 December 2026", "mardi 1 décembre 2026"."""
    return _long_date(value, current_locale())
