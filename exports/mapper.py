"""The click-a-cell mapper's domain side: a template sheet as a grid, the figures in words, previews, ready mappings.

No Flask here: the views in ``exports.mapper_views`` call these functions.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core import formatting
from core.errors import DomainValidationError
from core.formatting import gettext as _
from core.storage import FileStore
from exports import services
from exports.datasets import FIELD_LABELS, all_datasets, all_figure_kinds, catalogue, dataset_title, report_column
from exports.errors import TemplateError
from exports.mapping import CellMapping, MappingSpec, dump_mapping, parse_mapping, spec_to_dict
from exports.models import TemplateVersion
from exports.ready import ReadyMapping, ready_mapping
from exports.xlsx.inspector import (
    TemplateInfo,
    format_cell_ref,
    index_to_col,
    parse_cell_ref,
    parse_range,
    q,
    read_cells,
    read_workbook_map,
)
from exports.xlsx.safezip import open_workbook_zip
from grants.models import Funder, Grant, ReportingPeriod

GRID_ROWS = 60
GRID_COLS = 16

# ---------------------------------------------------------------- a sheet drawn as a grid


@dataclass
class GridCell:
    ref: str
    text: str = ""
    formula: bool = False
    locked: bool = False
    hidden: bool = False  # in a hidden row or column
    rowspan: int = 1
    colspan: int = 1
    covered: bool = False  # inside a merge, not its top-left: not drawn
    mapped: str = ""  # what the current mapping puts here, in words

    @property
    def marks(self) -> list[str]:
        out = []
        if self.formula:
            out.append("formula")
        if self.rowspan > 1 or self.colspan > 1:
            out.append("merged")
        if self.locked:
            out.append("locked")
        if self.hidden:
            out.append("hidden")
        if self.mapped:
            out.append("mapped")
        return out

    @property
    def can_fill(self) -> bool:
        return not (self.formula or self.locked)


@dataclass
class GridRow:
    number: int
    hidden: bool
    cells: list[GridCell] = field(default_factory=list)


@dataclass
class Grid:
    sheet: str
    state: str
    protected: bool
    columns: list[tuple[str, bool]]  # (letter, hidden)
    rows: list[GridRow]
    first_row: int
    first_col: int
    last_row: int
    last_col: int
    more_rows: bool
    more_cols: bool

    # Where the neighbouring pages of a large sheet start ("A61"), or None at the sheet's edge.
    @property
    def above_at(self) -> str | None:
        return format_cell_ref(max(1, self.first_row - GRID_ROWS), self.first_col) if self.first_row > 1 else None

    @property
    def below_at(self) -> str | None:
        return format_cell_ref(self.last_row + 1, self.first_col) if self.more_rows else None

    @property
    def left_at(self) -> str | None:
        return format_cell_ref(self.first_row, max(1, self.first_col - GRID_COLS)) if self.first_col > 1 else None

    @property
    def right_at(self) -> str | None:
        return format_cell_ref(self.first_row, self.last_col + 1) if self.more_cols else None


def _display(content: Any) -> str:
    kind, value = content.kind, content.value
    if kind == "blank" or value is None:
        return ""
    if kind == "date" and isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if kind == "bool":
        return "TRUE" if value else "FALSE"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _hidden_rows_and_cols(data: bytes, part: str) -> tuple[set[int], set[int]]:
    z = open_workbook_zip(data)
    rows: set[int] = set()
    cols: set[int] = set()
    for _event, el in z.iterparse(part, events=("end",), tag=[q("row"), q("col")]):
        if el.tag == q("col"):
            if el.get("hidden") in ("1", "true"):
                lo, hi = int(el.get("min", "0") or 0), int(el.get("max", "0") or 0)
                cols.update(range(lo, min(hi, 16_384) + 1))
        elif el.get("hidden") in ("1", "true") and (el.get("r") or "").isdigit():
            rows.add(int(el.get("r", "0")))
        el.clear()
    return rows, cols


def sheet_grid(
    data: bytes,
    info: TemplateInfo,
    sheet_name: str,
    *,
    first_row: int = 1,
    first_col: int = 1,
    spec: MappingSpec | None = None,
) -> Grid:
    """The part of a sheet a person maps, cell by cell: values, formulas, merges, locks, hidden rows and columns."""
    sheet = info.sheet(sheet_name)
    wm = read_workbook_map(open_workbook_zip(data))
    part = wm.sheet(sheet.name).part
    contents = read_cells(data, sheet.name) if part else {}
    hidden_rows, hidden_cols = _hidden_rows_and_cols(data, part) if part else (set(), set())
    max_row, max_col = 1, 1
    if sheet.dimension:
        try:
            _, _, max_row, max_col = parse_range(sheet.dimension)
        except TemplateError:
            pass
    for ref in contents:
        r, c = parse_cell_ref(ref)
        max_row, max_col = max(max_row, r), max(max_col, c)
    first_row, first_col = max(1, first_row), max(1, first_col)
    last_row = min(max(max_row, first_row), first_row + GRID_ROWS - 1)
    last_col = min(max(max_col, first_col), first_col + GRID_COLS - 1)
    formulas = set(sheet.formula_cells)
    unlocked = set(sheet.input_cells)
    spans: dict[tuple[int, int], tuple[int, int]] = {}
    covered: set[tuple[int, int]] = set()
    for rng in sheet.merged_ranges:
        try:
            r1, c1, r2, c2 = parse_range(rng)
        except TemplateError:
            continue
        if r2 < first_row or r1 > last_row or c2 < first_col or c1 > last_col:
            continue
        top, left = max(r1, first_row), max(c1, first_col)
        spans[(top, left)] = (min(r2, last_row) - top + 1, min(c2, last_col) - left + 1)
        for r in range(top, min(r2, last_row) + 1):
            for c in range(left, min(c2, last_col) + 1):
                if (r, c) != (top, left):
                    covered.add((r, c))
    mapped = _mapped_cells(spec, sheet.name) if spec else {}
    rows = []
    for r in range(first_row, last_row + 1):
        row = GridRow(r, r in hidden_rows)
        for c in range(first_col, last_col + 1):
            ref = format_cell_ref(r, c)
            content = contents.get(ref)
            cell = GridCell(
                ref=ref,
                text=_display(content) if content is not None else "",
                formula=ref in formulas,
                locked=sheet.protected and ref not in unlocked,
                hidden=r in hidden_rows or c in hidden_cols,
                covered=(r, c) in covered,
                mapped=mapped.get(ref, ""),
            )
            cell.rowspan, cell.colspan = spans.get((r, c), (1, 1))
            row.cells.append(cell)
        rows.append(row)
    return Grid(
        sheet=sheet.name,
        state=sheet.state,
        protected=sheet.protected,
        columns=[(index_to_col(c), c in hidden_cols) for c in range(first_col, last_col + 1)],
        rows=rows,
        first_row=first_row,
        first_col=first_col,
        last_row=last_row,
        last_col=last_col,
        more_rows=max_row > last_row,
        more_cols=max_col > last_col,
    )


def _mapped_cells(spec: MappingSpec, sheet: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for cell in spec.cells:
        if "!" not in cell.target:
            continue
        name, _, ref = cell.target.rpartition("!")
        if name.strip("'").replace("''", "'").lower() == sheet.lower():
            out[ref.replace("$", "").upper()] = describe(cell)
    for table in spec.tables:
        name, _, ref = table.target.rpartition("!")
        if name.strip("'").replace("''", "'").lower() != sheet.lower():
            continue
        r0, c0 = parse_cell_ref(ref)
        for i in range(table.rows):
            for j, column in enumerate(table.columns):
                out[format_cell_ref(r0 + i, c0 + j)] = f"table {table.dataset}: {column}, row {i + 1}"
    return out


def parse_grid_start(value: str | None) -> tuple[int, int]:
    """ "C20" -> (row 20, column 3) for paging through a large sheet; anything else starts at A1."""
    try:
        return parse_cell_ref(value or "A1")
    except TemplateError:
        return 1, 1


# ---------------------------------------------------------------- the lists in words


def describe(cell: CellMapping) -> str:
    """What a cell mapping fills, in words a grants officer reads ("Indicator FCDO-1: Target for the period, period 1")."""
    if cell.formula is not None:
        return _("Formula %(formula)s", formula=cell.formula)
    parts: list[str] = []
    if cell.figure is not None:
        kind = all_figure_kinds().get(cell.figure)
        measure = kind.measure(cell.measure or "") if kind else None
        title = _(str(kind.title)) if kind else cell.figure
        parts.append(f"{title} {cell.item}: {_(str(measure.label)) if measure else cell.measure}")
        if cell.category:
            parts.append(cell.category)
        if cell.scope and kind:
            parts.append(_(str(dict(kind.scopes).get(cell.scope, cell.scope))))
    else:
        parts.append(str(FIELD_LABELS.get(cell.source or "", cell.source or "")))
    if cell.period is not None:
        parts.append(_("period %(number)s", number=cell.period) if isinstance(cell.period, int) else str(cell.period))
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def choices(session: Session, grant: Grant | None) -> dict[str, Any]:
    """Everything the mapper's lists offer, in words; items come from the chosen grant."""
    kinds = []
    for name, kind in all_figure_kinds().items():
        kinds.append(
            {
                "name": name,
                # The domains mark these words with N_: looked up in the catalogues as they are shown.
                "title": _(str(kind.title)),
                "item_label": _(str(kind.item_label)),
                "measures": [(m.key, _(str(m.label))) for m in kind.measures],
                "scopes": [(key, _(str(words))) for key, words in kind.scopes],
                "items": kind.items(session, grant) if grant is not None else [],
                "categories": (kind.categories(session, grant) if grant is not None and kind.categories else []),
            }
        )
    periods = sorted(grant.periods, key=lambda p: p.start_date) if grant is not None else []
    return {
        "fields": [(key, str(label)) for key, label in FIELD_LABELS.items()],
        "kinds": kinds,
        "periods": [(n, p.label) for n, p in enumerate(periods, start=1)],
        "datasets": [
            (name, dataset_title(d), [(c.key, report_column(c).header) for c in d.columns])
            for name, d in all_datasets().items()
        ],
    }


