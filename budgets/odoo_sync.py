"""Actual spending from Odoo: connection settings from the environment, grant links, account mappings, and the sync.

How a sync works (``sync_grant``): read the grant's posted analytic lines
(changed since the last sync, or all of them), map each line's general account
to a budget line, and make the grant's Odoo-sourced expenditures match: create,
update, and, on every sync, remove those whose Odoo line is gone (Odoo deletes
analytic lines and creates new ones whenever an entry is corrected, reset to draft
or cancelled). The link is checked against Odoo first, and a sync that would remove
much of a grant's spending asks before it does. Every line is checked before
anything changes, so a grant syncs completely or not at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from budgets.bulk import PROGRESS_EVERY, Checked, Progress, SpendingWriter, collector_paused
from budgets.models import (
    BudgetLine,
    Expenditure,
    ExpenditureSource,
    OdooAccountMap,
    OdooAmountBasis,
    OdooLink,
    OdooOwnAmount,
    OdooUnmappedLine,
    SyncStatus,
)
from budgets.odoo import (
    PROTOCOLS,
    AccountCheck,
    AnalyticLine,
    OdooClient,
    OdooError,
    OdooLinkProblem,
    OdooSettings,
    OwnAmount,
)
from budgets.services import prepare_expenditure
from core import clock
from core.audit import Actor
from core.errors import DomainValidationError
from core.formatting import N_
from core.formatting import gettext as _
from core.jobs import shown, stored_sentence
from core.money import quantize_money
from grants.models import Grant, ReportingPeriod
from grants.services import get_grant_by_reference

log = logging.getLogger(__name__)

# Changes made by a sync are audited under this actor (source "sync").
SYNC_ACTOR = Actor(None, "odoo-sync", "sync")
ENV_PREFIX = "GRANTKEEPER_ODOO_"
REQUIRED_SETTINGS = ("HOST", "DATABASE", "LOGIN", "API_KEY")
# Odoo stamps write_date at the start of its transaction, so a line can be committed
# after a sync already read past its stamp; re-reading a margin before the cursor catches
# it. Lines re-read unchanged cost one comparison each.
CURSOR_OVERLAP = timedelta(minutes=15)
# A refusal names at most this many Odoo lines (then "and N more"), to stay readable.
MAX_PROBLEMS_SHOWN = 20
# The demo's stand-ins for Odoo spending carry this reference: a real link's sync removes them.
DEMO_REF_PREFIX = "demo-odoo-"


# ---------------------------------------------------------------- settings


def settings_from_env(environ: Mapping[str, str]) -> OdooSettings:
    """The Odoo connection from GRANTKEEPER_ODOO_* variables; OdooError names what is missing or wrong.

    ``environ`` is the app's ``Settings.odoo_env`` (read once at start), or any
    mapping of those variables.

    HOST, DATABASE, LOGIN and API_KEY are required; PROTOCOL defaults to jsonrpc,
    PORT to 8069 (443 for the TLS protocols), TIMEOUT to 20 seconds. The key is
    never part of any message.
    """
    env = environ

    def value(name: str) -> str:
        return (env.get(ENV_PREFIX + name) or "").strip()

    missing = [ENV_PREFIX + name for name in REQUIRED_SETTINGS if not value(name)]
    if missing:
        raise OdooError(NOT_CONFIGURED % {"settings": ", ".join(missing)})
    protocol = value("PROTOCOL") or "jsonrpc"
    if protocol not in PROTOCOLS:
        raise OdooError(
            BAD_PROTOCOL % {"setting": f"{ENV_PREFIX}PROTOCOL", "value": protocol, "choices": ", ".join(PROTOCOLS)}
        )
    port_text = value("PORT") or ("443" if protocol.endswith("s") else "8069")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise OdooError(BAD_PORT % {"setting": f"{ENV_PREFIX}PORT", "value": port_text})
    timeout_text = value("TIMEOUT") or "20"
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 600:
        raise OdooError(BAD_TIMEOUT % {"setting": f"{ENV_PREFIX}TIMEOUT", "value": timeout_text})
    return OdooSettings(
        host=value("HOST"),
        port=int(port_text),
        database=value("DATABASE"),
        login=value("LOGIN"),
        secret=value("API_KEY"),
        protocol=protocol,
        timeout=timeout,
    )


# Stored in English (a job's outcome, the link's last result); core.jobs.shown gives them in the reader's language.
FULL_ASKED = N_("asked for")
FULL_FIRST = N_("first sync")
FULL_CHANGED = N_("the link or its account mappings changed since the last sync")
SUMMARY_FULL = stored_sentence(
    N_(
        "%(grant)s: full sync (%(reason)s), %(read)s Odoo lines read: %(created)s created, %(updated)s updated, "
        "%(removed)s removed, %(unchanged)s unchanged"
    )
)
SUMMARY_CHANGES = stored_sentence(
    N_(
        "%(grant)s: sync of changes, %(read)s Odoo lines read: %(created)s created, %(updated)s updated, "
        "%(removed)s removed, %(unchanged)s unchanged"
    )
)
NOT_CONFIGURED = stored_sentence(N_("Odoo is not configured: set %(settings)s"))
BAD_PROTOCOL = stored_sentence(N_("%(setting)s: '%(value)s' is not one of %(choices)s"))
BAD_PORT = stored_sentence(N_("%(setting)s: '%(value)s' is not a port number (1-65535)"))
BAD_TIMEOUT = stored_sentence(N_("%(setting)s: '%(value)s' is not a number of seconds between 0 and 600"))


def configuration_problem(environ: Mapping[str, str]) -> str | None:
    """Why Odoo cannot be reached from the settings (names only, never values), or None when they are complete.

    In the reader's language.
    """
    try:
        settings_from_env(environ)
    except OdooError as exc:
        return shown(str(exc))
    return None


def client_from_env(environ: Mapping[str, str]) -> OdooClient:
    return OdooClient(settings_from_env(environ))


# ---------------------------------------------------------------- links and mappings


def link_grant(
    session: Session,
    grant: Grant,
    *,
    analytic_account_id: int,
    company_currency: str,
    analytic_plan: str | None = None,
    analytic_account_name: str | None = None,
    enabled: bool = True,
) -> OdooLink:
    """Say which Odoo analytic account holds the grant's spending (one per grant)."""
    link = OdooLink(
        grant=grant,
        analytic_account_id=analytic_account_id,
        company_currency=company_currency,
        analytic_plan=analytic_plan,
        analytic_account_name=analytic_account_name,
        enabled=enabled,
    )
    session.add(link)
    session.flush()
    return link


