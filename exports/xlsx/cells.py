"""Cell values: encode what we write (checked before anything is written) and edit one parsed <row> at a time."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from lxml import etree

from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.inspector import (
    date_to_serial,
    format_cell_ref,
    parse_cell_ref,
    q,
)

__all__ = [
    "CellValue",
    "CellWrite",
    "Encoded",
    "Formula",
    "edit_row",
    "encode_value",
    "looks_like_formula",
    "number_text",
    "own_cache_formulas",
    "strip_row_caches",
    "xml_text",
]


@dataclass(frozen=True)
class Formula:
    """A value to be written as a formula. Plain strings never become formulas."""

    text: str

    def __post_init__(self) -> None:
        if not self.text.strip().lstrip("="):
            raise TemplateError(_("an empty formula was requested"))


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
            raise TemplateError(_("%(where)s: %(value)s is not a finite number", where=where, value=value))
        # Exact decimal digits, never the float repr of the Decimal.
        return format(value, "f")
    if isinstance(value, int):
        if not math.isfinite(float(value)):
            raise TemplateError(_("%(where)s: %(value)s is too large for Excel", where=where, value=value))
        return str(value)
    if not math.isfinite(value):
        raise TemplateError(_("%(where)s: %(value)s is not a finite number", where=where, value=value))
    return repr(value).replace("e", "E")


# -- encoded values ------------------------------------------------------------------

# Excel (and LibreOffice) turn text typed with one of these first characters into a
# formula or a sign; a cell style with quotePrefix="1" keeps it text when edited.
_FORMULA_STARTS = ("=", "+", "-", "@")


def looks_like_formula(text: str) -> bool:
    """Would Excel read this text, typed into a cell, as a formula (or a signed number)?"""
    return text.startswith(_FORMULA_STARTS)


class Encoded(NamedTuple):
    """A value turned into what a <c> element holds, checked before anything is written.

    ``t`` is the cell type attribute (None for numbers), ``v`` the <v> text,
    ``inline`` the inline string text, ``formula`` the <f> text; ``style_need``
    says which cell style the value wants: "date", "datetime", "quote" or None.
    """

    t: str | None = None
    v: str | None = None
    inline: str | None = None
    formula: str | None = None
    preserve: bool = False
    style_need: str | None = None


def encode_value(value: CellValue, where: str, date1904: bool) -> Encoded:
    """Check and encode one value; TemplateError naming ``where`` when it cannot be written."""
    if value is None:
        return Encoded()
    if isinstance(value, Formula):
        return Encoded(formula=xml_text(value.text.strip().removeprefix("=")))
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise TemplateError(
                _(
                    "%(where)s: text of %(length)s characters exceeds Excel's limit of %(limit)s",
                    where=where,
                    length=len(value),
                    limit=_MAX_TEXT,
                )
            )
        return Encoded(
            t="inlineStr",
            inline=xml_text(value),
            preserve=value != value.strip() or "\n" in value,
            style_need="quote" if looks_like_formula(value) else None,
        )
    if isinstance(value, bool):
        return Encoded(t="b", v="1" if value else "0")
    if isinstance(value, (int, float, Decimal)):
        return Encoded(v=number_text(value, where))
    if isinstance(value, (dt.datetime, dt.date)):
        try:
            serial = date_to_serial(value, date1904)
        except TemplateError as exc:
            raise TemplateError(_("%(where)s: %(problem)s", where=where, problem=exc)) from None
        with_time = isinstance(value, dt.datetime) and value.time() != dt.time(0)
        return Encoded(v=number_text(serial, where), style_need="datetime" if with_time else "date")
    raise TemplateError(_("%(where)s: cannot write a value of type %(type)s", where=where, type=type(value).__name__))


# -- row editing ---------------------------------------------------------------------

_C, _ROW, _F, _V, _IS, _T = q("c"), q("row"), q("f"), q("v"), q("is"), q("t")
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


class CellWrite(NamedTuple):
    """One cell to write in a row: ``style`` is the s attribute to set, None to keep the cell's own."""

    col: int
    value: Encoded
    style: str | None = None


_COLUMNS: dict[str, int] = {}
_DIGITS = "0123456789"


def cell_column(c: etree._Element, previous: int) -> int:
    """The column of a <c>, from its r attribute or, without one, the cell after ``previous``."""
    return column_of(c.get("r"), previous)


def column_of(r: str | None, previous: int) -> int:
    """The column of a cell whose r attribute is ``r`` (None or empty: the cell after ``previous``)."""
    if r:
        letters = r.rstrip(_DIGITS)
        col = _COLUMNS.get(letters)
        if col is None:
            try:
                col = parse_cell_ref(r)[1]
            except TemplateError:
                return previous + 1
            if len(_COLUMNS) < 20_000:
                _COLUMNS[letters] = col
        return col
    return previous + 1


_LETTERS: dict[int, str] = {}


