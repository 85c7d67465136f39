"""Mapping specs (JSON/YAML) that say which of our fields and datasets go into which cells of a template version."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from core.formatting import N_, ngettext
from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.fill import CellValue, FillPlan, Formula, split_target
from exports.xlsx.inspector import SheetInfo, TemplateInfo, format_cell_ref, parse_cell_ref, parse_range

__all__ = [
    "Catalogue",
    "CellMapping",
    "FigureCatalogue",
    "TableMapping",
    "MappingSpec",
    "parse_mapping",
    "render",
    "check_mapping",
    "check_against_template",
    "describe_cell",
    "dump_mapping",
    "select_rows",
    "spec_to_dict",
]

_MAX_SPEC_CHARS = 1_000_000
_MAX_BLOCK_ROWS = 100_000
_NAME_RE = re.compile(r"^[A-Za-z_\\][A-Za-z0-9_.\\]*$")


@dataclass(frozen=True)
class FigureCatalogue:
    """What one kind of single figure offers: its measures, its scopes, whether it takes a category."""

    measures: Sequence[str]
    scopes: Sequence[str] = ()
    categories: bool = False


@dataclass(frozen=True)
class Catalogue:
    """What the caller can supply: field names, per dataset its column names, per figure kind its measures.

    Domain packages build this (e.g. grants provides ``grant.reference``); the
    mapping is checked against it when parsed, so a typo fails at upload time
    rather than when a report is due.
    """

    fields: Collection[str] = ()
    datasets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    figures: Mapping[str, FigureCatalogue] = field(default_factory=dict)


Period = int | str | None  # the grant's Nth period (1 = first), a period label, or None: the export's period


@dataclass(frozen=True)
class CellMapping:
    """One cell: ``target`` is "Sheet!C4" or a defined name; exactly one of source/formula/figure.

    A figure is one item's measure: ``figure: indicator, item: FCDO-1, measure: target``,
    optionally for one disaggregation ``category`` ("country=LC"), a ``scope``
    (budgets: period, cumulative, grant) and a fixed ``period``.
    """

    target: str
    source: str | None = None
    formula: str | None = None
    figure: str | None = None
    item: str | None = None
    measure: str | None = None
    category: str | None = None
    scope: str | None = None
    period: Period = None
    # A figure whose item the grant does not have leaves the cell as the funder sent it (ready mappings).
    optional: bool = False


@dataclass(frozen=True)
class TableMapping:
    """A dataset written into a pre-sized block whose top-left cell is ``target``.

    ``filter`` keeps rows whose column holds one of the listed values
    (``{code: [KP-1c, HR-1]}``); ``order`` sorts by columns, ``-column`` for
    descending.
    """

    target: str
    dataset: str
    columns: tuple[str, ...]
    rows: int
    hide_unused: bool = True
    filter: tuple[tuple[str, tuple[str, ...]], ...] = ()
    order: tuple[str, ...] = ()
    period: Period = None


@dataclass(frozen=True)
class MappingSpec:
    cells: tuple[CellMapping, ...] = ()
    tables: tuple[TableMapping, ...] = ()
    template_version: str | None = None
    # Hidden sheets the mapping may write to, named on purpose; every other hidden sheet is refused.
    allow_hidden_sheets: tuple[str, ...] = ()
    title: str | None = None
    description: str | None = None


def _validate_target(value: str) -> None:
    try:
        sheet, rest = split_target(value)
        if sheet is not None:
            parse_cell_ref(rest)
        elif not _NAME_RE.match(rest):
            raise TemplateError("bad name")
    except TemplateError:
        raise ValidationError(
            _("%(value)s is neither a cell like Cover!C4 nor a defined name", value=repr(value))
        ) from None


def _validate_block_target(value: str) -> None:
    try:
        sheet, rest = split_target(value)
        if sheet is None:
            raise TemplateError("no sheet")
        parse_cell_ref(rest)
    except TemplateError:
        raise ValidationError(
            _("%(value)s must be the block's top-left cell, like Budget!B10", value=repr(value))
        ) from None


class _PeriodField(fields.Field):
    """1, 2, ... (the grant's first, second period) or a period label such as "S2"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Period:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValidationError(_("give a period number (1 for the first) or a period label such as S2"))
        if isinstance(value, int):
            if value < 1:
                raise ValidationError(_("period numbers start at 1 (the grant's first period)"))
            return value
        if isinstance(value, str) and value.strip():
            text = value.strip()
            return int(text) if text.isdigit() and int(text) >= 1 else text
        raise ValidationError(_("give a period number (1 for the first) or a period label such as S2"))


class _CellSchema(Schema):
    class Meta:
        unknown = RAISE

    target = fields.String(required=True, validate=_validate_target)
    source = fields.String(load_default=None, validate=validate.Length(min=1))
    formula = fields.String(load_default=None, validate=validate.Length(min=1))
    figure = fields.String(load_default=None, validate=validate.Length(min=1))
    item = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    measure = fields.String(load_default=None, validate=validate.Length(min=1))
    category = fields.String(load_default=None, validate=validate.Length(min=1))
    scope = fields.String(load_default=None, validate=validate.Length(min=1))
    period = _PeriodField(load_default=None)
    optional = fields.Boolean(load_default=False)

    @validates_schema(skip_on_field_errors=False)
    def _one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [key for key in ("source", "formula", "figure") if data.get(key) is not None]
        if len(given) != 1:
            raise ValidationError(_("give exactly one of 'source', 'formula' or 'figure'"), "source")
        if given == ["figure"]:
            for key in ("item", "measure"):
                if data.get(key) is None:
                    raise ValidationError(_("a figure needs its '%(key)s'", key=key), key)
        else:
            for key in ("item", "measure", "category", "scope", "optional"):
                if data.get(key) not in (None, False):
                    raise ValidationError(
                        _("'%(key)s' belongs to a figure; add 'figure: <kind>' or remove it", key=key), key
                    )
        if given == ["formula"] and data.get("period") is not None:
            raise ValidationError(_("a formula has no period"), "period")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> CellMapping:
        return CellMapping(**data)


class _TableSchema(Schema):
    class Meta:
        unknown = RAISE

    target = fields.String(required=True, validate=_validate_block_target)
    dataset = fields.String(required=True, validate=validate.Length(min=1))
    columns = fields.List(
        fields.String(validate=validate.Length(min=1)), required=True, validate=validate.Length(min=1)
    )
    rows = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=_MAX_BLOCK_ROWS))
    hide_unused = fields.Boolean(load_default=True)
    filter = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)),
        values=fields.Raw(),
        load_default=dict,
    )
    order = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    period = _PeriodField(load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def _filter_values(self, data: dict[str, Any], **kwargs: Any) -> None:
        for column, values in (data.get("filter") or {}).items():
            listed = values if isinstance(values, list) else [values]
            if not listed or any(isinstance(v, (dict, list)) or v is None for v in listed):
                raise ValidationError(
                    _("filter on %(column)s takes a value or a list of values", column=repr(column)), "filter"
                )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> TableMapping:
        data["columns"] = tuple(data["columns"])
        data["filter"] = tuple(
            (column, tuple(str(v) for v in (values if isinstance(values, list) else [values])))
            for column, values in data["filter"].items()
        )
        data["order"] = tuple(data["order"])
        return TableMapping(**data)


class _SpecSchema(Schema):
    class Meta:
        unknown = RAISE

    template_version = fields.String(load_default=None)
    title = fields.String(load_default=None)
    description = fields.String(load_default=None)
    allow_hidden_sheets = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    cells = fields.List(fields.Nested(_CellSchema), load_default=list)
    tables = fields.List(fields.Nested(_TableSchema), load_default=list)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> MappingSpec:
        return MappingSpec(
            tuple(data["cells"]),
            tuple(data["tables"]),
            data.get("template_version"),
            tuple(data["allow_hidden_sheets"]),
            data.get("title"),
            data.get("description"),
        )


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, sub in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "(spec)"
            for k, v in _flatten(sub, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, list):
        out[prefix or "(spec)"] = [m if isinstance(m, str) else str(m) for m in messages]
    else:
        out[prefix or "(spec)"] = [str(messages)]
    return out


def _raise(details: dict[str, list[str]]) -> None:
    friendly: dict[str, list[str]] = {}
    for key, msgs in details.items():
        # marshmallow's "Unknown field." does not say what *is* allowed; ours does.
        friendly[key] = [_friendly(key, m) for m in msgs]
    lines = [f"{key}: {m}" for key, msgs in friendly.items() for m in msgs]
    raise TemplateError(_("invalid mapping: %(problems)s", problems="; ".join(lines)), friendly)


# marshmallow's own words for the problems a spec can have, said the reader's way.
_MARSHMALLOW_WORDS = {
    "Missing data for required field.": N_("Missing data for required field."),
    "Not a valid string.": N_("Not a valid string."),
    "Not a valid integer.": N_("Not a valid integer."),
    "Not a valid boolean.": N_("Not a valid boolean."),
    "Not a valid list.": N_("Not a valid list."),
    "Not a valid mapping type.": N_("Not a valid mapping type."),
    "Invalid input type.": N_("Invalid input type."),
    "Field may not be null.": N_("Field may not be null."),
    "Shorter than minimum length 1.": N_("Shorter than minimum length 1."),
}


def _friendly(key: str, message: str) -> str:
    if message == "Unknown field.":
        # marshmallow's "Unknown field." does not say what *is* allowed; ours does.
        return _("unknown key; allowed: %(keys)s", keys=_allowed_keys(key))
    if message in _MARSHMALLOW_WORDS:
        return _(_MARSHMALLOW_WORDS[message])
    return message


def _allowed_keys(path: str) -> str:
    parts = path.split(".")
    schema: type[Schema] = _SpecSchema
    if len(parts) >= 3 and parts[0] == "cells":
        schema = _CellSchema
    elif len(parts) >= 3 and parts[0] == "tables":
        schema = _TableSchema
    return ", ".join(schema._declared_fields)


# What an unknown name was meant to be: (the sentence, the sentence with a suggestion), per kind.
_UNKNOWN = {
    "field": (
        N_("unknown field %(value)s; known: %(known)s"),
        N_("unknown field %(value)s (did you mean %(close)s?); known: %(known)s"),
    ),
    "figure": (
        N_("unknown kind of figure %(value)s; known: %(known)s"),
        N_("unknown kind of figure %(value)s (did you mean %(close)s?); known: %(known)s"),
    ),
    "measure": (
        N_("unknown measure of %(kind)s %(value)s; known: %(known)s"),
        N_("unknown measure of %(kind)s %(value)s (did you mean %(close)s?); known: %(known)s"),
    ),
    "dataset": (
        N_("unknown dataset %(value)s; known: %(known)s"),
        N_("unknown dataset %(value)s (did you mean %(close)s?); known: %(known)s"),
    ),
    "column": (
        N_("unknown column of %(dataset)s %(value)s; known: %(known)s"),
        N_("unknown column of %(dataset)s %(value)s (did you mean %(close)s?); known: %(known)s"),
    ),
}


def _unknown(what: str, value: str, known: Collection[str], **names: str) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    listing = ", ".join(sorted(known)) or _("none")
    plain, hinted = _UNKNOWN[what]
    if close:
        return _(hinted, value=repr(value), close=repr(close[0]), known=listing, **names)
    return _(plain, value=repr(value), known=listing, **names)


def _load_text(text: str) -> Any:
    if len(text) > _MAX_SPEC_CHARS:
        raise TemplateError(_("invalid mapping: the spec is larger than %(limit)s characters", limit=_MAX_SPEC_CHARS))
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(_("invalid mapping: not valid JSON (%(problem)s)", problem=exc)) from exc
    try:
        # Aliases let a small YAML text expand into a huge structure; specs never need them.
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise TemplateError(_("invalid mapping: YAML aliases (*name) are not allowed"))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(_("invalid mapping: not valid YAML (%(problem)s)", problem=exc)) from exc


def parse_mapping(text: str, catalogue: Catalogue | None = None) -> MappingSpec:
    """Parse and validate a mapping spec written in JSON or YAML.

    Shape::

        cells:  [{target: "Cover!C4" | "DefinedName", source: "grant.reference"}]
        tables: [{target: "Budget!B10", dataset: "budget_vs_actual",
                  columns: [code, description, planned, actual], rows: 100}]

    With a ``catalogue`` every source, dataset and column is checked against
    what the caller can supply.  Raises TemplateError whose message lists every
    problem as ``cells.0.source: unknown field 'grant.titel' ...`` and whose
    ``details`` maps each dotted path to its messages.
    """
    raw = _load_text(text)
    if not isinstance(raw, dict):
        raise TemplateError(_("invalid mapping: the spec must be a mapping with 'cells' and/or 'tables'"))
    details: dict[str, list[str]] = {}
    spec: MappingSpec | None = None
    try:
        spec = _SpecSchema().load(raw)
    except ValidationError as exc:
        details = _flatten(exc.messages)
    # Catalogue checks run on the raw structure too, so one round trip reports everything.
    if catalogue is not None:
        for key, msgs in _catalogue_problems(raw, catalogue).items():
            details.setdefault(key, []).extend(msgs)
    seen: dict[str, str] = {}
    for i, cell in enumerate(_dicts(raw.get("cells"))):
        target = cell.get("target")
        if not isinstance(target, str):
            continue
        key = target.replace("$", "").lower()
        if key in seen:
            details.setdefault(f"cells.{i}.target", []).append(
                _("%(target)s is already mapped by %(other)s", target=repr(target), other=seen[key])
            )
        seen[key] = f"cells.{i}"
    if details or spec is None:
        _raise(details)
    assert spec is not None
    return spec


def _dicts(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v if isinstance(v, dict) else {} for v in value]


def _catalogue_problems(raw: dict[str, Any], catalogue: Catalogue) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    known_fields = set(catalogue.fields)
    for i, cell in enumerate(_dicts(raw.get("cells"))):
        source = cell.get("source")
        if isinstance(source, str) and source and source not in known_fields:
            details.setdefault(f"cells.{i}.source", []).append(_unknown("field", source, known_fields))
        kind_name = cell.get("figure")
        if isinstance(kind_name, str) and kind_name:
            kind = catalogue.figures.get(kind_name)
            if kind is None:
                details.setdefault(f"cells.{i}.figure", []).append(
                    _unknown("figure", kind_name, catalogue.figures.keys())
                )
                continue
            measure = cell.get("measure")
            if isinstance(measure, str) and measure and measure not in kind.measures:
                details.setdefault(f"cells.{i}.measure", []).append(
                    _unknown("measure", measure, kind.measures, kind=kind_name)
                )
            scope = cell.get("scope")
            if isinstance(scope, str) and scope and scope not in kind.scopes:
                if kind.scopes:
                    problem = _(
                        "unknown scope %(value)s; known: %(known)s", value=repr(scope), known=", ".join(kind.scopes)
                    )
                else:
                    problem = _(
                        "unknown scope %(value)s; known: none: %(kind)s figures have no scope",
                        value=repr(scope),
                        kind=kind_name,
                    )
                details.setdefault(f"cells.{i}.scope", []).append(problem)
            category = cell.get("category")
            if isinstance(category, str) and category:
                if not kind.categories:
                    details.setdefault(f"cells.{i}.category", []).append(
                        _("%(kind)s figures are not disaggregated", kind=kind_name)
                    )
                elif "=" not in category:
                    details.setdefault(f"cells.{i}.category", []).append(
                        _(
                            "write the category as dimension=code, e.g. country=LC (got %(category)s)",
                            category=repr(category),
                        )
                    )
    for i, table in enumerate(_dicts(raw.get("tables"))):
        dataset = table.get("dataset")
        if not isinstance(dataset, str) or not dataset:
            continue
        columns = catalogue.datasets.get(dataset)
        if columns is None:
            details.setdefault(f"tables.{i}.dataset", []).append(
                _unknown("dataset", dataset, catalogue.datasets.keys())
            )
            continue
        cols = table.get("columns")
        for j, col in enumerate(cols if isinstance(cols, list) else []):
            if isinstance(col, str) and col and col not in columns:
                details.setdefault(f"tables.{i}.columns.{j}", []).append(
                    _unknown("column", col, columns, dataset=dataset)
                )
        wanted = table.get("filter")
        for col in wanted if isinstance(wanted, dict) else {}:
            if isinstance(col, str) and col not in columns:
                details.setdefault(f"tables.{i}.filter", []).append(_unknown("column", col, columns, dataset=dataset))
        order = table.get("order")
        for j, col in enumerate(order if isinstance(order, list) else []):
            if isinstance(col, str) and col.lstrip("-") not in columns:
                details.setdefault(f"tables.{i}.order.{j}", []).append(
                    _unknown("column", col.lstrip("-"), columns, dataset=dataset)
                )
    return details


# ---------------------------------------------------------------- the one check: this mapping on this template


def describe_cell(cell: CellMapping) -> str:
    """What a cell mapping puts in its cell, in words ("indicator FCDO-1: target, period 1")."""
    if cell.formula is not None:
        return _("the formula %(formula)s", formula=cell.formula)
    if cell.figure is not None:
        words = f"{cell.figure.replace('_', ' ')} {cell.item}: {(cell.measure or '').replace('_', ' ')}"
        extras = [cell.category or "", f"{cell.scope}" if cell.scope else ""]
    else:
        words, extras = str(cell.source), []
    if cell.period is not None:
        extras.append(_("period %(period)s", period=cell.period))
    extras = [e for e in extras if e]
    return words + (f" ({', '.join(extras)})" if extras else "")


@dataclass
class _SheetIndex:
    """Per sheet: formula cells, merges and locks as fast lookups, built once per check."""

    formulas: set[tuple[int, int]]
    arrays: list[tuple[int, int, int, int]]
    merges: list[tuple[int, int, int, int]]
    protected: bool
    unlocked: set[tuple[int, int]]

    def merge_of(self, row: int, col: int) -> tuple[int, int, int, int] | None:
        for rng in self.merges:
            if rng[0] <= row <= rng[2] and rng[1] <= col <= rng[3]:
                return rng
        return None


def _ranges(refs: Sequence[str]) -> list[tuple[int, int, int, int]]:
    out = []
    for ref in refs:
        try:
            out.append(parse_range(ref))
        except TemplateError:
            continue
    return out


def _index(sheet: SheetInfo) -> _SheetIndex:
    return _SheetIndex(
        formulas={parse_cell_ref(ref) for ref in sheet.formula_cells},
        arrays=_ranges(sheet.array_formula_ranges),
        merges=_ranges(sheet.merged_ranges),
        protected=sheet.protected,
        unlocked={parse_cell_ref(ref) for ref in sheet.input_cells},
    )


def _cell_problem(index: _SheetIndex, row: int, col: int) -> tuple[str, str, str] | None:
    """Why one cell cannot take a value: (kind, merged range, its top-left cell), or None.

    The kind is "formula", "array", "merged" or "locked"; the check words it in a whole sentence.
    """
    if (row, col) in index.formulas:
        return ("formula", "", "")
    for r1, c1, r2, c2 in index.arrays:
        if r1 <= row <= r2 and c1 <= col <= c2:
            return ("array", "", "")
    merge = index.merge_of(row, col)
    if merge is not None and (row, col) != (merge[0], merge[1]):
        top_left = format_cell_ref(merge[0], merge[1])
        return ("merged", f"{top_left}:{format_cell_ref(merge[2], merge[3])}", top_left)
    if index.protected and (row, col) not in index.unlocked:
        return ("locked", "", "")
    return None


def _cell_sentence(where: str, cell: str, problem: tuple[str, str, str]) -> str:
    kind, merged, top_left = problem
    if kind == "formula":
        return _("%(where)s: %(cell)s holds a formula the template owns", where=where, cell=cell)
    if kind == "array":
        return _("%(where)s: %(cell)s is part of an array formula the template owns", where=where, cell=cell)
    if kind == "merged":
        return _(
            "%(where)s: %(cell)s is inside the merged cells %(merged)s; only their top-left cell %(top_left)s "
            "can hold a value",
            where=where,
            cell=cell,
            merged=merged,
            top_left=top_left,
        )
    return _("%(where)s: %(cell)s is locked on a protected sheet", where=where, cell=cell)


def _overlap_sentence(where: str, refs: list[str], problem: tuple[str, str, str]) -> str:
    kind, merged, other = problem
    if len(refs) > 8:
        cells = _("%(cells)s and %(num)s more", cells=", ".join(refs[:8]), num=len(refs) - 8)
    else:
        cells = ", ".join(refs)
    values = {"where": where, "cells": cells, "merged": merged, "other": other}
    n = len(refs)
    if kind == "formula":
        return ngettext(
            "%(where)s overlaps %(cells)s: it holds a formula the template owns",
            "%(where)s overlaps %(cells)s: each holds a formula the template owns",
            n,
            **values,
        )
    if kind == "array":
        return ngettext(
            "%(where)s overlaps %(cells)s: it is part of an array formula the template owns",
            "%(where)s overlaps %(cells)s: each is part of an array formula the template owns",
            n,
            **values,
        )
    if kind == "merged":
        return ngettext(
            "%(where)s overlaps %(cells)s: it is inside the merged cells %(merged)s",
            "%(where)s overlaps %(cells)s: each is inside the merged cells %(merged)s",
            n,
            **values,
        )
    if kind == "locked":
        return ngettext(
            "%(where)s overlaps %(cells)s: it is locked on a protected sheet",
            "%(where)s overlaps %(cells)s: each is locked on a protected sheet",
            n,
            **values,
        )
    return ngettext(
        "%(where)s overlaps %(cells)s: it is already filled by %(other)s",
        "%(where)s overlaps %(cells)s: each is already filled by %(other)s",
        n,
        **values,
    )


def check_mapping(spec: MappingSpec, info: TemplateInfo) -> list[str]:
    """Every problem this mapping would meet on this template, in words, all at once.

    The one check run at upload, in the mapper and before an export fills
    anything: unknown sheets and names, formula cells, merged cells other than
    their top-left, locked cells on protected sheets, cells on hidden sheets
    (unless ``allow_hidden_sheets`` names the sheet), and blocks that overlap
    formulas, merged cells or other mappings.
    """
    problems: list[str] = []
    sheets = {s.name: s for s in info.sheets}
    by_lower: dict[str, list[SheetInfo]] = {}
    for s in info.sheets:
        by_lower.setdefault(s.name.lower(), []).append(s)
    allowed_hidden = {name.lower() for name in spec.allow_hidden_sheets}
    indexes: dict[str, _SheetIndex] = {}
    taken: dict[tuple[str, int, int], str] = {}
    sheet_list = ", ".join(repr(s.name) for s in info.sheets)
    hidden_reported: set[tuple[str, str]] = set()

    def find_sheet(name: str) -> SheetInfo | None:
        found = sheets.get(name)
        if found is None and len(by_lower.get(name.lower(), [])) == 1:
            found = by_lower[name.lower()][0]
        return found

    def sheet_ok(where: str, sheet: SheetInfo) -> bool:
        if not sheet.part:
            problems.append(
                _(
                    "%(where)s: '%(sheet)s' is a chart or dialog sheet, which holds no cells",
                    where=where,
                    sheet=sheet.name,
                )
            )
            return False
        if sheet.state != "visible" and sheet.name.lower() not in allowed_hidden:
            if (where, sheet.name) not in hidden_reported:
                hidden_reported.add((where, sheet.name))
                problems.append(
                    _(
                        "%(where)s: the sheet '%(sheet)s' is hidden, so the funder may never see this value; "
                        "if that is intended, add it to allow_hidden_sheets",
                        where=where,
                        sheet=sheet.name,
                    )
                )
        if sheet.name not in indexes:
            indexes[sheet.name] = _index(sheet)
        return True

    def resolve(where: str, target: str) -> tuple[SheetInfo, int, int] | None:
        sheet_name, rest = split_target(target)
        if sheet_name is None:
            candidates = [n for n in info.defined_names if n.name.lower() == rest.lower()]
            chosen = [n for n in candidates if n.scope is None] or candidates
            if not chosen:
                problems.append(_("%(where)s: the template has no defined name '%(name)s'", where=where, name=rest))
                return None
            if len(chosen) > 1:
                problems.append(
                    _(
                        "%(where)s: the name '%(name)s' exists on several sheets; use the cell address instead",
                        where=where,
                        name=rest,
                    )
                )
                return None
            hit = chosen[0].single_cell()
            if hit is None:
                problems.append(
                    _(
                        "%(where)s: the name '%(name)s' refers to %(ref)s, not to a single cell",
                        where=where,
                        name=rest,
                        ref=chosen[0].ref,
                    )
                )
                return None
            sheet_name, row, col = hit
        else:
            row, col = parse_cell_ref(rest)
        sheet = find_sheet(sheet_name)
        if sheet is None:
            problems.append(
                _(
                    "%(where)s: the template has no sheet '%(sheet)s'; its sheets are %(sheets)s",
                    where=where,
                    sheet=sheet_name,
                    sheets=sheet_list,
                )
            )
            return None
        return sheet, row, col

    def claim(where: str, sheet: SheetInfo, row: int, col: int) -> None:
        key = (sheet.name, row, col)
        other = taken.get(key)
        if other is not None:
            ref = f"{sheet.name}!{format_cell_ref(row, col)}"
            problems.append(_("%(where)s: %(cell)s is already filled by %(other)s", where=where, cell=ref, other=other))
        else:
            taken[key] = where

    for i, cell in enumerate(spec.cells):
        where = _("Cell %(target)s (%(what)s)", target=cell.target, what=describe_cell(cell))
        found = resolve(where, cell.target)
        if found is None:
            continue
        sheet, row, col = found
        if not sheet_ok(where, sheet):
            continue
        why = _cell_problem(indexes[sheet.name], row, col)
        if why:
            problems.append(_cell_sentence(where, f"{sheet.name}!{format_cell_ref(row, col)}", why))
        claim(_("cell mapping %(number)s (%(target)s)", number=i + 1, target=cell.target), sheet, row, col)

    for i, table in enumerate(spec.tables):
        found = resolve(_("Table %(number)s (%(dataset)s)", number=i + 1, dataset=table.dataset), table.target)
        if found is None:
            continue
        sheet, r0, c0 = found
        r1, c1 = r0 + table.rows - 1, c0 + len(table.columns) - 1
        block = f"{sheet.name}!{format_cell_ref(r0, c0)}:{format_cell_ref(r1, c1)}"
        where = _("Table %(number)s (%(dataset)s in %(block)s)", number=i + 1, dataset=table.dataset, block=block)
        if not sheet_ok(where, sheet):
            continue
        index = indexes[sheet.name]
        # Grouped by reason (a merged range, or who already fills the cell, is part of the reason).
        clashes: dict[tuple[str, str, str], list[str]] = {}
        for row in range(r0, r1 + 1):
            for col in range(c0, c1 + 1):
                why = _cell_problem(index, row, col)
                if why:
                    clashes.setdefault(why, []).append(format_cell_ref(row, col))
                other = taken.get((sheet.name, row, col))
                if other is not None:
                    clashes.setdefault(("filled", "", other), []).append(format_cell_ref(row, col))
                else:
                    taken[(sheet.name, row, col)] = _(
                        "table %(number)s (%(dataset)s)", number=i + 1, dataset=table.dataset
                    )
        for reason, refs in clashes.items():
            problems.append(_overlap_sentence(where, refs, reason))
    for name in spec.allow_hidden_sheets:
        if find_sheet(name) is None:
            problems.append(
                _(
                    "allow_hidden_sheets: the template has no sheet '%(sheet)s'; its sheets are %(sheets)s",
                    sheet=name,
                    sheets=sheet_list,
                )
            )
    return problems


def check_against_template(spec: MappingSpec, info: TemplateInfo) -> list[str]:
    """The one check (``check_mapping``); kept under its older name."""
    return check_mapping(spec, info)


# ---------------------------------------------------------------- choosing and ordering a dataset's rows


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None or value == "":
        return (2, 0)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value).lower())


