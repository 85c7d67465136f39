"""Recompute formula results of a filled workbook with headless LibreOffice and write only the values back into our file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.cells import number_text, own_cache_formulas, xml_text
from exports.xlsx.inspector import (
    CellContent,
    date_to_serial,
    parse_cell_ref,
    q,
    read_cells,
    read_workbook_map,
)
from exports.xlsx.package import request_full_calc, serialise, write_package
from exports.xlsx.safezip import open_workbook_zip, parse_xml

__all__ = ["recompute_caches", "find_soffice"]

_C, _F, _V, _IS = q("c"), q("f"), q("v"), q("is")

# The error values a cached <v t="e"> may hold; anything else LibreOffice reports is skipped.
_EXCEL_ERRORS = {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA"}

# A fresh LibreOffice profile recalculates xlsx files only when told to; "0" means always.
_RECALC_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def find_soffice(soffice: str | None = None) -> str:
    """The LibreOffice executable to use, or TemplateError saying it is not installed."""
    candidate = soffice or shutil.which("soffice") or shutil.which("libreoffice")
    if candidate and os.sep not in candidate:
        candidate = shutil.which(candidate)
    if not candidate or not os.path.isfile(candidate) or not os.access(candidate, os.X_OK):
        if soffice:
            raise TemplateError(
                _(
                    "LibreOffice (soffice) was not found at %(path)s; install it to recompute formula results, "
                    "or export without recomputing (Excel and LibreOffice recalculate on open)",
                    path=soffice,
                )
            )
        raise TemplateError(
            _(
                "LibreOffice (soffice) was not found; install it to recompute formula results, "
                "or export without recomputing (Excel and LibreOffice recalculate on open)"
            )
        )
    return candidate


@dataclass(frozen=True)
class _Cache:
    t: str | None  # the cell's t attribute: None for numbers
    text: str


def _cache_of(content: CellContent, date1904: bool) -> _Cache | None:
    """The cached value to store for LibreOffice's result, or None to leave the cell alone."""
    value = content.value
    try:
        if content.kind == "number":
            return _Cache(None, number_text(value, "recomputed value"))  # type: ignore[arg-type]
        if content.kind == "date":
            # read_cells turned LibreOffice's serial into a datetime; store it in OUR date system.
            return _Cache(None, number_text(date_to_serial(value, date1904), "recomputed value"))  # type: ignore[arg-type]
    except TemplateError:
        return None
    if content.kind == "text":
        return _Cache("str", xml_text(str(value)))
    if content.kind == "bool":
        return _Cache("b", "1" if value else "0")
    if content.kind == "error" and isinstance(value, str) and value.strip() in _EXCEL_ERRORS:
        return _Cache("e", value.strip())
    return None  # blank (no value) or an error we cannot name in Excel's terms


def _same(cell: etree._Element, new: _Cache) -> bool:
    v = cell.find(_V)
    if v is None or cell.find(_IS) is not None:
        return False
    t = cell.get("t")
    if t in (None, "n") and new.t is None:
        try:
            return float(v.text or "") == float(new.text)
        except ValueError:
            return False
    return t == new.t and (v.text or "") == new.text


def _same_formula(f: etree._Element, content: CellContent | None) -> bool:
    return (
        bool(f.text)
        and content is not None
        and content.formula is not None
        and content.formula.strip() == (f.text or "").strip()
    )


def _set_cache(cell: etree._Element, f: etree._Element, new: _Cache) -> None:
    for child in list(cell):
        if child.tag in (_V, _IS):
            cell.remove(child)
    if new.t is None:
        cell.attrib.pop("t", None)
    else:
        cell.set("t", new.t)
    v = etree.Element(_V)
    v.text = new.text
    f.addnext(v)  # CT_Cell order is f, v, is, extLst


