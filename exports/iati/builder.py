"""One IATI 2.03 ``iati-activity`` per grant, from what Grantkeeper already holds.

What goes in, and what never does:

- the reporting organisation (its IATI identifier, name and type from settings);
- participating organisations: the funder (funding, role 1) and the grant's recipient
  (implementing, role 4);
- the grant's title and description as narratives in the organisation's language (a grant has
  one language today), activity status and dates, recipient countries, DAC 5-digit sectors;
- one budget per reporting period and the spending of each period as an expenditure
  transaction, both in the grant's currency and equal to the budget-vs-actual report to the
  cent (``budgets.report.budget_vs_actual``, indirect costs included when the grant charges
  them), and the funder's agreed amount as an incoming commitment;
- results: every indicator with its baseline, its target and verified result per period, and
  the parts of each by disaggregation (IATI dimensions). Draft and unverified results, and the
  comments on figures, are not written;
- document links only for evidence shared with donors (``SHARED_WITH_DONORS``, the most open
  level) and verified, never staff-only or restricted items, nor lists of people; the names of people (uploader,
  verifier, responsible person) are never written.

Every code comes from ``exports.iati.codes``; the element order is the schema's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from budgets.models import BudgetRevision, RevisionStatus
from budgets.report import budget_vs_actual
from config.settings import IatiSettings
from core import clock
from core.errors import DomainValidationError
from core.formatting import gettext as _
from exports.iati.codes import codelist
from grants.evidence.models import SHARED_WITH_DONORS, Evidence, EvidenceKind, VerificationStatus
from grants.models import Grant, GrantStatus, ReportingPeriod
from indicators.models import Direction, Indicator, IndicatorUnit, Result, ResultStatus, Target

IATI_VERSION = "2.03"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CENT = Decimal("0.01")

ACTIVITY_STATUS = {
    GrantStatus.pipeline: "1",  # Pipeline/identification
    GrantStatus.active: "2",  # Implementation
    GrantStatus.closing: "3",  # Finalisation
    GrantStatus.closed: "4",  # Closed
}
MEASURE = {
    IndicatorUnit.number: "1",  # Unit
    IndicatorUnit.currency: "1",  # Unit
    IndicatorUnit.percentage: "2",  # Percentage
    IndicatorUnit.yes_no: "3",  # Nominal (1 = yes, 0 = no)
}
# Which IATI document category an evidence item of each kind falls in.
DOCUMENT_CATEGORY = {
    EvidenceKind.minutes: "A07",  # Review of project performance and evaluation
    EvidenceKind.attendance_summary: "A08",  # Results, outcomes and outputs
    EvidenceKind.photo: "A08",
    EvidenceKind.receipt: "A05",  # Budget
    EvidenceKind.report: "A07",
    EvidenceKind.policy: "A04",  # Conditions
    EvidenceKind.contract: "A11",  # Contract
    EvidenceKind.other: "A08",
}
ROLE_FUNDING, ROLE_IMPLEMENTING = "1", "4"
TRANSACTION_INCOMING_COMMITMENT, TRANSACTION_EXPENDITURE = "11", "4"
BUDGET_ORIGINAL, BUDGET_REVISED, BUDGET_COMMITTED = "1", "2", "2"
RESULT_OTHER = "9"
DESCRIPTION_GENERAL = "1"
SECTOR_DAC_5 = "1"
INDICATOR_VOCABULARY_OWN = "99"
# Disaggregated counts below this are never published (see ``_parts``).
SMALL_CELL = 5


@dataclass(frozen=True)
class Publisher:
    """The organisation that publishes: IATI identifier, name, type code and language code."""

    ref: str
    name: str
    type: str
    language: str


def publisher_from(settings: IatiSettings) -> Publisher:
    """The publisher from settings, or a refusal saying which variable to set and how."""
    if not settings.org_ref:
        raise DomainValidationError(
            {
                "GRANTKEEPER_IATI_ORG_REF": [
                    _("set your organisation's IATI identifier (e.g. LC-CRO-12345) before making IATI files")
                ]
            }
        )
    if not settings.org_name:
        raise DomainValidationError(
            {"GRANTKEEPER_IATI_ORG_NAME": [_("set your organisation's name as it should appear in IATI files")]}
        )
    org_type = codelist("OrganisationType").check(settings.org_type, "GRANTKEEPER_IATI_ORG_TYPE")
    language = codelist("Language").check(settings.language, "GRANTKEEPER_IATI_LANGUAGE")
    return Publisher(settings.org_ref, settings.org_name, org_type, language)


def activity_identifier(publisher: Publisher, grant: Grant) -> str:
    """The reporting organisation's identifier, a hyphen, and the grant's reference (IATI's rule)."""
    return f"{publisher.ref}-{grant.reference}"


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def _figure(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return format(Decimal(value).normalize(), "f")


def split_percentages(count: int) -> list[Decimal]:
    """``count`` equal shares of 100 with two decimals that add up to exactly 100 (the last takes the rest)."""
    if count <= 0:
        return []
    share = (Decimal(100) / count).quantize(CENT, rounding=ROUND_HALF_UP)
    return [share] * (count - 1) + [Decimal(100) - share * (count - 1)]


class _Writer:
    def __init__(self, language: str) -> None:
        self.language = language

    def sub(self, parent: etree._Element, tag: str, **attributes: str | None) -> etree._Element:
        element = etree.SubElement(parent, tag)
        for name, value in attributes.items():
            if value is not None:
                element.set(name.replace("_", "-"), value)
        return element

    def narrative(self, parent: etree._Element, text: str) -> etree._Element:
        element = etree.SubElement(parent, "narrative")
        element.set(XML_LANG, self.language)
        element.text = text
        return element

    def text(self, parent: etree._Element, tag: str, text: str, **attributes: str | None) -> etree._Element:
        element = self.sub(parent, tag, **attributes)
        self.narrative(element, text)
        return element


def _description(grant: Grant) -> str:
    text = (grant.description or "").strip()
    if text:
        return text
    return (
        f"{grant.title}: a grant of {grant.funder.name} to {grant.recipient}, "
        f"from {grant.start_date.isoformat()} to {grant.end_date.isoformat()}."
    )


def _budget_type(session: Session, grant: Grant) -> str:
    revised = session.scalar(
        select(BudgetRevision.id)
        .where(BudgetRevision.grant_id == grant.id, BudgetRevision.status == RevisionStatus.approved)
        .limit(1)
    )
    return BUDGET_REVISED if revised else BUDGET_ORIGINAL


@dataclass(frozen=True)
class PeriodMoney:
    """One reporting period's planned and actual spending, from the budget-vs-actual report."""

    period: ReportingPeriod
    planned: Decimal
    actual: Decimal


def period_money(session: Session, grant: Grant) -> list[PeriodMoney]:
    """Planned and actual per period, exactly the budget-vs-actual report's totals (indirect costs included)."""
    result = []
    for period in sorted(grant.periods, key=lambda p: p.start_date):
        report = budget_vs_actual(session, grant.id, period.id, by="category")
        total = report.grand_total or report.total
        assert total is not None
        result.append(PeriodMoney(period, total.planned, total.actual))
    return result


def _public_evidence(session: Session, grant: Grant) -> list[Evidence]:
    """Evidence a donor may see and the public may read: shared with donors, verified, and not a list of people."""
    return list(
        session.scalars(
            select(Evidence)
            .where(
                Evidence.grant_id == grant.id,
                Evidence.sensitivity.in_(sorted(SHARED_WITH_DONORS)),
                Evidence.status == VerificationStatus.verified,
                Evidence.looks_like_people_list.is_(False),
            )
            .order_by(Evidence.evidence_date, Evidence.id)
        )
    )


def _evidence_url(evidence: Evidence, base_url: str) -> str:
    if evidence.url:
        return evidence.url.strip()
    # A stored file: its page in Grantkeeper, where the grant's signed-in users may open it.
    return f"{base_url.rstrip('/')}/evidence/download/{evidence.id}"


def _indicators(session: Session, grant: Grant) -> list[Indicator]:
    return list(
        session.scalars(
            select(Indicator).where(Indicator.grant_id == grant.id).order_by(Indicator.sort_order, Indicator.code)
        )
    )


def _dimension_of(part: Any) -> tuple[str, str]:
    category = part.category
    dimension = category.dimension
    return (dimension.name if dimension else "Category", category.name)


def _parts(record: Target | Result, counts: bool) -> list[tuple[str, str, Decimal]]:
    """The parts of a figure by category, leaving out any breakdown that could single people out.

    For counts, a breakdown with a part of 1 to 4 is left out whole (all its parts, so the small
    one cannot be worked out from the total): a file published to the world must not point at
    the two transgender sex workers trained in a small town. The total stays.
    """
    parts = [(*_dimension_of(part), part.value) for part in record.values if part.value is not None]
    if counts:
        small = {name for name, _, value in parts if 0 < value < SMALL_CELL}
        parts = [part for part in parts if part[0] not in small]
    return sorted(parts, key=lambda p: (p[0], p[1]))


class ActivityBuilder:
    """Builds the ``iati-activity`` of one grant; ``today`` decides which dates are actual."""

    def __init__(self, session: Session, publisher: Publisher, *, base_url: str, today: dt.date) -> None:
        self.session = session
        self.publisher = publisher
        self.base_url = base_url
        self.today = today
        self.w = _Writer(publisher.language)

    def build(self, grant: Grant, parent: etree._Element) -> etree._Element:
        w = self.w
        activity = w.sub(
            parent,
            "iati-activity",
            default_currency=codelist_currency(grant.currency),
            hierarchy="1",
            last_updated_datetime=clock.now().replace(microsecond=0).isoformat(),
        )
        activity.set(XML_LANG, self.publisher.language)
        w.sub(activity, "iati-identifier").text = activity_identifier(self.publisher, grant)
        reporting = w.sub(activity, "reporting-org", ref=self.publisher.ref, type=self.publisher.type)
        w.narrative(reporting, self.publisher.name)
        w.text(activity, "title", grant.title)
        w.text(activity, "description", _description(grant), type=DESCRIPTION_GENERAL)
        w.text(activity, "participating-org", grant.funder.name, role=ROLE_FUNDING)
        w.text(
            activity,
            "participating-org",
            grant.recipient,
            role=ROLE_IMPLEMENTING,
            ref=self.publisher.ref,
            type=self.publisher.type,
        )
        w.sub(
            activity, "activity-status", code=codelist("ActivityStatus").check(ACTIVITY_STATUS[grant.status], "status")
        )
        self._dates(grant, activity)
        countries = grant.country_codes
        for code, share in zip(countries, split_percentages(len(countries))):
            w.sub(activity, "recipient-country", code=code, percentage=str(share) if len(countries) > 1 else None)
        sectors = [codelist("Sector").check(code, "iati_sectors") for code in grant.iati_sectors or []]
        for code, share in zip(sectors, split_percentages(len(sectors))):
            w.sub(activity, "sector", vocabulary=SECTOR_DAC_5, code=code, percentage=str(share))
        money = period_money(self.session, grant)
        self._budgets(grant, money, activity)
        self._transactions(grant, money, activity)
        self._documents(grant, activity)
        self._results(grant, activity)
        return activity

    def _dates(self, grant: Grant, activity: etree._Element) -> None:
        w = self.w
        w.sub(activity, "activity-date", type="1", iso_date=grant.start_date.isoformat())
        if grant.status != GrantStatus.pipeline and grant.start_date <= self.today:
            w.sub(activity, "activity-date", type="2", iso_date=grant.start_date.isoformat())
        w.sub(activity, "activity-date", type="3", iso_date=grant.end_date.isoformat())
        if grant.status == GrantStatus.closed and grant.end_date <= self.today:
            w.sub(activity, "activity-date", type="4", iso_date=grant.end_date.isoformat())

    def _budgets(self, grant: Grant, money: list[PeriodMoney], activity: etree._Element) -> None:
        w = self.w
        kind = _budget_type(self.session, grant)
        for item in money:
            if item.planned == 0:
                continue
            budget = w.sub(activity, "budget", type=kind, status=BUDGET_COMMITTED)
            w.sub(budget, "period-start", iso_date=item.period.start_date.isoformat())
            w.sub(budget, "period-end", iso_date=item.period.end_date.isoformat())
            value = w.sub(budget, "value", value_date=item.period.start_date.isoformat())
            value.text = _money(item.planned)

    def _transactions(self, grant: Grant, money: list[PeriodMoney], activity: etree._Element) -> None:
        w = self.w
        # The funder's agreed amount. Grantkeeper records the agreement, not each receipt of money:
        # it is an incoming commitment (11), not incoming funds (1).
        transaction = w.sub(activity, "transaction")
        w.sub(transaction, "transaction-type", code=TRANSACTION_INCOMING_COMMITMENT)
        w.sub(transaction, "transaction-date", iso_date=grant.start_date.isoformat())
        value = w.sub(transaction, "value", value_date=grant.start_date.isoformat())
        value.text = _money(grant.amount)
        w.text(transaction, "description", f"Amount agreed with {grant.funder.name} for {grant.reference}")
        w.text(transaction, "provider-org", grant.funder.name)
        for item in money:
            if item.actual == 0 or item.period.start_date > self.today:
                continue
            # Spending of a period still running is dated today: IATI transactions are never in the future.
            on = min(item.period.end_date, self.today)
            transaction = w.sub(activity, "transaction")
            w.sub(transaction, "transaction-type", code=TRANSACTION_EXPENDITURE)
            w.sub(transaction, "transaction-date", iso_date=on.isoformat())
            value = w.sub(transaction, "value", value_date=on.isoformat())
            value.text = _money(item.actual)
            w.text(
                transaction,
                "description",
                f"Spending in {item.period.label} ({item.period.start_date.isoformat()} to "
                f"{item.period.end_date.isoformat()})",
            )

    def _documents(self, grant: Grant, activity: etree._Element) -> None:
        w = self.w
        for evidence in _public_evidence(self.session, grant):
            link = w.sub(
                activity,
                "document-link",
                url=_evidence_url(evidence, self.base_url),
                format=(evidence.content_type or "text/html") if evidence.sha256 else "text/html",
            )
            w.text(link, "title", evidence.title)
            w.sub(link, "category", code=DOCUMENT_CATEGORY.get(evidence.kind, "A08"))
            w.sub(link, "language", code=self.publisher.language)
            w.sub(link, "document-date", iso_date=evidence.evidence_date.isoformat())

    def _results(self, grant: Grant, activity: etree._Element) -> None:
        indicators = _indicators(self.session, grant)
        if not indicators:
            return
        w = self.w
        result = w.sub(activity, "result", type=RESULT_OTHER)
        w.text(result, "title", f"Indicators agreed with {grant.funder.name}")
        periods = {p.id: p for p in grant.periods}
        for indicator in indicators:
            element = w.sub(
                result,
                "indicator",
                measure=MEASURE.get(indicator.unit, "1"),
                ascending="true" if indicator.direction != Direction.decrease else "false",
            )
            w.text(element, "title", f"{indicator.code} {indicator.name}")
            if (indicator.definition or "").strip():
                w.text(element, "description", (indicator.definition or "").strip())
            w.sub(element, "reference", vocabulary=INDICATOR_VOCABULARY_OWN, code=indicator.code)
            if indicator.baseline_value is not None:
                when = indicator.baseline_date or grant.start_date
                w.sub(
                    element,
                    "baseline",
                    year=str(when.year),
                    iso_date=indicator.baseline_date.isoformat() if indicator.baseline_date else None,
                    value=_figure(indicator.baseline_value),
                )
            targets = {t.period_id: t for t in indicator.targets}
            actuals = {r.period_id: r for r in indicator.results if r.status == ResultStatus.verified}
            for period_id in sorted(set(targets) | set(actuals), key=lambda pid: periods[pid].start_date):
                period = periods[period_id]
                block = w.sub(element, "period")
                w.sub(block, "period-start", iso_date=period.start_date.isoformat())
                w.sub(block, "period-end", iso_date=period.end_date.isoformat())
                counts = indicator.unit == IndicatorUnit.number
                self._figures(block, "target", targets.get(period_id), counts)
                self._figures(block, "actual", actuals.get(period_id), counts)

    def _figures(self, block: etree._Element, tag: str, record: Target | Result | None, counts: bool) -> None:
        if record is None or record.value is None:
            return
        self.w.sub(block, tag, value=_figure(record.value))
        for dimension, category, value in _parts(record, counts):
            part = self.w.sub(block, tag, value=_figure(value))
            self.w.sub(part, "dimension", name=dimension, value=category)


def codelist_currency(code: str) -> str:
    return (code or "").strip().upper()


def build_activities(
    session: Session,
    grants: Sequence[Grant],
    publisher: Publisher,
    *,
    base_url: str,
    today: dt.date | None = None,
    generated_at: dt.datetime | None = None,
) -> bytes:
    """The IATI activity file of ``grants`` (one ``iati-activity`` each), as UTF-8 bytes; not validated here."""
    if not grants:
        raise DomainValidationError({"grant": [_("choose at least one grant")]})
    moment = (generated_at or clock.now()).replace(microsecond=0)
    root = etree.Element("iati-activities", version=IATI_VERSION)
    root.set("generated-datetime", moment.isoformat())
    builder = ActivityBuilder(session, publisher, base_url=base_url, today=today or clock.today())
    for grant in grants:
        builder.build(grant, root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def references(grants: Iterable[Grant]) -> list[str]:
    return [grant.reference for grant in grants]