def select_rows(table: TableMapping, rows: Sequence[Mapping[str, CellValue]]) -> list[Mapping[str, CellValue]]:
    """The rows a table's filter keeps, in its order (stable: rows keep the dataset's order on ties)."""
    kept = list(rows)
    for column, values in table.filter:
        wanted = set(values)
        kept = [row for row in kept if _as_text(row.get(column)) in wanted]
    for column in reversed(table.order):
        descending = column.startswith("-")
        name = column.lstrip("-")
        present = [row for row in kept if row.get(name) not in (None, "")]
        empty = [row for row in kept if row.get(name) in (None, "")]
        present.sort(key=lambda row: _sort_key(row.get(name)), reverse=descending)
        kept = present + empty  # blanks last either way
    return kept


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def render(
    spec: MappingSpec,
    template_bytes: bytes,
    fields: Mapping[str, CellValue],
    datasets: Mapping[Any, Sequence[Mapping[str, CellValue]]],
    *,
    figures: Mapping[int, CellValue] | None = None,
    strip_formula_caches: bool = True,
) -> bytes:
    """Fill ``template_bytes`` as the spec says, with values the caller supplies.

    ``fields`` maps field name -> value; ``figures`` maps the index of a cell
    mapping -> its value (figures, and fields asked for a fixed period);
    ``datasets`` maps a table's index, or else its dataset name, -> list of row
    dicts keyed by column name (filter and order are applied here). A missing
    field, dataset or column, or a dataset larger than its block, raises
    TemplateError naming it.
    """
    figures = figures or {}
    plan = FillPlan()
    missing: list[str] = []
    for i, cell in enumerate(spec.cells):
        if cell.formula is not None:
            plan.set(cell.target, Formula(cell.formula))
        elif i in figures:
            plan.set(cell.target, figures[i])
        elif cell.optional:
            continue  # the grant has no such item: the funder's cell stays as it was
        elif cell.source is not None and cell.period is None and cell.source in fields:
            plan.set(cell.target, fields[cell.source])
        else:
            what = _("field %(name)s", name=repr(cell.source)) if cell.source is not None else describe_cell(cell)
            missing.append(_("cells.%(index)s: %(what)s was not supplied", index=i, what=what))
    for i, table in enumerate(spec.tables):
        rows = datasets.get(i, datasets.get(table.dataset))
        if rows is None:
            missing.append(
                _("tables.%(index)s: dataset %(dataset)s was not supplied", index=i, dataset=repr(table.dataset))
            )
            continue
        matrix: list[list[CellValue]] = []
        for n, row in enumerate(select_rows(table, rows)):
            absent = [c for c in table.columns if c not in row]
            if absent:
                missing.append(
                    _(
                        "tables.%(index)s: row %(row)s of %(dataset)s lacks %(columns)s",
                        index=i,
                        row=n + 1,
                        dataset=table.dataset,
                        columns=", ".join(absent),
                    )
                )
                break
            matrix.append([row[c] for c in table.columns])
        sheet, anchor = split_target(table.target)
        assert sheet is not None  # validated at parse time
        plan.fill_block(sheet, anchor, matrix, table.rows, hide_unused=table.hide_unused, name=table.dataset)
    if missing:
        raise TemplateError("; ".join(missing))
    return plan.apply(template_bytes, strip_formula_caches=strip_formula_caches)


