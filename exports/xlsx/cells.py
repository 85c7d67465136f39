"""Cell editing: write values into one worksheet's XML, refusing cells the template owns."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from exports.errors import TemplateError
from exports.xlsx.inspector import (
    SheetRef,
    StyleTable,
    date_to_serial,
    format_cell_ref,
    parse_cell_ref,
    parse_range,
    q,
    truthy,
)

__all__ = ["Formula", "CellValue", "SheetEditor", "number_text", "own_cache_formulas", "xml_text"]


@dataclass(frozen=True)
class Formula:
    """A value to be written as a formula. Plain strings never become formulas."""

    text: str

    def __post_init__(self) -> None:
        if not self.text.strip().lstrip("="):
            raise TemplateError("an empty formula was requested")


CellValue = str | int | float | Decimal | dt.date | dt.datetime | bool | None | Formula

_MAX_TEXT = 32_767  # Excel's cell text limit; longer text makes Excel "repair" the file
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPE_LIKE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_EXTERNAL_REF = re.compile(r"\[\d+\]")


# -- value encoding ------------------------------------------------------------


def xml_text(text: str) -> str:
    # Excel decodes _xHHHH_ in cell text, so a literal one must be escaped first;
    # control characters are not allowed in XML and take the same escape.
    text = _ESCAPE_LIKE.sub(r"_x005F_\1", text)
    return _ILLEGAL_XML.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def number_text(value: int | float | Decimal, where: str) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite() or not math.isfinite(float(value)):
            raise TemplateError(f"{where}: {value} is not a finite number")
        # Exact decimal digits, never the float repr of the Decimal.
        return format(value, "f")
    if isinstance(value, int):
        if not math.isfinite(float(value)):
            raise TemplateError(f"{where}: {value} is too large for Excel")
        return str(value)
    if not math.isfinite(value):
        raise TemplateError(f"{where}: {value} is not a finite number")
    return repr(value).replace("e", "E")


# -- sheet editing ---------------------------------------------------------------

_C, _ROW, _F, _V, _IS, _T = q("c"), q("row"), q("f"), q("v"), q("is"), q("t")
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


class SheetEditor:
    """Edits one parsed worksheet: indexes rows/cells once, then sets values in order."""

    def __init__(self, root: etree._Element, ref: SheetRef, styles: StyleTable, date1904: bool) -> None:
        self.root = root
        self.ref = ref
        self.styles = styles
        self.date1904 = date1904
        sheet_data = root.find(q("sheetData"))
        if sheet_data is None:
            raise TemplateError(f"sheet {ref.name!r} has no cell data section; it cannot be filled")
        self.sheet_data = sheet_data
        prot = root.find(q("sheetProtection"))
        self.protected = prot is not None and truthy(prot.get("sheet"))
        # Merges indexed by row so 10k writes against thousands of merges stay cheap;
        # very tall merges (rare) are simply scanned.
        self.merges_by_row: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        self.tall_merges: list[tuple[int, int, int, int]] = []
        for m in root.iterfind(f"{q('mergeCells')}/{q('mergeCell')}"):
            try:
                rng = parse_range(m.get("ref", ""))
            except TemplateError:
                continue
            if rng[2] - rng[0] > 1000:
                self.tall_merges.append(rng)
            else:
                for r in range(rng[0], rng[2] + 1):
                    self.merges_by_row[r].append(rng)
        self.col_styles: list[tuple[int, int, str]] = [
            (int(c.get("min", "0")), int(c.get("max", "0")), c.get("style", ""))
            for c in root.iterfind(f"{q('cols')}/{q('col')}")
            if c.get("style") not in (None, "0")
        ]
        self.rows: dict[int, etree._Element] = {}
        self.row_nums: list[int] = []
        last = 0
        for row_el in sheet_data.iterchildren(_ROW):
            r = row_el.get("r")
            num = int(r) if r and r.isdigit() else last + 1
            if not r:
                row_el.set("r", str(num))  # make implicit positions explicit before inserting around them
            self.rows[num] = row_el
            last = num
        self.row_nums = sorted(self.rows)
        self.had_cells = any(len(r) for r in self.rows.values())
        self.array_ranges: list[tuple[int, int, int, int]] = []
        for f in sheet_data.iter(_F):
            if f.get("t") in ("array", "dataTable") and f.get("ref"):
                try:
                    self.array_ranges.append(parse_range(f.get("ref", "")))
                except TemplateError:
                    pass
        self.cell_index: dict[int, dict[int, etree._Element]] = {}
        self.touched: list[tuple[int, int]] = []
        self.formula_written = False

    # - lookup -

    def _cells_of(self, row_num: int, row_el: etree._Element) -> dict[int, etree._Element]:
        idx = self.cell_index.get(row_num)
        if idx is None:
            idx = {}
            col = 0
            for c in row_el.iterchildren(_C):
                r = c.get("r")
                if r:
                    try:
                        col = parse_cell_ref(r)[1]
                    except TemplateError:
                        col += 1
                else:
                    col += 1
                    c.set("r", format_cell_ref(row_num, col))
                idx[col] = c
            self.cell_index[row_num] = idx
        return idx

    def _row(self, num: int, create: bool) -> etree._Element | None:
        row_el = self.rows.get(num)
        if row_el is None and create:
            row_el = etree.Element(_ROW, r=str(num))
            pos = bisect.bisect_left(self.row_nums, num)
            if pos < len(self.row_nums):
                self.rows[self.row_nums[pos]].addprevious(row_el)
            else:
                self.sheet_data.append(row_el)
            self.row_nums.insert(pos, num)
            self.rows[num] = row_el
        return row_el

    def _new_cell_style(self, row_el: etree._Element, col: int) -> str | None:
        if truthy(row_el.get("customFormat")) and row_el.get("s"):
            return row_el.get("s")
        for lo, hi, style in self.col_styles:
            if lo <= col <= hi:
                return style
        return None

    # - checks -

    def refusal(self, row: int, col: int) -> str | None:
        """Why this cell must not be written, or None."""
        for r1, c1, r2, c2 in (*self.merges_by_row.get(row, ()), *self.tall_merges):
            if r1 <= row <= r2 and c1 <= col <= c2 and (row, col) != (r1, c1):
                return f"it is inside the merged range {format_cell_ref(r1, c1)}:{format_cell_ref(r2, c2)}; write to {format_cell_ref(r1, c1)}"
        for r1, c1, r2, c2 in self.array_ranges:
            if r1 <= row <= r2 and c1 <= col <= c2:
                return "it is part of an array formula the template owns"
        row_el = self.rows.get(row)
        cell = self._cells_of(row, row_el).get(col) if row_el is not None else None
        if cell is not None and cell.find(_F) is not None:
            f = cell.find(_F)
            kind = {"shared": "a shared formula", "array": "an array formula"}.get(f.get("t", ""), "a formula")
            return f"it holds {kind} the template owns"
        if self.protected:
            if cell is not None:
                style = cell.get("s", "0")
            else:
                style = (self._new_cell_style(row_el, col) if row_el is not None else self._col_style(col)) or "0"
            if not style.isdigit() or self.styles.is_locked(int(style)):
                return "it is locked on a protected sheet"
        return None

    def _col_style(self, col: int) -> str | None:
        for lo, hi, style in self.col_styles:
            if lo <= col <= hi:
                return style
        return None

    # - writing -

    def write(self, row: int, col: int, value: CellValue, where: str) -> None:
        row_el = self._row(row, create=True)
        assert row_el is not None
        cells = self._cells_of(row, row_el)
        cell = cells.get(col)
        if cell is None:
            cell = etree.Element(_C, r=format_cell_ref(row, col))
            style = self._new_cell_style(row_el, col)
            if style is not None:
                cell.set("s", style)
            later = [c for c in cells if c > col]
            if later:
                cells[min(later)].addprevious(cell)
            else:
                row_el.append(cell)
            cells[col] = cell
            self._widen_spans(row_el, col)
        self._set_value(cell, value, where)
        self.touched.append((row, col))

    @staticmethod
    def _widen_spans(row_el: etree._Element, col: int) -> None:
        spans = row_el.get("spans")
        if not spans or ":" not in spans or " " in spans:
            return
        lo_s, hi_s = spans.split(":", 1)
        if lo_s.isdigit() and hi_s.isdigit():
            lo, hi = int(lo_s), int(hi_s)
            if col < lo or col > hi:
                row_el.set("spans", f"{min(lo, col)}:{max(hi, col)}")

    def _set_value(self, cell: etree._Element, value: CellValue, where: str) -> None:
        for child in list(cell):
            if child.tag in (_F, _V, _IS):
                cell.remove(child)
        # The old type and rich-value/cell-metadata links describe the old value.
        for attr in ("t", "vm", "cm"):
            cell.attrib.pop(attr, None)
        new: list[etree._Element] = []
        if value is None:
            pass
        elif isinstance(value, Formula):
            f = etree.Element(_F)
            f.text = xml_text(value.text.strip().removeprefix("="))
            new.append(f)
            self.formula_written = True
        elif isinstance(value, str):
            if len(value) > _MAX_TEXT:
                raise TemplateError(f"{where}: text of {len(value)} characters exceeds Excel's limit of {_MAX_TEXT}")
            cell.set("t", "inlineStr")
            is_el = etree.Element(_IS)
            t = etree.SubElement(is_el, _T)
            t.text = xml_text(value)
            if value != value.strip() or "\n" in value:
                t.set(_XML_SPACE, "preserve")
            new.append(is_el)
        elif isinstance(value, bool):
            cell.set("t", "b")
            v = etree.Element(_V)
            v.text = "1" if value else "0"
            new.append(v)
        elif isinstance(value, (int, float, Decimal)):
            v = etree.Element(_V)
            v.text = number_text(value, where)
            new.append(v)
        elif isinstance(value, (dt.datetime, dt.date)):
            try:
                serial = date_to_serial(value, self.date1904)
            except TemplateError as exc:
                raise TemplateError(f"{where}: {exc}") from None
            v = etree.Element(_V)
            v.text = number_text(serial, where)
            new.append(v)
        else:
            raise TemplateError(f"{where}: cannot write a value of type {type(value).__name__}")
        # f, v and is come before extLst in CT_Cell; inserting at the front keeps that order.
        for i, el in enumerate(new):
            cell.insert(i, el)

    def hide_row(self, row: int) -> None:
        row_el = self._row(row, create=True)
        assert row_el is not None
        row_el.set("hidden", "1")
        self.touched.append((row, 0))

    def strip_formula_caches(self) -> bool:
        """Drop cached results so nothing reads stale numbers; True if any formula exists.

        Formulas that read other workbooks ([1]Sheet!A1) keep their cache: the
        linked file is usually not there when the funder opens ours.
        """
        any_formula = next(self.sheet_data.iter(_F), None) is not None
        for f in own_cache_formulas(self.sheet_data):
            cell = f.getparent()
            v = cell.find(_V)
            if v is not None:
                cell.remove(v)
                cell.attrib.pop("t", None)
        return any_formula

    def update_dimension(self) -> None:
        dim = self.root.find(q("dimension"))
        if dim is None or not self.touched:
            return
        try:
            r1, c1, r2, c2 = parse_range(dim.get("ref", "A1"))
        except TemplateError:
            return
        if not self.had_cells:
            # An empty sheet says A1 by convention; the written cells are the whole extent.
            r1, c1 = self.touched[0][0], max(self.touched[0][1], 1)
            r2, c2 = r1, c1
        for row, col in self.touched:
            r1, r2 = min(r1, row), max(r2, row)
            if col:
                c1, c2 = min(c1, col), max(c2, col)
        new_ref = (
            format_cell_ref(r1, c1) if (r1, c1) == (r2, c2) else f"{format_cell_ref(r1, c1)}:{format_cell_ref(r2, c2)}"
        )
        if new_ref != dim.get("ref"):
            dim.set("ref", new_ref)


def own_cache_formulas(sheet_data: etree._Element) -> list[etree._Element]:
    """The <f> elements whose cached result is ours to drop or recompute.

    Formulas that read other workbooks ([1]Sheet!A1), and the children of such
    a shared formula, are left out: they keep the cache the template came with.
    """
    formulas = list(sheet_data.iter(_F))
    external_si = {
        f.get("si", "")
        for f in formulas
        if f.text and _EXTERNAL_REF.search(f.text) and f.get("t") == "shared" and f.get("si") is not None
    }
    return [
        f
        for f in formulas
        if not (f.text and _EXTERNAL_REF.search(f.text)) and not (f.get("t") == "shared" and f.get("si") in external_si)
    ]
