"""The exports part of the demo organisation (docs/demo.md): funder templates, one report sent to the donor.

- The Regional HIV Fund's *Semester progress update* template, with its
  mapping; grant 1's S1 update generated from it on the day it was sent
  (14 Aug 2026) and published, so ``donor.gf``'s first visit has a spreadsheet
  to download, and S1 shows as reported.
- The Community Networks Fund's *Annual report* template, with its mapping,
  ready to fill for grant 2's year.

Both workbooks are made here with openpyxl, styled the way funders' templates
usually are (a cover sheet with yellow input cells, bordered tables, number and
percentage formats), so the demo needs no file from outside the package.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.orm import Session

from core import clock
from core.storage import FileStore
from exports import services

# The day grant 1's S1 update went to the donor (45 days after the semester ended).
S1_SENT = dt.datetime(2026, 8, 14, 15, 0, tzinfo=dt.UTC)
# A fixed creation date keeps the generated templates identical from one load to the next.
MADE = dt.datetime(2025, 11, 3, 9, 0)

INPUT = PatternFill("solid", fgColor="FFF2CC")
HEADER = PatternFill("solid", fgColor="1F4E78")
THIN = Side(style="thin", color="808080")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WHITE_BOLD = Font(bold=True, color="FFFFFF")

RHF_TEMPLATE = "Semester progress update"
CNF_TEMPLATE = "Annual report"

RHF_MAPPING = """\
# Regional HIV Fund: semester progress update
cells:
  - {target: "Cover!C4", source: funder.name}
  - {target: "Cover!C5", source: grant.reference}
  - {target: "Cover!C6", source: grant.title}
  - {target: "Cover!C7", source: grant.recipient}
  - {target: "Cover!C8", source: period.label}
  - {target: "Cover!C9", source: period.start_date}
  - {target: "Cover!C10", source: period.end_date}
  - {target: "Cover!C11", source: grant.currency}
  - {target: "Cover!C12", source: report.date}
tables:
  - target: "Indicators!A4"
    dataset: indicator_progress
    columns: [code, indicator, baseline, target, actual, achievement, rating, cumulative_actual, lop_target]
    rows: 20
  - target: "Budget!A4"
    dataset: budget_vs_actual_categories
    columns: [code, name, planned, actual, variance, variance_pct, cumulative_actual, budget, burn_rate]
    rows: 16
"""

CNF_MAPPING = """\
# Community Networks Fund: annual report
cells:
  - {target: "Summary!C4", source: grant.recipient}
  - {target: "Summary!C5", source: grant.reference}
  - {target: "Summary!C6", source: grant.title}
  - {target: "Summary!C7", source: period.label}
  - {target: "Summary!C8", source: period.start_date}
  - {target: "Summary!C9", source: period.end_date}
  - {target: "Summary!C10", source: grant.amount}
  - {target: "Summary!C11", source: grant.currency}
tables:
  - target: "Financial report!A4"
    dataset: budget_vs_actual_categories
    columns: [code, name, budget, cumulative_actual, remaining, burn_rate]
    rows: 12
  - target: "Results!A4"
    dataset: indicator_progress
    columns: [code, indicator, target, actual, achievement]
    rows: 15
