"""Fill values into a funder's Excel template by editing only the target cells and copying every other part byte for byte."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import posixpath
import re
import struct
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Union

from lxml import etree

from exports.errors import TemplateError
from exports.inspector import (
    CT_NS,
    PKG_REL_NS,
    SheetRef,
    StyleTable,
    WorkbookMap,
    date_to_serial,
    format_cell_ref,
    parse_cell_ref,
    parse_range,
    q,
    read_styles,
    read_workbook_map,
    rels_part_for,
)
from exports.safezip import SafeZip, open_workbook_zip, parse_xml

__all__ = ["Formula", "CellValue", "FillPlan", "fill_workbook", "split_target"]


@dataclass(frozen=True)
class Formula:
    """A value to be written as a formula. Plain strings never become formulas."""

    text: str

    def __post_init__(self) -> None:
        if not self.text.strip().lstrip("="):
            raise TemplateError("an empty formula was requested")


CellValue = Union[str, int, float, Decimal, dt.date, dt.datetime, bool, None, Formula]
Address = Union[str, tuple[str, str]]

_MAX_TEXT = 32_767  # Excel's cell text limit; longer text makes Excel "repair" the file
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPE_LIKE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_EXTERNAL_REF = re.compile(r"\[\d+\]")
_TARGET_RE = re.compile(r"^(?:'((?:[^']|'')+)'|([^'!]+))!(\$?[A-Za-z]{1,3}\$?[0-9]{1,7})$")


def split_target(target: str) -> tuple[str | None, str]:
    """"Cover!C4" -> ("Cover", "C4"); "'My sheet'!C4" -> ("My sheet", "C4"); "Name" -> (None, "Name")."""
    m = _TARGET_RE.match(target.strip())
    if m:
        sheet = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)
        return sheet, m.group(3).replace("$", "").upper()
    if "!" in target:
        raise TemplateError(f"{target!r} is not a cell address like Sheet!C4")
    return None, target.strip()


@dataclass
class _Write:
    sheet: str
    row: int
    col: int
    value: CellValue
    origin: str  # how the caller addressed it, for error messages


@dataclass
class _Block:
    sheet: str
    anchor: str
    rows: list[list[CellValue]]
    capacity_rows: int
    hide_unused: bool
    name: str


@dataclass
class FillPlan:
    """Collects cell writes and table blocks for one template, then applies them in one pass.

    >>> plan = FillPlan()
    >>> plan.set("Cover!C4", "Clean water for Kisumu").set("BudgetTotal", Decimal("1200.50"))
    >>> plan.fill_block("Budget", "B10", rows, capacity_rows=100, name="budget_vs_actual")
    >>> out = plan.apply(template_bytes)
    """

    cells: list[tuple[Address, CellValue]] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)

    def set(self, target: Address, value: CellValue) -> FillPlan:
        """Write one value. ``target`` is "Sheet!C4", ("Sheet", "C4") or a single-cell defined name."""
        self.cells.append((target, value))
        return self

    def fill_block(
        self,
        sheet: str,
        anchor: str,
        rows: Sequence[Sequence[CellValue]],
        capacity_rows: int,
        *,
        hide_unused: bool = True,
        name: str = "table",
    ) -> FillPlan:
        """Write a table into a pre-sized block whose top-left cell is ``anchor``.

        The block spans ``capacity_rows`` rows; rows left empty are hidden when
        ``hide_unused``.  More rows than capacity is refused (inserting rows would
        mean shifting merges, validations, formulas and drawings).
        """
        if capacity_rows < 1:
            raise TemplateError(f"the block at {sheet}!{anchor} must hold at least one row")
        data = [list(r) for r in rows]
        if len(data) > capacity_rows:
            raise TemplateError(
                f"dataset {name} has {len(data)} rows but the block at {sheet}!{anchor} holds {capacity_rows}"
            )
        self.blocks.append(_Block(sheet, anchor, data, capacity_rows, hide_unused, name))
        return self

    def apply(self, data: bytes, *, strip_formula_caches: bool = True) -> bytes:
        """Return a filled copy of the workbook ``data``; the input is never modified.

        Only the sheets that receive values are re-serialised, plus
        ``xl/workbook.xml`` (recalculate on open) and, when formulas were
        affected, the calcChain part and its two references.  Every other part
        is copied byte for byte.  Raises TemplateError naming sheet!cell and why
        for any write it will not make; nothing is written in that case.
        """
        return _apply(self, data, strip_formula_caches=strip_formula_caches)


def fill_workbook(
    data: bytes,
    writes: Mapping[Address, CellValue] | Iterable[tuple[Address, CellValue]],
    *,
    strip_formula_caches: bool = True,
) -> bytes:
    """Fill single cells: ``writes`` maps ("Sheet", "C4") / "Sheet!C4" / defined name -> value.

    Values: str (always literal inline text), int/float/Decimal (numbers),
    date/datetime (serial numbers; the cell's style is kept), bool, None (clear
    the value, keep the style) and Formula (a formula, only when asked for).
    """
    plan = FillPlan()
    items = writes.items() if isinstance(writes, Mapping) else writes
    for target, value in items:
        plan.set(target, value)
    return plan.apply(data, strip_formula_caches=strip_formula_caches)


# -- resolving addresses -------------------------------------------------------


def _resolve(wm: WorkbookMap, target: Address) -> tuple[SheetRef, int, int, str]:
    if isinstance(target, tuple):
        sheet_name, cell = target
        sheet = wm.sheet(sheet_name)
        row, col = parse_cell_ref(cell)
        return sheet, row, col, f"{sheet.name}!{format_cell_ref(row, col)}"
    sheet_name, rest = split_target(target)
    if sheet_name is not None:
        sheet = wm.sheet(sheet_name)
        row, col = parse_cell_ref(rest)
        return sheet, row, col, f"{sheet.name}!{format_cell_ref(row, col)}"
    # A bare name: workbook scope first, then a sheet-scoped name if it is unique.
    candidates = [n for n in wm.defined_names if n.name.lower() == rest.lower()]
    chosen = [n for n in candidates if n.scope is None] or candidates
    if not chosen:
        known = ", ".join(sorted({n.name for n in wm.defined_names if not n.name.startswith("_xlnm.")})) or "none"
        raise TemplateError(f"unknown defined name {rest!r}; the template defines {known}")
    if len(chosen) > 1:
        scopes = ", ".join(n.scope or "workbook" for n in chosen)
        raise TemplateError(f"defined name {rest!r} exists on several sheets ({scopes}); address the cell directly")
    hit = chosen[0].single_cell()
    if hit is None:
        raise TemplateError(f"defined name {rest!r} refers to {chosen[0].ref!r}, not to a single cell")
    sheet = wm.sheet(hit[0])
    return sheet, hit[1], hit[2], f"{rest} ({sheet.name}!{format_cell_ref(hit[1], hit[2])})"


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


def _truthy(v: str | None) -> bool:
    return v is not None and v.strip().lower() in ("1", "true", "on")


class _SheetEditor:
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
        self.protected = prot is not None and _truthy(prot.get("sheet"))
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
        if _truthy(row_el.get("customFormat")) and row_el.get("s"):
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
        new_ref = format_cell_ref(r1, c1) if (r1, c1) == (r2, c2) else f"{format_cell_ref(r1, c1)}:{format_cell_ref(r2, c2)}"
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
        if not (f.text and _EXTERNAL_REF.search(f.text))
        and not (f.get("t") == "shared" and f.get("si") in external_si)
    ]


def serialise(original: bytes, root: etree._Element) -> bytes:
    # Keep the original XML declaration byte for byte; lxml would rewrite its quoting.
    head = b""
    if original.startswith(b"<?xml"):
        end = original.find(b"?>") + 2
        while end < len(original) and original[end : end + 1] in (b"\r", b"\n", b" ", b"\t"):
            end += 1
        head = original[:end]
    else:
        head = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    return head + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


# -- workbook-level edits ---------------------------------------------------------

# CT_Workbook children in schema order; calcPr goes before the first of these that exists.
_AFTER_CALCPR = [
    "oleSize",
    "customWorkbookViews",
    "pivotCaches",
    "smartTagPr",
    "smartTagTypes",
    "webPublishing",
    "fileRecoveryPr",
    "webPublishObjects",
    "extLst",
]


def request_full_calc(wb_xml: bytes, part: str) -> bytes | None:
    """Set calcPr fullCalcOnLoad="1"; None when it is already set (part stays untouched)."""
    root = parse_xml(wb_xml, part)
    calc = root.find(q("calcPr"))
    if calc is not None and _truthy(calc.get("fullCalcOnLoad")):
        return None
    if calc is None:
        calc = etree.Element(q("calcPr"))
        successor = next((el for el in root if isinstance(el.tag, str) and etree.QName(el).localname in _AFTER_CALCPR), None)
        if successor is not None:
            successor.addprevious(calc)
        else:
            root.append(calc)
    calc.set("fullCalcOnLoad", "1")
    return serialise(wb_xml, root)


def _drop_relationship(xml: bytes, part: str, target_part: str, base_part: str) -> bytes:
    root = parse_xml(xml, part)
    for rel in list(root.iterfind(f"{{{PKG_REL_NS}}}Relationship")):
        target = rel.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else _join(base_part, target)
        if resolved == target_part:
            root.remove(rel)
    return serialise(xml, root)


def _join(base_part: str, target: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def _drop_content_type(xml: bytes, target_part: str) -> bytes:
    root = parse_xml(xml, "[Content_Types].xml")
    for el in list(root.iterfind(f"{{{CT_NS}}}Override")):
        if el.get("PartName", "").lstrip("/") == target_part:
            root.remove(el)
    return serialise(xml, root)


# -- zip output ---------------------------------------------------------------------

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")


class _ZipWriter:
    """Minimal zip writer that can copy a part's compressed bytes unchanged."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.central: list[bytes] = []
        self.offset = 0

    @staticmethod
    def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
        y, mo, d, h, mi, s = date_time
        if y < 1980:
            y, mo, d, h, mi, s = 1980, 1, 1, 0, 0, 0
        return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d

    def add(self, info: zipfile.ZipInfo, raw: bytes, crc: int, size: int, method: int) -> None:
        try:
            name = info.filename.encode("ascii")
            flags = info.flag_bits & ~0x8
        except UnicodeEncodeError:
            name = info.filename.encode("utf-8")
            flags = (info.flag_bits & ~0x8) | 0x800
        dostime, dosdate = self._dos(info.date_time)
        if self.offset + len(raw) > 0xFFFFFFFF:
            raise TemplateError("the filled workbook would exceed 4 GB")
        header = _LOCAL.pack(
            b"PK\x03\x04", info.extract_version, flags, method, dostime, dosdate, crc, len(raw), size, len(name), 0
        )
        comment = info.comment or b""
        self.central.append(
            _CENTRAL.pack(
                b"PK\x01\x02",
                info.create_version,
                info.create_system,
                info.extract_version,
                flags,
                method,
                dostime,
                dosdate,
                crc,
                len(raw),
                size,
                len(name),
                0,
                len(comment),
                0,
                info.internal_attr,
                info.external_attr & 0xFFFFFFFF,
                self.offset,
            )
            + name
            + comment
        )
        self.chunks += [header, name, raw]
        self.offset += len(header) + len(name) + len(raw)

    def add_new(self, info: zipfile.ZipInfo, data: bytes) -> None:
        if info.compress_type == 0:
            self.add(info, data, zlib.crc32(data), len(data), 0)
            return
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw = comp.compress(data) + comp.flush()
        self.add(info, raw, zlib.crc32(data), len(data), 8)

    def finish(self, comment: bytes = b"") -> bytes:
        cd = b"".join(self.central)
        n = len(self.central)
        end = _END.pack(b"PK\x05\x06", 0, 0, n, n, len(cd), self.offset, len(comment)) + comment
        return b"".join(self.chunks) + cd + end


