"""Values on screen read one way: amounts, numbers, dates, moments, percentages and labels."""

import datetime as dt
import enum
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from core import clock
from core import formatting as f


class Mode(str, enum.Enum):
    period_average = "period_average"
    lop = "lop"


class Labelled(enum.Enum):
    odd = "x_y"

    @property
    def label(self) -> str:
        return "Its own words"


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("4300"), "USD", "USD 4,300.00"),
        (Decimal("21800.5"), "EUR", "EUR 21,800.50"),
        (Decimal("-1234567.891"), "XCD", "XCD -1,234,567.89"),
        (Decimal("0"), None, "0.00"),
        (None, "USD", "—"),
    ],
)
def test_amounts_have_thousands_separators_two_decimals_and_the_currency_code(value, currency, expected):
    assert f.amount(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("3.0000"), "3"),
        (Decimal("4300.00"), "4,300.00"),  # stored with cents: an amount keeps them
        (Decimal("2.7000000000"), "2.7"),
        (Decimal("0.125"), "0.125"),
        (21800, "21,800"),
        (None, "—"),
    ],
)
def test_numbers_lose_trailing_zeros_but_amounts_keep_their_cents(value, expected):
    assert f.number(value) == expected


def test_percentages_are_given_as_0_to_100():
    assert f.pct(Decimal("75.00")) == "75%"
    assert f.pct(Decimal("92.46")) == "92.5%"
    assert f.pct(Decimal("92.46"), 0) == "92%"
    assert f.pct(None) == "—"


def test_dates_read_day_month_year():
    assert f.day(dt.date(2026, 12, 1)) == "1 Dec 2026"
    assert f.day(None) == "—"


def test_moments_are_shown_to_the_minute_in_the_organisations_zone():
    stored = dt.datetime(2026, 12, 1, 13, 10, 53, 6443)  # naive from SQLite: UTC
    try:
        clock.set_zone("America/St_Lucia")  # UTC-4
        assert f.moment(stored) == "1 Dec 2026, 09:10"
        assert f.day(dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)) == "30 Nov 2026"
    finally:
        clock.set_zone("UTC")
    assert f.moment(stored) == "1 Dec 2026, 13:10"
    assert "53" not in f.moment(stored) and "6443" not in f.moment(stored)


def test_enum_values_become_labels():
    assert f.label(Mode.period_average) == "Period average"
    assert f.label("attendance_summary") == "Attendance summary"
    assert f.label(Mode.lop) == "Life of grant"
    assert f.label(Labelled.odd) == "Its own words"
    assert f.label(None) == "—"


def test_identifiers_in_words():
    assert f.words("ExportRecord") == "Export record"
    assert f.words("sha256") == "SHA-256"


def test_show_is_the_default_for_any_column():
    assert f.show(None) == "—"
    assert f.show("") == "—"
    assert f.show([]) == "none"
    assert f.show([{"code": "1", "name": "Human Resources"}, {"code": "2", "name": "Travel"}]) == (
        "1 — Human Resources, 2 — Travel"
    )
    assert f.show(True) == "Yes" and f.show(False) == "No"
    assert f.show(Mode.period_average) == "Period average"
    assert f.show(Decimal("3.0000")) == "3"
    assert f.show(dt.date(2026, 12, 1)) == "1 Dec 2026"
    assert f.show({"grant_id": 3}) == "Grant ID: 3"
    markup = Markup("<b>kept</b>")
    assert f.show(markup) is markup
    assert f.show("a title") == "a title"


def test_every_filter_is_registered_for_templates(app):
    for name in ("amount", "number", "pct", "day", "moment", "label", "show"):
        assert app.jinja_env.filters[name] is f.FILTERS[name]


# ---------------------------------------------------------------- by the reader's locale

LOCALES = ("en", "es", "fr", "nl")


@pytest.mark.parametrize(
    ("language", "amount", "day", "pct"),
    [
        ("en", "USD 1,234.50", "1 Dec 2026", "92.5%"),
        ("es", "USD 1.234,50", "1 dic 2026", "92,5\u00a0%"),
        ("fr", "USD 1\u202f234,50", "1 déc. 2026", "92,5\u00a0%"),
        ("nl", "USD 1.234,50", "1 dec 2026", "92,5%"),
    ],
)
def test_amounts_dates_and_percentages_read_as_each_language_writes_them(language, amount, day, pct):
    with f.in_locale(language):
        assert f.amount(Decimal("1234.5"), "USD") == amount
        assert f.day(dt.date(2026, 12, 1)) == day
        assert f.pct(92.46) == pct
        assert f.show(None) == "—"


def test_the_locale_comes_from_the_apps_provider_and_defaults_to_british_english():
    assert f.current_locale() == "en_GB"  # outside a request, even with the app's provider
    previous = f.set_locale_provider(lambda: "nl")
    try:
        assert f.current_locale() == "nl" and f.decimal_mark() == ","
        assert f.number(Decimal("21800")) == "21.800"
        with f.in_locale("en"):  # an e-mail to an English reader, while a Dutch one is signed in
            assert f.number(Decimal("21800")) == "21,800" and f.decimal_mark() == "."
    finally:
        f.set_locale_provider(previous)
    assert f.number(Decimal("21800")) == "21,800"


def test_labels_are_translated_by_the_apps_catalogues():
    import gettext

    class Dutch(gettext.NullTranslations):
        def gettext(self, message):
            return {"Yes": "Ja", "none": "geen"}.get(message, message)

    previous = f.set_translations_provider(lambda language: Dutch() if language == "nl" else gettext.NullTranslations())
    try:
        with f.in_locale("nl"):
            assert f.yes_no(True) == "Ja" and f.listing([]) == "geen"
        assert f.yes_no(True) == "Yes"  # English needs no catalogue
    finally:
        f.set_translations_provider(previous)


@given(
    value=st.decimals(min_value=Decimal("-999999999999.99"), max_value=Decimal("999999999999.99"), places=2),
    language=st.sampled_from(LOCALES),
)
def test_an_amount_written_for_a_reader_reads_back_the_same_with_their_decimal_mark(value, language):
    """Format then parse gives the same Decimal, in every language (the parser the imports use)."""
    from core.money import parse_amount

    with f.in_locale(language):
        written = f.amount(value, "USD")
        assert parse_amount(written, f.decimal_mark()) == value
        assert parse_amount(f.number(value), f.decimal_mark()) == value
