"""Property-based tests of the cell writer: whatever we write, anywhere, is what a spreadsheet reads back.

Text is never a formula; numbers, decimals, dates and booleans keep value and type.
openpyxl and LibreOffice each read our files back; LibreOffice (slow) sees a bounded sample.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import tempfile
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exports.xlsx.cells import looks_like_formula, xml_text
from exports.xlsx.fill import fill_workbook
from exports.xlsx.inspector import MAX_COL, MAX_ROW, format_cell_ref, read_cells
from tests.exports.helpers import make_workbook, sheet_xml

# A small template: General cells with and without a style, a label, a styled row and column.
# (A number written into a date-formatted cell shows as a date: that is the template's choice.)
TEMPLATE = make_workbook(
    sheet_xml(
        '<row r="1"><c r="A1" s="1"/><c r="B1" s="3"/><c r="C1" t="inlineStr"><is><t>Label</t></is></c></row>'
        '<row r="3" s="3" customFormat="1"><c r="D3" s="3"/></row>'
        '<row r="100"><c r="A100"><v>1</v></c></row>',
        before='<dimension ref="A1:D100"/><cols><col min="5" max="6" width="9" style="1"/></cols>',
    )
)

addresses = st.one_of(
    st.tuples(st.integers(1, 120), st.integers(1, 8)),  # around the template's own cells
    st.tuples(st.integers(1, MAX_ROW), st.integers(1, MAX_COL)),  # anywhere on the sheet
).map(lambda rc: format_cell_ref(*rc))

texts = st.text(max_size=300) | st.sampled_from(["=1+1", "+1", "-1", "@x", '=HYPERLINK("x")', "_x0041_", " a "])
integers = st.integers(min_value=-(10**300), max_value=10**300)
floats = st.floats(allow_nan=False, allow_infinity=False)
decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e300"), max_value=Decimal("1e300"))
dates = st.dates(min_value=dt.date(1900, 1, 1))
# Excel keeps milliseconds; a written datetime is compared at that precision.
datetimes = st.datetimes(min_value=dt.datetime(1900, 1, 1)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)
values = st.one_of(texts, integers, floats, decimals, dates, datetimes, st.booleans())


def _openpyxl(data: bytes) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(io.BytesIO(data))


def _as_read(value: Any) -> Any:
    """What a spreadsheet gives back for a written value."""
    if isinstance(value, Decimal):
        # Written with its exact digits: a whole number reads back whole (and exact), else as a float.
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(addresses, values, min_size=1, max_size=6))
def test_any_value_at_any_address_reads_back_identically_through_openpyxl(writes: dict[str, Any]) -> None:
    out = fill_workbook(TEMPLATE, {("Data", ref): value for ref, value in writes.items()})
    ws = _openpyxl(out)["Data"]
    ours = read_cells(out, "Data", list(writes))
    for ref, value in writes.items():
        cell, mine = ws[ref], ours[ref]
        assert mine.formula is None, ref
        if isinstance(value, str):
            # Excel decodes _xHHHH_ (how control characters are stored); openpyxl shows the stored form.
            assert (cell.data_type, cell.value) == ("s", xml_text(value)), ref
            assert (mine.kind, mine.value) == ("text", value), ref
            assert cell.quotePrefix == looks_like_formula(value), ref
        elif isinstance(value, bool):
            assert (cell.data_type, cell.value) == ("b", value), ref
        elif isinstance(value, dt.date):
            assert cell.is_date and cell.value == _as_read(value), ref
            assert (mine.kind, mine.value) == ("date", _as_read(value)), ref
        else:
            assert cell.data_type == "n" and cell.value == _as_read(value), ref
            if not isinstance(value, Decimal):  # a whole Decimal is written without a point
                assert type(cell.value) is type(value), ref


# -- LibreOffice -------------------------------------------------------------------------------

# LibreOffice keeps 15 significant digits (as Excel shows) and reads a carriage return as a
# line feed; the sample stays within that so a difference is ours, not LibreOffice's.
lo_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=80)
lo_values = st.one_of(
    lo_texts | st.sampled_from(["=1+1", "+44 20", "-5", "@user", "_x0041_"]),
    st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1),
    st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False),
    st.dates(min_value=dt.date(1900, 3, 1)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1)).map(lambda d: d.replace(microsecond=0)),
    st.booleans(),
)


def _libreoffice_round_trip(data: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="gk-prop-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        src = root / "in" / "filled.xlsx"
        src.write_bytes(data)
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation={(root / 'lo').as_uri()}",
                "--headless",
                "--norestore",
                "--convert-to",
                "xlsx",
                "--outdir",
                str(root / "out"),
                str(src),
            ],
            check=True,
            timeout=240,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "HOME": str(root)},
        )
        return (root / "out" / "filled.xlsx").read_bytes()


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(addresses, lo_values, min_size=1, max_size=12))
def test_any_value_at_any_address_reads_back_identically_through_libreoffice(writes: dict[str, Any]) -> None:
    back = _libreoffice_round_trip(fill_workbook(TEMPLATE, {("Data", ref): v for ref, v in writes.items()}))
    got = read_cells(back, "Data", list(writes))
    for ref, value in writes.items():
        cell = got.get(ref)
        if isinstance(value, str):
            if value == "":
                assert cell is None or cell.kind == "blank", ref
                continue
            assert cell is not None and (cell.kind, cell.value, cell.formula) == ("text", value, None), ref
        elif isinstance(value, bool):
            assert cell is not None and (cell.kind, cell.value) == ("bool", value), ref
        elif isinstance(value, dt.date):
            assert cell is not None and (cell.kind, cell.value) == ("date", _as_read(value)), ref
        else:
            assert cell is not None and cell.kind == "number" and cell.value == float(value), ref