# -- orchestration -----------------------------------------------------------------


def _apply(plan: FillPlan, data: bytes, *, strip_formula_caches: bool) -> bytes:
    z = open_workbook_zip(data)
    wm = read_workbook_map(z)

    writes: dict[str, dict[tuple[int, int], _Write]] = defaultdict(dict)
    hidden: dict[str, set[int]] = defaultdict(set)
    sheets: dict[str, SheetRef] = {}
    problems: list[str] = []

    def add(sheet: SheetRef, row: int, col: int, value: CellValue, origin: str) -> None:
        if not sheet.part:
            problems.append(f"{origin}: sheet {sheet.name!r} is not a worksheet")
            return
        sheets[sheet.part] = sheet
        key = (row, col)
        if key in writes[sheet.part]:
            problems.append(f"{sheet.name}!{format_cell_ref(row, col)}: written twice ({writes[sheet.part][key].origin} and {origin})")
            return
        writes[sheet.part][key] = _Write(sheet.name, row, col, value, origin)

    for target, value in plan.cells:
        sheet, row, col, origin = _resolve(wm, target)
        add(sheet, row, col, value, origin)
    for block in plan.blocks:
        sheet = wm.sheet(block.sheet)
        r0, c0 = parse_cell_ref(block.anchor)
        for i, values in enumerate(block.rows):
            for j, value in enumerate(values):
                add(sheet, r0 + i, c0 + j, value, f"{block.name} row {i + 1} ({sheet.name}!{format_cell_ref(r0 + i, c0 + j)})")
        if block.hide_unused:
            sheets[sheet.part] = sheet
            hidden[sheet.part].update(range(r0 + len(block.rows), r0 + block.capacity_rows))
    if problems:
        raise TemplateError("; ".join(problems[:20]))
    if not writes and not hidden:
        return data

    styles = read_styles(z, wm.styles_part)
    replaced: dict[str, bytes] = {}
    formulas_affected = False
    for part, sheet in sheets.items():
        original = z.read(part)
        editor = _SheetEditor(parse_xml(original, part), sheet, styles, wm.date1904)
        cell_writes = sorted(writes.get(part, {}).values(), key=lambda w: (w.row, w.col))
        for w in cell_writes:
            why = editor.refusal(w.row, w.col)
            if why:
                problems.append(f"{sheet.name}!{format_cell_ref(w.row, w.col)}: refused because {why}")
        if problems:
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise TemplateError("; ".join(problems[:10]) + more)
        for w in cell_writes:
            editor.write(w.row, w.col, w.value, f"{sheet.name}!{format_cell_ref(w.row, w.col)}")
        for row in sorted(hidden.get(part, ())):
            editor.hide_row(row)
        if strip_formula_caches and editor.strip_formula_caches():
            formulas_affected = True
        formulas_affected = formulas_affected or editor.formula_written
        editor.update_dimension()
        replaced[part] = serialise(original, editor.root)

    drop: set[str] = set()
    wb_xml = request_full_calc(z.read(wm.workbook_part), wm.workbook_part)
    if wb_xml is not None:
        replaced[wm.workbook_part] = wb_xml
    if formulas_affected and wm.calc_chain_part and z.has(wm.calc_chain_part):
        # A stale calc chain makes Excel "repair" the file; without one it rebuilds it.
        drop.add(wm.calc_chain_part)
        rels = rels_part_for(wm.workbook_part)
        replaced[rels] = _drop_relationship(z.read(rels), rels, wm.calc_chain_part, wm.workbook_part)
        if z.has("[Content_Types].xml"):
            replaced["[Content_Types].xml"] = _drop_content_type(z.read("[Content_Types].xml"), wm.calc_chain_part)

    return write_package(z, replaced, drop)


def write_package(z: SafeZip, replaced: Mapping[str, bytes], drop: Iterable[str] = ()) -> bytes:
    """Re-zip ``z`` with ``replaced`` parts re-compressed, ``drop`` left out, every other part copied raw."""
    dropped = set(drop)
    out = _ZipWriter()
    for info in z.infos:
        name = info.filename
        if name in dropped:
            continue
        if name in replaced:
            out.add_new(info, replaced[name])
        else:
            out.add(info, z.raw(name), info.CRC, info.file_size, info.compress_type)
    return out.finish(z.comment)
