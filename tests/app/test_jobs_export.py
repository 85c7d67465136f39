"""An export recomputed by LibreOffice is a background job: the grant page's button leads to the job, which
offers the file it made."""

from __future__ import annotations

from sqlalchemy import select

from tests.exports.conftest import store, template_file, uploaded  # noqa: F401  (fixtures)
from tests.exports.test_recompute_export import budget_template, needs_soffice  # noqa: F401  (fixture)


@needs_soffice
def test_a_recomputed_export_runs_as_a_job_that_links_its_file(app, client_for, world, budget_template):  # noqa: F811
    from core.extensions import db
    from core.jobs import Job, JobState
    from exports.models import ExportRecord

    finance = client_for("Finance")
    response = finance.post(
        f"/exports/generate/{world.grant_a}", data={"report": f"template:{budget_template.id}", "recompute": "1"}
    )
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
    with app.app_context():
        job = db.session.scalar(select(Job))
        record = db.session.scalar(select(ExportRecord))
        assert (job.kind, job.state, job.record_id) == ("export", JobState.done, record.id)
        assert job.result == f"Generated {record.filename}." and job.requested_by == "finance"
    page = finance.get(response.headers["Location"]).get_data(as_text=True)
    assert "Export — GA-1" in page and f"/exports/file/{record.id}" in page and "Download the file" in page


def test_a_plain_export_stays_in_the_request(app, client_for, world):
    from core.extensions import db
    from core.jobs import Job

    finance = client_for("Finance")
    response = finance.post(f"/exports/generate/{world.grant_a}", data={"report": "builtin:reporting_periods"})
    assert response.status_code == 302 and "/jobs/" not in response.headers["Location"]
    with app.app_context():
        assert db.session.scalar(select(Job)) is None
