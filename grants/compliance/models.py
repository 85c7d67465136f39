"""Requirements of a grant (with their rules as validated JSON) and waivers per period."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from config.settings import BaseConfig
from core.errors import ErrorCollector
from core.formatting import gettext as _
from core.formatting import in_reader_language, lazy_gettext
from core.records import Audited, enum_column
from grants.compliance.rules import rule_errors
from grants.evidence.models import EvidenceKind
from grants.evidence.targets import TARGETS, TargetKind, describe_target_problem
from grants.models import Grant, ReportingPeriod

if TYPE_CHECKING:
    from flask_appbuilder.security.sqla.models import User


class RequirementCategory(str, enum.Enum):
    community_inclusion = "community_inclusion"
    governance = "governance"
    reporting = "reporting"
    financial = "financial"
    programmatic = "programmatic"
    audit = "audit"
    safeguarding = "safeguarding"


class Frequency(str, enum.Enum):
    """The window a requirement is judged over: reporting periods, or windows of its own."""

    once = "once"  # one window: from the grant start to the due date's period
    per_period = "per_period"  # each reporting period
    annual = "annual"  # each grant year (from the grant start)
    month = "month"  # each month from the grant start, whatever the reporting periods
    quarter = "quarter"
    semester = "semester"
    grant = "grant"  # the whole grant
    custom = "custom"  # from window_start to window_end


# "... per semester": how a sentence ends for each window.
FREQUENCY_LABELS = {
    Frequency.per_period: lazy_gettext("per reporting period"),
    Frequency.month: lazy_gettext("per month"),
    Frequency.quarter: lazy_gettext("per quarter"),
    Frequency.semester: lazy_gettext("per semester"),
    Frequency.annual: lazy_gettext("per grant year"),
    Frequency.grant: lazy_gettext("over the whole grant"),
    Frequency.custom: lazy_gettext("between two dates"),
    Frequency.once: lazy_gettext("once, by a date"),
}


# Languages a requirement's title may be given in besides the default (the ``title`` column).
TITLE_LANGUAGES = tuple(code for code in BaseConfig.LANGUAGES if code != "en")
TITLE_MAX = 300


def title_problems(titles: Any) -> list[str]:
    """What is wrong with a requirement's titles per language, in words (empty when they are fine)."""
    if titles is None:
        return []
    if not isinstance(titles, dict):
        return [_('must be an object of titles per language, e.g. {"fr": "..."}')]
    problems = []
    for language, text in titles.items():
        if language not in TITLE_LANGUAGES:
            problems.append(
                _(
                    "'%(language)s' is not a language of titles; use: %(known)s",
                    language=language,
                    known=", ".join(TITLE_LANGUAGES),
                )
            )
        elif not isinstance(text, str):
            problems.append(_("the title in '%(language)s' must be text", language=language))
        elif len(text) > TITLE_MAX:
            problems.append(
                _(
                    "the title in '%(language)s' is longer than %(max)s characters",
                    language=language,
                    max=TITLE_MAX,
                )
            )
    return problems


