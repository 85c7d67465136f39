"""The navigation bar shows a signed-in user's unread notifications, and only theirs."""

import datetime as dt


def _notify(db_session, user_id, read=False):
    from grants.deadlines.models import Notification

    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    db_session.add(
        Notification(
            user_id=user_id, title="S2 report due", body="due soon", created_at=now, read_at=now if read else None
        )
    )
    db_session.commit()


def test_unread_notifications_show_as_a_bell_with_the_count(program_client, world, db_session):
    _notify(db_session, world.users["Program"])
    _notify(db_session, world.users["Program"])
    _notify(db_session, world.users["Program"], read=True)
    html = program_client.get("/grants/list/").get_data(as_text=True)
    assert 'id="unread-notifications"' in html
    assert '<span class="badge">2</span>' in html


def test_no_bell_without_unread_notifications_or_for_someone_else(client_for, world, db_session):
    _notify(db_session, world.users["Program"])
    html = client_for("Finance").get("/grants/list/").get_data(as_text=True)
    assert 'id="unread-notifications"' not in html


def test_no_bell_on_the_login_page(anonymous_client, world):
    assert "unread-notifications" not in anonymous_client.get("/login/").get_data(as_text=True)