def _column_letters(col: int) -> str:
    letters = _LETTERS.get(col)
    if letters is None:
        letters = format_cell_ref(1, col)[:-1]
        if len(_LETTERS) < 20_000:
            _LETTERS[col] = letters
    return letters


def cell_ref(row: int, col: int) -> str:
    """format_cell_ref with the column letters remembered (hot in 10k-cell fills)."""
    return f"{_column_letters(col)}{row}"


def edit_row(row_el: etree._Element, row_num: int, writes: list[CellWrite]) -> None:
    """Write ``writes`` (sorted by column) into one parsed <row>, creating cells in column order."""
    if not writes:
        return
    # Fast path: every cell says where it is and every target exists, so no position is computed.
    by_ref = {c.get("r"): c for c in row_el.iterchildren(_C)}
    if None not in by_ref:
        suffix = str(row_num)
        targets = [by_ref.get(_column_letters(w.col) + suffix) for w in writes]
        if None not in targets:
            for cell, w in zip(targets, writes):
                if w.style is not None:
                    _set_style(cell, w.style)
                set_cell_value(cell, w.value)
            return
    cells: dict[int, etree._Element] = {}
    col = 0
    for c in row_el.iterchildren(_C):
        col = cell_column(c, col)
        if not c.get("r"):
            # Inserting before a cell without r would shift it; make every position explicit.
            c.set("r", format_cell_ref(row_num, col))
        cells[col] = c
    existing = sorted(cells)
    for w in writes:
        cell = cells.get(w.col)
        if cell is None:
            cell = etree.Element(_C, r=format_cell_ref(row_num, w.col))
            pos = bisect.bisect_right(existing, w.col)
            if pos < len(existing):
                cells[existing[pos]].addprevious(cell)
            else:
                row_el.append(cell)
            cells[w.col] = cell
            existing.insert(pos, w.col)
            _widen_spans(row_el, w.col)
        _set_style(cell, w.style)
        set_cell_value(cell, w.value)


def _set_style(cell: etree._Element, style: str | None) -> None:
    if style is None:
        return
    if style == "0":
        if cell.get("s") is not None:
            del cell.attrib["s"]
    else:
        cell.set("s", style)


def _widen_spans(row_el: etree._Element, col: int) -> None:
    spans = row_el.get("spans")
    if not spans or ":" not in spans or " " in spans:
        return
    lo_s, hi_s = spans.split(":", 1)
    if lo_s.isdigit() and hi_s.isdigit():
        lo, hi = int(lo_s), int(hi_s)
        if col < lo or col > hi:
            row_el.set("spans", f"{min(lo, col)}:{max(hi, col)}")


def set_cell_value(cell: etree._Element, value: Encoded) -> None:
    if len(cell):
        for child in list(cell):
            if child.tag in (_F, _V, _IS):
                cell.remove(child)
    # The old type and rich-value/cell-metadata links describe the old value.
    if cell.get("t") is not None or cell.get("vm") is not None or cell.get("cm") is not None:
        attrib = cell.attrib
        for attr in ("t", "vm", "cm"):
            if attr in attrib:
                del attrib[attr]
    if value.t is not None:
        cell.set("t", value.t)
    if not len(cell) and value.formula is None and value.inline is None:
        if value.v is not None:  # the common case: a number in an empty cell
            etree.SubElement(cell, _V).text = value.v
        return
    new: list[etree._Element] = []
    if value.formula is not None:
        f = etree.Element(_F)
        f.text = value.formula
        new.append(f)
    if value.inline is not None:
        is_el = etree.Element(_IS)
        t = etree.SubElement(is_el, _T)
        t.text = value.inline
        if value.preserve:
            t.set(_XML_SPACE, "preserve")
        new.append(is_el)
    elif value.v is not None:
        v = etree.Element(_V)
        v.text = value.v
        new.append(v)
    if len(cell):
        # f, v and is come before extLst in CT_Cell; inserting at the front keeps that order.
        for i, el in enumerate(new):
            cell.insert(i, el)
    else:
        cell.extend(new)


def strip_row_caches(row_el: etree._Element, external_si: set[str]) -> None:
    """Drop the cached results of the formulas in one row, except those reading other workbooks."""
    for f in list(row_el.iter(_F)):
        if _reads_other_workbook(f, external_si):
            continue
        cell = f.getparent()
        if cell is None:
            continue
        v = cell.find(_V)
        if v is not None:
            cell.remove(v)
            cell.attrib.pop("t", None)


def _reads_other_workbook(f: etree._Element, external_si: set[str]) -> bool:
    return bool(f.text and _EXTERNAL_REF.search(f.text)) or (f.get("t") == "shared" and f.get("si") in external_si)


def external_shared_index(f: etree._Element) -> str | None:
    """The si of a shared-formula master that reads another workbook, else None."""
    if f.get("t") == "shared" and f.get("si") is not None and f.text and _EXTERNAL_REF.search(f.text):
        return f.get("si")
    return None


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