def clean_titles(titles: dict[str, Any] | None) -> dict[str, Any]:
    """Titles per language trimmed, with the empty ones dropped (values that are not text are kept, to be refused)."""
    cleaned: dict[str, Any] = {}
    for language, text in (titles or {}).items():
        if isinstance(text, str):
            text = text.strip()
            if not text:
                continue
        elif text is None:
            continue
        cleaned[language] = text
    return cleaned


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class Requirement(Audited, Model):
    """What the donor asks of a grant, the clause it comes from, and the rules that test it."""

    __tablename__ = "requirements"
    __table_args__ = (
        UniqueConstraint("grant_id", "code", name="uq_requirements_code"),
        CheckConstraint("due_days IS NULL OR due_days >= 0", name="ck_requirements_due_days"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(300))
    # The title in other languages, {"es": "...", "fr": "..."}; the title above is the one entered
    # first and is shown where no translation is given (core.formatting.in_reader_language).
    titles: Mapped[dict[str, str] | None] = mapped_column(JSON, default=dict)
    category: Mapped[RequirementCategory] = mapped_column(
        enum_column(RequirementCategory, 30), default=RequirementCategory.reporting, index=True
    )
    clause: Mapped[str | None] = mapped_column(Text)  # where in the agreement it comes from
    frequency: Mapped[Frequency] = mapped_column(enum_column(Frequency), default=Frequency.per_period)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    # Due rule: so many days after the end of the period (or year); a fixed date for "once".
    due_days: Mapped[int | None] = mapped_column(Integer)
    due_date: Mapped[date | None] = mapped_column(Date)
    # The window of a "custom" requirement (any dates, independent of reporting periods).
    window_start: Mapped[date | None] = mapped_column(Date)
    window_end: Mapped[date | None] = mapped_column(Date)
    # Comma-separated lists: short, readable in forms, and checked by validate().
    expected_evidence: Mapped[str | None] = mapped_column(String(300), default="")
    linked_indicators: Mapped[str | None] = mapped_column(String(300), default="")
    linked_budget_lines: Mapped[str | None] = mapped_column(String(300), default="")
    # [{"rule": "evidence_verified", "params": {"kind": "minutes"}}, ...]; see grants.compliance.rules.
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    preset: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)

    grant: Mapped[Grant] = relationship()
    owner: Mapped[User | None] = relationship("User")
    waivers: Mapped[list[RequirementWaiver]] = relationship(back_populates="requirement", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"{self.code} {self.title}" if self.code else (self.title or "")

    @property
    def reader_title(self) -> str:
        """The title in the reader's language when one was given; ``title`` stays the stored default.

        (``__repr__`` keeps the default: audit entries store it.)
        """
        return in_reader_language(self.title, self.titles)

    @property
    def shown_name(self) -> str:
        """``__repr__`` for readers: the code and the title in their language (evidence links, drop-downs)."""
        return f"{self.code} {self.reader_title}" if self.code else self.reader_title

    # Forms edit the rules as JSON text; a bad text is kept to be reported by validate().
    _rules_text_error = None

    @property
    def rules_text(self) -> str:
        return json.dumps(self.rules or [], indent=2)

    @rules_text.setter
    def rules_text(self, text: str | None) -> None:
        self._rules_text_error = None
        try:
            value = json.loads(text) if text is not None and text.strip() else []
        except json.JSONDecodeError as exc:
            self._rules_text_error = f"is not valid JSON ({exc.msg} at line {exc.lineno})"
            return
        self.rules = value

    @property
    def expected_kinds(self) -> list[str]:
        return _split(self.expected_evidence)

    @property
    def indicator_ids(self) -> list[str]:
        return _split(self.linked_indicators)

    @property
    def budget_line_ids(self) -> list[str]:
        return _split(self.linked_budget_lines)

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        grant_id = self.grant_id if self.grant_id is not None else (self.grant.id if self.grant else None)
        if grant_id is None:
            errors.add("grant", _("is required"))
        if not (self.code or "").strip():
            errors.add("code", _("is required (e.g. ER4 or R1)"))
        if not (self.title or "").strip():
            errors.add("title", _("is required"))
        for message in title_problems(self.titles):
            errors.add("titles", message)
        if self.due_days is not None and not 0 <= self.due_days <= 3650:
            errors.add("due_days", _("must be between 0 and 3650 days after the period end"))
        if self.frequency == Frequency.custom:
            if self.window_start is None:
                errors.add("window_start", _("is required when the requirement is judged between two dates"))
            if self.window_end is None:
                errors.add("window_end", _("is required when the requirement is judged between two dates"))
            if self.window_start and self.window_end and self.window_end < self.window_start:
                errors.add("window_end", _("is before the start of the window"))
        elif self.window_start is not None or self.window_end is not None:
            self.window_start = self.window_end = None  # only a custom window keeps dates of its own
        known_kinds = {kind.value for kind in EvidenceKind}
        bad = [kind for kind in self.expected_kinds if kind not in known_kinds]
        if bad:
            errors.add(
                "expected_evidence",
                _(
                    "unknown evidence kinds %(kinds)s; use: %(known)s",
                    kinds=", ".join(bad),
                    known=", ".join(sorted(known_kinds)),
                ),
            )
        for field, kind in (("linked_indicators", "indicator"), ("linked_budget_lines", "budget_line")):
            for raw in _split(getattr(self, field)):
                if not raw.isdigit():
                    errors.add(field, _("'%(value)s' is not a record number", value=raw))
                elif grant_id is not None:
                    problem = describe_target_problem(session, kind, int(raw), grant_id)
                    if problem:
                        errors.add(field, problem)
        if self._rules_text_error:
            errors.add("rules", self._rules_text_error)
        elif grant_id is not None:
            for message in rule_errors(session, grant_id, self.rules):
                errors.add("rules", message)
        if grant_id is not None and self.code:
            clash = session.scalar(
                select(Requirement.id).where(
                    Requirement.grant_id == grant_id,
                    Requirement.code == self.code.strip(),
                    Requirement.id != (self.id or 0),
                )
            )
            if clash:
                errors.add("code", _("'%(code)s' is already a requirement of this grant", code=self.code))
        errors.raise_if_any()


class RequirementWaiver(Audited, Model):
    """The donor waived a requirement for one period; the justification is kept (and audited)."""

    __tablename__ = "requirement_waivers"
    __table_args__ = (UniqueConstraint("requirement_id", "period_id", name="uq_requirement_waivers_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Copied from the requirement so row-level filters need no join; validate() keeps it in step.
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    requirement_id: Mapped[int] = mapped_column(ForeignKey("requirements.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"), index=True)
    justification: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String(200))  # who at the donor agreed
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    grant: Mapped[Grant] = relationship()
    requirement: Mapped[Requirement] = relationship(back_populates="waivers")
    period: Mapped[ReportingPeriod] = relationship()

    def __repr__(self) -> str:
        return f"waiver of {self.requirement} for {self.period.label if self.period else '?'}"

    def sync_grant(self, session: Session) -> None:
        requirement = self.requirement or (
            session.get(Requirement, self.requirement_id) if self.requirement_id else None
        )
        if requirement is not None:
            self.grant_id = requirement.grant_id

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        self.sync_grant(session)
        requirement = self.requirement or (
            session.get(Requirement, self.requirement_id) if self.requirement_id else None
        )
        period = self.period or (session.get(ReportingPeriod, self.period_id) if self.period_id else None)
        if requirement is None:
            errors.add("requirement", _("is required"))
        if period is None:
            errors.add("period", _("is required"))
        if requirement is not None and period is not None and period.grant_id != requirement.grant_id:
            errors.add("period", _("belongs to another grant than the requirement"))
        if len((self.justification or "").strip()) < 10:
            errors.add("justification", _("a waiver needs a justification (at least a sentence saying why)"))
        if requirement is not None and period is not None:
            clash = session.scalar(
                select(RequirementWaiver.id).where(
                    RequirementWaiver.requirement_id == requirement.id,
                    RequirementWaiver.period_id == period.id,
                    RequirementWaiver.id != (self.id or 0),
                )
            )
            if clash:
                errors.add(
                    "period",
                    _("%(code)s is already waived for %(period)s", code=requirement.code, period=period.label),
                )
        errors.raise_if_any()


# Listed after the other domains' records, as evidence forms have always shown it.
TARGETS.add("requirement", TargetKind("requirement", Requirement), order=60)
