"""Evidence in the reader's language: upload refusals and labels, with nothing saved when refused."""

import io

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError
from core.formatting import in_locale
from grants.evidence.models import Evidence, Sensitivity, is_shared_with_donors
from grants.evidence.uploads import check_upload, read_capped
from tests.conftest import set_user_language as _set_language
from tests.grants.evidence.helpers import PDF, PNG, blob_count


def _form(world, **changes):
    data = {
        "grant_id": str(world.grant_a),
        "title": "RCM minutes",
        "kind": "minutes",
        "evidence_date": "2026-02-12",
        "sensitivity": "staff_only",
        "description": "",
    }
    data.update(changes)
    return data


def _evidence_count(session):
    session.rollback()
    return session.scalar(select(func.count(Evidence.id)))


def test_a_dutch_users_refused_upload_is_explained_in_dutch_and_nothing_is_saved(app, world, client_for, session):
    blobs, rows = blob_count(app), _evidence_count(session)
    _set_language(app, "Program", "nl")
    response = client_for("Program").post(
        "/evidence/add",
        data={**_form(world), "file": (io.BytesIO(PNG), "notulen.pdf")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "zou een pdf-document moeten zijn, maar de inhoud is image/png; er is niets opgeslagen" in html
    assert "should be a PDF document" not in html
    assert _evidence_count(session) == rows and blob_count(app) == blobs


def test_a_french_users_file_of_a_refused_type_is_named_in_french(app, world, client_for, session):
    rows = _evidence_count(session)
    _set_language(app, "Program", "fr")
    response = client_for("Program").post(
        "/evidence/add",
        data={**_form(world), "file": (io.BytesIO(b"MZ\x90\x00"), "outil.exe")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "les fichiers se terminant par .exe ne sont pas acceptés" in html
    assert _evidence_count(session) == rows


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "'big.pdf' is larger than the 0.5 MB limit; nothing was stored"),
        ("es", "'big.pdf' supera el límite de 0,5 MB; no se guardó nada"),
        ("fr", "'big.pdf' dépasse la limite de 0,5 Mo ; rien n'a été enregistré"),
        ("nl", "'big.pdf' is groter dan de limiet van 0,5 MB; er is niets opgeslagen"),
    ],
)
def test_the_size_limit_is_written_in_the_readers_language_and_number_format(app, language, expected):
    with app.app_context(), in_locale(language), pytest.raises(DomainValidationError) as refused:
        read_capped(b"0" * (600 * 1024), 512 * 1024, "big.pdf")
    assert refused.value.errors["file"] == [expected]


def test_a_check_outside_a_page_stays_in_english(app):
    with app.app_context(), pytest.raises(DomainValidationError) as refused:
        check_upload(PNG, "minutes.pdf")
    assert refused.value.errors["file"][0].startswith("'minutes.pdf' should be a PDF document")
    assert check_upload(PDF, "minutes.pdf").extension == "pdf"


def test_sensitivity_and_kind_labels_follow_the_reader_but_reading_a_label_does_not(app):
    with app.app_context():
        with in_locale("fr"):
            assert Sensitivity.shared_with_donors.label == "Partagé avec les bailleurs"
            assert Evidence(kind="minutes", status="verified").kind_label == "procès-verbaux"
            assert Evidence(kind="minutes", status="verified").status_label == "vérifié"
            # Labels in imports and API calls are read as written in English, whoever reads them.
            assert is_shared_with_donors("Shared with donors")
            assert not is_shared_with_donors("Partagé avec les bailleurs")
        assert Sensitivity.shared_with_donors.label == "Shared with donors"
