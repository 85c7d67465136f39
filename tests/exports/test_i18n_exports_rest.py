"""The rest of exports in the reader's language: template refusals, mapping problems and the mapper's own words."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile

import pytest
from sqlalchemy import select

from tests.conftest import USERNAMES, login
from tests.exports.helpers import TEMPLATES
from tests.exports.test_i18n_exports import _set_language

DFID = (TEMPLATES / "real" / "DFID_Template.xlsx").read_bytes()


def _upload(client, funder_id: int, data: bytes, filename: str = "annual.xlsx"):
    return client.post(
        "/funder-templates/upload",
        data={"funder": str(funder_id), "name": "Annual report", "mapping": "", "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def _client_in(app, role: str, language: str):
    """A client signed in as ``role`` after their language was set (the language is taken at sign-in)."""
    _set_language(app, role, language)
    return login(app.test_client(), USERNAMES[role])


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _workbook(replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()) -> bytes:
    """The DFID template with some parts replaced or left out."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(DFID)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            target.writestr(info.filename, (replace or {}).get(info.filename, source.read(info.filename)))
    return out.getvalue()


def _first_sheet_part() -> str:
    with zipfile.ZipFile(io.BytesIO(DFID)) as z:
        return sorted(n for n in z.namelist() if n.startswith("xl/worksheets/sheet") and n.endswith(".xml"))[0]


def _nothing_stored(db_session) -> bool:
    from exports.models import FunderTemplate, TemplateVersion

    db_session.rollback()
    return db_session.scalar(select(FunderTemplate)) is None and db_session.scalar(select(TemplateVersion)) is None


def test_a_french_user_is_told_in_french_why_a_package_that_is_not_a_workbook_is_refused(app, world, db_session):
    finance_client = _client_in(app, "Finance", "fr")
    page = _text(_upload(finance_client, world.funder_id, _workbook(drop=("_rels/.rels",))))
    assert "ce n'est pas un classeur Excel : le paquet n'a pas de _rels/.rels" in page
    assert "not an Excel workbook" not in page
    assert _nothing_stored(db_session)


def test_a_french_user_is_told_in_french_why_a_workbook_with_a_doctype_is_refused(app, world, db_session):
    finance_client = _client_in(app, "Finance", "fr")
    part = _first_sheet_part()
    with zipfile.ZipFile(io.BytesIO(DFID)) as z:
        original = z.read(part)
    evil = re.sub(
        rb"^(<\?xml[^>]*\?>)?",
        lambda m: (m.group(0) or b"") + b'<!DOCTYPE w [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        original,
        count=1,
    )
    page = _text(_upload(finance_client, world.funder_id, _workbook(replace={part: evil})))
    assert "contient une déclaration XML DOCTYPE" in page and "refusé" in page  # the refusal is in French ...
    assert "is refused" not in page and "refused" not in page.replace("refusé", "")  # ... and not in English
    assert _nothing_stored(db_session)


def test_an_english_user_still_reads_the_refusals_in_english(app, world, finance_client, db_session):
    page = _text(_upload(finance_client, world.funder_id, _workbook(drop=("_rels/.rels",))))
    assert "not an Excel workbook: the package has no _rels/.rels" in page
    assert _nothing_stored(db_session)


def test_a_dutch_mapping_problem_names_the_key_and_suggests_the_right_one(app):
    from core.formatting import in_locale
    from exports.errors import TemplateError
    from exports.mapping import Catalogue, parse_mapping

    catalogue = Catalogue(fields=("grant.title", "grant.reference"), datasets={}, figures={})
    spec = "cells:\n  - {target: 'Cover!C4', source: grant.titel}\n  - {target: 'Cover!C5', formula: '=1', period: 1}\n"
    with app.app_context(), in_locale("nl"), pytest.raises(TemplateError) as refused:
        parse_mapping(spec, catalogue)
    message = str(refused.value)
    assert message.startswith("ongeldige koppeling: ")
    assert "onbekend veld 'grant.titel' (bedoelde u 'grant.title'?); bekend: grant.reference, grant.title" in message
    assert "een formule heeft geen periode" in message
    assert refused.value.details["cells.1.period"] == ["een formule heeft geen periode"]
    with app.app_context(), in_locale("en"), pytest.raises(TemplateError, match="unknown field 'grant.titel'"):
        parse_mapping(spec, catalogue)


def test_a_dutch_user_drawing_a_bad_mapping_reads_the_problems_in_dutch(app, world, program_client, db_session):
    from exports.models import TemplateVersion

    _upload(program_client, world.funder_id, DFID, "logframe.xlsx")
    version = db_session.scalar(select(TemplateVersion))
    program_client = _client_in(app, "Program", "nl")
    draft = {"cells": [{"target": "RESULTS FRAMEWORK!B1", "source": "grant.titel"}]}
    page = _text(
        program_client.post(
            f"/funder-templates/version/{version.id}/mapper",
            data={"draft": json.dumps(draft), "sheet": "RESULTS FRAMEWORK"},
            follow_redirects=True,
        )
    )
    assert "onbekend veld 'grant.titel' (bedoelde u 'grant.title'?)" in page
    assert "unknown field" not in page
    db_session.rollback()
    assert db_session.get(TemplateVersion, version.id).mapping_text is None


def test_a_dutch_fill_refusal_names_the_cell_in_dutch(app):
    from core.formatting import in_locale
    from exports.errors import TemplateError
    from exports.xlsx.fill import FillPlan

    with app.app_context(), in_locale("nl"), pytest.raises(TemplateError) as refused:
        FillPlan().set("NOPE!A1", "x").apply(DFID)
    assert "onbekend werkblad 'NOPE'; het sjabloon heeft" in str(refused.value)


def test_the_mapper_page_carries_its_script_words_in_spanish(app, world, program_client, db_session):
    from exports.models import TemplateVersion

    _upload(program_client, world.funder_id, DFID, "logframe.xlsx")
    version = db_session.scalar(select(TemplateVersion))
    program_client = _client_in(app, "Program", "es")
    page = program_client.get(f"/funder-templates/version/{version.id}/mapper").get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="mapper-words">(.*?)</script>', page, re.S)
    assert block is not None, "the mapper's words are not on the page"
    words = json.loads(block.group(1))
    assert words["remove"] == "Quitar"
    assert words["looking_up"] == "Buscando el valor…"
    assert words["total"] == "Total (sin desagregar)"
    assert words["choose_grant"] == "Elija una subvención arriba para ver el valor."
    # the placeholders reach the script untouched, for it to fill
    assert words["would_get"] == "%(cell)s recibiría %(value)s (para %(period)s de esta subvención)."
    assert words["remove_label"] == "Quitar la asignación de %(cell)s"
    assert not [key for key, text in words.items() if "%(" in text and not re.search(r"%\(\w+\)s", text)]


def test_the_mapper_script_says_nothing_in_english_of_its_own():
    from pathlib import Path

    import exports

    script = (Path(exports.__file__).parent / "static" / "mapper.js").read_text()
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", script, flags=re.S)
    sentences = [s for s in re.findall(r'"([^"]*)"', code) if re.search(r"[A-Z][a-z]+ [a-z]+", s)]
    assert not sentences, sentences
    assert 'say("looking_up")' in code