def map_account(
    session: Session, grant: Grant, *, odoo_account_id: int, line: BudgetLine | str, label: str | None = None
) -> OdooAccountMap:
    """Count an Odoo general account's spending against a budget line of the grant (replaces an earlier mapping)."""
    if isinstance(line, str):
        found = session.scalar(select(BudgetLine).where(BudgetLine.grant_id == grant.id, BudgetLine.code == line))
        if found is None:
            raise DomainValidationError(
                {"line": [_("'%(code)s' is not a budget line of %(grant)s", code=line, grant=grant.reference)]}
            )
        line = found
    mapping = session.scalar(
        select(OdooAccountMap).where(
            OdooAccountMap.grant_id == grant.id, OdooAccountMap.odoo_account_id == odoo_account_id
        )
    )
    if mapping is None:
        mapping = OdooAccountMap(grant=grant, odoo_account_id=odoo_account_id)
    mapping.line = line
    if label is not None or mapping.odoo_account_label is None:
        mapping.odoo_account_label = label
    session.add(mapping)
    session.flush()
    return mapping


def link_for_grant(session: Session, grant_id: int) -> OdooLink | None:
    return session.scalar(select(OdooLink).where(OdooLink.grant_id == grant_id))


def links_to_sync(session: Session, grant_reference: str | None = None) -> list[OdooLink]:
    """Every enabled link, or the one of ``grant_reference`` (refused if it has none or it is switched off)."""
    if grant_reference:
        grant = get_grant_by_reference(session, grant_reference)
        link = link_for_grant(session, grant.id)
        if link is None:
            raise DomainValidationError(
                {
                    "grant": [
                        _(
                            "%(grant)s is not linked to Odoo; add a link under Budgets → Odoo links",
                            grant=grant.reference,
                        )
                    ]
                }
            )
        if not link.enabled:
            raise DomainValidationError(
                {"grant": [_("the Odoo link of %(grant)s is switched off; enable it first", grant=grant.reference)]}
            )
        return [link]
    return list(
        session.scalars(
            select(OdooLink)
            .join(Grant, Grant.id == OdooLink.grant_id)
            .where(OdooLink.enabled.is_(True))
            .order_by(Grant.reference)
        )
    )


