"""Rewrite one worksheet part in a single streamed pass, holding only a window of it in memory.

The part is read as decompressed chunks and written straight into a deflate
stream.  Rows that need no change are copied byte for byte; rows that do (cells
written, row hidden, formula caches dropped) are parsed with the hardened
parser a batch at a time, inside a copy of the sheet's own root and sheetData
start tags so every namespace prefix means what it meant, then re-serialised.
Memory is bounded by the chunk size, one batch of rows and the compressed
output, whatever the size of the sheet.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.cells import CellWrite, edit_row, strip_row_caches
from exports.xlsx.inspector import q
from exports.xlsx.package import CompressedPart
from exports.xlsx.safezip import parse_xml
from exports.xlsx.scan import SheetScan

__all__ = ["CompressedPart", "SheetEdits", "rewrite_sheet"]

_START_TAG = re.compile(rb"<([^\s/>!?<]+)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>")
_R_ATTR = re.compile(rb"\sr\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_SPECIAL = re.compile(rb"<[!?]")  # a comment, CDATA section or processing instruction
_REF_ATTR = re.compile(rb"(\sref\s*=\s*)([\"'])[^\"']*\2")
_MAX_TAG = 4 * 1024 * 1024  # a start tag longer than this is not a worksheet's
_COMPACT_AT = 512 * 1024  # drop the consumed part of the window past this many bytes
_BATCH_BYTES = 512 * 1024
_BATCH_ROWS = 2000
_NAME_END = b" \t\r\n/>"


@dataclass
class SheetEdits:
    """The changes to make to one sheet, decided and checked before streaming starts."""

    writes: dict[int, list[CellWrite]] = field(default_factory=dict)  # row -> writes sorted by column
    hide: set[int] = field(default_factory=set)
    strip_caches: bool = False
    dimension: str | None = None  # the new dimension ref, None to keep it


def _replace_ref(ref: bytes) -> Callable[[re.Match[bytes]], bytes]:
    return lambda a: a.group(1) + a.group(2) + ref + a.group(2)


class _Deflate:
    def __init__(self) -> None:
        self._comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._out: list[bytes] = []
        self.crc = 0
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        if len(data):
            self.crc = zlib.crc32(data, self.crc)
            self.size += len(data)
            chunk = self._comp.compress(data)
            if chunk:
                self._out.append(chunk)

    def finish(self) -> CompressedPart:
        self._out.append(self._comp.flush())
        return CompressedPart(tuple(self._out), self.crc, self.size)


class _Rewriter:
    def __init__(self, chunks: Iterable[bytes], scan: SheetScan, edits: SheetEdits, part: str) -> None:
        self.chunks: Iterator[bytes] = iter(chunks)
        self.buf = b""
        self.eof = False
        self.pos = 0  # where parsing has got to
        self.mark = 0  # bytes before this are already written
        self.out = _Deflate()
        self.part = part
        self.scan = scan
        self.edits = edits
        self.root_q = scan.root_qname.encode()
        self.sd_q = (scan.sheet_data_qname or "sheetData").encode()
        self.row_q = scan.row_qname.encode()
        self.dim_q = scan.dimension_qname.encode()
        self.row_open = b"<" + self.row_q
        self.row_close = b"</" + self.row_q + b">"
        self.sd_close = b"</" + self.sd_q
        prefix = scan.formula_qname.rpartition(":")[0]
        self.formula_re = re.compile(b"<" + (re.escape(prefix.encode()) + b":" if prefix else b"") + rb"f[\s/>]")
        self.row_tag = q("row")
        self.root_open = b""
        self.sd_open = b""
        # Rows to touch that the template does not have, in order.
        self.created = sorted((set(edits.writes) | edits.hide) - scan.existing_rows)
        self.next_created = 0
        self.batch: list[tuple[int, bytes | None]] = []
        self.batch_bytes = 0

    # - the window over the decompressed part -

    def _more(self) -> bool:
        if self.eof:
            return False
        for chunk in self.chunks:
            if chunk:
                self.buf += chunk
                return True
        self.eof = True
        return False

    def _need(self, end: int) -> None:
        while len(self.buf) < end and self._more():
            pass

    def _find(self, sub: bytes, start: int) -> int:
        searched = start
        while True:
            i = self.buf.find(sub, searched)
            if i >= 0:
                return i
            searched = max(start, len(self.buf) - len(sub) + 1)
            if not self._more():
                raise self._damaged()

    def _tag(self, start: int) -> re.Match[bytes]:
        while True:
            m = _START_TAG.match(self.buf, start)
            if m is not None:
                return m
            if len(self.buf) - start > _MAX_TAG or not self._more():
                raise self._damaged()

    def _starts(self, i: int, prefix: bytes) -> bool:
        self._need(i + len(prefix) + 1)
        return self.buf.startswith(prefix, i)

    def _is_element(self, i: int, qname: bytes) -> bool:
        """Does an element named exactly ``qname`` start at i (or end, for b"</" + qname)?"""
        end = i + 1 + len(qname)
        self._need(end + 1)
        return self.buf.startswith(qname, i + 1) and self.buf[end : end + 1] in (
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b"/",
            b">",
        )

    def _damaged(self) -> TemplateError:
        return TemplateError(
            _(
                "%(part)s: the sheet's XML could not be followed; open it in Excel and save it again",
                part=self.part,
            )
        )

    def _skip_special(self, i: int) -> int | None:
        """End of a comment, CDATA section or processing instruction starting at i, else None."""
        if self._starts(i, b"<!--"):
            return self._find(b"-->", i + 4) + 3
        if self._starts(i, b"<![CDATA["):
            return self._find(b"]]>", i + 9) + 3
        if self._starts(i, b"<?"):
            return self._find(b"?>", i + 2) + 2
        if self._starts(i, b"<!"):
            raise TemplateError(_("%(part)s: XML with a DOCTYPE declaration is refused", part=self.part))
        return None

    def _element_end(self, start: int) -> int:
        """Given the position just after an element's start tag, the position just after its end tag."""
        depth, pos = 1, start
        while depth:
            i = self._find(b"<", pos)
            special = self._skip_special(i)
            if special is not None:
                pos = special
            elif self._starts(i, b"</"):
                pos = self._find(b">", i) + 1
                depth -= 1
            else:
                m = self._tag(i)
                pos = m.end()
                if not m.group(3):
                    depth += 1
        return pos

    def _write_through(self, end: int) -> None:
        if end > self.mark:
            self.out.write(memoryview(self.buf)[self.mark : end])
            self.mark = end

    def _compact(self) -> None:
        if self.pos > _COMPACT_AT:
            self._write_through(self.pos)
            self.buf = self.buf[self.pos :]
            self.mark -= self.pos
            self.pos = 0

    # - the pass -

    def run(self) -> CompressedPart:
        self._prelude()
        self._write_through(len(self.buf))
        for chunk in self.chunks:
            self.out.write(chunk)
        return self.out.finish()

    def _prelude(self) -> None:
        depth = 0
        while True:
            i = self._find(b"<", self.pos)
            special = self._skip_special(i)
            if special is not None:
                self.pos = special
                continue
            if self._starts(i, b"</"):
                self.pos = self._find(b">", i) + 1
                depth -= 1
                if depth <= 0:
                    raise self._damaged()  # the root closed without a sheetData
                continue
            m = self._tag(i)
            self.pos = m.end()
            name, self_closing = m.group(1), bool(m.group(3))
            if depth == 0:
                if self_closing:
                    raise self._damaged()
                self.root_open = m.group(0)
            elif depth == 1 and name == self.dim_q and self.edits.dimension is not None:
                tag = m.group(0)
                new = _REF_ATTR.sub(_replace_ref(self.edits.dimension.encode()), tag, count=1)
                if new != tag:
                    self._write_through(i)
                    self.out.write(new)
                    self.mark = m.end()
            elif depth == 1 and name == self.sd_q:
                if self_closing:
                    # An empty sheet: open it up when there is something to put in.
                    if self.created:
                        self._write_through(i)
                        self.sd_open = m.group(0)[:-2].rstrip() + b">"
                        self.out.write(self.sd_open)
                        self.mark = m.end()
                        self._queue_created(None)
                        self._flush()
                        self.out.write(self.sd_close + b">")
                    else:
                        self.sd_open = m.group(0)
                    return
                self.sd_open = m.group(0)
                self._rows()
                return
            if not self_closing:
                depth += 1

    def _rows(self) -> None:
        last = 0
        writes, hide, strip = self.edits.writes, self.edits.hide, self.edits.strip_caches
        while True:
            self._compact()
            i = self._find(b"<", self.pos)
            if self.batch and i > self.pos and self.buf[self.pos : i].strip():
                self._flush()
            if self._is_element(i, self.row_q):
                m = self._tag(i)
                r = _R_ATTR.search(self.buf, m.start() + len(self.row_open), m.end())
                r_text = (r.group(1) if r.group(1) is not None else r.group(2)) if r is not None else b""
                num = int(r_text) if r_text.isdigit() else last + 1
                if m.group(3):
                    end = m.end()
                else:
                    k = self._find(self.row_close, m.end())
                    if _SPECIAL.search(self.buf, m.end(), k) is not None:
                        end = self._element_end(m.end())
                    else:
                        end = k + len(self.row_close)
                queued = self._queue_created(num)
                edit = (
                    num in writes
                    or num in hide
                    or (strip and self.formula_re.search(self.buf, m.end(), end) is not None)
                    # A row placed after a new one must say its number, or it would move up.
                    or (queued and r is None)
                )
                if edit:
                    if not self.batch:
                        self._write_through(i)
                    self.batch.append((num, self.buf[i:end]))
                    self.batch_bytes += end - i
                    self.mark = end
                    if self.batch_bytes > _BATCH_BYTES or len(self.batch) > _BATCH_ROWS:
                        self._flush()
                else:
                    self._flush()
                self.pos = end
                last = num
                continue
            if self._is_element(i, b"/" + self.sd_q):
                if self._queue_created(None):
                    if not self.batch:
                        self._write_through(i)
                self._flush()
                self.pos = i
                return
            # Anything else inside sheetData (a comment, say) is kept as it is.
            self._flush()
            special = self._skip_special(i)
            if special is not None:
                self.pos = special
            elif self._starts(i, b"</"):
                raise self._damaged()
            else:
                m = self._tag(i)
                self.pos = m.end() if m.group(3) else self._element_end(m.end())

    def _queue_created(self, before: int | None) -> bool:
        """Queue the rows to create that come before row ``before`` (all when None); True if any."""
        start = self.next_created
        while self.next_created < len(self.created) and (before is None or self.created[self.next_created] < before):
            if not self.batch:
                self._write_through(self.pos)
            self.batch.append((self.created[self.next_created], None))
            self.next_created += 1
        return self.next_created > start

    def _flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        body = b"".join(raw for _, raw in batch if raw is not None)
        tail = self.sd_close + b"></" + self.root_q + b">"
        root = parse_xml(self.root_open + self.sd_open + body + tail, self.part)
        sheet_data = root[0]
        parsed = iter(list(sheet_data))
        ordered: list[etree._Element] = []
        for num, raw in batch:
            row_el = next(parsed) if raw is not None else etree.Element(self.row_tag, r=str(num))
            if row_el.get("r") is None:
                row_el.set("r", str(num))
            if num in self.edits.hide:
                row_el.set("hidden", "1")
            edit_row(row_el, num, self.edits.writes.get(num, []))
            if self.edits.strip_caches:
                strip_row_caches(row_el, self.scan.external_si)
            ordered.append(row_el)
        sheet_data[:] = ordered
        text = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
        head = text.index(b">", text.index(b">") + 1) + 1
        if not text.endswith(tail):
            raise self._damaged()
        self.out.write(memoryview(text)[head : len(text) - len(tail)])


def rewrite_sheet(chunks: Iterable[bytes], scan: SheetScan, edits: SheetEdits, part: str) -> CompressedPart:
    """Apply ``edits`` to the worksheet streamed as ``chunks``; the result is already deflated.

    ``scan`` is the first pass over the same part (names as written, rows that
    exist, shared formulas reading other workbooks).  Raises TemplateError when
    the XML cannot be followed; nothing is returned half-written.
    """
    if scan.sheet_data_qname is None:
        raise TemplateError(_("sheet %(sheet)s has no cell data section; it cannot be filled", sheet=repr(scan.name)))
    return _Rewriter(chunks, scan, edits, part).run()