# ---------------------------------------------------------------- the file format: export as YAML or JSON


def spec_to_dict(spec: MappingSpec) -> dict[str, Any]:
    """The spec as plain data, keys in the order people write them, defaults left out."""
    out: dict[str, Any] = {}
    for key in ("title", "description", "template_version"):
        if getattr(spec, key):
            out[key] = getattr(spec, key)
    if spec.allow_hidden_sheets:
        out["allow_hidden_sheets"] = list(spec.allow_hidden_sheets)
    if spec.cells:
        out["cells"] = [
            {
                key: getattr(cell, key)
                for key in ("target", "source", "formula", "figure", "item", "measure", "category", "scope", "period")
                if getattr(cell, key) is not None
            }
            | ({"optional": True} if cell.optional else {})
            for cell in spec.cells
        ]
    if spec.tables:
        tables = []
        for table in spec.tables:
            entry: dict[str, Any] = {
                "target": table.target,
                "dataset": table.dataset,
                "columns": list(table.columns),
                "rows": table.rows,
            }
            if not table.hide_unused:
                entry["hide_unused"] = False
            if table.filter:
                entry["filter"] = {column: list(values) for column, values in table.filter}
            if table.order:
                entry["order"] = list(table.order)
            if table.period is not None:
                entry["period"] = table.period
            tables.append(entry)
        out["tables"] = tables
    return out


def dump_mapping(spec: MappingSpec, fmt: str = "yaml") -> str:
    """Write a spec in the file format, YAML (default) or JSON; parsing it again gives the same spec."""
    data = spec_to_dict(spec)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