# ---------------------------------------------------------------- checking a link against Odoo


def check_link(session: Session, client: OdooClient, link: OdooLink, *, now: datetime | None = None) -> AccountCheck:
    """Ask Odoo whether the link's analytic account exists, is active and is in the link's plan.

    Remembers the plan and its column on the link (so the next check costs one
    request) and fills in the account's name when the link has none. Raises
    OdooLinkProblem (or OdooError when Odoo cannot be asked).
    """
    known = (link.plan_id, link.plan_column) if link.plan_id and link.plan_column else None
    check = client.check_account(link.analytic_account_id, link.analytic_plan, known=known)
    link.plan_id, link.plan_column = check.plan_id, check.column
    link.account_checked_at = now or clock.now()
    if not link.analytic_account_name:
        link.analytic_account_name = check.name[:200]
    return check


def save_link_checked(session: Session, link: OdooLink, environ: Mapping[str, str]) -> str:
    """Check a link someone is saving against Odoo; a sentence on how it went. DomainValidationError if Odoo says no.

    When the connection is not configured the link is saved unchecked (it is checked
    again before every sync); when Odoo cannot be reached, the same.
    """
    problem = configuration_problem(environ)
    if problem:
        return _("Not checked against Odoo (%(problem)s); it is checked before every sync.", problem=problem)
    client = client_from_env(environ)
    try:
        check = check_link(session, client, link)
    except OdooLinkProblem as exc:
        field_name, _sep, message = str(exc).partition(": ")
        raise DomainValidationError(
            {"analytic_account_id" if field_name == "analytic account" else "analytic_plan": [shown(message)]}
        ) from None
    except OdooError as exc:
        return _("Not checked against Odoo (%(problem)s); it is checked before every sync.", problem=shown(str(exc)))
    finally:
        client.close()
    return _(
        "Odoo confirms analytic account %(account)s (%(name)s) in the plan '%(plan)s'.",
        account=check.account_id,
        name=check.name,
        plan=check.plan_name,
    )


# ---------------------------------------------------------------- the sync


def external_ref(database: str, odoo_line_id: int) -> str:
    """The expenditure's reference to its Odoo line: unique across databases, stable across syncs."""
    return f"odoo:{database}:{odoo_line_id}"


@dataclass
class UnmappedAccount:
    """Spending Odoo holds for the grant under a general account no mapping covers: not imported."""

    account_id: int | None
    label: str
    lines: int = 0
    total: Decimal = Decimal("0.00")  # spent, in Odoo's company currency

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "label": self.label, "lines": self.lines, "total": str(self.total)}


@dataclass
class SyncResult:
    grant_reference: str
    currency: str  # Odoo's company currency: the currency of unmapped totals
    full: bool
    full_reason: str = ""
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    demo_removed: int = 0
    zero: int = 0  # lines of amount 0 (e.g. quantities only): nothing to record
    unmapped: list[UnmappedAccount] = field(default_factory=list)
    cursor: datetime | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed or self.demo_removed)

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "demo_removed": self.demo_removed,
        }

    def summary(self) -> str:
        """The outcome in English (stored as the link's last result and the job's); ``core.jobs.shown`` translates it."""
        values = {
            "grant": self.grant_reference,
            "reason": self.full_reason,
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
        }
        text = (SUMMARY_FULL if self.full else SUMMARY_CHANGES) % values
        if self.zero:
            text += f", {self.zero} of amount zero skipped"
        if self.demo_removed:
            text += f"; {self.demo_removed} demo expenditures removed now that a real Odoo is linked"
        if self.unmapped:
            accounts = "; ".join(
                f"{u.label} (Odoo account {u.account_id if u.account_id is not None else 'none'}): "
                f"{u.lines} line{'' if u.lines == 1 else 's'}, {u.total:,} {self.currency}"
                for u in self.unmapped
            )
            text += f". Not imported, unmapped accounts: {accounts}"
        return text


