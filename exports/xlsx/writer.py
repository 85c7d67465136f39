"""Grantkeeper's streaming .xlsx writer: a workbook package written part by part, rows straight into the zip.

No spreadsheet library is involved.  Each worksheet part is streamed into its
zip entry a batch of rows at a time, so memory does not grow with the number of
rows; strings are written inline (no shared-string table to hold), and the
styles part lists only the cell formats actually used, registered as the sheets
ask for them.

Values a cell takes: ``None`` (no cell), ``str`` (always literal text, never a
formula), ``bool``, ``int``, ``float``, ``Decimal``, ``datetime.date``,
``datetime.datetime`` (a time zone is dropped, the wall-clock time kept) and
``datetime.time``.  Characters XML 1.0 cannot carry (control characters other
than tab, newline and carriage return) are dropped from text; a number that is
not finite, and a date before 1 March 1900 (which Excel cannot show), are
written as text.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from exports.errors import TemplateError

__all__ = ["CellFormats", "Style", "WorkbookWriter", "SheetWriter", "column_letter", "clean_text"]

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_ESCAPES = {"\r": "&#13;"}  # a bare CR would be read back as a newline
_EPOCH = dt.datetime(1899, 12, 30)
_FIRST_SERIAL_DATE = dt.date(1900, 3, 1)  # before this Excel's 1900 leap-year bug makes serials ambiguous
_BATCH_ROWS = 2000
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RNS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_RNS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def column_letter(index: int) -> str:
    """1 -> A, 27 -> AA."""
    letters = ""
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def clean_text(text: str) -> str:
    """Text with the characters XML 1.0 cannot carry removed."""
    return _ILLEGAL.sub("", text)


def _xml_text(text: str) -> str:
    return escape(_ILLEGAL.sub("", text), _XML_ESCAPES)


@dataclass(frozen=True)
class Style:
    """A cell format: number format, font, fill, bottom border, alignment and the literal-text marker."""

    number_format: str = "General"
    bold: bool = False
    size: float = 11
    fill_rgb: str | None = None
    bottom_border_rgb: str | None = None
    centered_wrapped: bool = False
    quote_prefix: bool = False


@dataclass(frozen=True)
class CellFormats:
    """How one column's values are formatted, by the type of the value.

    ``guarded_text`` is the number format of text starting with = + - @, which is
    marked as literal text (quotePrefix) so a spreadsheet never reads it as a formula.
    """

    number: str = "General"
    date: str = "yyyy-mm-dd"
    datetime: str = "yyyy-mm-dd h:mm:ss"
    time: str = "h:mm:ss"
    guarded_text: str = "General"


class _Styles:
    """The styles part: fonts, fills, borders, number formats and cell formats, registered on first use."""

    def __init__(self) -> None:
        self.fonts: dict[tuple[bool, float], int] = {(False, 11): 0}
        self.fills: dict[str | None, int] = {None: 0, "gray125": 1}
        self.borders: dict[str | None, int] = {None: 0}
        self.formats: dict[str, int] = {"General": 0}
        self.xfs: dict[Style, int] = {Style(): 0}

    def index(self, style: Style) -> int:
        found = self.xfs.get(style)
        if found is None:
            self.fonts.setdefault((style.bold, style.size), len(self.fonts))
            self.fills.setdefault(style.fill_rgb, len(self.fills))
            self.borders.setdefault(style.bottom_border_rgb, len(self.borders))
            if style.number_format not in self.formats:
                self.formats[style.number_format] = 164 + len(self.formats) - 1
            found = self.xfs[style] = len(self.xfs)
        return found

    def xml(self) -> str:
        parts = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{_NS}">']
        custom = [(fid, code) for code, fid in self.formats.items() if fid]
        if custom:
            parts.append(f'<numFmts count="{len(custom)}">')
            parts += [f"<numFmt numFmtId={quoteattr(str(fid))} formatCode={quoteattr(code)}/>" for fid, code in custom]
            parts.append("</numFmts>")
        parts.append(f'<fonts count="{len(self.fonts)}">')
        for bold, size in self.fonts:
            parts.append(
                f'<font>{"<b/>" if bold else ""}<sz val="{size:g}"/><name val="Calibri"/><family val="2"/></font>'
            )
        parts.append(f'</fonts><fills count="{len(self.fills)}">')
        for rgb in self.fills:
            if rgb is None:
                parts.append('<fill><patternFill patternType="none"/></fill>')
            elif rgb == "gray125":
                parts.append('<fill><patternFill patternType="gray125"/></fill>')
            else:
                parts.append(
                    f'<fill><patternFill patternType="solid"><fgColor rgb={quoteattr(rgb)}/></patternFill></fill>'
                )
        parts.append(f'</fills><borders count="{len(self.borders)}">')
        for rgb in self.borders:
            bottom = f'<bottom style="thin"><color rgb={quoteattr(rgb)}/></bottom>' if rgb else "<bottom/>"
            parts.append(f"<border><left/><right/><top/>{bottom}<diagonal/></border>")
        parts.append(
            '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            f'<cellXfs count="{len(self.xfs)}">'
        )
        for s in self.xfs:
            attrs = (
                f'numFmtId="{self.formats[s.number_format]}" fontId="{self.fonts[(s.bold, s.size)]}" '
                f'fillId="{self.fills[s.fill_rgb]}" borderId="{self.borders[s.bottom_border_rgb]}" xfId="0"'
            )
            if s.number_format != "General":
                attrs += ' applyNumberFormat="1"'
            if s.bold or s.size != 11:
                attrs += ' applyFont="1"'
            if s.fill_rgb:
                attrs += ' applyFill="1"'
            if s.bottom_border_rgb:
                attrs += ' applyBorder="1"'
            if s.quote_prefix:
                attrs += ' quotePrefix="1"'
            if s.centered_wrapped:
                parts.append(
                    f'<xf {attrs} applyAlignment="1"><alignment horizontal="center" vertical="center" wrapText="1"/></xf>'
                )
            else:
                parts.append(f"<xf {attrs}/>")
        parts.append(
            '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
        )
        return "".join(parts)


def _serial(value: dt.date) -> float | int:
    if isinstance(value, dt.datetime):
        delta = value.replace(tzinfo=None) - _EPOCH
        return delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400
    return (value - _EPOCH.date()).days


@dataclass
class _Sheet:
    name: str
    widths: Sequence[float]
    freeze_row: int  # the first row below the frozen pane, 0 for none
    print_title_row: int | None
    landscape_fit_width: bool
    filter_ref: str | None = None


class SheetWriter:
    """One worksheet being streamed.  Write rows in order, then close (or use ``with``)."""

    def __init__(self, book: WorkbookWriter, sheet: _Sheet, stream: IO[bytes]) -> None:
        self._book = book
        self._sheet = sheet
        self._stream = stream
        self._buffer: list[str] = []
        self.rows_written = 0
        self._closed = False
        head = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_NS}" xmlns:r="{_RNS}">']
        if sheet.landscape_fit_width:
            head.append('<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>')
        if sheet.freeze_row > 1:
            top = f"A{sheet.freeze_row}"
            head.append(
                '<sheetViews><sheetView workbookViewId="0">'
                f'<pane ySplit="{sheet.freeze_row - 1}" topLeftCell="{top}" activePane="bottomLeft" state="frozen"/>'
                f'<selection pane="bottomLeft" activeCell="{top}" sqref="{top}"/></sheetView></sheetViews>'
            )
        else:
            head.append('<sheetViews><sheetView workbookViewId="0"/></sheetViews>')
        head.append('<sheetFormatPr defaultRowHeight="15"/>')
        if sheet.widths:
            head.append("<cols>")
            head += [f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>' for i, w in enumerate(sheet.widths, 1)]
            head.append("</cols>")
        head.append("<sheetData>")
        self._buffer.append("".join(head))

    def write_row(self, values: Sequence[Any], style: Style = Style()) -> None:
        """One row of text cells all in ``style`` (titles, headers): text is never read as a formula."""
        xf = self._book.style(style)
        self.rows_written += 1
        rn = str(self.rows_written)
        cells = [
            f'<c r="{column_letter(j)}{rn}" s="{xf}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(str(v))}</t></is></c>'
            for j, v in enumerate(values, 1)
            if v is not None
        ]
        self._buffer.append(f'<row r="{rn}">{"".join(cells)}</row>')

    def write_rows(self, rows: Iterable[Sequence[Any]], columns: Sequence[CellFormats], *, label: str = "") -> int:
        """Stream data rows formatted per column; returns how many were written.

        A row with more values than ``columns`` is refused with a TemplateError
        naming the sheet (``label``) and the data row.
        """
        style = self._book.style
        ncols = len(columns)
        letters = [column_letter(j) for j in range(1, ncols + 1)]
        num = [style(Style(number_format=c.number)) for c in columns]
        day = [style(Style(number_format=c.date)) for c in columns]
        moment = [style(Style(number_format=c.datetime)) for c in columns]
        clock = [style(Style(number_format=c.time)) for c in columns]
        guarded = [style(Style(number_format=c.guarded_text, quote_prefix=True)) for c in columns]
        num_s = [f'" s="{x}"><v>' if x else '"><v>' for x in num]
        bool_s = [f'" s="{x}" t="b"><v>' if x else '" t="b"><v>' for x in num]
        illegal = _ILLEGAL.search
        rn = self.rows_written
        first = rn
        buffer = self._buffer
        date_type, datetime_type, time_type = dt.date, dt.datetime, dt.time
        for values in rows:
            rn += 1
            if len(values) > ncols:
                raise TemplateError(f"sheet {label!r} row {rn - first} has {len(values)} values for {ncols} columns")
            r = str(rn)
            out = [f'<row r="{r}">']
            for j, value in enumerate(values):
                if value is None:
                    continue
                kind = type(value)
                if kind is str:
                    if illegal(value):
                        value = _ILLEGAL.sub("", value)
                    text = escape(value, _XML_ESCAPES)
                    if value[:1] in ("=", "+", "-", "@") and value:
                        out.append(
                            f'<c r="{letters[j]}{r}" s="{guarded[j]}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
                        )
                    else:
                        out.append(
                            f'<c r="{letters[j]}{r}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
                        )
                elif kind is bool:
                    out.append(f'<c r="{letters[j]}{r}{bool_s[j]}{1 if value else 0}</v></c>')
                elif kind is int:
                    out.append(f'<c r="{letters[j]}{r}{num_s[j]}{value}</v></c>')
                elif kind is float or kind is Decimal:
                    if value.is_finite() if kind is Decimal else math.isfinite(value):
                        out.append(
                            f'<c r="{letters[j]}{r}{num_s[j]}{value!r}</v></c>'
                            if kind is float
                            else f'<c r="{letters[j]}{r}{num_s[j]}{value}</v></c>'
                        )
                    else:
                        out.append(self._text_cell(letters[j], r, str(value)))
                elif kind is date_type:
                    if value < _FIRST_SERIAL_DATE:
                        out.append(self._text_cell(letters[j], r, value.isoformat()))
                    else:
                        out.append(f'<c r="{letters[j]}{r}" s="{day[j]}"><v>{_serial(value)}</v></c>')
                elif kind is datetime_type:
                    if value.date() < _FIRST_SERIAL_DATE:
                        out.append(self._text_cell(letters[j], r, value.replace(tzinfo=None).isoformat(sep=" ")))
                    else:
                        out.append(f'<c r="{letters[j]}{r}" s="{moment[j]}"><v>{_serial(value)!r}</v></c>')
                elif kind is time_type:
                    seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
                    out.append(f'<c r="{letters[j]}{r}" s="{clock[j]}"><v>{seconds / 86400!r}</v></c>')
                else:
                    out.append(
                        self._other(value, letters[j], r, num_s[j], bool_s[j], day[j], moment[j], label, rn - first)
                    )
            out.append("</row>")
            buffer.append("".join(out))
            if len(buffer) >= _BATCH_ROWS:
                self._flush()
        self.rows_written = rn
        return rn - first

    @staticmethod
    def _text_cell(letter: str, r: str, text: str) -> str:
        return f'<c r="{letter}{r}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(text)}</t></is></c>'

    def _other(
        self, value: Any, letter: str, r: str, num_s: str, bool_s: str, day: int, moment: int, label: str, row: int
    ) -> str:
        # Subclasses of the plain types (an IntEnum, a str Enum, a pandas Timestamp) land here.
        if isinstance(value, bool):
            return f'<c r="{letter}{r}{bool_s}{1 if value else 0}</v></c>'
        if isinstance(value, str):
            return self._text_cell(letter, r, str.__str__(value))
        if isinstance(value, (int, float, Decimal)):
            number = float(value) if isinstance(value, float) else value
            if isinstance(number, float) and not math.isfinite(number):
                return self._text_cell(letter, r, str(number))
            return f'<c r="{letter}{r}{num_s}{int(number) if isinstance(number, int) else number!r}</v></c>'
        if isinstance(value, dt.datetime):
            plain = dt.datetime(*value.timetuple()[:6], value.microsecond)
            return f'<c r="{letter}{r}" s="{moment}"><v>{_serial(plain)!r}</v></c>'
        if isinstance(value, dt.date):
            return f'<c r="{letter}{r}" s="{day}"><v>{_serial(dt.date(value.year, value.month, value.day))}</v></c>'
        raise TemplateError(f"sheet {label!r} row {row}: cannot put a {type(value).__name__} value in a cell")

    def set_filter(self, ref: str) -> None:
        """An autofilter over ``ref`` (e.g. ``A3:G100``)."""
        self._sheet.filter_ref = ref

    def _flush(self) -> None:
        if self._buffer:
            self._stream.write("".join(self._buffer).encode("utf-8"))
            self._buffer.clear()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        tail = ["</sheetData>"]
        if self._sheet.filter_ref:
            tail.append(f'<autoFilter ref="{self._sheet.filter_ref}"/>')
        tail.append('<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/>')
        if self._sheet.landscape_fit_width:
            tail.append('<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>')
        tail.append("</worksheet>")
        self._buffer.append("".join(tail))
        self._flush()
        self._stream.close()
        self._book._sheet_closed()

    def __enter__(self) -> SheetWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._closed = True
            self._stream.close()
            self._book._sheet_closed()


class WorkbookWriter:
    """An .xlsx package written to ``out`` (a path or a binary file), one sheet at a time.

    Use as a context manager; on an error the package is not finished and a
    file written to a path is removed.
    """

    def __init__(self, out: str | os.PathLike[str] | IO[bytes], *, compresslevel: int = 1) -> None:
        self._path = os.fspath(out) if isinstance(out, (str, os.PathLike)) else None
        self._zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._styles = _Styles()
        self._sheets: list[_Sheet] = []
        self._open = False
        self._names: set[str] = set()

    def style(self, style: Style) -> int:
        return self._styles.index(style)

    def sheet(
        self,
        name: str,
        widths: Sequence[float] = (),
        *,
        freeze_row: int = 0,
        print_title_row: int | None = None,
        landscape_fit_width: bool = False,
    ) -> SheetWriter:
        """Start the next sheet; ``freeze_row`` is the first row below the frozen pane (0: none)."""
        if self._open:
            raise TemplateError("finish the previous sheet before starting another")
        if not name or len(name) > 31 or name.lower() in self._names or re.search(r"[\[\]:*?/\\]", name):
            raise TemplateError(f"sheet name {name!r} is not one Excel accepts")
        self._names.add(name.lower())
        sheet = _Sheet(name, widths, freeze_row, print_title_row, landscape_fit_width)
        self._sheets.append(sheet)
        self._open = True
        stream = self._zip.open(f"xl/worksheets/sheet{len(self._sheets)}.xml", "w")
        return SheetWriter(self, sheet, stream)

    def _sheet_closed(self) -> None:
        self._open = False

    def close(self) -> None:
        if not self._sheets:
            raise TemplateError("a workbook needs at least one sheet")
        n = len(self._sheets)
        z = self._zip
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
            + "".join(
                f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_CT}.worksheet+xml"/>'
                for i in range(1, n + 1)
            )
            + '<Override PartName="/docProps/app.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
            "</Types>",
        )
        z.writestr(
            "_rels/.rels",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{_PKG_RNS}">'
            f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="xl/workbook.xml"/>'
            f'<Relationship Id="rId2" Type="{_DOC_REL}/extended-properties" Target="docProps/app.xml"/>'
            "</Relationships>",
        )
        z.writestr(
            "docProps/app.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            "<Application>Grantkeeper</Application></Properties>",
        )
        rels = [
            f'<Relationship Id="rId{i}" Type="{_DOC_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, n + 1)
        ]
        rels.append(f'<Relationship Id="rId{n + 1}" Type="{_DOC_REL}/styles" Target="styles.xml"/>')
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{_PKG_RNS}">'
            + "".join(rels)
            + "</Relationships>",
        )
        sheets, names = [], []
        for i, s in enumerate(self._sheets):
            sheets.append(f'<sheet name={quoteattr(s.name)} sheetId="{i + 1}" r:id="rId{i + 1}"/>')
            quoted = "'" + s.name.replace("'", "''") + "'"
            if s.filter_ref:
                a, _, b = s.filter_ref.partition(":")
                ref = _absolute(a) + (":" + _absolute(b) if b else "")
                names.append(
                    f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">{escape(quoted)}!{ref}</definedName>'
                )
            if s.print_title_row:
                row = s.print_title_row
                names.append(
                    f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">{escape(quoted)}!${row}:${row}</definedName>'
                )
        z.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{_NS}" xmlns:r="{_RNS}">'
            '<bookViews><workbookView activeTab="0"/></bookViews>'
            f"<sheets>{''.join(sheets)}</sheets>"
            + (f"<definedNames>{''.join(names)}</definedNames>" if names else "")
            + '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>',
        )
        z.writestr("xl/styles.xml", self._styles.xml())
        z.close()

    def abandon(self) -> None:
        """Stop without finishing; a file written to a path is removed."""
        try:
            self._zip.close()
        except Exception:  # noqa: BLE001 - the package is being thrown away
            pass
        if self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass

    def __enter__(self) -> WorkbookWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


def _absolute(ref: str) -> str:
    m = re.fullmatch(r"([A-Z]+)(\d+)", ref)
    return f"${m.group(1)}${m.group(2)}" if m else ref
