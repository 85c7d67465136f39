"""One streamed pass over a worksheet collecting what the filler and the mapping check must know about some cells.

Memory stays bounded: rows are parsed one at a time and cleared; only the facts
about the cells and rows asked for (plus the sheet's merges, array-formula
ranges and column styles) are kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from lxml import etree

from core.formatting import N_
from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.cells import cell_ref, column_of, external_shared_index
from exports.xlsx.inspector import (
    SheetRef,
    StyleTable,
    format_cell_ref,
    parse_cell_ref,
    parse_range,
    q,
    read_styles,
    read_workbook_map,
    truthy,
)
from exports.xlsx.safezip import SafeZip, open_workbook_zip

__all__ = ["CellFacts", "SheetScan", "cell_facts", "scan_sheet"]

_C, _ROW, _F, _V, _IS = q("c"), q("row"), q("f"), q("v"), q("is")
_WORKSHEET, _SHEET_DATA = q("worksheet"), q("sheetData")
_MERGE, _DIM, _PROT, _COL = q("mergeCell"), q("dimension"), q("sheetProtection"), q("col")
_FORMULA_KIND = {"shared": "a shared formula", "array": "an array formula", "dataTable": "a data table"}
# Why a formula cell is refused, one whole sentence per kind above (translated where it is said).
_HOLDS = {
    "a formula": N_("it holds a formula the template owns"),
    "a shared formula": N_("it holds a shared formula the template owns"),
    "an array formula": N_("it holds an array formula the template owns"),
    "a data table": N_("it holds a data table the template owns"),
}


class _Seen(NamedTuple):
    """A cell that exists in the sheet XML."""

    style: str | None  # its s attribute
    formula: str | None  # "a formula", "a shared formula", ... when it holds one
    has_value: bool  # a constant (text, number, boolean, error)


@dataclass
class SheetScan:
    """What one pass over a worksheet found, for the cells and rows it was asked about."""

    name: str
    part: str
    protected: bool = False
    dimension: str | None = None
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)
    array_ranges: list[tuple[int, int, int, int]] = field(default_factory=list)
    col_styles: list[tuple[int, int, str]] = field(default_factory=list)
    cells: dict[tuple[int, int], _Seen] = field(default_factory=dict)
    row_styles: dict[int, str] = field(default_factory=dict)  # asked rows with a row style (customFormat)
    existing_rows: set[int] = field(default_factory=set)  # asked rows present in the XML
    rows_with_values: set[int] = field(default_factory=set)  # asked rows (``rows``) holding any constant
    any_formula: bool = False
    external_si: set[str] = field(default_factory=set)
    had_cells: bool = False
    # Qualified names as written in the part (a prefix like "x:" when the writer used one).
    root_qname: str = "worksheet"
    sheet_data_qname: str | None = None
    row_qname: str = "row"
    dimension_qname: str = "dimension"
    formula_qname: str = "f"
    _merge_index: dict[int, list[tuple[int, int, int, int]]] | None = field(default=None, repr=False)
    _tall_merges: list[tuple[int, int, int, int]] = field(default_factory=list, repr=False)

    # - questions the filler and the mapping check ask -

    def merge_of(self, row: int, col: int) -> tuple[int, int, int, int] | None:
        """The merged range holding (row, col), if any."""
        if self._merge_index is None:
            # Indexed by row so 10k questions against thousands of merges stay cheap;
            # very tall merges (rare) are simply scanned.
            index: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
            tall: list[tuple[int, int, int, int]] = []
            for rng in self.merges:
                if rng[2] - rng[0] > 1000:
                    tall.append(rng)
                else:
                    for r in range(rng[0], rng[2] + 1):
                        index[r].append(rng)
            self._merge_index, self._tall_merges = index, tall
        for group in (self._merge_index.get(row, ()), self._tall_merges):
            for rng in group:
                r1, c1, r2, c2 = rng
                if r1 <= row <= r2 and c1 <= col <= c2:
                    return rng
        return None

    def merges_touching(self, row: int) -> list[tuple[int, int, int, int]]:
        """Merged ranges that include any cell of ``row``."""
        self.merge_of(row, 0)  # builds the index
        assert self._merge_index is not None
        return [m for m in (*self._merge_index.get(row, ()), *self._tall_merges) if m[0] <= row <= m[2]]

    def new_cell_style(self, row: int, col: int) -> str | None:
        """The style a cell created at (row, col) takes: the row's (if it has one), else the column's."""
        if row in self.row_styles:
            return self.row_styles[row]
        for lo, hi, style in self.col_styles:
            if lo <= col <= hi:
                return style
        return None

    def style_of(self, row: int, col: int) -> str:
        """The s attribute the cell has, or would get when created ("0" for the default style)."""
        seen = self.cells.get((row, col))
        if seen is not None:
            return seen.style or "0"
        return self.new_cell_style(row, col) or "0"

    def formula_at(self, row: int, col: int) -> str | None:
        for r1, c1, r2, c2 in self.array_ranges:
            if r1 <= row <= r2 and c1 <= col <= c2:
                return "part of an array formula"
        seen = self.cells.get((row, col))
        return seen.formula if seen is not None else None

    def locked(self, row: int, col: int, styles: StyleTable) -> bool:
        """Locked on a protected sheet (False on an unprotected one)."""
        if not self.protected:
            return False
        style = self.style_of(row, col)
        return not style.isdigit() or styles.is_locked(int(style))

    def refusal(self, row: int, col: int, styles: StyleTable) -> str | None:
        """Why the filler will not write this cell, in words, or None."""
        merge = self.merge_of(row, col)
        if merge is not None and (row, col) != (merge[0], merge[1]):
            r1, c1, r2, c2 = merge
            return _(
                "it is inside the merged range %(range)s; write to %(cell)s",
                range=format_cell_ref(r1, c1) + ":" + format_cell_ref(r2, c2),
                cell=format_cell_ref(r1, c1),
            )
        formula = self.formula_at(row, col)
        if formula == "part of an array formula":
            return _("it is part of an array formula the template owns")
        if formula is not None:
            return _(_HOLDS.get(formula, _HOLDS["a formula"]))
        if self.locked(row, col, styles):
            return _("it is locked on a protected sheet")
        return None


def scan_sheet(
    z: SafeZip,
    ref: SheetRef,
    cells: Collection[tuple[int, int]] = (),
    rows: Collection[int] = (),
) -> SheetScan:
    """Stream ``ref``'s part once; remember the given cells (row, col) and rows.

    Raises TemplateError when the part cannot be filled safely: not UTF-8,
    rows out of order, or no worksheet root.
    """
    scan = SheetScan(ref.name, ref.part)
    by_row: dict[int, set[int]] = defaultdict(set)
    for r, c in cells:
        by_row[r].add(c)
    value_rows = set(rows)
    asked_rows = value_rows | set(by_row)
    last = 0
    encoding = _encoding(next(iter(z.iter_chunks(ref.part)), b""))
    if encoding not in ("UTF-8", "UTF8", "US-ASCII", "ASCII"):
        # The second pass edits bytes; it follows UTF-8 (and ASCII) only, as Excel writes.
        raise TemplateError(
            _(
                "sheet %(sheet)s is stored as %(encoding)s text; open the template in Excel and save it again",
                sheet=repr(ref.name),
                encoding=encoding,
            )
        )
    row_prefix: str | None = None
    tags = [_WORKSHEET, _SHEET_DATA, _ROW, _MERGE, _DIM, _PROT, _COL]
    checked_root = False
    for _event, el in z.iterparse(ref.part, events=("end",), tag=tags):
        if not checked_root:
            checked_root = True
            root = el.getroottree().getroot()
            if root.tag != _WORKSHEET:
                raise TemplateError(_("sheet %(sheet)s is not a worksheet; it cannot be filled", sheet=repr(ref.name)))
            scan.root_qname = _qname(root)
        tag = el.tag
        if tag == _SHEET_DATA:
            scan.sheet_data_qname = _qname(el)
        elif tag == _ROW:
            r_attr = el.get("r")
            num = int(r_attr) if r_attr and r_attr.isdigit() else last + 1
            if num <= last:
                raise TemplateError(
                    _(
                        "sheet %(sheet)s lists row %(row)s after row %(last)s; the file is damaged, "
                        "open it in Excel and save it again",
                        sheet=repr(ref.name),
                        row=num,
                        last=last,
                    )
                )
            if last == 0:
                scan.row_qname = _qname(el)
                row_prefix = el.prefix
            elif el.prefix != row_prefix:
                # The second pass finds rows by their written name; a sheet mixing prefixes is refused.
                raise TemplateError(
                    _(
                        "sheet %(sheet)s writes its rows in two ways; open the template in Excel and save it again",
                        sheet=repr(ref.name),
                    )
                )
            last = num
            if not scan.had_cells and len(el):
                scan.had_cells = True
            for f in el.iter(_F):
                if not scan.any_formula:
                    scan.any_formula = True
                    scan.formula_qname = _qname(f)
                kind = f.get("t")
                if kind in ("array", "dataTable") and f.get("ref"):
                    try:
                        scan.array_ranges.append(parse_range(f.get("ref", "")))
                    except TemplateError:
                        pass
                si = external_shared_index(f)
                if si is not None:
                    scan.external_si.add(si)
            if num in asked_rows:
                _remember_row(scan, el, num, by_row.get(num, set()), num in value_rows)
            el.clear()
            # Finished rows go, so memory stays bounded on a million-row sheet.
            while el.getprevious() is not None:
                del el.getparent()[0]
        elif tag == _MERGE:
            try:
                scan.merges.append(parse_range(el.get("ref", "")))
            except TemplateError:
                pass
        elif tag == _DIM:
            scan.dimension = el.get("ref")
            scan.dimension_qname = _qname(el)
        elif tag == _PROT:
            scan.protected = truthy(el.get("sheet"))
        elif tag == _COL:
            style = el.get("style")
            if style not in (None, "0"):
                scan.col_styles.append((int(el.get("min", "0") or 0), int(el.get("max", "0") or 0), style or "0"))
    return scan


_DECLARED = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _encoding(head: bytes) -> str:
    """The text encoding an XML part declares (UTF-8 when it says nothing), from its first bytes."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00")):
        return "UTF-16"
    if head.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")):
        return "UTF-32"
    m = _DECLARED.match(head)
    return m.group(1).decode("ascii").upper().replace("_", "-") if m else "UTF-8"


