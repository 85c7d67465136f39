"""Reporting periods: due dates and period rules, by the examples the issue names."""

from datetime import date

import pytest

from core.periods import PeriodLength, due_after, split_into_periods


@pytest.mark.parametrize(
    ("period_end", "days", "expected"),
    [
        (date(2024, 6, 30), 45, date(2024, 8, 14)),
        (date(2024, 12, 31), 60, date(2025, 3, 1)),
        (date(2027, 12, 31), 60, date(2028, 2, 29)),  # leap year
        (date(2026, 6, 30), 45, date(2026, 8, 14)),  # DEMO.md semester update
        (date(2026, 12, 31), 60, date(2027, 3, 1)),  # DEMO.md annual update
    ],
)
def test_report_due_after_period_end(period_end, days, expected):
    assert due_after(period_end, days) == expected


def test_two_year_grant_splits_into_four_semesters_with_due_dates():
    spans = split_into_periods(date(2026, 1, 1), date(2027, 12, 31), "semester", 45)
    assert [s.label for s in spans] == ["S1", "S2", "S3", "S4"]
    assert [(s.start, s.end) for s in spans] == [
        (date(2026, 1, 1), date(2026, 6, 30)),
        (date(2026, 7, 1), date(2026, 12, 31)),
        (date(2027, 1, 1), date(2027, 6, 30)),
        (date(2027, 7, 1), date(2027, 12, 31)),
    ]
    assert spans[0].report_due == date(2026, 8, 14)
    assert spans[3].report_due == date(2028, 2, 14)


def test_months_starting_on_the_31st_do_not_skip_or_overlap():
    spans = split_into_periods(date(2026, 1, 31), date(2026, 5, 30), PeriodLength.MONTH, 10)
    assert spans[0].end == date(2026, 2, 27)
    for before, after in zip(spans, spans[1:]):
        assert (after.start - before.end).days == 1
    assert spans[-1].end == date(2026, 5, 30)


def test_last_period_is_cut_at_the_grant_end():
    spans = split_into_periods(date(2026, 1, 1), date(2026, 8, 15), "quarter", 30)
    assert [s.label for s in spans] == ["Q1", "Q2", "Q3"]
    assert spans[-1].end == date(2026, 8, 15)
    assert spans[-1].report_due == date(2026, 9, 14)


def test_yearly_periods_of_a_one_year_grant():
    spans = split_into_periods(date(2026, 1, 1), date(2026, 12, 31), "year", 90)
    assert len(spans) == 1 and spans[0].report_due == date(2027, 3, 31)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((date(2026, 2, 1), date(2026, 1, 1), "month", 10), "end"),
        ((date(2026, 1, 1), date(2026, 12, 1), "month", -1), "due_days"),
    ],
)
def test_bad_period_rules_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        split_into_periods(*args)


def test_unknown_period_length_is_refused():
    with pytest.raises(ValueError):
        split_into_periods(date(2026, 1, 1), date(2026, 12, 31), "fortnight", 10)
