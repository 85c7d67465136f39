"""Funder templates (versioned), their mapping specs, and the history of every file generated."""

from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.errors import ErrorCollector
from core.formatting import gettext as _
from core.records import Audited, enum_column
from grants.models import Funder, Grant, ReportingPeriod


class ExportKind(str, enum.Enum):
    template = "template"  # a funder's own template, filled
    builtin = "builtin"  # one of Grantkeeper's own workbooks


class FunderTemplate(Audited, Model):
    """A funder's spreadsheet template, e.g. "CNF annual report"; its files are versions."""

    __tablename__ = "funder_templates"
    __table_args__ = (UniqueConstraint("funder_id", "name", name="uq_funder_templates_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    funder_id: Mapped[int] = mapped_column(ForeignKey("funders.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)

    funder: Mapped[Funder] = relationship()
    versions: Mapped[list[TemplateVersion]] = relationship(
        back_populates="template", order_by="TemplateVersion.version", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"{self.funder.code if self.funder else ''} {self.name}".strip()

    @property
    def latest(self) -> TemplateVersion | None:
        return self.versions[-1] if self.versions else None

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.name or "").strip():
            errors.add("name", _("is required"))
        if self.funder_id is None and self.funder is None:
            errors.add("funder", _("is required"))
        errors.raise_if_any()


class TemplateVersion(Audited, Model):
    """One uploaded file of a template, stored by SHA-256, with the mapping that fills it."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version", name="uq_template_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("funder_templates.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    has_macros: Mapped[bool] = mapped_column(Boolean, default=False)
    # The mapping spec as the user wrote it (YAML or JSON); validated before it is saved.
    mapping_text: Mapped[str | None] = mapped_column(Text)
    uploaded_by: Mapped[str | None] = mapped_column(String(100))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    notes: Mapped[str | None] = mapped_column(Text)

    template: Mapped[FunderTemplate] = relationship(back_populates="versions")

    def __repr__(self) -> str:
        return f"{self.template!r} v{self.version}" if self.template else f"v{self.version}"


class ExportRecord(Audited, Model):
    """Every file Grantkeeper generated: what did we send the donor in March has an exact answer."""

    __tablename__ = "export_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int | None] = mapped_column(ForeignKey("reporting_periods.id", ondelete="SET NULL"), index=True)
    kind: Mapped[ExportKind] = mapped_column(enum_column(ExportKind))
    report: Mapped[str] = mapped_column(String(120))  # template name or built-in report name
    template_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("template_versions.id", ondelete="RESTRICT"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    published_by: Mapped[str | None] = mapped_column(String(100))
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The last time it was taken back from the donors, by whom and why (required).
    unpublished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    unpublished_by: Mapped[str | None] = mapped_column(String(100))
    unpublish_reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)

    grant: Mapped[Grant] = relationship()
    period: Mapped[ReportingPeriod | None] = relationship()
    template_version: Mapped[TemplateVersion | None] = relationship()

    def __repr__(self) -> str:
        return f"{self.filename} ({self.created_at:%Y-%m-%d %H:%M})" if self.created_at else self.filename

    @property
    def download(self) -> int:
        """The record id, for list views that render it as a download link."""
        return self.id
