"""Funders, grants, periods and members saved from a form or the API go through the grant operations, in one commit."""

from contextlib import contextmanager
from datetime import date

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from grants.models import Grant, GrantMembership, ReportingPeriod


@contextmanager
def counting_commits():
    """How many transactions were committed inside the block (by any session)."""
    counted: list[int] = []

    def count(_session):
        counted.append(1)

    event.listen(Session, "after_commit", count)
    try:
        yield counted
    finally:
        event.remove(Session, "after_commit", count)


def test_a_period_added_in_the_form_is_saved_in_one_commit(world, client_for, session):
    client = client_for("Admin")
    with counting_commits() as commits:
        response = client.post(
            "/periods/add",
            data={
                "grant": str(world.grant_a),
                "label": "Extra",
                "start_date": "2026-02-01",
                "end_date": "2026-02-28",
                "status": "open",
            },
        )
    assert response.status_code == 302
    assert len(commits) == 1
    session.rollback()
    assert session.scalar(select(ReportingPeriod).where(ReportingPeriod.label == "Extra")).end_date == date(2026, 2, 28)


def test_a_grant_changed_through_the_api_is_saved_in_one_commit(world, api_for, session):
    api = api_for("Admin")
    with counting_commits() as commits:
        response = api.put(f"/api/v1/grants/{world.grant_a}", json={"title": "Grant A, renamed"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(commits) == 1
    session.rollback()
    assert session.get(Grant, world.grant_a).title == "Grant A, renamed"


def test_a_member_added_twice_through_the_api_is_refused_naming_the_user(world, api_for, session):
    again = api_for("Admin").post(
        "/api/v1/memberships/", json={"grant": world.grant_a, "user": world.users["Program"], "role": "program"}
    )
    assert again.status_code == 422 and "already a member" in again.json["message"]["user"][0]
    session.rollback()
    assert len(list(session.scalars(select(GrantMembership).where(GrantMembership.grant_id == world.grant_a)))) == 3
