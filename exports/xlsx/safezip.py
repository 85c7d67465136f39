"""Open an uploaded .xlsx/.xlsm without trusting it: bounded unzip, hardened XML parsing, raw part access."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lxml import etree

from exports.errors import TemplateError

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "SafeZip",
    "open_workbook_zip",
    "xml_parser",
    "parse_xml",
]


@dataclass(frozen=True)
class Limits:
    """Caps applied to an uploaded workbook before anything is decompressed."""

    max_total_uncompressed: int = 200 * 1024 * 1024
    max_part_uncompressed: int = 200 * 1024 * 1024
    # Real sheet XML compresses 5-30:1; deflate bombs reach ~1000:1.  The ratio is
    # only judged on parts big enough to matter, so tiny highly regular parts pass.
    max_ratio: float = 250.0
    ratio_min_size: int = 1024 * 1024
    max_parts: int = 5000


DEFAULT_LIMITS = Limits()

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIG = b"PK\x03\x04"
_OLE_SIG = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 256 * 1024


def xml_parser() -> etree.XMLParser:
    """The only XML parser the exports package uses on uploaded content.

    No entity substitution, no DTD loading, no network, and libxml2's default
    size limits kept (huge_tree=False), so entity expansion and external
    entity tricks cannot run; documents with a DOCTYPE are refused separately.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def _refuse_doctype(docinfo: etree.DocInfo, part: str) -> None:
    # OOXML never needs a DTD; one in an upload is an entity-expansion or XXE attempt.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise TemplateError(f"{part}: XML with a DOCTYPE declaration is refused (possible entity-expansion attack)")


def _prescan_doctype(head: bytes, part: str) -> None:
    # Cheap early refusal before libxml2 sees the bytes; the docinfo check after
    # parsing still catches encodings this byte scan cannot read (UTF-16).
    if b"<!doctype" in head[:65536].lower():
        raise TemplateError(f"{part}: XML with a DOCTYPE declaration is refused (possible entity-expansion attack)")


def parse_xml(data: bytes, part: str = "XML") -> etree._Element:
    """Parse a complete XML document with the hardened parser; DOCTYPE is refused."""
    _prescan_doctype(data, part)
    try:
        root = etree.fromstring(data, parser=xml_parser())
    except etree.XMLSyntaxError as exc:
        raise TemplateError(f"{part}: not well-formed XML ({exc})") from exc
    _refuse_doctype(root.getroottree().docinfo, part)
    return root


class SafeZip:
    """A validated view of a workbook zip.

    Construction checks the central directory only (cheap); every read then
    decompresses with a hard output cap, so a header that lies about sizes
    cannot blow up memory.
    """

    def __init__(self, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.data = data
        self.limits = limits
        if data[:8] == _OLE_SIG:
            raise TemplateError(
                "the workbook is password-protected (encrypted); remove the password to open, then upload it again"
            )
        if data[:4] != _LOCAL_SIG:
            raise TemplateError("not an Excel workbook: .xlsx/.xlsm files are zip archives and this is not one")
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise TemplateError(f"not an Excel workbook: damaged zip archive ({exc})") from exc
        infos = zf.infolist()
        if len(infos) > limits.max_parts:
            raise TemplateError(f"the workbook has {len(infos)} parts; more than {limits.max_parts} is refused")
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            self._check_name(name)
            if name.lower() in seen:
                raise TemplateError(f"the workbook contains the part {name!r} twice")
            seen.add(name.lower())
            if info.flag_bits & 0x1:
                raise TemplateError(f"the workbook part {name!r} is encrypted; encrypted zips are refused")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise TemplateError(f"the workbook part {name!r} uses an unsupported compression method")
            if info.file_size > limits.max_part_uncompressed:
                raise TemplateError(
                    f"the workbook part {name!r} unpacks to {info.file_size} bytes; "
                    f"the limit is {limits.max_part_uncompressed}"
                )
            if info.file_size >= limits.ratio_min_size and info.file_size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                raise TemplateError(
                    f"the workbook part {name!r} has a compression ratio of "
                    f"{info.file_size / max(info.compress_size, 1):.0f}:1; this looks like a zip bomb"
                )
            total += info.file_size
            if total > limits.max_total_uncompressed:
                raise TemplateError(
                    f"the workbook unpacks to more than {limits.max_total_uncompressed // (1024 * 1024)} MB; refused"
                )
        self.infos: list[zipfile.ZipInfo] = infos
        self.comment: bytes = zf.comment or b""
        self._by_name: dict[str, zipfile.ZipInfo] = {i.filename: i for i in infos}

    @staticmethod
    def _check_name(name: str) -> None:
        bad = (
            not name
            or "\x00" in name
            or "\\" in name
            or name.startswith("/")
            or (len(name) > 1 and name[1] == ":")
            or any(seg == ".." for seg in name.split("/"))
        )
        if bad:
            raise TemplateError(f"the workbook contains a part with an unsafe name {name!r} (path traversal)")

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
            raise TemplateError(f"the workbook has no part {name!r}") from None

    def raw(self, name: str) -> bytes:
        """The part's compressed bytes exactly as stored, for byte-for-byte copying."""
        return bytes(self.raw_view(name))

    def raw_view(self, name: str) -> memoryview:
        """The part's compressed bytes as a view of the upload: no copy, however big the part."""
        info = self.info(name)
        offset = info.header_offset
        header = self.data[offset : offset + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIG:
            raise TemplateError(f"the workbook part {name!r} has a damaged local header")
        fields = _LOCAL_HEADER.unpack(header)
        start = offset + _LOCAL_HEADER.size + fields[9] + fields[10]
        raw = memoryview(self.data)[start : start + info.compress_size]
        if len(raw) != info.compress_size:
            raise TemplateError(f"the workbook part {name!r} is truncated")
        return raw

    def iter_chunks(self, name: str) -> Iterator[bytes]:
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
                    raise TemplateError(f"the workbook part {name!r} is damaged ({exc})") from exc
                produced += len(out)
                if produced > declared:
                    raise TemplateError(f"the workbook part {name!r} unpacks to more than its declared size; refused")
                crc = zlib.crc32(out, crc)
                if out:
                    yield out
                if d.eof:
                    break
        if produced != declared or crc != info.CRC:
            raise TemplateError(f"the workbook part {name!r} is damaged (size or checksum mismatch)")

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
        parser = etree.XMLPullParser(
            events=events,
            tag=tag,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
        checked = False
        try:
            for chunk in self.iter_chunks(name):
                if not checked:
                    _prescan_doctype(chunk, name)
                parser.feed(chunk)
                for event, elem in parser.read_events():
                    if not checked:
                        _refuse_doctype(elem.getroottree().docinfo, name)
                        checked = True
                    yield event, elem
            parser.close()
            for event, elem in parser.read_events():
                yield event, elem
        except etree.XMLSyntaxError as exc:
            raise TemplateError(f"{name}: not well-formed XML ({exc})") from exc


def open_workbook_zip(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SafeZip:
    """Validate an uploaded workbook's zip container and return a safe reader.

    Raises TemplateError for anything that is not a plain, unencrypted,
    reasonably sized OOXML zip.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TemplateError("the workbook must be given as bytes")
    return SafeZip(bytes(data), limits=limits)