def _qname(el: etree._Element) -> str:
    local = etree.QName(el).localname
    return f"{el.prefix}:{local}" if el.prefix else local


def _remember_row(scan: SheetScan, row_el: etree._Element, num: int, wanted: set[int], values: bool) -> None:
    scan.existing_rows.add(num)
    row_style = row_el.get("s")
    if row_style and truthy(row_el.get("customFormat")):
        scan.row_styles[num] = row_style
    if not values:
        # Usually every cell says where it is: find the wanted ones by their r text.
        by_ref = {c.get("r"): c for c in row_el.iterchildren(_C)}
        if None not in by_ref:
            for col in wanted:
                c = by_ref.get(cell_ref(num, col))
                if c is not None:
                    scan.cells[(num, col)] = _seen(c)
            return
    # Cells are matched by their r text; only a cell without one needs its position worked out.
    wanted_refs = {cell_ref(num, col): col for col in wanted}
    col = 0
    skipped: str | None = None  # the r of the last cell passed over without working out its column
    for c in row_el.iterchildren(_C):
        r = c.get("r")
        if r is not None and r in wanted_refs:
            col = wanted_refs[r]
        elif r is None:
            if skipped is not None:
                col = column_of(skipped, col)
            col += 1
        elif values:
            col = column_of(r, col)
        else:
            skipped = r  # only a following cell without r would need this one's column
            continue
        skipped = None
        if col not in wanted and not values:
            continue
        seen = _seen(c)
        if seen.has_value and values:
            scan.rows_with_values.add(num)
        if col in wanted:
            scan.cells[(num, col)] = seen


