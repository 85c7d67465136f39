"""The .ics feed: a per-user secret URL, revocable, showing only what the user may see."""

from __future__ import annotations

import re

from icalendar import Calendar


def _feed_url(client) -> str:
    page = client.post("/my-deadlines/calendar", data={"action": "new"}).get_data(as_text=True)
    match = re.search(r'id="feed-url" value="([^"]+)"', page)
    assert match, "the new feed URL is shown once on the page"
    return match.group(1)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_feed_lists_the_users_deadlines_with_title_grant_and_date_only(app, world, deadlines, client_for):
    url = _feed_url(client_for("Program"))
    response = app.test_client().get(_path(url))  # no login: calendar apps can't sign in
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.data)
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    assert "GA-1: External audit 2025" in events
    event = events["GA-1: External audit 2025"]
    assert event.decoded("dtstart").isoformat() == "2026-09-30"
    assert f"deadline-{deadlines['audit']}@" in str(event["uid"])
    text = response.get_data(as_text=True)
    assert "confidential auditor remarks" not in text  # internal notes never leave the app


def test_feed_shows_only_grants_the_user_may_see(app, world, deadlines, client_for):
    program_feed = app.test_client().get(_path(_feed_url(client_for("Program")))).get_data(as_text=True)
    finance_feed = app.test_client().get(_path(_feed_url(client_for("Finance")))).get_data(as_text=True)
    assert "Secret board meeting" not in program_feed and "GB-1" not in program_feed
    assert "Secret board meeting" in finance_feed


def test_revoked_or_regenerated_feed_url_stops_working(app, world, deadlines, client_for):
    client = client_for("Program")
    first = _path(_feed_url(client))
    second = _path(_feed_url(client))
    anonymous = app.test_client()
    assert anonymous.get(first).status_code == 404
    assert anonymous.get(second).status_code == 200
    client.post("/my-deadlines/calendar", data={"action": "revoke"})
    assert anonymous.get(second).status_code == 404
    assert anonymous.get("/calendar/not-a-token.ics").status_code == 404


def test_feed_token_is_stored_only_as_a_hash(app, world, client_for):
    from sqlalchemy import select

    from core.extensions import db
    from grants.deadlines.models import CalendarToken

    token = _path(_feed_url(client_for("Program"))).split("/")[-1][: -len(".ics")]
    with app.app_context():
        stored = db.session.scalar(select(CalendarToken.token_sha256))
    assert stored != token and len(stored) == 64 and token not in stored


def test_a_deactivated_users_feed_stops(app, world, deadlines, client_for):
    from flask_appbuilder.security.sqla.models import User

    from core.extensions import db

    path = _path(_feed_url(client_for("Program")))
    with app.app_context():
        db.session.get(User, world.users["Program"]).active = False
        db.session.commit()
    assert app.test_client().get(path).status_code == 404
