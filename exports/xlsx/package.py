"""Package surgery: edit workbook-level parts (calcPr, relationships, content types) and re-zip, copying untouched parts raw."""

from __future__ import annotations

import posixpath
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lxml import etree

from core.formatting import gettext as _
from exports.errors import TemplateError
from exports.xlsx.inspector import CT_NS, PKG_REL_NS, q, truthy
from exports.xlsx.safezip import SafeZip, parse_xml

__all__ = [
    "CompressedPart",
    "drop_content_type",
    "drop_relationship",
    "request_full_calc",
    "serialise",
    "write_package",
]


@dataclass(frozen=True)
class CompressedPart:
    """A part already deflated (raw deflate, as stored in a zip, in pieces), with its CRC-32 and size."""

    chunks: tuple[bytes, ...]
    crc: int
    size: int

    @property
    def raw(self) -> bytes:
        return b"".join(self.chunks)


def serialise(original: bytes, root: etree._Element) -> bytes:
    # Keep the original XML declaration byte for byte; lxml would rewrite its quoting.
    head = b""
    if original.startswith(b"<?xml"):
        end = original.find(b"?>") + 2
        while end < len(original) and original[end : end + 1] in (b"\r", b"\n", b" ", b"\t"):
            end += 1
        head = original[:end]
    else:
        head = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    return head + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


# -- workbook-level edits ---------------------------------------------------------

# CT_Workbook children in schema order; calcPr goes before the first of these that exists.
_AFTER_CALCPR = [
    "oleSize",
    "customWorkbookViews",
    "pivotCaches",
    "smartTagPr",
    "smartTagTypes",
    "webPublishing",
    "fileRecoveryPr",
    "webPublishObjects",
    "extLst",
]


def request_full_calc(wb_xml: bytes, part: str) -> bytes | None:
    """Set calcPr fullCalcOnLoad="1"; None when it is already set (part stays untouched)."""
    root = parse_xml(wb_xml, part)
    calc = root.find(q("calcPr"))
    if calc is not None and truthy(calc.get("fullCalcOnLoad")):
        return None
    if calc is None:
        calc = etree.Element(q("calcPr"))
        successor = next(
            (el for el in root if isinstance(el.tag, str) and etree.QName(el).localname in _AFTER_CALCPR), None
        )
        if successor is not None:
            successor.addprevious(calc)
        else:
            root.append(calc)
    calc.set("fullCalcOnLoad", "1")
    return serialise(wb_xml, root)


def drop_relationship(xml: bytes, part: str, target_part: str, base_part: str) -> bytes:
    root = parse_xml(xml, part)
    for rel in list(root.iterfind(f"{{{PKG_REL_NS}}}Relationship")):
        target = rel.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else _join(base_part, target)
        if resolved == target_part:
            root.remove(rel)
    return serialise(xml, root)


def _join(base_part: str, target: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def drop_content_type(xml: bytes, target_part: str) -> bytes:
    root = parse_xml(xml, "[Content_Types].xml")
    for el in list(root.iterfind(f"{{{CT_NS}}}Override")):
        if el.get("PartName", "").lstrip("/") == target_part:
            root.remove(el)
    return serialise(xml, root)


# -- zip output ---------------------------------------------------------------------

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")


class _ZipWriter:
    """Minimal zip writer that can copy a part's compressed bytes unchanged."""

    def __init__(self) -> None:
        self.chunks: list[bytes | memoryview] = []
        self.central: list[bytes] = []
        self.offset = 0

    @staticmethod
    def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
        y, mo, d, h, mi, s = date_time
        if y < 1980:
            y, mo, d, h, mi, s = 1980, 1, 1, 0, 0, 0
        return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d

    def add(
        self, info: zipfile.ZipInfo, raw: bytes | memoryview | tuple[bytes, ...], crc: int, size: int, method: int
    ) -> None:
        pieces = raw if isinstance(raw, tuple) else (raw,)
        raw_size = sum(len(p) for p in pieces)
        try:
            name = info.filename.encode("ascii")
            flags = info.flag_bits & ~0x8
        except UnicodeEncodeError:
            name = info.filename.encode("utf-8")
            flags = (info.flag_bits & ~0x8) | 0x800
        dostime, dosdate = self._dos(info.date_time)
        if self.offset + raw_size > 0xFFFFFFFF:
            raise TemplateError(_("the filled workbook would exceed 4 GB"))
        # A part stored uncompressed in the template and deflated by us needs version 2.0 to extract.
        extract = max(info.extract_version, 20) if method == 8 else info.extract_version
        header = _LOCAL.pack(b"PK\x03\x04", extract, flags, method, dostime, dosdate, crc, raw_size, size, len(name), 0)
        comment = info.comment or b""
        self.central.append(
            _CENTRAL.pack(
                b"PK\x01\x02",
                info.create_version,
                info.create_system,
                extract,
                flags,
                method,
                dostime,
                dosdate,
                crc,
                raw_size,
                size,
                len(name),
                0,
                len(comment),
                0,
                info.internal_attr,
                info.external_attr & 0xFFFFFFFF,
                self.offset,
            )
            + name
            + comment
        )
        self.chunks += [header, name, *pieces]
        self.offset += len(header) + len(name) + raw_size

    def add_new(self, info: zipfile.ZipInfo, data: bytes) -> None:
        if info.compress_type == 0:
            self.add(info, data, zlib.crc32(data), len(data), 0)
            return
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw = comp.compress(data) + comp.flush()
        self.add(info, raw, zlib.crc32(data), len(data), 8)

    def finish(self, comment: bytes = b"") -> bytes:
        cd = b"".join(self.central)
        n = len(self.central)
        end = _END.pack(b"PK\x05\x06", 0, 0, n, n, len(cd), self.offset, len(comment)) + comment
        return b"".join(self.chunks) + cd + end


def write_package(z: SafeZip, replaced: Mapping[str, bytes | CompressedPart], drop: Iterable[str] = ()) -> bytes:
    """Re-zip ``z`` with ``replaced`` parts re-compressed, ``drop`` left out, every other part copied raw.

    A replacement given as a CompressedPart (a sheet streamed straight into
    deflate) is stored as it is.
    """
    dropped = set(drop)
    out = _ZipWriter()
    for info in z.infos:
        name = info.filename
        if name in dropped:
            continue
        if name in replaced:
            new = replaced[name]
            if isinstance(new, CompressedPart):
                out.add(info, new.chunks, new.crc, new.size, 8)
            else:
                out.add_new(info, new)
        else:
            out.add(info, z.raw_view(name), info.CRC, info.file_size, info.compress_type)
    return out.finish(z.comment)