def _run_libreoffice(exe: str, data: bytes, macro_enabled: bool, timeout: float) -> bytes:
    with tempfile.TemporaryDirectory(prefix="gk-recompute-") as tmp:
        root = Path(tmp)
        profile = root / "lo" / "user"
        profile.mkdir(parents=True)
        (profile / "registrymodifications.xcu").write_text(_RECALC_PROFILE, encoding="utf-8")
        src_dir, out_dir = root / "in", root / "out"
        src_dir.mkdir()
        out_dir.mkdir()
        src = src_dir / ("workbook.xlsm" if macro_enabled else "workbook.xlsx")
        src.write_bytes(data)
        cmd = [
            exe,
            "--headless",
            "--norestore",
            f"-env:UserInstallation={(root / 'lo').as_uri()}",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out_dir),
            str(src),
        ]
        env = {**os.environ, "HOME": str(root)}
        # Own process group: soffice starts soffice.bin, which must die with it on a timeout.
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            _out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise TemplateError(
                _("LibreOffice did not finish recomputing within %(seconds)s seconds", seconds=format(timeout, "g"))
            ) from None
        out = out_dir / "workbook.xlsx"
        if proc.returncode != 0 or not out.is_file():
            detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            raise TemplateError(
                _("LibreOffice could not recompute the workbook (%(problem)s)", problem=detail[0][:200])
            )
        return out.read_bytes()


def recompute_caches(filled: bytes, *, soffice: str | None = None, timeout: float = 120) -> bytes:
    """Return ``filled`` with every formula's cached result set to what LibreOffice computes.

    LibreOffice converts a copy; its file is only read, never returned (it
    rewrites styles and drops features).  Into our own package go only the
    values: numbers, text (t="str"), booleans (t="b") and Excel error values
    (t="e") of cells that hold a formula (shared-formula children included).
    Formulas whose result LibreOffice leaves blank or reports as an error
    Excel has no name for are skipped, and so is an error result when
    LibreOffice did not keep our formula text verbatim (it could not parse
    it, so the error is LibreOffice's, not the formula's; shared-formula
    children carry no text of their own, so their errors are skipped too);
    formulas reading other workbooks keep their cache, data tables are
    skipped, and of an array formula only the
    master cell gets its value (the other cells of the range have no formula
    of their own and stay as they are).  Only sheet parts whose caches change
    are rewritten (plus workbook.xml if fullCalcOnLoad was not already set, so
    Excel still recalculates on open); every other part is copied byte for byte.

    Raises TemplateError when LibreOffice is missing, fails or times out;
    nothing is returned half-edited.
    """
    exe = find_soffice(soffice)
    z = open_workbook_zip(filled)
    wm = read_workbook_map(z)

    # Our formula cells per worksheet, parsed once; no formulas means nothing to do.
    sheets: list[tuple[str, str, bytes, etree._Element, dict[str, tuple[etree._Element, etree._Element]]]] = []
    for ref in wm.sheets:
        if not ref.part or not z.has(ref.part):
            continue
        original = z.read(ref.part)
        root = parse_xml(original, ref.part)
        sheet_data = root.find(q("sheetData"))
        if sheet_data is None:
            continue
        cells: dict[str, tuple[etree._Element, etree._Element]] = {}
        for f in own_cache_formulas(sheet_data):
            cell = f.getparent()
            if cell is None or cell.tag != _C or f.get("t") == "dataTable" or not cell.get("r"):
                continue
            try:
                parse_cell_ref(cell.get("r", ""))
            except TemplateError:
                continue
            cells[cell.get("r", "").upper()] = (cell, f)
        if cells:
            sheets.append((ref.name, ref.part, original, root, cells))
    if not sheets:
        return filled

    content_types = z.read("[Content_Types].xml") if z.has("[Content_Types].xml") else b""
    computed = _run_libreoffice(exe, filled, b"macroEnabled" in content_types, timeout)

    replaced: dict[str, bytes] = {}
    for name, part, original, root, cells in sheets:
        try:
            values = read_cells(computed, name, list(cells))
        except TemplateError as exc:
            raise TemplateError(
                _(
                    "LibreOffice's recomputed copy could not be read for sheet %(sheet)s: %(problem)s",
                    sheet=repr(name),
                    problem=exc,
                )
            ) from None
        changed = False
        for r, (cell, f) in cells.items():
            content = values.get(r)
            new = _cache_of(content, wm.date1904) if content is not None else None
            if new is None or _same(cell, new):
                continue
            if new.t == "e" and not _same_formula(f, content):
                # LibreOffice rewrote a formula it could not parse (e.g. an Excel table
                # reference, lower-cased) and answers #N/A or #NAME?; Excel would not.
                continue
            _set_cache(cell, f, new)
            changed = True
        if changed:
            replaced[part] = serialise(original, root)
    if not replaced:
        return filled
    wb_xml = request_full_calc(z.read(wm.workbook_part), wm.workbook_part)
    if wb_xml is not None:
        replaced[wm.workbook_part] = wb_xml
    return write_package(z, replaced)
