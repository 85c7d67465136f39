"""Describe a funder's workbook template (sheets, names, merges, formulas, input cells) straight from its zip/XML."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from dataclasses import dataclass, field
from typing import Literal

from lxml import etree

from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.safezip import SafeZip, open_workbook_zip

__all__ = [
    "NS",
    "CellContent",
    "DefinedName",
    "SheetInfo",
    "TemplateInfo",
    "WorkbookMap",
    "SheetRef",
    "col_to_index",
    "index_to_col",
    "parse_cell_ref",
    "format_cell_ref",
    "parse_range",
    "date_to_serial",
    "serial_to_datetime",
    "inspect_template",
    "is_date_format",
    "read_cells",
    "read_workbook_map",
    "truthy",
    "unescape_text",
]

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
NS = {"m": MAIN_NS, "r": REL_NS, "pr": PKG_REL_NS, "ct": CT_NS}

OFFICE_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
WORKSHEET_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
CALC_CHAIN_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/calcChain"
STYLES_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"
SHARED_STRINGS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
STRICT_MAIN_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"


def q(tag: str) -> str:
    """Clark-notation name in the SpreadsheetML main namespace."""
    return f"{{{MAIN_NS}}}{tag}"


# -- cell references ---------------------------------------------------------

_CELL_RE = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")
MAX_ROW = 1_048_576
MAX_COL = 16_384


def col_to_index(col: str) -> int:
    """'A' -> 1, 'AA' -> 27."""
    n = 0
    for ch in col.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def index_to_col(idx: int) -> str:
    """1 -> 'A', 27 -> 'AA'."""
    out = ""
    while idx:
        idx, rem = divmod(idx - 1, 26)
        out = chr(65 + rem) + out
    return out


_COLUMN_CACHE: dict[str, int] = {}


def parse_cell_ref(ref: str) -> tuple[int, int]:
    """'C4' or '$C$4' -> (row 4, column 3); TemplateError if not a single cell."""
    # Fast path for the plain form (10k-cell fills parse every address): "C4", no $, no spaces.
    letters = ref.rstrip("0123456789")
    col = _COLUMN_CACHE.get(letters)
    if col is not None:
        digits = ref[len(letters) :]
        if 0 < len(digits) <= 7 and digits.isdigit() and digits.isascii():
            row = int(digits)
            if 1 <= row <= MAX_ROW:
                return row, col
    m = _CELL_RE.match(ref.strip())
    if not m:
        raise TemplateError(_("%(ref)s is not a cell reference like C4", ref=repr(ref)))
    row, col = int(m.group(2)), col_to_index(m.group(1))
    if not (1 <= row <= MAX_ROW and 1 <= col <= MAX_COL):
        raise TemplateError(_("%(ref)s is outside the sheet", ref=repr(ref)))
    if m.group(0) == ref and "$" not in ref and len(_COLUMN_CACHE) < 20_000:
        _COLUMN_CACHE[m.group(1)] = col
    return row, col


def format_cell_ref(row: int, col: int) -> str:
    return f"{index_to_col(col)}{row}"


def parse_range(ref: str) -> tuple[int, int, int, int]:
    """'B2:D5' -> (min_row, min_col, max_row, max_col); a single cell is a 1x1 range."""
    first, _colon, last = ref.partition(":")
    r1, c1 = parse_cell_ref(first)
    r2, c2 = parse_cell_ref(last) if last else (r1, c1)
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


# -- dates -------------------------------------------------------------------

_EPOCH_1900 = dt.datetime(1899, 12, 30)
_EPOCH_1904 = dt.datetime(1904, 1, 1)


def date_to_serial(value: dt.date | dt.datetime, date1904: bool = False) -> int | float:
    """Excel serial number of a date or naive datetime (1900 or 1904 date system).

    The 1900 system counts the phantom 29 Feb 1900 (a Lotus 1-2-3 bug Excel keeps),
    so dates before 1 Mar 1900 are shifted by one to land where Excel shows them.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise TemplateError(
                _(
                    "timezone-aware datetime %(value)s refused; convert to local time first",
                    value=value.isoformat(),
                )
            )
        moment = value
    else:
        moment = dt.datetime(value.year, value.month, value.day)
    epoch = _EPOCH_1904 if date1904 else _EPOCH_1900
    delta = moment - epoch
    days = delta.days
    if not date1904 and moment < dt.datetime(1900, 3, 1):
        days -= 1
    if days < (0 if date1904 else 1):
        raise TemplateError(_("date %(value)s is before the workbook's date system starts", value=value.isoformat()))
    seconds = delta.seconds + delta.microseconds / 1_000_000
    if seconds == 0:
        return days
    return days + seconds / 86400