class SyncRefused(DomainValidationError):
    """Odoo lines the grant cannot take (date outside the grant, no rate...): nothing was saved."""


class RemovalsNeedConfirmation(SyncRefused):
    """The sync would remove more of the grant's Odoo spending than the link allows without asking."""


def _period_of(periods: list[ReportingPeriod], day: date) -> ReportingPeriod | None:
    return next((p for p in periods if p.start_date <= day <= p.end_date), None)


def _record_outcome(link: OdooLink, status: SyncStatus, message: str, now: datetime) -> None:
    link.last_status = status
    link.last_message = message
    link.last_sync_at = now


def _line_label(line: AnalyticLine, currency: str) -> str:
    # The amount is labelled with the line's own currency, whatever the link says.
    return (
        f"Odoo line {line.odoo_id} ({line.day}, {line.general_account or 'no account'}, "
        f"{quantize_money(line.spent):,} {line.currency or currency})"
    )


def _unmapped_accounts(session: Session, link: OdooLink) -> list[UnmappedAccount]:
    """The link's unmapped accounts from the kept lines, less those dismissed; biggest first."""
    dismissed = set(link.dismissed_accounts or [])
    rows = session.execute(
        select(
            OdooUnmappedLine.account_id,
            func.max(OdooUnmappedLine.account_label),
            func.count(OdooUnmappedLine.id),
            func.sum(OdooUnmappedLine.spent),
        )
        .where(OdooUnmappedLine.link_id == link.id)
        .group_by(OdooUnmappedLine.account_id)
    ).all()
    accounts = [
        UnmappedAccount(account_id, label or "(no general account)", int(lines), quantize_money(Decimal(total or 0)))
        for account_id, label, lines, total in rows
        if account_id not in dismissed
    ]
    return sorted(accounts, key=lambda u: (-u.total, u.label))


def refresh_unmapped(session: Session, link: OdooLink) -> list[UnmappedAccount]:
    accounts = _unmapped_accounts(session, link)
    link.last_unmapped = [u.as_dict() for u in accounts]
    return accounts


def dismiss_account(session: Session, link: OdooLink, account_id: int, *, dismissed: bool = True) -> None:
    """Leave an unmapped account's spending out of the list (or bring it back): it is still not imported."""
    current = [a for a in (link.dismissed_accounts or []) if a != account_id]
    link.dismissed_accounts = [*current, account_id] if dismissed else current
    refresh_unmapped(session, link)
    session.flush()


def demo_rows(session: Session, grant_id: int) -> list[Expenditure]:
    """The demo's stand-ins for Odoo spending (``demo-odoo-N``): removed once a real Odoo is linked."""
    return list(
        session.scalars(
            select(Expenditure).where(
                Expenditure.grant_id == grant_id,
                Expenditure.source == ExpenditureSource.odoo,
                Expenditure.external_ref.startswith(DEMO_REF_PREFIX, autoescape=True),
            )
        )
    )


def remove_demo_rows(session: Session, link: OdooLink) -> int:
    """Remove the demo's stand-in Odoo expenditures of the link's grant (a real Odoo is linked); how many."""
    rows = demo_rows(session, link.grant_id)
    for item in rows:
        session.delete(item)
    session.flush()
    return len(rows)


def _own_share(line: AnalyticLine, own: OwnAmount | None, company_currency: str) -> tuple[Decimal, str] | None:
    """The line's part of its bill in the bill's own currency, when that is not the company's."""
    if own is None or own.currency == company_currency or own.balance == 0:
        return None
    return quantize_money(line.spent * own.amount / own.balance), own.currency


