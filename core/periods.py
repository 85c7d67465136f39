"""Reporting-period arithmetic with dateutil: period boundaries and report due dates."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from core.formatting import gettext as _


class PeriodLength(str, enum.Enum):
    MONTH = "month"
    QUARTER = "quarter"
    SEMESTER = "semester"
    YEAR = "year"

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "semester": 6, "year": 12}[self.value]

    @property
    def label_prefix(self) -> str:
        return {"month": "M", "quarter": "Q", "semester": "S", "year": "Y"}[self.value]


@dataclass(frozen=True)
class PeriodSpan:
    label: str
    start: date
    end: date
    report_due: date


def due_after(period_end: date, days: int) -> date:
    """The report due date ``days`` calendar days after a period ends.

    30 Jun 2024 + 45 days = 14 Aug 2024; 31 Dec 2027 + 60 days = 29 Feb 2028.
    """
    return period_end + relativedelta(days=days)


def split_into_periods(start: date, end: date, length: PeriodLength | str, due_days: int) -> list[PeriodSpan]:
    """Cut ``start..end`` into consecutive periods of ``length``; the last may be shorter.

    Labels count from the grant's start ("S1", "S2", ... for semesters) because
    donors number periods within the agreement, not by calendar year.
    """
    length = PeriodLength(length)
    if end < start:
        raise ValueError(_("%(field)s: the end date is before the start date", field="end"))
    if due_days < 0:
        raise ValueError(_("%(field)s: must not be negative", field="due_days"))
    spans: list[PeriodSpan] = []
    index = 0
    while True:
        period_start = start + relativedelta(months=length.months * index)
        if period_start > end:
            break
        period_end = min(start + relativedelta(months=length.months * (index + 1)) - timedelta(days=1), end)
        index += 1
        spans.append(
            PeriodSpan(
                label=f"{length.label_prefix}{index}",
                start=period_start,
                end=period_end,
                report_due=due_after(period_end, due_days),
            )
        )
    return spans
