"""Fill values into a funder's Excel template by editing only the target cells and copying every other part byte for byte."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from exports.errors import TemplateError
from exports.xlsx.cells import CellValue, Formula, SheetEditor
from exports.xlsx.inspector import (
    SheetRef,
    WorkbookMap,
    format_cell_ref,
    parse_cell_ref,
    read_styles,
    read_workbook_map,
    rels_part_for,
)
from exports.xlsx.package import (
    drop_content_type,
    drop_relationship,
    request_full_calc,
    serialise,
    write_package,
)
from exports.xlsx.safezip import open_workbook_zip, parse_xml

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
        tab, cell = target
        sheet = wm.sheet(tab)
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
            problems.append(
                f"{sheet.name}!{format_cell_ref(row, col)}: written twice ({writes[sheet.part][key].origin} and {origin})"
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
                    f"{block.name} row {i + 1} ({sheet.name}!{format_cell_ref(r0 + i, c0 + j)})",
                )
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
        editor = SheetEditor(parse_xml(original, part), sheet, styles, wm.date1904)
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
        replaced[rels] = drop_relationship(z.read(rels), rels, wm.calc_chain_part, wm.workbook_part)
        if z.has("[Content_Types].xml"):
            replaced["[Content_Types].xml"] = drop_content_type(z.read("[Content_Types].xml"), wm.calc_chain_part)

    return write_package(z, replaced, drop)
