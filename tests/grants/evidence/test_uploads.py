"""Uploading evidence: checked by content, capped in size, names sanitised, people lists flagged."""

import io

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError
from grants.evidence.models import Evidence
from tests.grants.evidence.helpers import COUNTS_CSV, NAMES_CSV, PDF, PNG, add_evidence, blob_count, xlsx_with


def evidence_count(session):
    return session.scalar(select(func.count(Evidence.id)))


def form(world, **changes):
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


def test_program_uploads_minutes_and_downloads_them_as_an_attachment(app, world, client_for, session):
    client = client_for("Program")
    response = client.post(
        "/evidence/add",
        data={**form(world), "file": (io.BytesIO(PDF), "RCM minutes.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    session.rollback()
    item = session.scalar(select(Evidence).where(Evidence.title == "RCM minutes"))
    assert item.content_type == "application/pdf" and item.size_bytes == len(PDF)
    assert item.file_name == "RCM_minutes.pdf" and item.display_name == "RCM minutes.pdf"
    assert item.status.value == "submitted"
    pk = item.id
    download = client.get(f"/evidence/download/{pk}")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_same_file_uploaded_twice_is_stored_once(app, session, world):
    before = blob_count(app)
    first = add_evidence(app, session, world, content=PDF, title="Copy one")
    second = add_evidence(app, session, world, content=PDF, title="Copy two")
    session.commit()
    assert first.sha256 == second.sha256
    assert blob_count(app) - before <= 1


@pytest.mark.parametrize(
    ("content", "filename", "words"),
    [
        (PNG, "minutes.pdf", "should be a PDF document, but its content is image/png"),
        (PDF, "photo.png", "should be a PNG image"),
        (PDF, "attendance.csv", "should be a CSV file"),
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100, "report.docx", "should be a Word document"),
        (b"<html><script>alert(1)</script></html>", "page.html", "not accepted"),
        (PDF, "noextension", "not accepted"),
        (b"", "empty.pdf", "is empty"),
    ],
)
def test_a_file_whose_content_does_not_match_is_refused_and_nothing_is_stored(
    app, session, world, content, filename, words
):
    blobs, rows = blob_count(app), evidence_count(session)
    with pytest.raises(DomainValidationError) as caught:
        add_evidence(app, session, world, content=content, filename=filename)
    assert words in " ".join(caught.value.errors["file"])
    session.rollback()
    assert blob_count(app) == blobs and evidence_count(session) == rows


def test_an_oversize_file_is_refused_through_the_form_and_nothing_is_stored(app, world, client_for, session):
    blobs, rows = blob_count(app), evidence_count(session)
    app.config["EVIDENCE_MAX_BYTES"] = 1000
    try:
        response = client_for("Program").post(
            "/evidence/add",
            data={**form(world), "file": (io.BytesIO(b"%PDF-1.4\n" + b"0" * 5000), "big.pdf")},
            content_type="multipart/form-data",
            follow_redirects=True,
        )
    finally:
        app.config["EVIDENCE_MAX_BYTES"] = 25 * 1024 * 1024
    assert "larger than the" in response.get_data(as_text=True)
    session.rollback()
    assert blob_count(app) == blobs and evidence_count(session) == rows


def test_a_mismatched_upload_through_the_form_says_why(app, world, client_for, session):
    rows = evidence_count(session)
    response = client_for("Program").post(
        "/evidence/add",
        data={**form(world), "file": (io.BytesIO(PNG), "minutes.pdf")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "should be a PDF document" in response.get_data(as_text=True)
    session.rollback()
    assert evidence_count(session) == rows


def test_a_path_in_the_file_name_is_stripped(app, session, world):
    item = add_evidence(app, session, world, filename="../../etc/minutes 2026.pdf")
    assert item.display_name == "minutes 2026.pdf" and item.file_name == "minutes_2026.pdf"


def test_a_csv_with_a_name_column_warns_and_suggests_confidential(app, world, client_for, session):
    response = client_for("Program").post(
        "/evidence/add",
        data={
            **form(world, kind="attendance_summary", title="Training sign-in"),
            "file": (io.BytesIO(NAMES_CSV), "sign-in.csv"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "looks like a list of people" in response.get_data(as_text=True)
    session.rollback()
    item = session.scalar(select(Evidence).where(Evidence.title == "Training sign-in"))
    assert item.looks_like_people_list is True


@pytest.mark.parametrize(
    ("content", "filename", "flagged"),
    [
        (COUNTS_CSV, "counts.csv", False),
        (b"nombre;edad\nAna;30\n", "lista.csv", True),
        (xlsx_with([["Participant", "Country"], ["A", "LC"]]), "register.xlsx", True),
        (xlsx_with([["Constituency", "Count"], ["Sex workers", 3]]), "summary.xlsx", False),
        (
            (
                "\n".join(
                    f"{a} {b},LC"
                    for a, b in [
                        ("Maria", "Joseph"),
                        ("Anne", "Louis"),
                        ("Kim", "Charles"),
                        ("Judy", "Pierre"),
                        ("Rose", "Felix"),
                        ("Lisa", "Auguste"),
                    ]
                )
            ).encode(),
            "rows.csv",
            True,
        ),
    ],
)
def test_people_lists_are_recognised(app, session, world, content, filename, flagged):
    item = add_evidence(app, session, world, content=content, filename=filename, kind="attendance_summary")
    assert item.looks_like_people_list is flagged


def test_nobody_uploads_to_a_grant_they_cannot_see(app, session, world, client_for):
    rows = evidence_count(session)
    with pytest.raises(DomainValidationError) as caught:
        add_evidence(app, session, world, "Program", grant=world.grant_b)
    assert "grant" in caught.value.errors
    session.rollback()
    response = client_for("Program").post(
        "/evidence/add",
        data={**form(world, grant_id=str(world.grant_b)), "file": (io.BytesIO(PDF), "m.pdf")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "choose a grant you have access to" in response.get_data(as_text=True)
    session.rollback()
    assert evidence_count(session) == rows


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.org/x", "not a url"])
def test_a_link_must_be_a_web_address(app, session, world, url):
    with pytest.raises(DomainValidationError) as caught:
        add_evidence(app, session, world, url=url)
    assert "url" in caught.value.errors


def test_a_link_is_recorded_without_a_file(app, session, world):
    item = add_evidence(app, session, world, url="https://example.org/report", kind="report")
    assert item.sha256 is None and item.url == "https://example.org/report"


def test_evidence_needs_a_title_and_a_date(app, session, world):
    from core.storage import store_for
    from grants.evidence import services

    with pytest.raises(DomainValidationError) as caught:
        services.create_evidence(
            session,
            store_for(app.config),
            grant=world.grant_a,
            title=" ",
            kind="minutes",
            evidence_date=None,
            content=PDF,
            filename="m.pdf",
        )
    assert {"title", "evidence_date"} <= set(caught.value.errors)


def test_unknown_kind_or_sensitivity_is_named(app, session, world):
    with pytest.raises(DomainValidationError) as caught:
        add_evidence(app, session, world, kind="gossip")
    assert "gossip" in caught.value.errors["kind"][0]
    with pytest.raises(DomainValidationError) as caught:
        add_evidence(app, session, world, sensitivity="secret")
    assert "secret" in caught.value.errors["sensitivity"][0]


def test_api_upload_checks_the_file_the_same_way(app, world, api_for, session):
    api = api_for("Program")
    good = api.client.post(
        "/api/v1/evidence/upload",
        headers=api.headers,
        content_type="multipart/form-data",
        data={**form(world), "file": (io.BytesIO(PDF), "m.pdf")},
    )
    assert good.status_code == 201, good.get_data(as_text=True)
    rows = evidence_count(session)
    bad = api.client.post(
        "/api/v1/evidence/upload",
        headers=api.headers,
        content_type="multipart/form-data",
        data={**form(world), "file": (io.BytesIO(PNG), "m.pdf")},
    )
    assert bad.status_code == 422 and "should be a PDF document" in bad.json["message"]["file"][0]
    link = api.post("/api/v1/evidence/upload", json={**form(world), "url": "https://example.org/x", "kind": "report"})
    assert link.status_code == 201
    session.rollback()
    assert evidence_count(session) == rows + 1
    names = api.client.post(
        "/api/v1/evidence/upload",
        headers=api.headers,
        content_type="multipart/form-data",
        data={**form(world, title="names"), "file": (io.BytesIO(NAMES_CSV), "n.csv")},
    )
    assert names.status_code == 201 and "list of people" in names.json["warning"]


def test_deleting_evidence_removes_its_file_unless_another_item_uses_it(app, world, session, client_for, api_for):
    from core.storage import store_for

    store = store_for(app.config)
    unique = add_evidence(app, session, world, content=PDF + b"% unique\n", title="Only copy")
    shared_a = add_evidence(app, session, world, content=PDF + b"% shared\n", title="Shared A")
    shared_b = add_evidence(app, session, world, content=PDF + b"% shared\n", title="Shared B")
    session.commit()
    ids = (unique.id, shared_a.id)
    unique_sha, shared_sha = unique.sha256, shared_b.sha256
    client_for("Program").post(f"/evidence/delete/{ids[0]}")
    assert api_for("Program").delete(f"/api/v1/evidence/{ids[1]}").status_code == 200
    session.rollback()
    assert session.get(Evidence, ids[0]) is None and not store.exists(unique_sha)
    assert session.get(Evidence, ids[1]) is None and store.exists(shared_sha)
