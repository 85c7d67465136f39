"""Small builders shared by the evidence and compliance tests: users in the session, files, uploads."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

from grants.evidence.demo import attendance_csv, tiny_pdf

PDF = tiny_pdf("Minutes of the RCM meeting", "Test document")
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
COUNTS_CSV = attendance_csv({"government": 3, "sex_workers": 2, "msm": 1})
NAMES_CSV = b"Full name,Phone,Group\nMaria Example,555-0101,SW\nJoan Sample,555-0102,SW\n"


def user(app: Any, session: Any, world: Any, role: str) -> Any:
    return session.get(app.appbuilder.sm.user_model, world.users[role])


def xlsx_with(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def blob_count(app: Any) -> int:
    root = Path(app.config["STORAGE_ROOT"])
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def add_evidence(
    app: Any,
    session: Any,
    world: Any,
    role: str = "Program",
    *,
    grant: int | None = None,
    content: bytes | None = PDF,
    filename: str | None = "minutes.pdf",
    title: str = "Minutes",
    kind: str = "minutes",
    day: date = date(2026, 3, 1),
    sensitivity: str = "staff_only",
    url: str | None = None,
) -> Any:
    from core.storage import store_for
    from grants.evidence import services

    return services.create_evidence(
        session,
        store_for(app.config),
        grant=grant or world.grant_a,
        title=title,
        kind=kind,
        evidence_date=day,
        sensitivity=sensitivity,
        uploaded_by=user(app, session, world, role),
        content=content if url is None else None,
        filename=filename if url is None else None,
        url=url,
    )
