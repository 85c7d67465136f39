"""Mapping specs (JSON/YAML) that say which of our fields and datasets go into which cells of a template version."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
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

from exports.errors import TemplateError
from exports.xlsx.fill import CellValue, FillPlan, Formula, split_target
from exports.xlsx.inspector import TemplateInfo, parse_cell_ref

__all__ = [
    "Catalogue",
    "CellMapping",
    "TableMapping",
    "MappingSpec",
    "parse_mapping",
    "render",
    "check_against_template",
]

_MAX_SPEC_CHARS = 1_000_000
_MAX_BLOCK_ROWS = 100_000
_NAME_RE = re.compile(r"^[A-Za-z_\\][A-Za-z0-9_.\\]*$")


@dataclass(frozen=True)
class Catalogue:
    """What the caller can supply: field names, and per dataset its column names.

    Domain packages build this (e.g. grants provides ``grant.reference``); the
    mapping is checked against it when parsed, so a typo fails at upload time
    rather than when a report is due.
    """

    fields: Collection[str] = ()
    datasets: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CellMapping:
    """One cell: ``target`` is "Sheet!C4" or a defined name; exactly one of source/formula."""

    target: str
    source: str | None = None
    formula: str | None = None


@dataclass(frozen=True)
class TableMapping:
    """A dataset written into a pre-sized block whose top-left cell is ``target``."""

    target: str
    dataset: str
    columns: tuple[str, ...]
    rows: int
    hide_unused: bool = True


@dataclass(frozen=True)
class MappingSpec:
    cells: tuple[CellMapping, ...] = ()
    tables: tuple[TableMapping, ...] = ()
    template_version: str | None = None


def _validate_target(value: str) -> None:
    try:
        sheet, rest = split_target(value)
        if sheet is not None:
            parse_cell_ref(rest)
        elif not _NAME_RE.match(rest):
            raise TemplateError("bad name")
    except TemplateError:
        raise ValidationError(f"{value!r} is neither a cell like Cover!C4 nor a defined name") from None


def _validate_block_target(value: str) -> None:
    try:
        sheet, rest = split_target(value)
        if sheet is None:
            raise TemplateError("no sheet")
        parse_cell_ref(rest)
    except TemplateError:
        raise ValidationError(f"{value!r} must be the block's top-left cell, like Budget!B10") from None


class _CellSchema(Schema):
    class Meta:
        unknown = RAISE

    target = fields.String(required=True, validate=_validate_target)
    source = fields.String(load_default=None, validate=validate.Length(min=1))
    formula = fields.String(load_default=None, validate=validate.Length(min=1))

    @validates_schema(skip_on_field_errors=False)
    def _one_source(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("source") is None) == (data.get("formula") is None):
            raise ValidationError("give exactly one of 'source' or 'formula'", "source")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> CellMapping:
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

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> TableMapping:
        data["columns"] = tuple(data["columns"])
        return TableMapping(**data)


class _SpecSchema(Schema):
    class Meta:
        unknown = RAISE

    template_version = fields.String(load_default=None)
    cells = fields.List(fields.Nested(_CellSchema), load_default=list)
    tables = fields.List(fields.Nested(_TableSchema), load_default=list)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> MappingSpec:
        return MappingSpec(tuple(data["cells"]), tuple(data["tables"]), data.get("template_version"))


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
        friendly[key] = [f"unknown key; allowed: {_allowed_keys(key)}" if m == "Unknown field." else m for m in msgs]
    lines = [f"{key}: {m}" for key, msgs in friendly.items() for m in msgs]
    raise TemplateError("invalid mapping: " + "; ".join(lines), friendly)


def _allowed_keys(path: str) -> str:
    parts = path.split(".")
    schema: type[Schema] = _SpecSchema
    if len(parts) >= 3 and parts[0] == "cells":
        schema = _CellSchema
    elif len(parts) >= 3 and parts[0] == "tables":
        schema = _TableSchema
    return ", ".join(schema._declared_fields)


def _unknown(kind: str, value: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(sorted(known)) or "none"
    return f"unknown {kind} {value!r}{hint}; known: {listing}"


def _load_text(text: str) -> Any:
    if len(text) > _MAX_SPEC_CHARS:
        raise TemplateError(f"invalid mapping: the spec is larger than {_MAX_SPEC_CHARS} characters")
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"invalid mapping: not valid JSON ({exc})") from exc
    try:
        # Aliases let a small YAML text expand into a huge structure; specs never need them.
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise TemplateError("invalid mapping: YAML aliases (*name) are not allowed")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"invalid mapping: not valid YAML ({exc})") from exc


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
        raise TemplateError("invalid mapping: the spec must be a mapping with 'cells' and/or 'tables'")
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
            details.setdefault(f"cells.{i}.target", []).append(f"{target!r} is already mapped by {seen[key]}")
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
                details.setdefault(f"tables.{i}.columns.{j}", []).append(_unknown(f"column of {dataset}", col, columns))
    return details


def check_against_template(spec: MappingSpec, info: TemplateInfo) -> list[str]:
    """Problems a spec would hit on this template (unknown sheets/names, formula or merged targets).

    Meant for the mapping editor at upload time; ``render`` enforces the same
    rules (and locked cells) when it fills.
    """
    problems: list[str] = []
    sheets = {s.name: s for s in info.sheets}
    names = {n.name.lower() for n in info.defined_names}

    def check_cell(where: str, target: str) -> None:
        sheet, rest = split_target(target)
        if sheet is None:
            if rest.lower() not in names:
                problems.append(f"{where}: the template has no defined name {rest!r}")
            return
        s = sheets.get(sheet)
        if s is None:
            problems.append(f"{where}: the template has no sheet {sheet!r}")
            return
        if rest in set(s.formula_cells):
            problems.append(f"{where}: {sheet}!{rest} holds a formula the template owns")

    for i, cell in enumerate(spec.cells):
        check_cell(f"cells.{i}.target", cell.target)
    for i, table in enumerate(spec.tables):
        check_cell(f"tables.{i}.target", table.target)
    return problems


def render(
    spec: MappingSpec,
    template_bytes: bytes,
    fields: Mapping[str, CellValue],
    datasets: Mapping[str, Sequence[Mapping[str, CellValue]]],
    *,
    strip_formula_caches: bool = True,
) -> bytes:
    """Fill ``template_bytes`` as the spec says, with values the caller supplies.

    ``fields`` maps field name -> value; ``datasets`` maps dataset name -> list
    of row dicts keyed by column name.  A missing field, dataset or column, or a
    dataset larger than its block, raises TemplateError naming it.
    """
    plan = FillPlan()
    missing: list[str] = []
    for i, cell in enumerate(spec.cells):
        if cell.formula is not None:
            plan.set(cell.target, Formula(cell.formula))
        elif cell.source is not None and cell.source in fields:
            plan.set(cell.target, fields[cell.source])
        else:
            missing.append(f"cells.{i}: field {cell.source!r} was not supplied")
    for i, table in enumerate(spec.tables):
        rows = datasets.get(table.dataset)
        if rows is None:
            missing.append(f"tables.{i}: dataset {table.dataset!r} was not supplied")
            continue
        matrix: list[list[CellValue]] = []
        for n, row in enumerate(rows):
            absent = [c for c in table.columns if c not in row]
            if absent:
                missing.append(f"tables.{i}: row {n + 1} of {table.dataset} lacks {', '.join(absent)}")
                break
            matrix.append([row[c] for c in table.columns])
        sheet, anchor = split_target(table.target)
        assert sheet is not None  # validated at parse time
        plan.fill_block(sheet, anchor, matrix, table.rows, hide_unused=table.hide_unused, name=table.dataset)
    if missing:
        raise TemplateError("; ".join(missing))
    return plan.apply(template_bytes, strip_formula_caches=strip_formula_caches)
