"""Donors download what was published to them and nothing else, through every path."""

import pytest

from exports import services
from exports.models import ExportRecord, FunderTemplate
from grants.models import Grant


@pytest.fixture
def two_exports(app, world, db_session, store, uploaded):
    grant = db_session.get(Grant, world.grant_a)
    template = db_session.get(FunderTemplate, uploaded)
    draft = services.run_export(db_session, store, grant=grant, period=None, user="finance", template=template)
    sent = services.run_export(db_session, store, grant=grant, period=None, user="finance", builtin="reporting_periods")
    services.publish(db_session, sent, user="finance")
    other = services.run_export(
        db_session,
        store,
        grant=db_session.get(Grant, world.grant_b),
        period=None,
        user="finance",
        builtin="reporting_periods",
    )
    services.publish(db_session, other, user="finance")
    db_session.commit()
    return {"draft": draft.id, "sent": sent.id, "other": other.id}


def test_donor_lists_only_published_exports_of_its_grant(donor_client, two_exports):
    html = donor_client.get("/exports/list/").get_data(as_text=True)
    assert "reporting_periods" in html
    assert "Annual_report" not in html  # the unpublished draft
    assert "GB-1" not in html


def test_donor_downloads_published_but_not_draft_nor_other_grants(donor_client, two_exports):
    published = donor_client.get(f"/exports/file/{two_exports['sent']}")
    assert published.status_code == 200
    assert published.headers["Content-Disposition"].startswith("attachment")
    assert published.headers["X-Content-Type-Options"] == "nosniff"
    assert donor_client.get(f"/exports/file/{two_exports['draft']}").status_code == 404
    assert donor_client.get(f"/exports/file/{two_exports['other']}").status_code == 404


def test_donor_api_sees_published_only(api_for, two_exports):
    api = api_for("Donor")
    listed = api.get("/api/v1/exports/").json["result"]
    assert [r["id"] for r in listed] == [two_exports["sent"]]
    assert api.get(f"/api/v1/exports/{two_exports['draft']}").status_code == 404
    assert api.get(f"/api/v1/exports/{two_exports['draft']}/file").status_code == 404
    assert api.get(f"/api/v1/exports/{two_exports['sent']}/file").status_code == 200


def test_donor_cannot_publish_or_generate(donor_client, two_exports, world):
    assert donor_client.post(f"/exports/{two_exports['draft']}/publish").status_code == 403
    assert (
        donor_client.post(
            f"/exports/generate/{world.grant_a}", data={"report": "builtin:reporting_periods"}
        ).status_code
        == 403
    )


def test_program_sees_drafts_of_its_grant_and_publishes_one(program_client, two_exports, app):
    html = program_client.get("/exports/list/").get_data(as_text=True)
    assert "Annual_report" in html and "GB-1" not in html
    assert program_client.post(f"/exports/{two_exports['draft']}/publish").status_code == 302
    with app.app_context():
        from core.extensions import db

        assert db.session.get(ExportRecord, two_exports["draft"]).published


def test_program_generates_from_the_grant_page(program_client, world, app):
    page = program_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "Reports for the donor" in page and "export-form" in page
    response = program_client.post(
        f"/exports/generate/{world.grant_a}",
        data={"report": "builtin:reporting_periods", "period": str(world.period_a1)},
        follow_redirects=True,
    )
    assert "Generated GA-1_S1_reporting_periods.xlsx" in response.get_data(as_text=True)


def test_program_cannot_generate_for_an_invisible_grant(program_client, world):
    response = program_client.post(f"/exports/generate/{world.grant_b}", data={"report": "builtin:reporting_periods"})
    assert response.status_code == 404


def test_the_export_is_audited(program_client, world, app):
    from sqlalchemy import select

    from core.audit import AuditEntry

    program_client.post(f"/exports/generate/{world.grant_a}", data={"report": "builtin:reporting_periods"})
    with app.app_context():
        from core.extensions import db

        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.table_name == "export_records"))
        assert entry is not None and entry.username == "program" and entry.action == "insert"


def test_cli_export_writes_the_file_and_records_it(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env["GRANTKEEPER_INSTANCE"] = str(tmp_path / "instance")
    assert (
        subprocess.run([sys.executable, "run.py", "init", "--demo"], cwd=root, env=env, capture_output=True).returncode
        == 0
    )
    out = tmp_path / "out" / "periods.xlsx"
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "export",
            "--grant",
            "RCM-HIV-2026-SW",
            "--period",
            "S1",
            "--report",
            "reporting_periods",
            "-o",
            str(out),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:2] == b"PK"
    assert "export #" in result.stdout
    bad = subprocess.run(
        [sys.executable, "run.py", "export", "--grant", "NOPE", "--report", "reporting_periods", "-o", str(out)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no grant with reference 'NOPE'" in bad.stderr
    bad_period = subprocess.run(
        [
            sys.executable,
            "run.py",
            "export",
            "--grant",
            "RCM-HIV-2026-SW",
            "--period",
            "S9",
            "--report",
            "reporting_periods",
            "-o",
            str(out),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad_period.returncode == 2 and "has no period 'S9'; known: S1, S2, S3, S4" in bad_period.stderr