def _seen(c: etree._Element) -> _Seen:
    formula = None
    has_value = False
    for child in c:
        tag = child.tag
        if tag == _F:
            formula = _FORMULA_KIND.get(child.get("t", ""), "a formula")
        elif tag == _V or tag == _IS:
            has_value = True
    return _Seen(c.get("s"), formula, has_value and formula is None)


# -- facts for the mapping check -------------------------------------------------------


@dataclass(frozen=True)
class CellFacts:
    """What a template says about one cell, for checking a mapping before anything is saved.

    ``formula`` names what the template keeps there ("a formula", "a shared
    formula", "an array formula", "part of an array formula"), ``merged_range``
    is set when the cell is inside a merge but not its top-left cell, ``locked``
    means locked on a protected sheet, ``sheet_state`` is "visible", "hidden" or
    "veryHidden", and ``has_value`` says the template already holds a constant
    there (a label, say).  ``refusal`` is the filler's own reason for refusing
    the cell, word for word; a hidden sheet is not a refusal of the filler's,
    so the mapping check decides about ``on_hidden_sheet``.
    """

    sheet: str
    ref: str
    sheet_state: str
    formula: str | None
    merged_range: str | None
    locked: bool
    has_value: bool
    refusal: str | None

    @property
    def on_hidden_sheet(self) -> bool:
        return self.sheet_state != "visible"


