"""Enum values from forms, the API and imports: one parser, one message naming the choices."""

import enum

import pytest

from core.errors import DomainValidationError
from core.records import parse_enum


class Colour(str, enum.Enum):
    red = "red"
    green = "green"


def test_a_value_or_a_member_gives_the_member():
    assert parse_enum(Colour, "red", "colour") is Colour.red
    assert parse_enum(Colour, Colour.green, "colour") is Colour.green


def test_a_wrong_value_names_the_field_and_the_choices():
    with pytest.raises(DomainValidationError) as caught:
        parse_enum(Colour, "blue", "colour")
    assert caught.value.errors == {"colour": ["'blue' is not one of red, green"]}


def test_nothing_is_refused_unless_the_field_may_be_empty():
    assert parse_enum(Colour, None, "colour", allow_none=True) is None
    with pytest.raises(DomainValidationError, match="'None' is not one of red, green"):
        parse_enum(Colour, None, "colour")
