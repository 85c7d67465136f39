"""Fill values into a funder's Excel template by editing only the target cells and copying every other part byte for byte."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.cells import CellValue, CellWrite, Encoded, Formula, cell_ref, encode_value
from exports.xlsx.inspector import (
    SheetRef,
    WorkbookMap,
    format_cell_ref,
    parse_cell_ref,
    parse_range,
    read_styles,
    read_workbook_map,
    rels_part_for,
)
from exports.xlsx.package import (
    CompressedPart,
    drop_content_type,
    drop_relationship,
    request_full_calc,
    write_package,
)
from exports.xlsx.safezip import open_workbook_zip
from exports.xlsx.scan import SheetScan, scan_sheet
from exports.xlsx.stream import SheetEdits, rewrite_sheet
from exports.xlsx.styles import StyleBook

__all__ = ["Formula", "CellValue", "FillPlan", "fill_workbook", "split_target"]

Address = str | tuple[str, str]

_TARGET_RE = re.compile(r"^(?:'((?:[^']|'')+)'|([^'!]+))!(\$?[A-Za-z]{1,3}\$?[0-9]{1,7})$")


def split_target(target: str) -> tuple[str | None, str]:
    """ "Cover!C4" -> ("Cover", "C4"); "'My sheet'!C4" -> ("My sheet", "C4"); "Name" -> (None, "Name")."""
    m = _TARGET_RE.match(target.strip())
    if m:
        sheet = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)
        return sheet, m.group(3).replace("$", "").upper()
    if "!" in target:
        raise TemplateError(_("%(target)s is not a cell address like Sheet!C4", target=repr(target)))
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
            raise TemplateError(_("the block at %(cell)s must hold at least one row", cell=sheet + "!" + anchor))
        data = [list(r) for r in rows]
        if len(data) > capacity_rows:
            raise TemplateError(
                _(
                    "dataset %(name)s has %(rows)s rows but the block at %(cell)s holds %(capacity)s",
                    name=name,
                    rows=len(data),
                    cell=sheet + "!" + anchor,
                    capacity=capacity_rows,
                )
            )
        self.blocks.append(_Block(sheet, anchor, data, capacity_rows, hide_unused, name))
        return self

    def apply(self, data: bytes, *, strip_formula_caches: bool = True) -> bytes:
        """Return a filled copy of the workbook ``data``; the input is never modified.

        Only the sheets that receive values change (streamed: rows not
        written keep their bytes), plus ``xl/workbook.xml`` (recalculate on
        open), ``xl/styles.xml`` when a cell needs a date format or the quote
        prefix (one xf added per style needed, nothing else), and, only when a
        Formula was added, the calcChain part and its two references.  Every
        other part is copied byte for byte.  Raises TemplateError naming
        sheet!cell and why for any write it will not make; nothing is written
        in that case.
        """
        return _apply(self, data, strip_formula_caches=strip_formula_caches)


def fill_workbook(
    data: bytes,
    writes: Mapping[Address, CellValue] | Iterable[tuple[Address, CellValue]],
    *,
    strip_formula_caches: bool = True,
) -> bytes:
    """Fill single cells: ``writes`` maps ("Sheet", "C4") / "Sheet!C4" / defined name -> value.

    Values: str (always literal inline text; text starting with = + - @ gets
    the quote prefix so Excel keeps it text when edited), int/float/Decimal
    (numbers), date/datetime (serial numbers in a cell that shows dates: the
    template's date format if it has one, else built-in short date, or date
    and time), bool, None (clear the value, keep the style) and Formula (a
    formula, only when asked for).
    """
    plan = FillPlan()
    items = writes.items() if isinstance(writes, Mapping) else writes
    for target, value in items:
        plan.set(target, value)
    return plan.apply(data, strip_formula_caches=strip_formula_caches)


# -- resolving addresses -------------------------------------------------------


def _resolve(wm: WorkbookMap, target: Address) -> tuple[SheetRef, int, int, str]:
    if isinstance(target, tuple):
        tab, cell = target
        sheet = wm.sheet(tab)
        row, col = parse_cell_ref(cell)
        return sheet, row, col, f"{sheet.name}!{cell_ref(row, col)}"
    sheet_name, rest = split_target(target)
    if sheet_name is not None:
        sheet = wm.sheet(sheet_name)
        row, col = parse_cell_ref(rest)
        return sheet, row, col, f"{sheet.name}!{format_cell_ref(row, col)}"
    # A bare name: workbook scope first, then a sheet-scoped name if it is unique.
    candidates = [n for n in wm.defined_names if n.name.lower() == rest.lower()]
    chosen = [n for n in candidates if n.scope is None] or candidates
    if not chosen:
        known = ", ".join(sorted({n.name for n in wm.defined_names if not n.name.startswith("_xlnm.")})) or _("none")
        raise TemplateError(
            _("unknown defined name %(name)s; the template defines %(known)s", name=repr(rest), known=known)
        )
    if len(chosen) > 1:
        scopes = ", ".join(n.scope or _("workbook") for n in chosen)
        raise TemplateError(
            _(
                "defined name %(name)s exists on several sheets (%(scopes)s); address the cell directly",
                name=repr(rest),
                scopes=scopes,
            )
        )
    hit = chosen[0].single_cell()
    if hit is None:
        raise TemplateError(
            _(
                "defined name %(name)s refers to %(ref)s, not to a single cell",
                name=repr(rest),
                ref=repr(chosen[0].ref),
            )
        )
    sheet = wm.sheet(hit[0])
    return sheet, hit[1], hit[2], f"{rest} ({sheet.name}!{format_cell_ref(hit[1], hit[2])})"


# -- orchestration -----------------------------------------------------------------


@dataclass
class _Hide:
    rows: range  # the block's unused rows
    top: int  # the block's first and last rows
    bottom: int


def _rows_to_hide(scan: SheetScan, requests: list[_Hide], written: set[int]) -> set[int]:
    """The unused block rows that are empty in the template and cut through none of its merges.

    A row holding any constant (a funder's label, a number) stays visible, and
    so does a row inside a merged range reaching outside the block (a heading
    spanning the block and the rows below), and so does a row that receives
    values from another mapping.  Formula cells don't count: a block row with
    its own total formula is still an unused block row.
    """
    out: set[int] = set()
    for req in requests:
        for row in req.rows:
            if row in scan.rows_with_values or row in written:
                continue
            if any(m[0] < req.top or m[2] > req.bottom for m in scan.merges_touching(row)):
                continue
            out.add(row)
    return out


def _new_dimension(scan: SheetScan, touched: list[tuple[int, int]]) -> str | None:
    """The sheet's dimension ref grown to cover ``touched`` (col 0 = a whole row), or None to keep it."""
    if scan.dimension is None or not touched:
        return None
    try:
        r1, c1, r2, c2 = parse_range(scan.dimension)
    except TemplateError:
        return None
    rows = [row for row, _ in touched]
    cols = [col for _, col in touched if col]
    if not scan.had_cells:
        # An empty sheet says A1 by convention; the written cells are the whole extent.
        r1, r2 = min(rows), max(rows)
        c1, c2 = (min(cols), max(cols)) if cols else (1, 1)
    else:
        r1, r2 = min(r1, min(rows)), max(r2, max(rows))
        if cols:
            c1, c2 = min(c1, min(cols)), max(c2, max(cols))
    ref = format_cell_ref(r1, c1) if (r1, c1) == (r2, c2) else f"{format_cell_ref(r1, c1)}:{format_cell_ref(r2, c2)}"
    return None if ref == scan.dimension else ref


def _apply(plan: FillPlan, data: bytes, *, strip_formula_caches: bool) -> bytes:
    z = open_workbook_zip(data)
    wm = read_workbook_map(z)

    writes: dict[str, dict[tuple[int, int], _Write]] = defaultdict(dict)
    hide_requests: dict[str, list[_Hide]] = defaultdict(list)
    sheets: dict[str, SheetRef] = {}
    problems: list[str] = []

    def add(sheet: SheetRef, row: int, col: int, value: CellValue, origin: str) -> None:
        if not sheet.part:
            problems.append(_("%(where)s: sheet %(sheet)s is not a worksheet", where=origin, sheet=repr(sheet.name)))
            return
        sheets[sheet.part] = sheet
        key = (row, col)
        if key in writes[sheet.part]:
            problems.append(
                _(
                    "%(cell)s: written twice (%(first)s and %(second)s)",
                    cell=sheet.name + "!" + format_cell_ref(row, col),
                    first=writes[sheet.part][key].origin,
                    second=origin,
                )
            )
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
                add(
                    sheet,
                    r0 + i,
                    c0 + j,
                    value,
                    _(
                        "%(dataset)s row %(row)s (%(cell)s)",
                        dataset=block.name,
                        row=i + 1,
                        cell=sheet.name + "!" + cell_ref(r0 + i, c0 + j),
                    ),
                )
        if block.hide_unused and len(block.rows) < block.capacity_rows and sheet.part:
            sheets[sheet.part] = sheet
            hide_requests[sheet.part].append(
                _Hide(range(r0 + len(block.rows), r0 + block.capacity_rows), r0, r0 + block.capacity_rows - 1)
            )
    if problems:
        raise TemplateError("; ".join(problems[:20]))
    if not writes and not hide_requests:
        return data

    # Every value is checked and encoded before the first byte is written.
    encoded: dict[str, dict[tuple[int, int], Encoded]] = defaultdict(dict)
    for part, cell_writes in writes.items():
        for key, w in cell_writes.items():
            try:
                encoded[part][key] = encode_value(w.value, w.origin, wm.date1904)
            except TemplateError as exc:
                problems.append(str(exc))

    # First pass over each sheet: what the cells we write hold, and what the template protects.
    styles = read_styles(z, wm.styles_part)
    scans: dict[str, SheetScan] = {}
    for part, sheet in sheets.items():
        if not z.has(part):
            problems.append(_("sheet %(sheet)s is missing from the workbook", sheet=repr(sheet.name)))
            continue
        hide_rows = {r for req in hide_requests.get(part, ()) for r in req.rows}
        scan = scan_sheet(z, sheet, list(writes.get(part, {})), hide_rows)
        scans[part] = scan
        if scan.sheet_data_qname is None:
            problems.append(_("sheet %(sheet)s has no cell data section; it cannot be filled", sheet=repr(sheet.name)))
            continue
        refused = [
            (w.row, w.col, why) for w in writes.get(part, {}).values() if (why := scan.refusal(w.row, w.col, styles))
        ]
        for row, col, why in sorted(refused):
            problems.append(
                _("%(cell)s: refused because %(why)s", cell=sheet.name + "!" + format_cell_ref(row, col), why=why)
            )
    if problems:
        shown = "; ".join(problems[:10])
        if len(problems) > 10:
            shown = _("%(problems)s (and %(count)s more)", problems=shown, count=len(problems) - 10)
        raise TemplateError(shown)

    book = StyleBook.load(z, wm.styles_part) if _needs_styles(encoded) else None
    replaced: dict[str, bytes | CompressedPart] = {}
    formula_added = False
    for part in sheets:
        scan = scans[part]
        edits = SheetEdits(strip_caches=strip_formula_caches and scan.any_formula)
        by_row: dict[int, list[CellWrite]] = defaultdict(list)
        seen = scan.cells
        for (row, col), enc in sorted(encoded.get(part, {}).items()):
            if enc.style_need is None and (row, col) in seen:
                style = None  # an existing cell keeps its style
            else:
                style = _style_for(scan, book, row, col, enc)
            by_row[row].append(CellWrite(col, enc, style))
            if enc.formula is not None:
                formula_added = True
        edits.writes = dict(by_row)
        edits.hide = _rows_to_hide(scan, hide_requests.get(part, []), set(by_row))
        touched = [*encoded.get(part, {}), *((r, 0) for r in edits.hide)]
        if not touched:
            continue  # every row asked to be hidden holds the funder's own content
        edits.dimension = _new_dimension(scan, touched)
        replaced[part] = rewrite_sheet(z.iter_chunks(part), scan, edits, part)

    if not replaced:
        return data
    drop: set[str] = set()
    if book is not None and book.changed:
        replaced[book.part] = book.serialise()
    wb_xml = request_full_calc(z.read(wm.workbook_part), wm.workbook_part)
    if wb_xml is not None:
        replaced[wm.workbook_part] = wb_xml
    if formula_added and wm.calc_chain_part and z.has(wm.calc_chain_part):
        # A formula the chain does not list makes Excel "repair" the file; without one it
        # rebuilds it.  Values written, caches dropped or rows hidden leave the chain right.
        drop.add(wm.calc_chain_part)
        rels = rels_part_for(wm.workbook_part)
        replaced[rels] = drop_relationship(z.read(rels), rels, wm.calc_chain_part, wm.workbook_part)
        if z.has("[Content_Types].xml"):
            replaced["[Content_Types].xml"] = drop_content_type(z.read("[Content_Types].xml"), wm.calc_chain_part)

    return write_package(z, replaced, drop)


def _needs_styles(encoded: Mapping[str, Mapping[tuple[int, int], Encoded]]) -> bool:
    return any(enc.style_need for cells in encoded.values() for enc in cells.values())


def _style_for(scan: SheetScan, book: StyleBook | None, row: int, col: int, enc: Encoded) -> str | None:
    """The s attribute to give the cell: a date or quote-prefix variant of its style when needed.

    None keeps an existing cell's style; a new cell takes its row's or column's.
    """
    exists = (row, col) in scan.cells
    if book is not None and enc.style_need is not None:
        base = scan.style_of(row, col)
        index = int(base) if base.isdigit() else 0
        if enc.style_need == "quote":
            new = book.quote_style(index)
        else:
            new = book.date_style(index, with_time=enc.style_need == "datetime")
        if new != index or not exists:
            return str(new)
        return None
    return None if exists else scan.new_cell_style(row, col)
