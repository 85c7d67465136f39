"""Checking an uploaded file before it is stored: its size, that its bytes are what its name says, and whether it lists people."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import IO, Any

import filetype
from werkzeug.utils import secure_filename

from core.errors import DomainValidationError
from core.formatting import gettext as _
from core.formatting import lazy_gettext, number
from core.workbooks import UnsafeWorkbook, check_package, open_workbook

DEFAULT_MAX_BYTES = 25 * 1024 * 1024

# ---------------------------------------------------------------- size


def read_capped(content: bytes | IO[bytes], max_bytes: int, display: str) -> bytes:
    """The upload's bytes, refused (naming the file) when larger than ``max_bytes``."""
    if isinstance(content, (bytes, bytearray)):
        data = bytes(content)
    else:
        data = content.read(max_bytes + 1)
    if len(data) > max_bytes:
        megabytes = max_bytes / (1024 * 1024)
        message = _(
            "'%(file)s' is larger than the %(size)s MB limit; nothing was stored",
            file=display,
            size=number(megabytes),
        )
        raise DomainValidationError({"file": [message]})
    return data


# ---------------------------------------------------------------- checking uploads

_TEXT = "text"
_OLE = {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}
_OOXML_FOLDER = {"docx": "word/", "xlsx": "xl/", "pptx": "ppt/"}
# extension -> (content types the file's bytes may show, what to call it in a message)
ALLOWED_TYPES: dict[str, tuple[frozenset[str], Any]] = {
    "pdf": (frozenset({"application/pdf"}), lazy_gettext("a PDF document")),
    "png": (frozenset({"image/png"}), lazy_gettext("a PNG image")),
    "jpg": (frozenset({"image/jpeg"}), lazy_gettext("a JPEG image")),
    "jpeg": (frozenset({"image/jpeg"}), lazy_gettext("a JPEG image")),
    "gif": (frozenset({"image/gif"}), lazy_gettext("a GIF image")),
    "webp": (frozenset({"image/webp"}), lazy_gettext("a WebP image")),
    "heic": (frozenset({"image/heic"}), lazy_gettext("a HEIC photo")),
    "tif": (frozenset({"image/tiff"}), lazy_gettext("a TIFF image")),
    "tiff": (frozenset({"image/tiff"}), lazy_gettext("a TIFF image")),
    "doc": (frozenset(_OLE), lazy_gettext("a Word document")),
    "xls": (frozenset(_OLE), lazy_gettext("an Excel workbook")),
    "ppt": (frozenset(_OLE), lazy_gettext("a PowerPoint presentation")),
    "docx": (
        frozenset({"application/vnd.openxmlformats-officedocument.wordprocessingml.document"}),
        lazy_gettext("a Word document"),
    ),
    "xlsx": (
        frozenset({"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}),
        lazy_gettext("an Excel workbook"),
    ),
    "pptx": (
        frozenset({"application/vnd.openxmlformats-officedocument.presentationml.presentation"}),
        lazy_gettext("a PowerPoint presentation"),
    ),
    "odt": (frozenset({"application/vnd.oasis.opendocument.text"}), lazy_gettext("an OpenDocument text")),
    "ods": (frozenset({"application/vnd.oasis.opendocument.spreadsheet"}), lazy_gettext("an OpenDocument spreadsheet")),
    "odp": (
        frozenset({"application/vnd.oasis.opendocument.presentation"}),
        lazy_gettext("an OpenDocument presentation"),
    ),
    "csv": (frozenset({_TEXT}), lazy_gettext("a CSV file")),
    "txt": (frozenset({_TEXT}), lazy_gettext("a plain-text file")),
}
_TEXT_CONTENT_TYPES = {"csv": "text/csv", "txt": "text/plain"}


@dataclass(frozen=True)
class CheckedUpload:
    file_name: str  # sanitised, safe on any filesystem and in a header
    display_name: str  # what the uploader called it, for people
    extension: str
    content_type: str
    looks_like_people_list: bool


def _decode_text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n\f")
        return text if controls == 0 else None
    return None


def _detected_type(data: bytes, extension: str) -> str | None:
    kind = filetype.guess(data[:8192] if extension not in _OOXML_FOLDER else data)
    mime = kind.mime if kind else None
    if mime == "application/zip" and extension in _OOXML_FOLDER:
        # Some generators order the parts so the signature check misses them: look inside.
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return mime
        if "[Content_Types].xml" in names and any(n.startswith(_OOXML_FOLDER[extension]) for n in names):
            return next(iter(ALLOWED_TYPES[extension][0]))
    return mime


def check_upload(data: bytes, filename: str | None) -> CheckedUpload:
    """Accept a file only if its bytes are what its name says (magic bytes, not just the extension).

    Raises DomainValidationError on the ``file`` field naming what is wrong.
    """
    display = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
    safe = secure_filename(display)[:255]
    if not display or not safe:
        raise DomainValidationError({"file": [_("choose a file with a name, e.g. minutes.pdf")]})
    extension = safe.rsplit(".", 1)[-1].lower() if "." in safe else ""
    if extension not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        if extension:
            message = _(
                "'%(file)s': files ending in .%(extension)s are not accepted; allowed: %(allowed)s",
                file=display,
                extension=extension,
                allowed=allowed,
            )
        else:
            message = _(
                "'%(file)s': files without an ending (such as .pdf) are not accepted; allowed: %(allowed)s",
                file=display,
                allowed=allowed,
            )
        raise DomainValidationError({"file": [message]})
    if not data:
        raise DomainValidationError({"file": [_("'%(file)s' is empty", file=display)]})
    expected, what = ALLOWED_TYPES[extension]
    detected = _detected_type(data, extension)
    if _TEXT in expected:
        text = _decode_text(data) if detected is None else None
        if text is None:
            if detected:
                message = _(
                    "'%(file)s' should be %(what)s, but its content looks like %(found)s; nothing was stored",
                    file=display,
                    what=what,
                    found=detected,
                )
            else:
                message = _(
                    "'%(file)s' should be %(what)s, but its content is not plain text; nothing was stored",
                    file=display,
                    what=what,
                )
            raise DomainValidationError({"file": [message]})
        content_type = _TEXT_CONTENT_TYPES[extension]
        people = looks_like_people_csv(text) if extension == "csv" else False
    else:
        if detected not in expected:
            if detected:
                message = _(
                    "'%(file)s' should be %(what)s, but its content is %(found)s; nothing was stored",
                    file=display,
                    what=what,
                    found=detected,
                )
            else:
                message = _(
                    "'%(file)s' should be %(what)s, but its content is of an unknown type; nothing was stored",
                    file=display,
                    what=what,
                )
            raise DomainValidationError({"file": [message]})
        content_type = detected
        if extension in _OOXML_FOLDER:
            try:
                check_package(data, what="file")  # size, zip-bomb, path and entity guards
            except UnsafeWorkbook as exc:
                message = _("'%(file)s': %(problem)s; nothing was stored", file=display, problem=exc)
                raise DomainValidationError({"file": [message]}) from None
        people = looks_like_people_workbook(data) if extension == "xlsx" else False
    return CheckedUpload(safe, display, extension, content_type, people)


# ---------------------------------------------------------------- does it list people?

# Column headings that hold people's names or contact details (English, Spanish, French).
_PERSON_HEADERS = {
    "name",
    "names",
    "first name",
    "firstname",
    "given name",
    "given names",
    "last name",
    "lastname",
    "surname",
    "family name",
    "full name",
    "fullname",
    "participant",
    "participants",
    "participant name",
    "attendee",
    "attendees",
    "beneficiary",
    "beneficiary name",
    "client",
    "client name",
    "member name",
    "nombre",
    "nombres",
    "apellido",
    "apellidos",
    "nombre completo",
    "participante",
    "nom",
    "prenom",
    "nom complet",
    "phone",
    "phone number",
    "telephone",
    "mobile",
    "whatsapp",
    "email",
    "e-mail",
    "email address",
    "address",
    "home address",
    "date of birth",
    "dob",
    "id number",
    "national id",
    "passport",
    "signature",
}
# Words that make a "Something Something" cell a label rather than a person's name.
_NOT_NAME_WORDS = {
    "society",
    "civil",
    "government",
    "workers",
    "worker",
    "people",
    "living",
    "with",
    "hiv",
    "donors",
    "donor",
    "other",
    "total",
    "ministry",
    "health",
    "network",
    "coalition",
    "group",
    "groups",
    "men",
    "women",
    "transgender",
    "drugs",
    "who",
    "use",
    "key",
    "population",
    "populations",
    "partners",
    "sex",
    "community",
    "national",
    "regional",
    "council",
    "office",
    "unit",
    "fund",
    "programme",
    "program",
}
_NAME_CELL = re.compile(r"^[A-ZÀ-Ý][a-zà-ÿ'’-]+(?: [A-ZÀ-Ý][a-zà-ÿ'’-]+){1,3}$")


def _normalise_header(cell: Any) -> str:
    text = unicodedata.normalize("NFKD", str(cell or "")).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_]+", " ", text).strip().lower()


def _rows_look_like_people(rows: list[list[Any]]) -> bool:
    if rows and any(_normalise_header(cell) in _PERSON_HEADERS for cell in rows[0]):
        return True
    data = rows[1:] if len(rows) > 1 else rows
    named = 0
    for row in data:
        for cell in row:
            value = str(cell or "").strip()
            if _NAME_CELL.match(value) and not set(value.lower().split()) & _NOT_NAME_WORDS:
                named += 1
                break
    return named >= 5 and named * 2 >= len(data)


def looks_like_people_csv(text: str, max_rows: int = 500) -> bool:
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = []
    for index, row in enumerate(csv.reader(io.StringIO(text), dialect)):
        if index >= max_rows:
            break
        rows.append(row)
    return _rows_look_like_people(rows)


def looks_like_people_workbook(data: bytes, max_rows: int = 500) -> bool:
    try:
        workbook = open_workbook(data)  # the guarded open: a hostile file never reaches openpyxl
    except UnsafeWorkbook:  # unreadable (hostile ones were refused by check_upload): stored, not inspected
        return False
    try:
        for sheet in workbook.worksheets:
            rows = [list(row) for row in sheet.iter_rows(max_row=max_rows, values_only=True)]
            if _rows_look_like_people(rows):
                return True
        return False
    except Exception:  # a part that lies about its size or checksum fails while read: not inspected
        return False
    finally:
        workbook.close()
