"""Cell styles the filler may add to styles.xml: a date format for dates in General cells, and the quote prefix.

Only ``cellXfs`` grows, by one ``xf`` per style actually needed (a clone of the
cell's own style with one attribute changed); the rest of styles.xml is kept
byte for byte: the new ``xf`` elements are spliced in before ``</cellXfs>`` and
the ``count`` attribute is updated, nothing is re-serialised.
"""

from __future__ import annotations

import copy
import re

from lxml import etree

from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.inspector import NS, is_date_format, q
from exports.xlsx.package import serialise
from exports.xlsx.safezip import SafeZip, parse_xml

__all__ = ["StyleBook", "DATE_FORMAT", "DATETIME_FORMAT"]

# Built-in number formats: Excel shows 14 as the reader's short date and 22 as short
# date and time, so no numFmt needs adding and each funder sees their own convention.
DATE_FORMAT = 14
DATETIME_FORMAT = 22


class StyleBook:
    """The workbook's cellXfs, able to add a date-formatted or quote-prefixed clone of any of them."""

    def __init__(self, xml: bytes, part: str) -> None:
        self.part = part
        self.original = xml
        self.root = parse_xml(xml, part)
        self.cell_xfs = self.root.find("m:cellXfs", NS)
        self.xfs: list[etree._Element] = list(self.cell_xfs.iterfind("m:xf", NS)) if self.cell_xfs is not None else []
        self.custom_formats = {
            int(n.get("numFmtId", "")): n.get("formatCode", "")
            for n in self.root.iterfind("m:numFmts/m:numFmt", NS)
            if (n.get("numFmtId") or "").isdigit()
        }
        self.added: list[etree._Element] = []
        self._memo: dict[tuple[int, str], int] = {}
        # Canonical form of every xf, so a clone identical to an existing style reuses it.
        self._by_form: dict[bytes, int] = {}
        for i, xf in enumerate(self.xfs):
            self._by_form.setdefault(self._form(xf), i)

    @classmethod
    def load(cls, z: SafeZip, part: str | None) -> StyleBook | None:
        """The styles of a package, or None when it has none (styles then stay as they are)."""
        if part is None or not z.has(part):
            return None
        book = cls(z.read(part), part)
        return book if book.cell_xfs is not None and book.xfs else None

    @staticmethod
    def _form(xf: etree._Element) -> bytes:
        return etree.tostring(xf, method="c14n", exclusive=True)

    def _xf(self, index: int) -> etree._Element:
        # A cell pointing past cellXfs is shown with style 0 by Excel; clone that one.
        return self.xfs[index] if 0 <= index < len(self.xfs) else self.xfs[0]

    def _number_format(self, xf: etree._Element) -> int:
        value = xf.get("numFmtId", "0") or "0"
        return int(value) if value.isdigit() else 0

    def is_date(self, index: int) -> bool:
        fmt = self._number_format(self._xf(index))
        return is_date_format(fmt, self.custom_formats.get(fmt))

    def has_quote_prefix(self, index: int) -> bool:
        value = self._xf(index).get("quotePrefix")
        return value is not None and value.strip().lower() in ("1", "true")

    def date_style(self, index: int, with_time: bool) -> int:
        """The style to give a cell of style ``index`` that receives a date: its own if it shows dates."""
        if self.is_date(index):
            return index
        fmt = DATETIME_FORMAT if with_time else DATE_FORMAT
        return self._clone(index, f"date{fmt}", {"numFmtId": str(fmt), "applyNumberFormat": "1"})

    def quote_style(self, index: int) -> int:
        """The style to give a cell of style ``index`` that receives text Excel could read as a formula."""
        if self.has_quote_prefix(index):
            return index
        return self._clone(index, "quote", {"quotePrefix": "1"})

    def _clone(self, index: int, kind: str, attrs: dict[str, str]) -> int:
        key = (index, kind)
        if key in self._memo:
            return self._memo[key]
        clone = copy.deepcopy(self._xf(index))
        for name, value in attrs.items():
            clone.set(name, value)
        form = self._form(clone)
        found = self._by_form.get(form)
        if found is None:
            found = len(self.xfs) + len(self.added)
            self.added.append(clone)
            self._by_form[form] = found
        self._memo[key] = found
        return found

    @property
    def changed(self) -> bool:
        return bool(self.added)

    def serialise(self) -> bytes:
        """styles.xml with the added xf elements spliced in; every other byte as it was."""
        if not self.added:
            return self.original
        assert self.cell_xfs is not None
        prefix = f"{self.cell_xfs.prefix}:" if self.cell_xfs.prefix else ""
        name = re.escape(f"{prefix}cellXfs").encode()
        start = re.search(rb"<" + name + rb"(?:\s[^>]*)?>", self.original)
        end = self.original.rfind(b"</" + f"{prefix}cellXfs".encode())
        total = len(self.xfs) + len(self.added)
        if start is not None and end > start.end() and not start.group(0).endswith(b"/>"):
            tag = start.group(0)
            if re.search(rb"\scount\s*=", tag):
                tag = re.sub(
                    rb"(\scount\s*=\s*)([\"'])[^\"']*\2", rb"\g<1>\g<2>" + str(total).encode() + rb"\g<2>", tag
                )
            out = self.original[: start.start()] + tag + self.original[start.end() : end]
            out += self._added_bytes() + self.original[end:]
            if self._verify(out, total):
                return out
        # Styles written in some unusual way (a comment mentioning cellXfs, say): fall back to
        # a re-serialisation, which keeps the meaning of every other style if not its bytes.
        return self._reserialise(total)

    def _added_bytes(self) -> bytes:
        # Serialised inside a copy of the root so no namespace declaration is repeated on each xf.
        holder = etree.Element(self.root.tag, nsmap=self.root.nsmap)
        for xf in self.added:
            holder.append(copy.deepcopy(xf))
        text = etree.tostring(holder, encoding="UTF-8", xml_declaration=False)
        head = text.index(b">") + 1
        tail = text.rindex(b"</")
        return text[head:tail]

    def _verify(self, out: bytes, total: int) -> bool:
        try:
            root = parse_xml(out, self.part)
        except TemplateError:
            return False
        cell_xfs = root.find("m:cellXfs", NS)
        if cell_xfs is None:
            return False
        xfs = list(cell_xfs.iterfind("m:xf", NS))
        if len(xfs) != total:
            return False
        expected = [*self.xfs, *self.added]
        return all(self._form(a) == self._form(b) for a, b in zip(xfs, expected, strict=True))

    def _reserialise(self, total: int) -> bytes:
        root = parse_xml(self.original, self.part)
        cell_xfs = root.find(q("cellXfs"))
        if cell_xfs is None:
            raise TemplateError(_("%(part)s: the cell styles could not be extended", part=self.part))
        for xf in self.added:
            cell_xfs.append(copy.deepcopy(xf))
        if cell_xfs.get("count") is not None:
            cell_xfs.set("count", str(total))
        return serialise(self.original, root)
