"""Percentages: one rounding rule for budget variances, burn rates and indicator achievement."""

from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from core.money import percent


@pytest.mark.parametrize(
    ("part", "whole", "places", "expected"),
    [
        (1, 3, 1, "33.3"),
        (2, 3, 1, "66.7"),
        (1, 8, 1, "12.5"),
        (1, 16, 1, "6.3"),  # a tie rounds away from zero
        (-1, 16, 1, "-6.3"),
        (Decimal("1"), Decimal("16"), 1, "6.3"),
        (Decimal("2"), Decimal("3"), 2, "66.67"),
        (150, 100, 1, "150.0"),
        (0, 500, 1, "0.0"),
    ],
)
def test_a_part_of_a_whole_is_a_percentage_rounded_half_up(part, whole, places, expected):
    assert str(percent(part, whole, places=places)) == expected


@pytest.mark.parametrize("whole", [0, Decimal("0"), Decimal("0.00")])
def test_a_percentage_of_nothing_has_no_value(whole):
    assert percent(5, whole) is None


def test_whole_cents_and_decimals_give_the_same_figure():
    for part, whole in [(12345, 67890), (-5, 7), (1, 6), (999999, 1000000), (5, -16)]:
        assert str(percent(part, whole)) == str(percent(Decimal(part), Decimal(whole)))
        assert str(percent(part, whole, places=2)) == str(percent(Decimal(part), Decimal(whole), places=2))


def test_indicator_rates_keep_four_places_with_bankers_rounding():
    assert str(percent(Decimal("1"), Decimal("3"), places=4, rounding=ROUND_HALF_EVEN)) == "33.3333"
    assert str(percent(Decimal("1"), Decimal("800000"), places=4, rounding=ROUND_HALF_EVEN)) == "0.0001"
