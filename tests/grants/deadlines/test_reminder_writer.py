"""The sweep's reminder writer (wording looked up once per language) writes exactly what per-message gettext writes."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from core import formatting
from core.formatting import gettext as _


def _reference(row, today, recipient, owner, escalation, reason, missing, base_url, language):
    """The reminder as written before the sweep's writer: one gettext call per line and message."""
    from grants.deadlines.mail import _short_day, describe_days

    with formatting.in_locale(language):
        days_left = (row.due_date - today).days
        when = describe_days(days_left)
        names = {"reference": row.reference, "title": row.title, "when": when}
        if escalation:
            subject = _("[Grantkeeper] Escalation: %(reference)s — %(title)s is %(when)s", **names)
        elif days_left < 0:
            subject = _("[Grantkeeper] Overdue: %(reference)s — %(title)s (%(when)s)", **names)
        else:
            subject = _(
                "[Grantkeeper] %(reference)s — %(title)s due %(when)s (%(date)s)",
                date=_short_day(row.due_date),
                **names,
            )
        link = f"{base_url.rstrip('/')}/deadlines/show/{row.id}"
        owner_name = f"{owner.first_name} {owner.last_name}".strip() if owner is not None else _("nobody yet")
        lines = [
            _("Hello %(name)s,", name=recipient.first_name),
            "",
            _("What is due: %(title)s", title=row.title),
            _("Grant:       %(reference)s — %(title)s", reference=row.reference, title=row.grant_title),
            _("Due:         %(date)s (%(when)s)", date=formatting.long_day(row.due_date), when=when),
            _("Owner:       %(name)s", name=owner_name),
            "",
        ]
        if missing:
            lines.append(_("Still missing:"))
            lines.extend(f"  - {item}" for item in missing)
        else:
            lines.append(_("Still missing: nothing recorded in Grantkeeper."))
        lines += [
            "",
            _("Open it: %(link)s", link=link),
            _("Mark it submitted there once it has gone to the donor, and these reminders stop."),
            "",
            reason,
            "-- Grantkeeper",
        ]
        return subject[:300], "\n".join(lines)


TODAY = date(2026, 11, 24)
DUE_DAYS = [date(2026, 12, 24), date(2026, 12, 1), date(2026, 11, 25), TODAY, date(2026, 11, 17), date(2026, 10, 1)]


@pytest.mark.parametrize("language", [None, "en", "fr", "nl", "es"])
def test_the_writer_writes_what_gettext_writes_in_every_language(app, language):
    from grants.deadlines.mail import ReminderWriter

    writer = ReminderWriter(TODAY, "https://gk.example.org/")
    people = [
        SimpleNamespace(first_name="Marie", last_name="Curie"),
        SimpleNamespace(first_name="100% %(name)s", last_name=""),  # "%" in a value stays as typed
        SimpleNamespace(first_name=None, last_name="Nobody"),
    ]
    written = 0
    with app.app_context():
        for due in DUE_DAYS:
            for escalation in (False, True):
                for missing in ([], ["3 indicators without results for S1", "50% of %(budget)s"]):
                    for owner in (None, people[0], people[1]):
                        for recipient in people:
                            row = SimpleNamespace(
                                id=41,
                                reference="GA-1 %s",
                                title="Rapport S1 — 100%",
                                grant_title="Grant A %(title)s",
                                due_date=due,
                            )
                            common = dict(escalation=escalation, reason="Why: 5% of you.", missing=missing)
                            expected = _reference(
                                row, TODAY, recipient, owner, base_url="https://gk.example.org/",
                                language=language, **common,
                            )  # fmt: skip
                            got = writer.render(
                                row=row, recipient_name=recipient.first_name, owner=owner, language=language, **common
                            )
                            assert got == expected
                            written += 1
    assert written == len(DUE_DAYS) * 2 * 2 * 3 * 3


def test_a_french_reminder_is_translated_by_the_writer(app):
    from grants.deadlines.mail import ReminderWriter

    row = SimpleNamespace(id=7, reference="GA-1", title="Rapport S1", grant_title="Grant A", due_date=date(2026, 12, 1))
    with app.app_context():
        subject, body = ReminderWriter(TODAY, "https://gk.example.org").render(
            row=row, recipient_name="Marie", owner=None, escalation=False, reason="", missing=[], language="fr"
        )
    assert subject == "[Grantkeeper] GA-1 — Rapport S1 à rendre dans 7 jours (1 déc. 2026)"
    assert body.startswith("Bonjour Marie,") and "mardi 1 décembre 2026" in body
