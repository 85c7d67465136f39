"""Amounts are read with the decimal mark the user chose, never guessed; what cannot be stored is refused in words."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import AmountError, ambiguous_separator, guess_decimal_mark, parse_amount, to_decimal


@pytest.mark.parametrize(
    ("text", "mark", "expected"),
    [
        ("1.000,50", ",", "1000.50"),
        ("1,000.50", ".", "1000.50"),
        ("1 000,50", ",", "1000.50"),
        ("1\u202f000,50", ",", "1000.50"),
        ("1'234.50", ".", "1234.50"),
        ("1,000", ",", "1.000"),
        ("1,000", ".", "1000"),
        ("1.000", ",", "1000"),
        ("12,5", ",", "12.5"),
        ("(12.50)", ".", "-12.50"),
        ("-€ 5,5", ",", "-5.5"),
        ("EC$1,234.56", ".", "1234.56"),
        ("12 USD", ".", "12"),
        ("1,00,000.00", ".", "100000.00"),
        ("9999999999999999.99", ".", "9999999999999999.99"),
    ],
)
def test_an_amount_is_read_with_the_chosen_decimal_mark(text, mark, expected):
    assert parse_amount(text, mark) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "mark", "words"),
    [
        ("1.000,50", ".", "choose a comma"),
        ("1,000.50", ",", "choose a point"),
        ("1e309", ".", "exponent"),
        ("1E+20", ".", "exponent"),
        ("NaN", ".", "not a finite number"),
        ("Infinity", ".", "not a finite number"),
        ("-inf", ".", "not a finite number"),
        ("12345678901234567", ".", "too large"),
        ("1.2.3", ".", "not a number"),
        ("twelve", ".", "not a number"),
        ("", ".", "is empty"),
    ],
)
def test_an_amount_that_cannot_be_read_is_refused_in_words(text, mark, words):
    with pytest.raises(AmountError, match=words):
        parse_amount(text, mark)


def test_spreadsheet_numbers_too_large_or_not_finite_are_refused():
    with pytest.raises(AmountError, match="too large"):
        parse_amount(1e20)
    with pytest.raises(AmountError, match="finite"):
        parse_amount(float("nan"))
    with pytest.raises(AmountError, match="too large"):
        parse_amount(Decimal("1E+309"))
    assert parse_amount(1234.5) == Decimal("1234.5")


def test_an_exchange_rate_may_have_fewer_digits_before_the_mark():
    with pytest.raises(AmountError, match="at most 10 digits"):
        parse_amount("12345678901", integer_digits=10)


def test_services_read_typed_amounts_with_a_point_and_refuse_guesses():
    assert to_decimal("1,250.50") == Decimal("1250.50")
    with pytest.raises(ValueError, match="amount: '1,5' is not written with a point"):
        to_decimal("1,5")
    with pytest.raises(ValueError, match="amount: 'NaN' is not a finite number"):
        to_decimal("NaN")


def test_values_that_read_differently_with_each_mark_are_recognised():
    assert ambiguous_separator("1.000") == "."
    assert ambiguous_separator("$2,500") == ","
    assert ambiguous_separator("1.000,50") is None
    assert ambiguous_separator("12.5") is None


def test_the_decimal_mark_a_file_shows_is_offered_first():
    assert guess_decimal_mark(["1.000", "12,50", "3,5"]) == ","
    assert guess_decimal_mark(["1,000.5", "2,000"]) == "."
    assert guess_decimal_mark(["1.000", "2"]) == "."  # says nothing: a point, and the preview shows the reading


def test_a_record_whose_numbers_do_not_fit_their_columns_is_named_by_field(app):
    from budgets.models import Expenditure
    from core.money import numbers_out_of_range

    record = Expenditure(amount=Decimal("1E+20"), grant_id=2**40)
    problems = numbers_out_of_range(record)
    assert "too large" in problems["amount"][0]
    assert "out of range" in problems["grant_id"][0]
    assert numbers_out_of_range(Expenditure(amount=Decimal("12.50"), grant_id=3)) == {}


# ---------------------------------------------------------------- typed the reader's way


@pytest.mark.parametrize(
    ("language", "typed", "expected"),
    [
        ("en", "1,234.50", Decimal("1234.50")),
        ("es", "1.234,50", Decimal("1234.50")),
        ("fr", "1\u202f234,50", Decimal("1234.50")),
        ("fr", "1 234,50 €", Decimal("1234.50")),
        ("nl", "-1.234.567,5", Decimal("-1234567.5")),
    ],
)
def test_a_typed_amount_is_read_with_the_readers_decimal_mark(language, typed, expected):
    from core import formatting
    from core.forms import read_typed_number

    with formatting.in_locale(language):
        assert read_typed_number(typed) == expected
        assert read_typed_number("  ") is None


def test_a_dutch_reader_typing_an_english_amount_is_told_which_mark_is_expected():
    from core import formatting
    from core.forms import read_typed_number

    # In Dutch once the app's catalogues are installed (another test built an app), else in English.
    with formatting.in_locale("nl"), pytest.raises(AmountError, match="decimal mark|decimaalteken"):
        read_typed_number("1,234.50")


@given(
    value=st.decimals(min_value=Decimal("-9999999999"), max_value=Decimal("9999999999"), places=4),
    language=st.sampled_from(("en", "es", "fr", "nl")),
)
def test_what_a_form_shows_it_reads_back_unchanged_in_every_language(value, language):
    from core import formatting
    from core.forms import read_typed_number

    with formatting.in_locale(language):
        assert read_typed_number(formatting.number(value)) == value
