"""Hostile files on every upload path: refused in words, never a 500, nothing stored.

The corpus is made here: a 600 KB workbook that unpacks to more than 600 MB, a
"billion laughs" workbook, a zip with a part named ``../../evil.xml``, and bytes that
are no zip at all under an .xlsx name.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b']>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>'
)


def _workbook_parts() -> dict[str, bytes]:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Date", "Amount", "Budget code"])
    sheet.append(["2026-02-03", 10, "HR-1"])
    out = io.BytesIO()
    book.save(out)
    with zipfile.ZipFile(out) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def _bomb(tmp_path_factory) -> bytes:
    """A real workbook whose first sheet unpacks to 620 MB of XML padding, stored in about 600 KB."""
    path = tmp_path_factory.mktemp("corpus") / "bomb.xlsx"
    parts = _workbook_parts()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in parts.items():
            if name != "xl/worksheets/sheet1.xml":
                archive.writestr(name, data)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            block = b" " * (1024 * 1024)
            for _ in range(620):
                sheet.write(block)
    return Path(path).read_bytes()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, words the refusal must contain)."""
    parts = _workbook_parts()
    bomb = _bomb(tmp_path_factory)
    assert len(bomb) < 1024 * 1024  # small on the wire ...
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        assert sum(i.file_size for i in archive.infolist()) > 600 * 1024 * 1024  # ... huge unpacked
    laughs = _zip({**parts, "xl/worksheets/sheet1.xml": LAUGHS})
    traversal = _zip({**parts, "../../evil.xml": b"<x/>"})
    # A DOCTYPE in a part no reader parses (a template's would be copied into every export of it).
    hidden = _zip({**parts, "docProps/custom.xml": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'})
    not_a_zip = b"\x00\x01GK" + random.Random(15).randbytes(8192)
    return {
        "zip bomb": (bomb, r"zip bomb|unpacks to"),
        "billion laughs": (laughs, r"DOCTYPE"),
        "path traversal": (traversal, r"unsafe name"),
        "doctype in an unread part": (hidden, r"DOCTYPE"),
        "not a zip": (not_a_zip, r"not|unknown type|binary"),
    }


def _stored_files(app) -> list[str]:
    root = Path(app.config["STORAGE_ROOT"])
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _counts(app) -> dict[str, int]:
    from budgets.models import BudgetImport, BudgetPlanImport, ExchangeRate
    from core.extensions import db
    from exports.models import FunderTemplate, TemplateVersion
    from grants.evidence.models import Evidence

    with app.app_context():
        return {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Evidence, BudgetImport, BudgetPlanImport, ExchangeRate, FunderTemplate, TemplateVersion)
        }


def _upload_paths(world) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "evidence": (
            "/evidence/add",
            {"grant_id": str(world.grant_a), "title": "Minutes", "kind": "minutes", "evidence_date": "2026-02-03"},
        ),
        "actuals import": ("/budget-imports/upload", {"grant_id": str(world.grant_a)}),
        "budget import": ("/budget-file-imports/upload", {"grant_id": str(world.grant_a)}),
        "rates import": ("/exchange-rates-import/", {"date_order": "iso"}),
        "funder template": ("/funder-templates/upload", {"funder": str(world.funder_id), "name": "Hostile"}),
    }


@pytest.mark.parametrize("path", ["evidence", "actuals import", "budget import", "rates import", "funder template"])
def test_every_upload_path_refuses_every_hostile_workbook_in_words_and_stores_nothing(
    path, corpus, app, world, admin_client
):
    url, fields = _upload_paths(world)[path]
    before_rows, before_files = _counts(app), _stored_files(app)
    for name, (content, words) in corpus.items():
        response = admin_client.post(
            url,
            data={**fields, "file": (io.BytesIO(content), "budget.xlsx")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 200, (path, name, response.status_code)
        page = response.get_data(as_text=True)
        alerts = " ".join(re.findall(r'class="alert alert-danger[^"]*"[^>]*>(.*?)</div>', page, re.S))
        assert re.search(words, alerts), (path, name, alerts[:500])
        assert "Traceback" not in page and "sqlalche" not in page
    assert _counts(app) == before_rows
    assert _stored_files(app) == before_files


def test_a_hostile_workbook_never_reaches_openpyxl(corpus):
    from core.workbooks import UnsafeWorkbook, open_workbook

    for name, (content, words) in corpus.items():
        with pytest.raises(UnsafeWorkbook, match=words):
            open_workbook(content)
        assert name


def test_an_ordinary_workbook_opens(corpus):
    from core.workbooks import open_workbook

    book = open_workbook(_zip(_workbook_parts()))
    try:
        assert [list(r) for r in book.active.iter_rows(values_only=True)][0] == ["Date", "Amount", "Budget code"]
    finally:
        book.close()
