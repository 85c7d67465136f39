"""A reminder names what is due in its recipient's language: a requirement's own title in that language."""

from __future__ import annotations

from datetime import date

from tests.grants.deadlines.conftest import at
from tests.grants.deadlines.test_reminders import _sweep


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


def _set_language(app, world, role, language):
    from app.users import set_language
    from core.extensions import db

    with app.app_context():
        set_language(db.session, world.users[role], language, app.config["LANGUAGES"])
        db.session.commit()


def test_a_french_recipient_reads_the_requirements_french_title_in_the_reminder(app, world, quiet_periods, smtp_server):
    inbox, smtp = smtp_server
    _requirement_deadline(app, world, {"fr": "Rapport narratif trimestriel", "es": "Informe narrativo trimestral"})
    _set_language(app, world, "Program", "fr")
    _sweep(app, at(date(2026, 9, 23)), smtp)
    [message] = inbox.to("program@test.example.org")
    assert message["Subject"] == (
        "[Grantkeeper] GA-1 — R-7 Rapport narratif trimestriel (Semester 1) à rendre dans 7 jours (30 sept. 2026)"
    )
    assert "Quarterly narrative report" not in message.get_content()


def test_a_recipient_whose_language_has_no_title_reads_the_title_as_entered(app, world, quiet_periods, smtp_server):
    inbox, smtp = smtp_server
    _requirement_deadline(app, world, {"es": "Informe narrativo trimestral"})
    _set_language(app, world, "Program", "nl")
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
