"""Reminders go out in each recipient's own language, over a real SMTP server on loopback.

What is due is named in that language too: a requirement's own title in it, when it has one.
"""

from __future__ import annotations

from datetime import date

from tests.conftest import set_user_language
from tests.grants.deadlines.conftest import at
from tests.grants.deadlines.test_reminders import _sweep


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


def _requirement_deadline(app, world, titles):
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.compliance.models import Requirement
    from grants.deadlines import services

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        requirement = Requirement(grant_id=world.grant_a, code="R-7", title="Quarterly narrative report", titles=titles)
        db.session.add(requirement)
        db.session.flush()
        services.upsert_deadline(
            db.session,
            grant_id=world.grant_a,
            source_kind="requirement",
            source_id=requirement.id,
            title="R-7 Quarterly narrative report (Semester 1)",
            due_date=date(2026, 9, 30),
            owner_id=world.users["Program"],
        )
        db.session.commit()


def test_a_french_recipient_reads_the_requirements_french_title_in_the_reminder(app, world, quiet_periods, smtp_server):
    inbox, smtp = smtp_server
    _requirement_deadline(app, world, {"fr": "Rapport narratif trimestriel", "es": "Informe narrativo trimestral"})
    set_user_language(app, "Program", "fr")
    _sweep(app, at(date(2026, 9, 23)), smtp)
    [message] = inbox.to("program@test.example.org")
    assert message["Subject"] == (
        "[Grantkeeper] GA-1 — R-7 Rapport narratif trimestriel (Semester 1) à rendre dans 7 jours (30 sept. 2026)"
    )
    assert "Quarterly narrative report" not in message.get_content()


def test_a_recipient_whose_language_has_no_title_reads_the_title_as_entered(app, world, quiet_periods, smtp_server):
    inbox, smtp = smtp_server
    _requirement_deadline(app, world, {"es": "Informe narrativo trimestral"})
    set_user_language(app, "Program", "nl")
    _sweep(app, at(date(2026, 9, 23)), smtp)
    [message] = inbox.to("program@test.example.org")
    assert "R-7 Quarterly narrative report (Semester 1)" in message["Subject"]
    assert "uiterlijk over 7 dagen" in message["Subject"]  # the rest of the message is still Dutch


def test_the_deadline_pages_show_the_requirements_title_in_the_readers_language(app, world, quiet_periods):
    from core.extensions import db
    from core.formatting import in_locale
    from grants.deadlines.models import Deadline
    from grants.deadlines.services import shown_titles

    _requirement_deadline(app, world, {"es": "Informe narrativo trimestral"})
    with app.app_context():
        deadlines = db.session.query(Deadline).all()
        with in_locale("es"):
            spanish = shown_titles(db.session, deadlines)
        with in_locale("en"):
            english = shown_titles(db.session, deadlines)
        [mine] = [d for d in deadlines if d.source_kind.value == "requirement"]
        assert spanish[mine.id] == "R-7 Informe narrativo trimestral (Semester 1)"
        assert english[mine.id] == "R-7 Quarterly narrative report (Semester 1)"