def sync_grant(
    session: Session,
    client: OdooClient,
    link: OdooLink,
    *,
    full: bool = False,
    confirm_removals: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Bring the grant's Odoo spending up to date; returns what changed and what could not be mapped.

    First asks Odoo whether the link's account still exists, is active and is in
    the link's plan (nothing is removed on a wrong link). Reads lines changed since
    the last sync, or all of them when ``full``, on the first sync, or when the link
    or the account mappings changed; then learns which of the account's lines still
    exist (one search of ids) and removes the expenditures whose line is gone
    (Odoo deletes and recreates lines on every correction). Lines of unmapped
    accounts are kept aside, with their counts and totals, until mapped or dismissed.

    Raises OdooError when Odoo cannot be read or the link is wrong; SyncRefused,
    naming each Odoo line and its problem, when any line cannot be recorded;
    RemovalsNeedConfirmation when more than the link's share of imported spending
    would go and ``confirm_removals`` is not given. Nothing changes then but the
    link's outcome, which ``sync_and_commit`` records.
    """
    now = now or clock.now()
    grant = link.grant
    currency = link.company_currency
    database = client.settings.database
    basis = link.amount_basis or OdooAmountBasis.company
    maps = list(session.scalars(select(OdooAccountMap).where(OdooAccountMap.grant_id == grant.id)))
    mapping = {m.odoo_account_id: m.line for m in maps}
    fingerprint = {
        "database": database,
        "plan": link.analytic_plan,
        "account": link.analytic_account_id,
        "currency": currency,
        "basis": basis.value,
        "mapping": {str(m.odoo_account_id): m.line_id for m in sorted(maps, key=lambda m: m.odoo_account_id)},
    }
    reason = FULL_ASKED if full else ""
    if not full and link.last_write_date is None:
        full, reason = True, FULL_FIRST
    elif not full and link.synced_with != fingerprint:
        # Lines of a newly mapped account were skipped before and are older than the cursor.
        full, reason = True, FULL_CHANGED
    since = None if full or link.last_write_date is None else link.last_write_date - CURSOR_OVERLAP

    check = check_link(session, client, link, now=now)
    column = check.column
    lines = list(client.analytic_lines([link.analytic_account_id], plan_column=column, since=since))
    surviving = (
        {line.odoo_id for line in lines} if full else client.line_ids([link.analytic_account_id], plan_column=column)
    )

    result = SyncResult(grant.reference, currency, full, reason, read=len(lines))
    prefix = external_ref(database, 0)[:-1]
    existing = {
        item.external_ref or "": item
        for item in session.scalars(
            select(Expenditure).where(
                Expenditure.source == ExpenditureSource.odoo,
                Expenditure.external_ref.startswith(prefix, autoescape=True),
            )
        )
    }
    own_rows = {
        row.expenditure_id: row
        for row in session.scalars(
            select(OdooOwnAmount)
            .join(Expenditure, Expenditure.id == OdooOwnAmount.expenditure_id)
            .where(Expenditure.grant_id == grant.id)
        )
    }
    kept_unmapped = {
        row.odoo_line_id: row
        for row in session.scalars(select(OdooUnmappedLine).where(OdooUnmappedLine.link_id == link.id))
    }
    periods = sorted(grant.periods, key=lambda p: p.start_date)
    problems: dict[str, list[str]] = {}
    to_remove: dict[int, Expenditure] = {}
    unmapped_now: dict[int, tuple[int | None, str, Decimal]] = {}
    changed: list[tuple[AnalyticLine, BudgetLine, Expenditure | None]] = []

    def company_terms(item: Expenditure) -> tuple[Decimal, str]:
        own = own_rows.get(item.id)
        return (Decimal(own.company_amount), own.company_currency) if own else (Decimal(item.amount), item.currency)

    for line in lines:
        ref = external_ref(database, line.odoo_id)
        current = existing.get(ref)
        if current is not None and current.grant_id != grant.id:
            problems.setdefault(_line_label(line, currency), []).append(
                f"is already recorded for grant {current.grant.reference}; one Odoo line counts for one grant only"
            )
            continue
        budget_line = mapping.get(line.general_account_id) if line.general_account_id is not None else None
        if budget_line is None:
            unmapped_now[line.odoo_id] = (
                line.general_account_id,
                (line.general_account or "(no general account)")[:200],
                quantize_money(line.spent),
            )
            if current is not None:  # its account was mapped once; it no longer is
                to_remove[current.id] = current
            continue
        amount = quantize_money(line.spent)  # refunds (positive in Odoo) stay negative spending
        if amount == 0:
            result.zero += 1
            if current is not None:
                to_remove[current.id] = current
            continue
        if line.currency and line.currency != currency:
            problems.setdefault(_line_label(line, currency), []).append(
                f"is in {line.currency}, but the Odoo link of {grant.reference} says the company currency is "
                f"{currency}; correct the link"
            )
            continue
        description = (line.description or line.general_account or "")[:500]
        if current is not None:
            own = own_rows.get(current.id)
            expected_currency = own.own_currency if own and basis == OdooAmountBasis.bill else currency
            if (
                company_terms(current),
                current.spent_on,
                current.description or "",
                current.line_id,
                current.currency,
            ) == ((amount, currency), line.day, description, budget_line.id, expected_currency):
                result.unchanged += 1
                continue
        # The checks record_expenditure makes, done for every line before anything changes.
        if not grant.start_date <= line.day <= grant.end_date:
            problems.setdefault(_line_label(line, currency), []).append(
                f"is dated {line.day}, outside grant {grant.reference} ({grant.start_date} to {grant.end_date}); "
                "correct its date or analytic account in Odoo"
            )
            continue
        if _period_of(periods, line.day) is None:
            problems.setdefault(_line_label(line, currency), []).append(
                f"is dated {line.day}, in no reporting period of {grant.reference}; create the grant's periods first"
            )
            continue
        changed.append((line, budget_line, current))

    # Lines whose Odoo line is gone: deleted, or recreated under a new id by a correction.
    for ref, item in existing.items():
        if item.grant_id == grant.id and int(ref[len(prefix) :]) not in surviving:
            to_remove[item.id] = item
    demo = demo_rows(session, grant.id) if link.enabled else []

    # The bills' own currency and amount, read only for the lines that change.
    own_amounts = client.own_amounts(sorted({l.move_line_id for l, _b, _c in changed if l.move_line_id}))
    writer = SpendingWriter(session, grant, progress=progress)
    to_create: list[Checked] = []
    to_update: list[Expenditure] = []
    own_for: list[tuple[Expenditure, Decimal, tuple[Decimal, str] | None]] = []
    own_created: list[tuple[int, Decimal, tuple[Decimal, str]]] = []  # (index in to_create, company amount, share)
    with session.no_autoflush:
        for count, (line, budget_line, current) in enumerate(changed, start=1):
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress("checking", count, len(changed))
            amount = quantize_money(line.spent)
            share = _own_share(line, own_amounts.get(line.move_line_id or 0), currency)
            use = share if share is not None and basis == OdooAmountBasis.bill else (amount, currency)
            which = None
            if share is not None:
                which = (
                    f"converted from the bill's own amount, {share[0]:,} {share[1]} (Odoo: {amount:,} {currency})"
                    if basis == OdooAmountBasis.bill
                    else f"converted from Odoo's company amount (the bill: {share[0]:,} {share[1]})"
                )
            description = (line.description or line.general_account or "")[:500]
            if current is None:
                # New lines go through the one bulk write path: the expenditure's rules, rates read once.
                # Their references cannot clash: every Odoo reference of this database is in ``existing``.
                checked = writer.check(
                    line=budget_line,
                    spent_on=line.day,
                    amount=use[0],
                    currency=use[1],
                    description=description,
                    source=ExpenditureSource.odoo,
                    external_ref=external_ref(database, line.odoo_id),
                    note=which,
                )
                if not isinstance(checked, Checked):
                    problems.setdefault(_line_label(line, currency), []).extend(
                        message for messages in checked.values() for message in messages
                    )
                    continue
                if share is not None:
                    own_created.append((len(to_create), amount, share))
                to_create.append(checked)
                continue
            item = current
            for name, value in {
                "line": budget_line,
                "spent_on": line.day,
                "amount": use[0],
                "currency": use[1],
                "description": description,
            }.items():
                setattr(item, name, value)
            try:
                prepare_expenditure(session, item)  # checked and converted here, once; the flush only checks
            except DomainValidationError as exc:
                problems.setdefault(_line_label(line, currency), []).extend(
                    message for messages in exc.errors.values() for message in messages
                )
                session.expire(current)
                continue
            if which is not None:
                item.rate_source = f"{which}; {item.rate_source}"[:200]
            to_update.append(item)
            own_for.append((item, amount, share))

    if problems:
        raise SyncRefused(_shown(problems))

    imported = [item for item in existing.values() if item.grant_id == grant.id]
    removing = [item for item in to_remove.values() if item.external_ref and item.external_ref.startswith(prefix)]
    if removing and not confirm_removals:
        # What would be gone net of what this sync brings back (a correction removes a line and creates its successor).
        total = sum((abs(Decimal(i.converted_amount)) for i in imported), Decimal(0))
        gone = sum((abs(Decimal(i.converted_amount)) for i in removing), Decimal(0)) - sum(
            (abs(Decimal(c.values["converted_amount"])) for c in to_create), Decimal(0)
        )
        limit = Decimal(link.removal_limit_percent if link.removal_limit_percent is not None else 25)
        if total and gone * 100 > total * limit:
            share_text = f"{(gone * 100 / total).quantize(Decimal('1'))}%"
            raise RemovalsNeedConfirmation(
                {
                    "removals": [
                        f"this sync would remove {len(removing)} expenditure{'' if len(removing) == 1 else 's'} "
                        f"({quantize_money(gone):,} {grant.currency} net, {share_text} of the spending imported from "
                        "Odoo), "
                        f"more than the {limit}% the link allows without asking; check the link and Odoo, then "
                        "confirm the removals (--confirm-removals, or tick 'confirm removals')"
                    ]
                }
            )

    for item in [*to_remove.values(), *demo]:
        session.delete(item)
    session.flush()
    created_ids = writer.write(to_create)  # inserted and audited a batch at a time
    if own_created:
        session.connection().execute(
            insert(OdooOwnAmount.__table__),
            [
                {
                    "expenditure_id": created_ids[position],
                    "company_amount": company_amount,
                    "company_currency": currency,
                    "own_amount": share[0],
                    "own_currency": share[1],
                }
                for position, company_amount, share in own_created
            ],
        )
    for item, company_amount, share in own_for:
        row = own_rows.get(item.id)
        if share is None:
            if row is not None:
                session.delete(row)
            continue
        if row is None:
            row = OdooOwnAmount(expenditure_id=item.id)
            session.add(row)
        row.company_amount, row.company_currency = company_amount, currency
        row.own_amount, row.own_currency = share
    _keep_unmapped(session, link, kept_unmapped, unmapped_now, {l.odoo_id for l in lines}, surviving)
    session.flush()
    result.created, result.updated, result.removed = len(to_create), len(to_update), len(to_remove)
    result.demo_removed = len(demo)
    result.unmapped = refresh_unmapped(session, link)

    stamps = [line.write_date for line in lines if line.write_date is not None]
    if not full and link.last_write_date is not None:
        stamps.append(link.last_write_date)
    if stamps:
        link.last_write_date = max(stamps)
    result.cursor = link.last_write_date
    link.synced_with = fingerprint
    _record_outcome(link, SyncStatus.ok, result.summary(), now)
    session.flush()
    log.info(
        "odoo sync %s: %s created, %s updated, %s removed, %s unmapped accounts",
        grant.reference,
        result.created,
        result.updated,
        result.removed,
        len(result.unmapped),
    )
    return result


def _shown(problems: dict[str, list[str]]) -> dict[str, list[str]]:
    shown = dict(list(problems.items())[:MAX_PROBLEMS_SHOWN])
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown["_"] = [f"and {len(problems) - MAX_PROBLEMS_SHOWN} more Odoo lines with problems"]
    return shown


def _keep_unmapped(
    session: Session,
    link: OdooLink,
    kept: dict[int, OdooUnmappedLine],
    now_unmapped: dict[int, tuple[int | None, str, Decimal]],
    read: set[int],
    surviving: set[int],
) -> None:
    """Unmapped lines accumulate: added or updated when read, dropped when mapped now or gone from Odoo."""
    for odoo_id, gone in kept.items():
        if odoo_id not in surviving or (odoo_id in read and odoo_id not in now_unmapped):
            session.delete(gone)
    for odoo_id, (account_id, label, spent) in now_unmapped.items():
        row = kept.get(odoo_id)
        if row is None:
            row = OdooUnmappedLine(link_id=link.id, odoo_line_id=odoo_id)
            session.add(row)
        row.account_id, row.account_label, row.spent = account_id, label, spent


def lock_link(session: Session, link_id: int, *, wait_seconds: float = 900.0) -> OdooLink:
    """Take the link for this transaction: a second sync of the same grant waits until this one commits.

    PostgreSQL: a row lock (``SELECT ... FOR UPDATE``). SQLite: the database's write
    lock, taken by touching the row, retried while another sync holds it. Either is
    released by the commit or rollback, or when the process dies.
    """
    if session.get_bind().dialect.name == "postgresql":
        return session.scalars(
            select(OdooLink).where(OdooLink.id == link_id).with_for_update().execution_options(populate_existing=True)
        ).one()
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            session.execute(
                update(OdooLink).where(OdooLink.id == link_id).values(id=OdooLink.id),
                execution_options={"synchronize_session": False},
            )
            break
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            session.rollback()
            time.sleep(0.2)
    link = session.get(OdooLink, link_id)
    assert link is not None
    session.refresh(link)
    return link


def sync_and_commit(
    session: Session,
    client: OdooClient,
    link: OdooLink,
    *,
    full: bool = False,
    confirm_removals: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """``sync_grant`` as one transaction, one grant at a time: committed whole, or nothing but the outcome.

    Two syncs of the same grant started together run one after the other (``lock_link``).
    On OdooError or SyncRefused everything is rolled back, the link's outcome (status,
    message, time) is recorded and committed, and the error re-raised; anything
    unexpected does the same with a short failure message.
    """
    link_id = link.id
    now = now or clock.now()
    # Millions of short-lived objects (pages, lines, rows, audit entries): the cyclic collector waits.
    with collector_paused():
        return _sync_and_commit(session, client, link_id, full, confirm_removals, now, progress)


def _sync_and_commit(
    session: Session,
    client: OdooClient,
    link_id: int,
    full: bool,
    confirm_removals: bool,
    now: datetime,
    progress: Progress | None,
) -> SyncResult:
    try:
        link = lock_link(session, link_id)
        result = sync_grant(
            session, client, link, full=full, confirm_removals=confirm_removals, now=now, progress=progress
        )
    except (OdooError, SyncRefused) as exc:
        session.rollback()
        if isinstance(exc, SyncRefused):
            status, message = SyncStatus.refused, f"Nothing saved. {exc.summary()}"
        else:
            status, message = SyncStatus.failed, str(exc)
        _record_after_rollback(session, link_id, status, message, now)
        raise
    except Exception as exc:
        session.rollback()
        _record_after_rollback(
            session,
            link_id,
            SyncStatus.failed,
            f"Nothing saved: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}",
            now,
        )
        raise
    session.commit()
    return result


def _record_after_rollback(session: Session, link_id: int, status: SyncStatus, message: str, now: datetime) -> None:
    fresh = session.get(OdooLink, link_id)
    if fresh is not None:
        _record_outcome(fresh, status, message, now)
        session.commit()
