"""Values on screen read one way: amounts, numbers, dates, moments, percentages and labels."""

import datetime as dt
import enum
from decimal import Decimal

import pytest
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
