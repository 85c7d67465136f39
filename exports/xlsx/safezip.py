"""Open an uploaded .xlsx/.xlsm without trusting it: bounded unzip, hardened XML parsing, raw part access.

The guards themselves (limits, the zip container checks, the hardened parser, the DOCTYPE
refusal) are ``core.workbooks``'s, the one safe reader every upload path uses; this module
adds only what the package reader needs on top (reading, streaming and copying parts raw,
with a size and checksum check per part) and says refusals as ``TemplateError``.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Generator, Iterator, Sequence

from lxml import etree

import core.workbooks as workbooks
from core.formatting import gettext as _
from core.workbooks import DEFAULT_LIMITS, Limits, UnsafeWorkbook, xml_parser
from exports.errors import TemplateError

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "SafeZip",
    "open_workbook_zip",
    "xml_parser",
    "parse_xml",
]

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIG = b"PK\x03\x04"
_CHUNK = 256 * 1024
_XML_SUFFIXES = (".xml", ".rels", ".vml")


def parse_xml(data: bytes, part: str = "XML") -> etree._Element:
    """Parse a complete XML document with the hardened parser; DOCTYPE is refused."""
    try:
        root: etree._Element = workbooks.parse_xml(data, part)
    except UnsafeWorkbook as exc:
        raise TemplateError(str(exc)) from None
    return root


class SafeZip:
    """A validated view of a workbook zip.

    Construction checks the central directory only (cheap, ``core.workbooks.check_container``);
    every read then decompresses with a hard output cap, so a header that lies about sizes
    cannot blow up memory.
    """

    def __init__(self, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.data = data
        self.limits = limits
        try:
            infos = workbooks.check_container(data, limits=limits, what="workbook")
        except UnsafeWorkbook as exc:
            raise TemplateError(str(exc)) from None
        zf = zipfile.ZipFile(io.BytesIO(data))  # the directory, already checked
        self.infos: list[zipfile.ZipInfo] = infos
        self.comment: bytes = zf.comment or b""
        self._by_name: dict[str, zipfile.ZipInfo] = {i.filename: i for i in infos}
        self._refuse_any_doctype()

    def _refuse_any_doctype(self) -> None:
        """No XML part may carry a DOCTYPE, even one never parsed here (it would be copied into exports).

        Each part is read only up to its root element, through the bounded reader. A part that is
        damaged or not well-formed is left to be refused, in its own words, when it is read.
        """
        for info in self.infos:
            if not info.filename.lower().endswith(_XML_SUFFIXES) or not info.file_size:
                continue
            chunks = self.iter_chunks(info.filename)
            try:
                workbooks.refuse_doctype_before_root(chunks, info.filename)
            except UnsafeWorkbook as exc:
                raise TemplateError(str(exc)) from None
            except (TemplateError, etree.XMLSyntaxError):
                continue
            finally:
                chunks.close()

    # -- part access ---------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Part names in archive order."""
        return [i.filename for i in self.infos]

    def has(self, name: str) -> bool:
        return name in self._by_name

    def info(self, name: str) -> zipfile.ZipInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise TemplateError(_("the workbook has no part %(name)s", name=repr(name))) from None

    def raw(self, name: str) -> bytes:
        """The part's compressed bytes exactly as stored, for byte-for-byte copying."""
        return bytes(self.raw_view(name))

    def raw_view(self, name: str) -> memoryview:
        """The part's compressed bytes as a view of the upload: no copy, however big the part."""
        info = self.info(name)
        offset = info.header_offset
        header = self.data[offset : offset + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIG:
            raise TemplateError(_("the workbook part %(name)s has a damaged local header", name=repr(name)))
        fields = _LOCAL_HEADER.unpack(header)
        start = offset + _LOCAL_HEADER.size + fields[9] + fields[10]
        raw = memoryview(self.data)[start : start + info.compress_size]
        if len(raw) != info.compress_size:
            raise TemplateError(_("the workbook part %(name)s is truncated", name=repr(name)))
        return raw

    def iter_chunks(self, name: str) -> Generator[bytes, None, None]:
        """Decompress a part incrementally, never producing more than its declared size."""
        info = self.info(name)
        raw = self.raw_view(name)
        declared = info.file_size
        produced = 0
        crc = 0
        if info.compress_type == zipfile.ZIP_STORED:
            chunks: Iterator[bytes] = (bytes(raw[i : i + _CHUNK]) for i in range(0, len(raw), _CHUNK))
            for chunk in chunks:
                produced += len(chunk)
                crc = zlib.crc32(chunk, crc)
                yield chunk
        else:
            d = zlib.decompressobj(-15)
            pos = 0
            src: bytes | memoryview
            while True:
                if d.unconsumed_tail:
                    src = d.unconsumed_tail
                elif pos < len(raw):
                    src = raw[pos : pos + _CHUNK]
                    pos += len(src)
                else:
                    break
                try:
                    # max_length caps the output of each step: a bomb cannot expand
                    # more than one chunk beyond what we have already counted.
                    out = d.decompress(src, _CHUNK)
                except zlib.error as exc:
                    raise TemplateError(
                        _("the workbook part %(name)s is damaged (%(problem)s)", name=repr(name), problem=exc)
                    ) from exc
                produced += len(out)
                if produced > declared:
                    raise TemplateError(
                        _("the workbook part %(name)s unpacks to more than its declared size; refused", name=repr(name))
                    )
                crc = zlib.crc32(out, crc)
                if out:
                    yield out
                if d.eof:
                    break
        if produced != declared or crc != info.CRC:
            raise TemplateError(_("the workbook part %(name)s is damaged (size or checksum mismatch)", name=repr(name)))

    def read(self, name: str) -> bytes:
        """The part's uncompressed bytes (bounded by the checked limits)."""
        return b"".join(self.iter_chunks(name))

    def parse(self, name: str) -> etree._Element:
        """Parse a whole XML part with the hardened parser."""
        return parse_xml(self.read(name), name)

    def iterparse(
        self,
        name: str,
        events: tuple[str, ...] = ("end",),
        tag: str | Sequence[str] | None = None,
    ) -> Iterator[tuple[str, etree._Element]]:
        """Stream-parse an XML part (bounded memory if the caller clears elements)."""
        parser = workbooks.xml_pull_parser(events, tag)
        checked = False
        try:
            for chunk in self.iter_chunks(name):
                if not checked:
                    workbooks.prescan_doctype(chunk, name)
                parser.feed(chunk)
                for event, elem in parser.read_events():
                    if not checked:
                        workbooks.refuse_doctype(elem.getroottree().docinfo, name)
                        checked = True
                    yield event, elem
            parser.close()
            for event, elem in parser.read_events():
                yield event, elem
        except UnsafeWorkbook as exc:
            raise TemplateError(str(exc)) from None
        except etree.XMLSyntaxError as exc:
            raise TemplateError(_("%(part)s: not well-formed XML (%(problem)s)", part=name, problem=exc)) from exc


def open_workbook_zip(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SafeZip:
    """Validate an uploaded workbook's zip container and return a safe reader.

    Raises TemplateError for anything that is not a plain, unencrypted,
    reasonably sized OOXML zip.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TemplateError(_("the workbook must be given as bytes"))
    return SafeZip(bytes(data), limits=limits)
