"""The evidence part of the demo (DEMO.md): the RCM, three 2026 meetings, real small files, one confidential item."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from core.storage import FileStore
from grants.evidence import consultations, services
from grants.evidence.models import Sensitivity

# (held on, title, attendance counts, decisions) — the October meeting had no sex worker present.
MEETINGS = [
    (
        date(2026, 2, 12),
        "RCM quarterly meeting (Castries)",
        {"government": 6, "civil_society": 4, "sex_workers": 2, "msm": 1, "transgender": 1, "plhiv": 2, "donors": 1},
        "The Windward Sex Worker Coalition takes the leading role in every activity targeted at sex workers.",
    ),
    (
        date(2026, 5, 21),
        "RCM meeting on the semester work plan (St. George's)",
        {"government": 5, "civil_society": 3, "sex_workers": 3, "msm": 1, "plhiv": 1, "donors": 1},
        "Training curriculum on human rights and HIV approved; two new sex worker groups in Grenada.",
    ),
    (
        date(2026, 10, 15),
        "RCM extraordinary meeting on reallocation (virtual)",
        {"government": 7, "civil_society": 2, "sex_workers": 0, "msm": 1, "donors": 2, "other": 1},
        "Reallocation proposal noted; sex worker representatives could not attend (no travel support).",
    ),
]


def tiny_pdf(*lines: str) -> bytes:
    """A small, valid one-page PDF with the given lines of text (no library needed for a demo file)."""
    text = (
        "BT /F1 11 Tf 50 780 Td 14 TL "
        + " ".join("(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines)
        + " ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode("latin-1")),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def attendance_csv(counts: dict[str, int]) -> bytes:
    from grants.evidence.models import ATTENDANCE

    rows = ["constituency,count"] + [f"{ATTENDANCE[key]},{counts.get(key, 0)}" for key in ATTENDANCE]
    return ("\n".join(rows) + "\n").encode()


def load(session: Session, ctx: Any) -> None:
    from flask import current_app

    store = FileStore(current_app.config["STORAGE_ROOT"])
    grant = ctx.grants["RCM-HIV-2026-SW"]
    # The demo users were made in another session: load them into this one (their roles are read).
    program, admin = (session.get(type(ctx.users[name]), ctx.users[name].id) for name in ("program", "admin"))
    rcm = consultations.create_body(
        session,
        code="RCM",
        name="Regional Coordinating Mechanism (demo)",
        is_demo=True,
        description="Regional body of Eastern Caribbean states overseeing the HIV grant; key populations hold seats.",
    )
    meetings, minutes = [], []
    for held_on, title, counts, decisions in MEETINGS:
        meeting = consultations.record_consultation(
            session,
            grant=grant,
            body=rcm,
            held_on=held_on,
            title=title,
            attendance=counts,
            agenda="1. Progress of the sex worker-led programme  2. Budget  3. Any other business",
            decisions=decisions,
            is_demo=True,
        )
        meetings.append(meeting)
        pdf = services.create_evidence(
            session,
            store,
            grant=grant,
            title=f"Minutes: {title}",
            kind="minutes",
            evidence_date=held_on,
            sensitivity=Sensitivity.shared_with_donors,
            uploaded_by=program,
            is_demo=True,
            content=tiny_pdf(
                f"Minutes of the {title}",
                f"Held on {held_on:%d %B %Y}",
                "Decisions:",
                decisions,
                "Demo document - fictional.",
            ),
            filename=f"rcm-minutes-{held_on}.pdf",
        )
        services.link_evidence(session, pdf, "consultation", meeting.id)
        minutes.append(pdf)
        summary = services.create_evidence(
            session,
            store,
            grant=grant,
            title=f"Attendance by constituency: {title}",
            kind="attendance_summary",
            evidence_date=held_on,
            sensitivity=Sensitivity.staff_only,
            uploaded_by=program,
            is_demo=True,
            content=attendance_csv(counts),
            filename=f"rcm-attendance-{held_on}.csv",
        )
        services.link_evidence(session, summary, "consultation", meeting.id)
        if held_on.month != 5:  # the May minutes still await verification
            services.verify_evidence(session, pdf, admin, "verified", "Checked against the RCM secretariat's copy.")
            services.verify_evidence(session, summary, admin, "verified")

    policy = services.create_evidence(
        session,
        store,
        grant=grant,
        title="Safeguarding and data-protection policy (adopted by the board)",
        kind="policy",
        evidence_date=date(2026, 3, 5),
        sensitivity=Sensitivity.shared_with_donors,
        uploaded_by=program,
        is_demo=True,
        filename="safeguarding-data-protection-policy.pdf",
        content=tiny_pdf(
            "Safeguarding and data-protection policy",
            "Attendance is counted, never listed by name.",
            "Demo document - fictional.",
        ),
    )
    services.verify_evidence(session, policy, admin, "verified")
    # The one item a donor must never see.
    confidential = services.create_evidence(
        session,
        store,
        grant=grant,
        title="Outreach safety incident log, Q3 2026 (confidential)",
        kind="report",
        evidence_date=date(2026, 9, 30),
        sensitivity=Sensitivity.restricted,
        uploaded_by=program,
        is_demo=True,
        filename="incident-log-q3.pdf",
        content=tiny_pdf(
            "Outreach safety incidents, Q3 2026",
            "Confidential: never shared with donors.",
            "Demo document - fictional.",
        ),
    )
    services.create_evidence(
        session,
        store,
        grant=grant,
        title="Training report: human rights and HIV (Saint Lucia)",
        kind="report",
        evidence_date=date(2026, 6, 20),
        sensitivity=Sensitivity.staff_only,
        uploaded_by=program,
        is_demo=True,
        url="https://example.org/demo/training-report-lc-2026",
    )
    ctx.extra.update(
        {
            "rcm": rcm,
            "rcm_meetings": meetings,
            "rcm_minutes": minutes,
            "policy_evidence": policy,
            "confidential_evidence": confidential,
        }
    )
