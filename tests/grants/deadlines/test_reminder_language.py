"""Reminders go out in each recipient's own language, over a real SMTP server on loopback."""

from __future__ import annotations

from datetime import date

from tests.grants.deadlines.conftest import at


def test_each_recipient_gets_the_reminder_in_their_language(app, world, deadlines, smtp_server):
    from app.users import set_language
    from core.extensions import db
    from grants.deadlines.mail import SmtpSender
    from grants.deadlines.reminders import SweepSettings, sweep

    inbox, smtp = smtp_server
    with app.app_context():
        set_language(db.session, world.users["Program"], "fr", app.config["LANGUAGES"])
        db.session.commit()
        try:
            sweep(
                db.session,
                now=at(date(2026, 9, 23)),  # 7 days before 30 Sep
                sender=SmtpSender(smtp),
                settings=SweepSettings(base_url="https://gk.coalition.example.org"),
            )
        finally:
            db.session.remove()
    [french] = inbox.to("program@test.example.org")
    assert french["Subject"] == "[Grantkeeper] GA-1 — External audit 2025 à rendre dans 7 jours (30 sept. 2026)"
    body = french.get_content()
    assert "Ce qui est attendu : External audit 2025" in body  # names stay as entered
    assert "mercredi 30 septembre 2026 (dans 7 jours)" in body
    [english] = inbox.to("finance@test.example.org")  # no language chosen: English
    assert english["Subject"].endswith("due in 7 days (30 Sep 2026)")
