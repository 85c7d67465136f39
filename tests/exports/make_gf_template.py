"""Builds exports/ready/gf_progress_update.xlsx, the Global Fund-style progress update shipped as a ready mapping.

Our own template (written with openpyxl), laid out the way a Global Fund progress
update is: a cover with the grant's particulars, fixed indicator rows from the
performance framework, a disaggregation block, cost groupings and a compliance
block, a funder formula beside our figures, a hidden list sheet and a protected
cover whose input cells are unlocked. Run ``python -m tests.exports.make_gf_template``
to rebuild it; the ready mapping ``exports/ready/gf_progress_update.yaml`` fills it.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.worksheet.datavalidation import DataValidation

OUT = Path(__file__).resolve().parents[2] / "exports" / "ready" / "gf_progress_update.xlsx"
HEAD = Font(bold=True, color="FFFFFF")
FILL = PatternFill("solid", fgColor="1F4E79")
INPUT = PatternFill("solid", fgColor="FFF2CC")
INDICATORS = ("KP-1c", "HR-1", "CSS-1", "GOV-1")


def _header(ws, row: int, titles: list[str]) -> None:
    for col, title in enumerate(titles, start=1):
        cell = ws.cell(row=row, column=col, value=title)
        cell.font, cell.fill = HEAD, FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def build() -> bytes:
    wb = Workbook()
    cover = wb.active
    cover.title = "Cover"
    cover["A1"] = "PROGRESS UPDATE"
    cover["A1"].font = Font(bold=True, size=14)
    cover.merge_cells("A1:D1")
    labels = [
        ("A3", "Grant number"),
        ("A4", "Principal Recipient"),
        ("A5", "Grant title"),
        ("A6", "Countries"),
        ("A7", "Reporting period"),
        ("A8", "Period start"),
        ("A9", "Period end"),
        ("A10", "Currency"),
        ("A11", "Date of this report"),
    ]
    for ref, text in labels:
        cover[ref] = text
        cover[ref].font = Font(bold=True)
        target = cover.cell(row=cover[ref].row, column=2)
        target.fill = INPUT
        target.protection = Protection(locked=False)
        cover.merge_cells(start_row=target.row, start_column=2, end_row=target.row, end_column=4)
    for ref in ("B8", "B9", "B11"):
        cover[ref].number_format = "dd mmm yyyy"
    cover.column_dimensions["A"].width = 24
    cover.column_dimensions["B"].width = 40
    cover.protection.sheet = True

    prog = wb.create_sheet("Programmatic")
    prog["A1"] = "Section 2: Programmatic progress — performance framework indicators"
    prog["A1"].font = Font(bold=True)
    _header(
        prog,
        3,
        [
            "Indicator code",
            "Indicator",
            "Baseline",
            "Target (period)",
            "Result (period)",
            "Achievement",
            "Rating",
            "Cumulative target",
            "Cumulative result",
            "Check (funder formula)",
        ],
    )
    for i, code in enumerate(INDICATORS):
        row = 4 + i
        prog.cell(row=row, column=1, value=code)
        for col in range(2, 10):
            prog.cell(row=row, column=col).fill = INPUT
        prog.cell(row=row, column=6).number_format = "0.0%"
        prog.cell(row=row, column=10, value=f'=IF(AND(ISNUMBER(D{row}),D{row}>0),E{row}/D{row},"")')
        prog.cell(row=row, column=10).number_format = "0.0%"
    prog.column_dimensions["B"].width = 60

    disag = wb.create_sheet("Disaggregation")
    disag["A1"] = "Section 3: Results by disaggregation"
    disag["A1"].font = Font(bold=True)
    _header(disag, 3, ["Indicator code", "Disaggregation", "Category", "Target", "Result"])
    disag.column_dimensions["C"].width = 24

    fin = wb.create_sheet("Financial")
    fin["A1"] = "Section 4: Financial progress by cost grouping"
    fin["A1"].font = Font(bold=True)
    fin["A2"] = "Total grant budget"
    fin["B2"].fill = INPUT
    _header(
        fin,
        4,
        [
            "Cost grouping",
            "Name",
            "Budget (period)",
            "Actual (period)",
            "Variance",
            "Cumulative budget",
            "Cumulative actual",
        ],
    )
    for col in range(3, 8):
        fin.column_dimensions[chr(64 + col)].width = 16
    fin.column_dimensions["B"].width = 36

    comp = wb.create_sheet("Compliance")
    comp["A1"] = "Section 5: Grant requirements and conditions"
    comp["A1"].font = Font(bold=True)
    _header(comp, 3, ["Code", "Requirement", "Status", "Explanation"])
    comp.column_dimensions["B"].width = 44
    comp.column_dimensions["D"].width = 70

    lists = wb.create_sheet("Lists")
    for i, rating in enumerate(("A1", "A2", "B1", "B2", "C"), start=1):
        lists.cell(row=i, column=1, value=rating)
    lists.sheet_state = "hidden"
    validation = DataValidation(type="list", formula1="=Lists!$A$1:$A$5", allow_blank=True)
    prog.add_data_validation(validation)
    validation.add("G4:G7")

    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


if __name__ == "__main__":
    OUT.write_bytes(build())
    sys.stdout.write(f"wrote {OUT}\n")
