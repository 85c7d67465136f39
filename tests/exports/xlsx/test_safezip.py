"""A hostile upload is refused with TemplateError before it can use much memory."""

from __future__ import annotations

import io
import resource
import struct
import tracemalloc
import zipfile

import pytest

from exports.errors import TemplateError
from exports.xlsx.fill import fill_workbook
from exports.xlsx.inspector import inspect_template
from exports.xlsx.safezip import Limits, open_workbook_zip, parse_xml
from tests.exports.helpers import load, make_workbook, replace_parts, sheet_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE w [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row></sheetData></worksheet>"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(TemplateError, match="not an Excel workbook"):
        open_workbook_zip(b"Name,Amount\nRent,100\n")
    with pytest.raises(TemplateError, match="damaged zip"):
        open_workbook_zip(b"PK\x03\x04" + b"\x00" * 100)


def test_password_protected_workbook_is_refused_with_advice() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
    with pytest.raises(TemplateError, match="password-protected"):
        inspect_template(ole)


def test_encrypted_zip_entry_is_refused() -> None:
    data = bytearray(_zip({"xl/workbook.xml": b"<x/>"}))
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8 : cd + 10] = struct.pack("<H", 0x1)  # general purpose flag: encrypted
    with pytest.raises(TemplateError, match="encrypted"):
        open_workbook_zip(bytes(data))


def test_zip_bomb_is_refused_by_ratio_before_decompressing() -> None:
    bomb = _zip({"xl/worksheets/sheet1.xml": b"\x00" * (50 * 1024 * 1024)})
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError, match="zip bomb"):
            open_workbook_zip(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_total_uncompressed_size_is_capped() -> None:
    data = _zip({f"xl/p{i}.xml": bytes(range(256)) * 4096 for i in range(5)})  # 5 x 1 MiB
    with pytest.raises(TemplateError, match="unpacks to more than"):
        open_workbook_zip(data, limits=Limits(max_total_uncompressed=3 * 1024 * 1024))


def test_too_many_parts_are_refused() -> None:
    data = _zip({f"xl/p{i}.xml": b"<a/>" for i in range(30)})
    with pytest.raises(TemplateError, match="30 parts"):
        open_workbook_zip(data, limits=Limits(max_parts=20))


def test_header_lying_about_size_cannot_inflate_memory() -> None:
    # Declares 1 KB, really holds 20 MB of zeros: the bounded reader stops early.
    data = bytearray(_zip({"xl/worksheets/sheet1.xml": b"\x00" * (20 * 1024 * 1024)}))
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        data[pos + off : pos + off + 4] = struct.pack("<I", 1024)
    z = open_workbook_zip(bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError, match="more than its declared size"):
            z.read("xl/worksheets/sheet1.xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


@pytest.mark.parametrize("name", ["../evil.xml", "xl/../../evil.xml", "/etc/passwd", "xl\\..\\evil.xml", "C:/evil.xml"])
def test_path_traversal_names_are_refused(name: str) -> None:
    with pytest.raises(TemplateError, match="unsafe name"):
        open_workbook_zip(_zip({"xl/workbook.xml": b"<x/>", name: b"x"}))


def test_duplicate_part_names_are_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xl/workbook.xml", b"<a/>")
        with pytest.warns(UserWarning):
            zf.writestr("xl/workbook.xml", b"<b/>")
    with pytest.raises(TemplateError, match="twice"):
        open_workbook_zip(buf.getvalue())


def test_entity_expansion_is_refused_with_bounded_memory() -> None:
    data = replace_parts(load("synthetic/tpl_xlsxwriter.xlsx"), {"xl/worksheets/sheet1.xml": BILLION_LAUGHS})
    before = _rss_mb()
    with pytest.raises(TemplateError, match="DOCTYPE"):
        fill_workbook(data, {"Cover!C4": "x"})
    with pytest.raises(TemplateError, match="DOCTYPE"):
        inspect_template(data)
    assert _rss_mb() - before < 100


def test_doctype_hidden_from_a_byte_scan_is_still_refused() -> None:
    # UTF-16 hides "<!DOCTYPE" from the quick byte scan; the parsed docinfo still shows it.
    utf16 = (
        BILLION_LAUGHS.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
        .decode()
        .encode("utf-16")
    )
    before = _rss_mb()
    # libxml2 may stop on its own amplification guard first; either way it is refused.
    with pytest.raises(TemplateError, match="DOCTYPE|amplification"):
        parse_xml(utf16, "sheet1.xml")
    with pytest.raises(TemplateError, match="DOCTYPE|amplification"):
        inspect_template(make_workbook(utf16))  # type: ignore[arg-type]
    assert _rss_mb() - before < 100
    xxe16 = XXE.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")
    with pytest.raises(TemplateError, match="DOCTYPE"):
        parse_xml(xxe16, "sheet1.xml")
    with pytest.raises(TemplateError, match="DOCTYPE"):
        inspect_template(make_workbook(xxe16))  # type: ignore[arg-type]


def test_external_entities_are_never_fetched() -> None:
    data = make_workbook(XXE.decode())
    with pytest.raises(TemplateError, match="DOCTYPE"):
        fill_workbook(data, {"Data!A1": 1})


def test_malformed_xml_is_a_template_error() -> None:
    data = make_workbook(sheet_xml('<row r="1"><c r="A1">'))
    with pytest.raises(TemplateError, match="not well-formed"):
        inspect_template(data)


def test_reads_match_zipfile_and_raw_is_the_stored_bytes() -> None:
    data = load("synthetic/tpl_libreoffice.xlsx")
    z = open_workbook_zip(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            assert z.read(info.filename) == zf.read(info.filename)
        assert z.names == zf.namelist()
    assert z.raw("xl/media/image1.png") != z.read("xl/media/image1.png")  # still compressed


def test_corrupted_part_fails_the_checksum() -> None:
    data = bytearray(_zip({"xl/a.xml": b"<a>hello</a>"}, method=zipfile.ZIP_STORED))
    pos = data.find(b"hello")
    data[pos] = ord("j")
    with pytest.raises(TemplateError, match="checksum"):
        open_workbook_zip(bytes(data)).read("xl/a.xml")