# ---------------------------------------------------------------- what a cell would get


def _words(value: Any, kind: str, currency: str) -> str:
    # In the reader's language and number style (core.formatting), like every page.
    if value is None or value == "":
        return _("(empty: no figure yet)")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, (dt.date, dt.datetime)):
        return formatting.day(value)
    if isinstance(value, (int, float, Decimal)):
        if kind == "percent":
            return formatting.pct(Decimal(str(value)) * 100)
        if kind == "money":
            return _("%(amount)s %(currency)s", amount=formatting.number(Decimal(str(value)), 2), currency=currency)
        return formatting.number(Decimal(str(value)))
    return str(value)


def preview(session: Session, grant: Grant, period: ReportingPeriod | None, cell: dict[str, Any]) -> dict[str, Any]:
    """The value one cell mapping would get for this grant and period, and in words; or why it cannot.

    ``cell`` is one entry of a mapping's ``cells`` (``target`` may be left out).
    """
    entry = {"target": "Preview!A1", **{k: v for k, v in cell.items() if v not in (None, "") and k != "target"}}
    try:
        spec = parse_mapping(json.dumps({"cells": [entry]}), catalogue())
    except TemplateError as exc:
        return {"ok": False, "problems": [m for msgs in exc.details.values() for m in msgs] or [str(exc)]}
    mapping = spec.cells[0]
    try:
        collected = services.collect(session, spec, grant, period)
    except DomainValidationError as exc:
        return {"ok": False, "problems": [m for msgs in exc.errors.values() for m in msgs]}
    value = collected.figures[0] if 0 in collected.figures else collected.fields.get(mapping.source or "")
    kind = "text"
    if mapping.figure:
        figure_kind = all_figure_kinds().get(mapping.figure)
        measure = figure_kind.measure(mapping.measure or "") if figure_kind else None
        kind = measure.kind if measure else "text"
    elif mapping.source == "grant.amount":
        kind = "money"
    return {"ok": True, "words": _words(value, kind, grant.currency), "describe": describe(mapping)}


