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

from core.formatting import N_, number
from core.formatting import gettext as _

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


# What the refusals call an upload ("the workbook is encrypted"), in the reader's language.
_THE = {"workbook": N_("the workbook"), "file": N_("the file")}


def _the(what: str) -> str:
    return _(_THE[what]) if what in _THE else _("the %(what)s", what=what)


def check_container(data: bytes, *, limits: Limits = DEFAULT_LIMITS, what: str = "workbook") -> list[zipfile.ZipInfo]:
    """The zip container guards, read from the central directory only (nothing is decompressed).

    Refuses (``UnsafeWorkbook``, in words) an encrypted or old binary Office file, bytes that are
    no zip, a damaged archive, too many parts, a part named with a path or twice, an encrypted
    part, a compression Office does not write, and sizes or ratios beyond ``limits``. Returns the
    parts. ``exports.xlsx.safezip`` builds its bounded part reader on this.
    """
    the = _the(what)
    if data[:8] == _OLE_SIG:
        raise UnsafeWorkbook(
            _(
                "%(what)s is password-protected or an old binary Office file (.xls, .doc); "
                "remove the password or save it again as .xlsx/.docx and upload it again",
                what=the,
            )
        )
    if data[:4] != _ZIP_SIG:
        raise UnsafeWorkbook(
            _(
                "%(what)s is not an Excel workbook or other Office file "
                "(.xlsx, .docx and .pptx files are zip archives and this is not one)",
                what=the,
            )
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise UnsafeWorkbook(_("%(what)s is a damaged zip archive and cannot be read", what=the)) from None
    if len(infos) > limits.max_parts:
        raise UnsafeWorkbook(
            _(
                "%(what)s has %(count)s parts; more than %(limit)s is refused",
                what=the,
                count=number(len(infos)),
                limit=number(limits.max_parts),
            )
        )
    total = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise UnsafeWorkbook(
                _("%(what)s contains a part with an unsafe name (%(name)s, a path); refused", what=the, name=repr(name))
            )
        if name.lower() in seen:
            raise UnsafeWorkbook(_("%(what)s contains the part %(name)s twice; refused", what=the, name=repr(name)))
        seen.add(name.lower())
        if info.flag_bits & 0x1:
            raise UnsafeWorkbook(
                _(
                    "%(what)s is encrypted (part %(name)s); remove the password and upload it again",
                    what=the,
                    name=repr(name),
                )
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UnsafeWorkbook(
                _("%(what)s part %(name)s uses a compression Office does not write; refused", what=the, name=repr(name))
            )
        if info.file_size > limits.max_part_uncompressed:
            raise UnsafeWorkbook(
                _(
                    "%(what)s part %(name)s unpacks to more than %(size)s; refused",
                    what=the,
                    name=repr(name),
                    size=_mb(limits.max_part_uncompressed),
                )
            )
        if info.file_size >= limits.ratio_min_size and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeWorkbook(
                _(
                    "%(what)s unpacks to %(size)s from %(packed)s (a compression ratio of %(ratio)s:1): "
                    "it looks like a zip bomb; refused",
                    what=the,
                    size=_mb(info.file_size),
                    packed=_mb(info.compress_size, 1),
                    ratio=number(round(info.file_size / max(info.compress_size, 1))),
                )
            )
        total += info.file_size
        if total > limits.max_total_uncompressed:
            raise UnsafeWorkbook(
                _("%(what)s unpacks to more than %(size)s; refused", what=the, size=_mb(limits.max_total_uncompressed))
            )
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
        raise UnsafeWorkbook(_("%(part)s: not well-formed XML (%(problem)s)", part=part, problem=exc)) from None
    refuse_doctype(root.getroottree().docinfo, part)
    return root


def _mb(size: int, places: int = 0) -> str:
    return _("%(size)s MB", size=number(size / (1024 * 1024), places))


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
    the = _the(what)

    def chunks() -> Iterator[bytes]:
        produced = 0
        with archive.open(info) as part:
            while chunk := part.read(_CHUNK):
                produced += len(chunk)
                if produced > info.file_size:
                    raise UnsafeWorkbook(_("%(what)s is damaged (a part is larger than it says); refused", what=the))
                yield chunk

    try:
        refuse_doctype_before_root(chunks(), the)
    except etree.XMLSyntaxError:
        raise UnsafeWorkbook(_("%(what)s is damaged (a part is not well-formed XML); refused", what=the)) from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
        raise UnsafeWorkbook(_("%(what)s is damaged (a part cannot be unpacked); refused", what=the)) from None


def _doctype_message(part: str) -> str:
    return _(
        "%(part)s contains an XML DOCTYPE declaration, which Office never writes (an entity-expansion attack); refused",
        part=part,
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
        raise UnsafeWorkbook(_("the workbook could not be read; open it in Excel and save it again as .xlsx")) from None
