"""'Sync now' is a background job: the button leads to the job's page, which keeps the outcome (who, when, counts)."""

from __future__ import annotations

from sqlalchemy import select

from tests.budgets.odoo.conftest import SECRET, linked, odoo, odoo_env  # noqa: F401  (fixtures)
from tests.budgets.odoo.test_web import _set_odoo_env, configured  # noqa: F401  (fixture)


def test_sync_now_leads_to_the_jobs_page_and_the_outcome_is_recorded(app, client_for, world, linked, configured):  # noqa: F811
    from core.extensions import db
    from core.jobs import Job, JobState

    configured.add_line(1, "2026-02-03", -270.00, account=41)
    client = client_for("Finance")
    response = client.post(f"/odoo-links/{linked.link_a}/sync", data={"full": "1"})
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Odoo sync — GA-1" in page and "Finished" in page and "1 created" in page
    assert f"/odoo-links/show/{linked.link_a}" in page and SECRET not in page
    with app.app_context():
        job = db.session.scalar(select(Job))
        assert (job.kind, job.state, job.grant_id, job.requested_by) == (
            "odoo_sync",
            JobState.done,
            world.grant_a,
            "finance",
        )
        assert job.counts is not None and job.counts["created"] == 1 and job.params["full"] is True
        assert job.finished_at is not None


def test_a_failed_sync_job_says_why_and_never_shows_the_key(app, client_for, world, linked, configured, monkeypatch):  # noqa: F811
    from core.extensions import db
    from core.jobs import Job, JobState

    _set_odoo_env(app, monkeypatch, odoo_env(configured, api_key="wrong-key-789"))
    client = client_for("Finance")
    page = client.post(f"/odoo-links/{linked.link_a}/sync", data={}, follow_redirects=True).get_data(as_text=True)
    assert "Failed" in page and "Odoo sync failed, nothing saved" in page and "check the login and the API key" in page
    assert "wrong-key-789" not in page and SECRET not in page
    with app.app_context():
        job = db.session.scalar(select(Job))
        assert job.state == JobState.failed and "wrong-key-789" not in (job.error or "")