"""


def _title(ws: Worksheet, title: str, note: str) -> None:
    ws["A1"] = title
    ws["A1"].font = Font(bold=True, size=14, color="1F4E78")
    ws["A2"] = note
    ws["A2"].font = Font(italic=True, color="595959")


def _form(ws: Worksheet, labels: list[tuple[str, str | None]], first_row: int = 4) -> None:
    """Label in column A, a yellow input cell in column C (with a number format when given)."""
    for offset, (text, number_format) in enumerate(labels):
        row = first_row + offset
        ws.cell(row, 1, text).font = Font(bold=True)
        cell = ws.cell(row, 3)
        cell.fill, cell.border = INPUT, BOX
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if number_format:
            cell.number_format = number_format
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 2
    ws.column_dimensions["C"].width = 60


def _table(ws: Worksheet, headers: list[tuple[str, float, str | None]], rows: int, header_row: int = 3) -> None:
    """A header row and ``rows`` bordered input rows below it, each column with its width and format."""
    for column, (text, width, _fmt) in enumerate(headers, start=1):
        cell = ws.cell(header_row, column, text)
        cell.fill, cell.font, cell.border = HEADER, WHITE_BOLD, BOX
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[cell.column_letter].width = width
    for row in range(header_row + 1, header_row + 1 + rows):
        for column, (_text, _width, number_format) in enumerate(headers, start=1):
            cell = ws.cell(row, column)
            cell.border = BOX
            if number_format:
                cell.number_format = number_format
    ws.freeze_panes = ws.cell(header_row + 1, 1)


def _save(wb: Workbook) -> bytes:
    wb.properties.creator = "Demo funder"
    wb.properties.created = wb.properties.modified = MADE
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


AMOUNT = "#,##0.00"
PERCENT = "0.0%"
DATE = "d mmm yyyy"


def rhf_template() -> bytes:
    """The Regional HIV Fund's semester progress update: cover, indicators, budget."""
    wb = Workbook()
    cover = wb.active
    cover.title = "Cover"
    _title(cover, "Semester progress update", "Fill in the yellow cells. Do not add, remove or rename sheets.")
    _form(
        cover,
        [
            ("Funder", None),
            ("Grant number", None),
            ("Grant title", None),
            ("Principal recipient", None),
            ("Reporting period", None),
            ("Period start", DATE),
            ("Period end", DATE),
            ("Reporting currency", None),
            ("Date of this report", DATE),
        ],
    )
    indicators = wb.create_sheet("Indicators")
    _title(indicators, "Programmatic results", "One row per indicator of the performance framework.")
    _table(
        indicators,
        [
            ("Indicator code", 12, None),
            ("Indicator", 48, None),
            ("Baseline", 10, "#,##0.##"),
            ("Target (period)", 12, "#,##0.##"),
            ("Result (period)", 12, "#,##0.##"),
            ("Achievement", 12, PERCENT),
            ("Rating", 8, None),
            ("Cumulative result", 12, "#,##0.##"),
            ("Life-of-grant target", 12, "#,##0.##"),
        ],
        20,
    )
    budget = wb.create_sheet("Budget")
    _title(budget, "Financial progress by cost grouping", "Amounts in the grant currency; the last row is the total.")
    _table(
        budget,
        [
            ("Cost grouping", 10, None),
            ("Name", 40, None),
            ("Budget (period)", 14, AMOUNT),
            ("Expenditure (period)", 14, AMOUNT),
            ("Variance", 14, AMOUNT),
            ("Variance %", 10, PERCENT),
            ("Cumulative expenditure", 14, AMOUNT),
            ("Total budget", 14, AMOUNT),
            ("Absorption", 10, PERCENT),
        ],
        16,
    )
    return _save(wb)


def cnf_template() -> bytes:
    """The Community Networks Fund's annual report: summary, financial report, results."""
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    _title(summary, "Annual report to the Community Networks Fund", "Please complete all yellow cells.")
    _form(
        summary,
        [
            ("Organisation", None),
            ("Grant reference", None),
            ("Project title", None),
            ("Year", None),
            ("From", DATE),
            ("To", DATE),
            ("Grant amount", AMOUNT),
            ("Currency", None),
        ],
    )
    finance = wb.create_sheet("Financial report")
    _title(finance, "Financial report", "Spending against the approved budget, by budget category.")
    _table(
        finance,
        [
            ("Category", 10, None),
            ("Description", 40, None),
            ("Approved budget", 14, AMOUNT),
            ("Spent to date", 14, AMOUNT),
            ("Balance", 14, AMOUNT),
            ("% spent", 10, PERCENT),
        ],
        12,
    )
    results = wb.create_sheet("Results")
    _title(results, "Results", "Indicators agreed in the grant contract.")
    _table(
        results,
        [
            ("Code", 10, None),
            ("Indicator", 48, None),
            ("Target", 12, "#,##0.##"),
            ("Achieved", 12, "#,##0.##"),
            ("% of target", 12, PERCENT),
        ],
        15,
    )
    return _save(wb)


def load(session: Session, ctx: Any) -> None:
    from flask import current_app

    store = FileStore(current_app.config["STORAGE_ROOT"])
    hiv = ctx.grants["RCM-HIV-2026-SW"]
    rhf_version = services.upload_template(
        session,
        store,
        funder=ctx.funders["RHF"],
        name=RHF_TEMPLATE,
        filename="RHF_semester_progress_update.xlsx",
        data=rhf_template(),
        user="finance",
        description="The fund's semester progress update: cover, indicator results, spending by cost grouping.",
        mapping_text=RHF_MAPPING,
    )
    services.upload_template(
        session,
        store,
        funder=ctx.funders["CNF"],
        name=CNF_TEMPLATE,
        filename="CNF_annual_report.xlsx",
        data=cnf_template(),
        user="finance",
        description="The fund's annual report: summary, financial report, results.",
        mapping_text=CNF_MAPPING,
    )
    s1 = sorted(hiv.periods, key=lambda p: p.start_date)[0]
    # Generated and sent on the day S1 was reported (or now, for a demo loaded before then).
    with clock.frozen_at(min(S1_SENT, clock.now())):
        record = services.run_export(
            session,
            store,
            grant=hiv,
            period=s1,
            user="program",
            template=rhf_version.template,
            note="S1 progress update as sent to the Regional HIV Fund.",
        )
        services.publish(session, record, user="program")
    ctx.extra["published_export"] = record