def cell_facts(data: bytes, cells: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CellFacts]:
    """Facts about each (sheet, cell) asked, keyed as asked; one streamed pass per sheet involved.

    Sheet names match as the filler matches them (exact, else case-insensitive
    when unambiguous).  Raises TemplateError for an unknown sheet, a sheet that
    is not a worksheet, or a malformed cell reference; check names first when
    several problems must be reported together.
    """
    z = open_workbook_zip(data)
    wm = read_workbook_map(z)
    styles = read_styles(z, wm.styles_part)
    asked: dict[str, list[tuple[tuple[str, str], int, int]]] = defaultdict(list)
    refs: dict[str, SheetRef] = {}
    for key in cells:
        sheet_name, cell = key
        ref = wm.sheet(sheet_name)
        if not ref.part or not z.has(ref.part):
            raise TemplateError(_("sheet %(sheet)s is not a worksheet; it has no cells to fill", sheet=repr(ref.name)))
        row, col = parse_cell_ref(cell)
        refs[ref.part] = ref
        asked[ref.part].append((key, row, col))
    out: dict[tuple[str, str], CellFacts] = {}
    for part, items in asked.items():
        ref = refs[part]
        scan = scan_sheet(z, ref, [(r, c) for _, r, c in items])
        for key, row, col in items:
            merge = scan.merge_of(row, col)
            follower = merge is not None and (row, col) != (merge[0], merge[1])
            seen = scan.cells.get((row, col))
            out[key] = CellFacts(
                sheet=ref.name,
                ref=format_cell_ref(row, col),
                sheet_state=ref.state,
                formula=scan.formula_at(row, col),
                merged_range=(
                    f"{format_cell_ref(merge[0], merge[1])}:{format_cell_ref(merge[2], merge[3])}"
                    if follower and merge is not None
                    else None
                ),
                locked=scan.locked(row, col, styles),
                has_value=seen is not None and seen.has_value,
                refusal=scan.refusal(row, col, styles),
            )
    return out