# ---------------------------------------------------------------- saving what the mapper drew


def mapping_from_draft(draft: str) -> str:
    """The mapper's draft (JSON) as the YAML file kept with the template; raises TemplateError in words."""
    spec = parse_mapping(draft or "{}", catalogue())
    return dump_mapping(spec, "yaml")


def draft_of(version: TemplateVersion) -> str:
    """The saved mapping as the mapper's JSON draft (empty when there is none or it no longer reads)."""
    if not version.mapping_text:
        return json.dumps({"cells": [], "tables": []})
    try:
        spec = parse_mapping(version.mapping_text)
    except TemplateError:
        return json.dumps({"cells": [], "tables": []})
    data = spec_to_dict(spec)
    data.setdefault("cells", [])
    data.setdefault("tables", [])
    return json.dumps(data)


def save_from_mapper(
    session: Session, store: FileStore, version: TemplateVersion, draft: str, *, data: bytes | None = None
) -> MappingSpec:
    """Check the drawn mapping with the one check and keep it as the version's mapping (YAML)."""
    try:
        text = mapping_from_draft(draft)
    except TemplateError as exc:
        raise DomainValidationError(
            {f"mapping.{key}": msgs for key, msgs in exc.details.items()} or {"mapping": [str(exc)]}
        ) from None
    return services.set_mapping(session, store, version, text, data=data)


def export_text(version: TemplateVersion, fmt: str) -> str:
    """The version's mapping in the file format, YAML or JSON, for people to keep or share."""
    spec = parse_mapping(version.mapping_text or "{}")
    return dump_mapping(spec, "json" if fmt == "json" else "yaml")


# ---------------------------------------------------------------- ready mappings


def use_ready_mapping(
    session: Session, store: FileStore, *, funder: Funder, key: str, user: str | None
) -> TemplateVersion:
    """Give a funder one of the ready mappings: its template file and mapping, as a new template version."""
    ready: ReadyMapping | None = ready_mapping(key)
    if ready is None:
        raise DomainValidationError({"ready": [_("there is no ready mapping '%(key)s'", key=key)]})
    return services.upload_template(
        session,
        store,
        funder=funder,
        name=ready.name,
        filename=ready.template_file,
        data=ready.template_bytes(),
        user=user,
        description=ready.description,
        mapping_text=ready.mapping_text(),
        notes=f"Ready mapping: {ready.source}",
    )


__all__ = [
    "Grid",
    "GridCell",
    "GridRow",
    "choices",
    "describe",
    "draft_of",
    "export_text",
    "mapping_from_draft",
    "parse_grid_start",
    "preview",
    "save_from_mapper",
    "sheet_grid",
    "use_ready_mapping",
]