def serial_to_datetime(serial: float, date1904: bool = False) -> dt.datetime:
    """Inverse of date_to_serial (microseconds rounded to milliseconds, as Excel stores them)."""
    epoch = _EPOCH_1904 if date1904 else _EPOCH_1900
    days = int(serial // 1)
    if not date1904 and days < 61:
        days += 1
    ms = round((serial - int(serial // 1)) * 86_400_000)
    return epoch + dt.timedelta(days=days, milliseconds=ms)


# -- workbook structure --------------------------------------------------------


def _resolve_target(base_part: str, target: str) -> str:
    # Relationship targets are relative to the source part's folder unless absolute.
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def rels_part_for(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


@dataclass(frozen=True)
class SheetRef:
    """A worksheet as listed in workbook.xml."""

    name: str
    sheet_id: str
    rel_id: str
    part: str
    state: Literal["visible", "hidden", "veryHidden"]
    index: int  # 0-based position, which is what localSheetId refers to


@dataclass(frozen=True)
class DefinedName:
    """A defined name; ``scope`` is the sheet name for sheet-scoped names, else None."""

    name: str
    ref: str
    scope: str | None
    hidden: bool = False

    def single_cell(self) -> tuple[str, int, int] | None:
        """(sheet, row, col) when the name points at exactly one cell, else None."""
        m = re.match(r"^(?:'((?:[^']|'')+)'|([^'!]+))!(\$?[A-Za-z]{1,3}\$?[0-9]{1,7})$", self.ref.strip())
        if not m:
            return None
        sheet = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)
        row, col = parse_cell_ref(m.group(3))
        return sheet, row, col


@dataclass
class WorkbookMap:
    """Where things live inside the package, read from workbook.xml and its relationships."""

    workbook_part: str
    sheets: list[SheetRef]
    defined_names: list[DefinedName]
    date1904: bool
    workbook_protected: bool
    styles_part: str | None
    shared_strings_part: str | None
    calc_chain_part: str | None

    def sheet(self, name: str) -> SheetRef:
        for s in self.sheets:
            if s.name == name:
                return s
        # Excel treats sheet names case-insensitively; accept that, but only if unambiguous.
        matches = [s for s in self.sheets if s.name.lower() == name.lower()]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(repr(s.name) for s in self.sheets)
        raise TemplateError(_("unknown sheet %(name)s; the template has %(known)s", name=repr(name), known=known))


def truthy(value: str | None) -> bool:
    """An OOXML boolean attribute ("1", "true", "on"); absent means false."""
    return value is not None and value.strip().lower() in ("1", "true", "on")


def read_workbook_map(z: SafeZip) -> WorkbookMap:
    """Read the sheet list, defined names and key part locations of a workbook package."""
    if not z.has("_rels/.rels"):
        raise TemplateError(_("not an Excel workbook: the package has no _rels/.rels"))
    root_rels = z.parse("_rels/.rels")
    wb_part = None
    for rel in root_rels.iterfind("pr:Relationship", NS):
        if rel.get("Type") == OFFICE_DOC_REL:
            wb_part = _resolve_target("", rel.get("Target", ""))
    if wb_part is None or not z.has(wb_part):
        raise TemplateError(_("not an Excel workbook: no workbook part found"))
    wb = z.parse(wb_part)
    if wb.tag == f"{{{STRICT_MAIN_NS}}}workbook":
        raise TemplateError(_("Strict Open XML workbooks are not supported; save as a normal Excel workbook (.xlsx)"))
    if wb.tag != q("workbook"):
        raise TemplateError(_("not an Excel workbook: the main part is not a SpreadsheetML workbook"))
    rels_name = rels_part_for(wb_part)
    rels: dict[str, tuple[str, str]] = {}
    if z.has(rels_name):
        for rel in z.parse(rels_name).iterfind("pr:Relationship", NS):
            if rel.get("TargetMode") == "External":
                continue
            rels[rel.get("Id", "")] = (rel.get("Type", ""), _resolve_target(wb_part, rel.get("Target", "")))

    sheets: list[SheetRef] = []
    for idx, el in enumerate(wb.iterfind("m:sheets/m:sheet", NS)):
        rid = el.get(f"{{{REL_NS}}}id", "")
        rtype, target = rels.get(rid, ("", ""))
        if rtype != WORKSHEET_REL:
            # Chart sheets and dialog sheets hold no cells; keep their place so
            # localSheetId indices stay right, but they cannot be filled.
            target = ""
        state = el.get("state", "visible")
        if state not in ("visible", "hidden", "veryHidden"):
            state = "visible"
        sheets.append(SheetRef(el.get("name", ""), el.get("sheetId", ""), rid, target, state, idx))  # type: ignore[arg-type]

    names: list[DefinedName] = []
    for el in wb.iterfind("m:definedNames/m:definedName", NS):
        local = el.get("localSheetId")
        scope = None
        if local is not None and local.isdigit() and int(local) < len(sheets):
            scope = sheets[int(local)].name
        names.append(DefinedName(el.get("name", ""), (el.text or "").strip(), scope, truthy(el.get("hidden"))))

    pr = wb.find("m:workbookPr", NS)
    prot = wb.find("m:workbookProtection", NS)
    by_type = {t: p for t, p in rels.values()}
    return WorkbookMap(
        workbook_part=wb_part,
        sheets=sheets,
        defined_names=names,
        date1904=pr is not None and truthy(pr.get("date1904")),
        workbook_protected=prot is not None
        and any(truthy(prot.get(a)) for a in ("lockStructure", "lockWindows", "lockRevision")),
        styles_part=by_type.get(STYLES_REL),
        shared_strings_part=by_type.get(SHARED_STRINGS_REL),
        calc_chain_part=by_type.get(CALC_CHAIN_REL),
    )


@dataclass
class StyleTable:
    """What the filler and the inspector need from styles.xml: per cellXfs index, locked? date?"""

    unlocked: set[int]
    date_xfs: set[int]

    def is_locked(self, xf: int) -> bool:
        return xf not in self.unlocked


_BUILTIN_DATE_FMTS = set(range(14, 23)) | set(range(45, 48)) | set(range(27, 37)) | set(range(50, 59))


def _is_date_format(code: str) -> bool:
    # Strip quoted text, escapes and colour/condition brackets before looking for date tokens.
    code = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", code)
    return bool(re.search(r"[dmyhs]", code, re.I)) and "General" not in code


def is_date_format(fmt_id: int, custom_code: str | None = None) -> bool:
    """Does number format ``fmt_id`` (with its formatCode when custom) show a date or time?"""
    if custom_code is not None:
        return _is_date_format(custom_code)
    return fmt_id in _BUILTIN_DATE_FMTS


def read_styles(z: SafeZip, styles_part: str | None) -> StyleTable:
    unlocked: set[int] = set()
    dates: set[int] = set()
    if styles_part is None or not z.has(styles_part):
        return StyleTable(unlocked, dates)
    root = z.parse(styles_part)
    custom = {
        int(n.get("numFmtId", "-1")): n.get("formatCode", "")
        for n in root.iterfind("m:numFmts/m:numFmt", NS)
        if (n.get("numFmtId") or "").isdigit()
    }
    for idx, xf in enumerate(root.iterfind("m:cellXfs/m:xf", NS)):
        prot = xf.find("m:protection", NS)
        # Excel reads protection from the cellXfs entry; absent means locked.
        if prot is not None and prot.get("locked") is not None and not truthy(prot.get("locked")):
            unlocked.add(idx)
        fmt = int(xf.get("numFmtId", "0") or 0)
        if is_date_format(fmt, custom.get(fmt)):
            dates.add(idx)
    return StyleTable(unlocked, dates)


# -- template description ------------------------------------------------------


@dataclass
class SheetInfo:
    """One worksheet of a template as the filler sees it."""

    name: str
    state: str
    part: str
    protected: bool
    protection: dict[str, str] = field(default_factory=dict)
    dimension: str | None = None
    merged_ranges: list[str] = field(default_factory=list)
    formula_cells: list[str] = field(default_factory=list)
    array_formula_ranges: list[str] = field(default_factory=list)
    input_cells: list[str] = field(default_factory=list)
    blank_cells: list[str] = field(default_factory=list)
    cell_count: int = 0


@dataclass
class TemplateInfo:
    """Everything a mapping editor needs to know about a template, in sheet order."""

    sheets: list[SheetInfo]
    defined_names: list[DefinedName]
    has_macros: bool
    date1904: bool
    workbook_protected: bool
    parts: list[str]

    def sheet(self, name: str) -> SheetInfo:
        for s in self.sheets:
            if s.name == name:
                return s
        known = ", ".join(repr(s.name) for s in self.sheets)
        raise TemplateError(_("unknown sheet %(name)s; the template has %(known)s", name=repr(name), known=known))


def _scan_sheet(z: SafeZip, ref: SheetRef, styles: StyleTable) -> SheetInfo:
    info = SheetInfo(name=ref.name, state=ref.state, part=ref.part, protected=False)
    if not ref.part or not z.has(ref.part):
        return info
    c_tag, row_tag, f_tag, v_tag, is_tag = q("c"), q("row"), q("f"), q("v"), q("is")
    merge_tag, dim_tag, prot_tag = q("mergeCell"), q("dimension"), q("sheetProtection")
    unlocked: list[str] = []
    blank: list[str] = []
    formula_cells = info.formula_cells
    value_tags = (v_tag, is_tag)
    # s attribute string -> locked?; a template has a handful of distinct styles.
    locked_by_s: dict[str | None, bool] = {None: True}
    current_row = 0
    tags = [row_tag, merge_tag, dim_tag, prot_tag]
    for _event, el in z.iterparse(ref.part, events=("end",), tag=tags):
        tag = el.tag
        if tag == row_tag:
            pr = el.get("r")
            current_row = int(pr) if pr and pr.isdigit() else current_row + 1
            current_col: int | None = 0
            last_ref = ""
            for c in el.iterchildren(c_tag):
                ref_s = c.get("r")
                if ref_s:
                    last_ref = ref_s
                    current_col = None
                else:
                    # Writers may omit r=; the cell then follows the previous one.
                    if current_col is None:
                        current_col = parse_cell_ref(last_ref)[1]
                    current_col += 1
                    ref_s = format_cell_ref(current_row, current_col)
                    last_ref = ref_s
                info.cell_count += 1
                first = c[0] if len(c) else None
                if first is not None and first.tag == f_tag:
                    formula_cells.append(ref_s)
                    if first.get("t") == "array" and first.get("ref"):
                        info.array_formula_ranges.append(first.get("ref", ""))
                    continue
                if first is None or first.tag not in value_tags:
                    blank.append(ref_s)
                s = c.get("s")
                is_locked = locked_by_s.get(s)
                if is_locked is None:
                    is_locked = not (s.isdigit() and not styles.is_locked(int(s)))
                    locked_by_s[s] = is_locked
                if not is_locked:
                    unlocked.append(ref_s)
            el.clear()
            # Drop finished rows so memory stays bounded on 100k-row sheets.
            while el.getprevious() is not None:
                del el.getparent()[0]
        elif tag == merge_tag:
            info.merged_ranges.append(el.get("ref", ""))
        elif tag == dim_tag:
            info.dimension = el.get("ref")
        elif tag == prot_tag:
            info.protection = {k: v for k, v in el.attrib.items() if k not in ("password", "hashValue", "saltValue")}
            info.protected = truthy(el.get("sheet"))
    info.input_cells = unlocked if info.protected else []
    # Only the top-left cell of a merge can hold a value; don't offer the others.
    covered = _merged_followers(info.merged_ranges)
    info.input_cells = [c for c in info.input_cells if c not in covered]
    info.blank_cells = [c for c in blank if c not in covered]
    return info


def _merged_followers(ranges: list[str]) -> set[str]:
    out: set[str] = set()
    for rng in ranges:
        try:
            r1, c1, r2, c2 = parse_range(rng)
        except TemplateError:
            continue
        if (r2 - r1 + 1) * (c2 - c1 + 1) > 100_000:
            continue  # a sheet-wide merge is not an input area worth enumerating
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                if (r, c) != (r1, c1):
                    out.add(format_cell_ref(r, c))
    return out


def inspect_template(data: bytes) -> TemplateInfo:
    """Describe a workbook template without openpyxl, so it works on files openpyxl rejects.

    Sheets are stream-parsed and cleared as they go; memory stays bounded by the
    per-sheet lists returned (formula, input and blank cell addresses).
    """
    z = open_workbook_zip(data)
    wm = read_workbook_map(z)
    styles = read_styles(z, wm.styles_part)
    sheets = [_scan_sheet(z, ref, styles) for ref in wm.sheets]
    macros = any(posixpath.basename(n).lower() == "vbaproject.bin" for n in z.names)
    return TemplateInfo(
        sheets=sheets,
        defined_names=wm.defined_names,
        has_macros=macros,
        date1904=wm.date1904,
        workbook_protected=wm.workbook_protected,
        parts=z.names,
    )


# -- reading values back -------------------------------------------------------


@dataclass(frozen=True)
class CellContent:
    """A cell as stored: ``kind`` is 'number', 'text', 'bool', 'error', 'date' or 'blank'."""

    kind: str
    value: object
    formula: str | None
    style: int


_ESCAPED_CHAR = re.compile(r"_x([0-9A-Fa-f]{4})_")


def unescape_text(text: str) -> str:
    """Decode Excel's _xHHHH_ escapes in cell text (as Excel does when it reads the file)."""
    return _ESCAPED_CHAR.sub(lambda m: chr(int(m.group(1), 16)), text)


def _text_of(el: etree._Element) -> str:
    # Rich text runs <r><t> and plain <t>; phonetic runs (rPh) are not part of the value.
    parts = [t.text or "" for t in el.iter(q("t")) if t.getparent() is not None and t.getparent().tag != q("rPh")]
    return unescape_text("".join(parts))


def read_cells(data: bytes, sheet: str, refs: list[str] | None = None) -> dict[str, CellContent]:
    """Read cells back from a workbook without openpyxl (for checks and previews).

    Numbers in a date-formatted style come back as ``kind='date'`` datetimes.
    Without ``refs`` every stored cell of the sheet is returned.
    """
    z = open_workbook_zip(data)
    wm = read_workbook_map(z)
    ref = wm.sheet(sheet)
    styles = read_styles(z, wm.styles_part)
    shared: list[str] = []
    if wm.shared_strings_part and z.has(wm.shared_strings_part):
        for _event, si in z.iterparse(wm.shared_strings_part, tag=q("si")):
            shared.append(_text_of(si))
            si.clear()
    wanted = {format_cell_ref(*parse_cell_ref(r)) for r in refs} if refs is not None else None
    out: dict[str, CellContent] = {}
    row_tag, c_tag = q("row"), q("c")
    row_num = col = 0
    for event, c in z.iterparse(ref.part, events=("start", "end"), tag=(row_tag, c_tag)):
        if c.tag == row_tag:
            if event == "start":
                # Writers may leave out r on rows and cells: they then follow the previous one.
                r_attr = c.get("r")
                row_num = int(r_attr) if r_attr and r_attr.isdigit() else row_num + 1
                col = 0
            else:
                c.clear()
                while c.getprevious() is not None:
                    del c.getparent()[0]
            continue
        if event == "start":
            continue
        r = c.get("r", "")
        try:
            col = parse_cell_ref(r)[1] if r else col + 1
        except TemplateError:
            col += 1
        r = format_cell_ref(row_num, col)
        if wanted is not None and r not in wanted:
            c.clear()
            continue
        t = c.get("t", "n")
        style = int(c.get("s", "0") or 0)
        f = c.find(q("f"))
        v = c.find(q("v"))
        formula = f.text if f is not None else None
        if t == "inlineStr":
            is_el = c.find(q("is"))
            content = CellContent("text", _text_of(is_el) if is_el is not None else "", formula, style)
        elif v is None:
            content = CellContent("blank", None, formula, style)
        elif t == "s":
            content = CellContent("text", shared[int(v.text or 0)], formula, style)
        elif t in ("str",):
            content = CellContent("text", unescape_text(v.text or ""), formula, style)
        elif t == "b":
            content = CellContent("bool", (v.text or "").strip() in ("1", "true"), formula, style)
        elif t == "e":
            content = CellContent("error", v.text, formula, style)
        else:
            num = float(v.text or 0)
            if style in styles.date_xfs:
                content = CellContent("date", serial_to_datetime(num, wm.date1904), formula, style)
            else:
                text = (v.text or "").strip()
                # Integers written as integers come back as int; anything with a point or exponent as float.
                value: int | float = int(text) if re.fullmatch(r"-?\d+", text) else num
                content = CellContent("number", value, formula, style)
        out[r] = content
        c.clear()
    return out
