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

The same limits as the funder-template reader of ``exports.xlsx.safezip``. Reading a
part never produces more bytes than the archive declares for it, so a header that lies
about sizes cannot blow up memory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from lxml import etree

__all__ = ["Limits", "DEFAULT_LIMITS", "UnsafeWorkbook", "check_package", "open_workbook"]

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


def check_package(data: bytes, *, limits: Limits = DEFAULT_LIMITS, what: str = "workbook") -> None:
    """Refuse (``UnsafeWorkbook``) an Office Open XML file that is not a plain, bounded, DTD-free zip."""
    if data[:8] == _OLE_SIG:
        raise UnsafeWorkbook(
            f"the {what} is password-protected or an old binary Office file (.xls, .doc); "
            "remove the password or save it again as .xlsx/.docx and upload it again"
        )
    if data[:4] != _ZIP_SIG:
        raise UnsafeWorkbook(f"the {what} is not an Office file (.xlsx, .docx and .pptx files are zip archives)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise UnsafeWorkbook(f"the {what} is damaged (not a readable zip archive)") from None
    if len(infos) > limits.max_parts:
        raise UnsafeWorkbook(f"the {what} has {len(infos)} parts; more than {limits.max_parts} is refused")
    total = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise UnsafeWorkbook(f"the {what} contains a part with an unsafe name ({name!r}); refused")
        if name.lower() in seen:
            raise UnsafeWorkbook(f"the {what} contains the part {name!r} twice; refused")
        seen.add(name.lower())
        if info.flag_bits & 0x1:
            raise UnsafeWorkbook(f"the {what} is encrypted; remove the password and upload it again")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UnsafeWorkbook(f"the {what} uses a compression Office does not write; refused")
        if info.file_size > limits.max_part_uncompressed:
            raise UnsafeWorkbook(f"the {what} unpacks to more than {_mb(limits.max_part_uncompressed)}; refused")
        if info.file_size >= limits.ratio_min_size and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeWorkbook(
                f"the {what} unpacks to {_mb(info.file_size)} from {_mb(info.compress_size, 1)}: "
                "it looks like a zip bomb; refused"
            )
        total += info.file_size
        if total > limits.max_total_uncompressed:
            raise UnsafeWorkbook(f"the {what} unpacks to more than {_mb(limits.max_total_uncompressed)}; refused")
    for info in infos:
        if info.filename.lower().endswith(_XML_SUFFIXES) and info.file_size:
            _refuse_doctype(archive, info, what)


def _mb(size: int, places: int = 0) -> str:
    return f"{size / (1024 * 1024):.{places}f} MB"


def _refuse_doctype(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> None:
    """Read a part only up to its root element (bounded) and refuse any DOCTYPE before it."""
    parser = etree.XMLPullParser(
        events=("start",), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    produced = 0
    try:
        with archive.open(info) as part:
            while True:
                chunk = part.read(_CHUNK)
                if not chunk:
                    parser.close()
                    return
                produced += len(chunk)
                if b"<!doctype" in chunk.lower() or b"<!entity" in chunk.lower():
                    raise UnsafeWorkbook(_doctype_message(what))
                parser.feed(chunk)
                for _event, element in parser.read_events():
                    docinfo = element.getroottree().docinfo
                    if docinfo.doctype or docinfo.internalDTD is not None:
                        raise UnsafeWorkbook(_doctype_message(what))
                    return  # the root element: no DOCTYPE can follow
                if produced > info.file_size:
                    raise UnsafeWorkbook(f"the {what} is damaged (a part is larger than it says); refused")
    except etree.XMLSyntaxError:
        raise UnsafeWorkbook(f"the {what} is damaged (a part is not well-formed XML); refused") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
        raise UnsafeWorkbook(f"the {what} is damaged (a part cannot be unpacked); refused") from None


def _doctype_message(what: str) -> str:
    return f"the {what} contains an XML DOCTYPE, which Office never writes (an entity-expansion attack); refused"


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
