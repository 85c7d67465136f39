"""The one guarded way to open an uploaded workbook (or any Office Open XML file) from any domain.

Every upload path that looks inside an .xlsx (evidence's people-list check, the budget,
actuals and rates imports) goes through ``open_workbook`` (or ``check_package`` first for
.docx and .pptx), so a hostile file is refused in words before openpyxl sees it:

- not a zip, an encrypted Office file or an old binary .xls;
- a part named with a path (``../../etc/passwd``, ``C:``, a backslash or NUL);
- too many parts, a part or a whole that unpacks beyond the limits, or a compression
  ratio only a zip bomb has;
- any XML part with a DOCTYPE (Office never writes one; it is how entity expansion,
  "billion laughs", and external entities get in).

The funder-template reader (``exports.xlsx.safezip``) is built on the same guards
(``check_container``, the hardened parser and the DOCTYPE refusal), so there is one set of
limits and one wording. Reading a part never produces more bytes than the archive declares
for it, so a header that lies about sizes cannot blow up memory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "UnsafeWorkbook",
    "check_container",
    "check_package",
    "open_workbook",
    "parse_xml",
    "prescan_doctype",
    "refuse_doctype",
    "refuse_doctype_before_root",
    "xml_parser",
    "xml_pull_parser",
]

_OLE_SIG = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIG = b"PK\x03\x04"
_CHUNK = 64 * 1024
_XML_SUFFIXES = (".xml", ".rels", ".vml")


class UnsafeWorkbook(ValueError):
    """An uploaded file that is refused; the message says why in words."""


@dataclass(frozen=True)
class Limits:
    max_total_uncompressed: int = 200 * 1024 * 1024
    max_part_uncompressed: int = 200 * 1024 * 1024
    # Real sheet XML compresses 5-30:1; deflate bombs reach ~1000:1. Judged only on parts
    # big enough to matter, so tiny, very regular parts pass.
    max_ratio: float = 250.0
    ratio_min_size: int = 1024 * 1024
    max_parts: int = 5000


DEFAULT_LIMITS = Limits()


def _unsafe_name(name: str) -> bool:
    return (
        not name
        or "\x00" in name
        or "\\" in name
        or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")
        or any(segment == ".." for segment in name.split("/"))
    )


def check_container(data: bytes, *, limits: Limits = DEFAULT_LIMITS, what: str = "workbook") -> list[zipfile.ZipInfo]:
    """The zip container guards, read from the central directory only (nothing is decompressed).

    Refuses (``UnsafeWorkbook``, in words) an encrypted or old binary Office file, bytes that are
    no zip, a damaged archive, too many parts, a part named with a path or twice, an encrypted
    part, a compression Office does not write, and sizes or ratios beyond ``limits``. Returns the
    parts. ``exports.xlsx.safezip`` builds its bounded part reader on this.
    """
    if data[:8] == _OLE_SIG:
        raise UnsafeWorkbook(
            f"the {what} is password-protected or an old binary Office file (.xls, .doc); "
            "remove the password or save it again as .xlsx/.docx and upload it again"
        )
    if data[:4] != _ZIP_SIG:
        raise UnsafeWorkbook(
            f"the {what} is not an Excel workbook or other Office file "
            "(.xlsx, .docx and .pptx files are zip archives and this is not one)"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise UnsafeWorkbook(f"the {what} is a damaged zip archive and cannot be read") from None
    if len(infos) > limits.max_parts:
        raise UnsafeWorkbook(f"the {what} has {len(infos)} parts; more than {limits.max_parts} is refused")
    total = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise UnsafeWorkbook(f"the {what} contains a part with an unsafe name ({name!r}, a path); refused")
        if name.lower() in seen:
            raise UnsafeWorkbook(f"the {what} contains the part {name!r} twice; refused")
        seen.add(name.lower())
        if info.flag_bits & 0x1:
            raise UnsafeWorkbook(f"the {what} is encrypted (part {name!r}); remove the password and upload it again")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UnsafeWorkbook(f"the {what} part {name!r} uses a compression Office does not write; refused")
        if info.file_size > limits.max_part_uncompressed:
            raise UnsafeWorkbook(
                f"the {what} part {name!r} unpacks to more than {_mb(limits.max_part_uncompressed)}; refused"
            )
        if info.file_size >= limits.ratio_min_size and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeWorkbook(
                f"the {what} unpacks to {_mb(info.file_size)} from {_mb(info.compress_size, 1)} "
                f"(a compression ratio of {info.file_size / max(info.compress_size, 1):.0f}:1): "
                "it looks like a zip bomb; refused"
            )
        total += info.file_size
        if total > limits.max_total_uncompressed:
            raise UnsafeWorkbook(f"the {what} unpacks to more than {_mb(limits.max_total_uncompressed)}; refused")
    return infos


def check_package(data: bytes, *, limits: Limits = DEFAULT_LIMITS, what: str = "workbook") -> None:
    """Refuse (``UnsafeWorkbook``) an Office Open XML file that is not a plain, bounded, DTD-free zip."""
    infos = check_container(data, limits=limits, what=what)
    archive = zipfile.ZipFile(io.BytesIO(data))
    for info in infos:
        if info.filename.lower().endswith(_XML_SUFFIXES) and info.file_size:
            _refuse_doctype(archive, info, what)


# ---------------------------------------------------------------- hardened XML


def xml_parser() -> etree.XMLParser:
    """The only XML parser used on uploaded content.

    No entity substitution, no DTD loading, no network, and libxml2's default size limits
    kept (huge_tree=False), so entity expansion and external entities cannot run; a
    document with a DOCTYPE is refused as well (``refuse_doctype``).
    """
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False
    )


def xml_pull_parser(events: tuple[str, ...] = ("end",), tag: Any = None) -> etree.XMLPullParser:
    """The streaming form of ``xml_parser``, with the same hardening."""
    return etree.XMLPullParser(
        events=events, tag=tag, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )


def prescan_doctype(head: bytes, part: str) -> None:
    """Cheap refusal before libxml2 sees the bytes (``refuse_doctype`` still catches UTF-16)."""
    lowered = head[:65536].lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise UnsafeWorkbook(_doctype_message(part))


def refuse_doctype(docinfo: Any, part: str) -> None:
    """Office never writes a DTD; one in an upload is an entity-expansion or external-entity attack."""
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeWorkbook(_doctype_message(part))


def parse_xml(data: bytes, part: str = "XML") -> Any:
    """Parse a whole XML document with the hardened parser; a DOCTYPE is refused."""
    prescan_doctype(data, part)
    try:
        root = etree.fromstring(data, parser=xml_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeWorkbook(f"{part}: not well-formed XML ({exc})") from None
    refuse_doctype(root.getroottree().docinfo, part)
    return root


def _mb(size: int, places: int = 0) -> str:
    return f"{size / (1024 * 1024):.{places}f} MB"


_ROOT_SLICE = 4096


def refuse_doctype_before_root(chunks: Iterable[bytes], part: str) -> None:
    """Read a part's XML only up to its root element and refuse (``UnsafeWorkbook``) a DOCTYPE before it.

    ``chunks`` is the part unpacked piece by piece (bounded by the caller); reading stops at the
    root element, after which no DOCTYPE can come. A part that is not well-formed raises
    ``etree.XMLSyntaxError`` for the caller to word. Used by ``check_package`` and by the
    package reader's (``exports.xlsx.safezip``) look at every part when a template is opened.
    """
    parser = xml_pull_parser(events=("start",))
    for chunk in chunks:
        prescan_doctype(chunk, part)
        # Fed in small slices: the root element starts within the first few hundred bytes, and a
        # whole chunk would have the parser build a tree of everything in it (megabytes for a big sheet).
        for at in range(0, len(chunk), _ROOT_SLICE):
            parser.feed(chunk[at : at + _ROOT_SLICE])
            for _event, element in parser.read_events():
                refuse_doctype(element.getroottree().docinfo, part)
                return
    parser.close()


def _refuse_doctype(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> None:
    """``refuse_doctype_before_root`` over one part, never reading more than it declares."""

    def chunks() -> Iterator[bytes]:
        produced = 0
        with archive.open(info) as part:
            while chunk := part.read(_CHUNK):
                produced += len(chunk)
                if produced > info.file_size:
                    raise UnsafeWorkbook(f"the {what} is damaged (a part is larger than it says); refused")
                yield chunk

    try:
        refuse_doctype_before_root(chunks(), f"the {what}")
    except etree.XMLSyntaxError:
        raise UnsafeWorkbook(f"the {what} is damaged (a part is not well-formed XML); refused") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
        raise UnsafeWorkbook(f"the {what} is damaged (a part cannot be unpacked); refused") from None


def _doctype_message(part: str) -> str:
    return (
        f"{part} contains an XML DOCTYPE declaration, which Office never writes (an entity-expansion attack); refused"
    )


def open_workbook(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A read-only, values-only openpyxl workbook of an uploaded .xlsx, after ``check_package``.

    The caller closes it. Raises ``UnsafeWorkbook`` in words for a hostile or unreadable file.
    """
    from openpyxl import load_workbook

    check_package(data, limits=limits)
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise UnsafeWorkbook("the workbook could not be read; open it in Excel and save it again as .xlsx") from None
