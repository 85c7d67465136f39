"""Actual spending from Odoo: connection settings from the environment, grant links, account mappings, and the sync.

How a sync works (``sync_grant``): read the grant's posted analytic lines
(changed since the last sync, or all of them), map each line's general account
to a budget line, and make the grant's Odoo-sourced expenditures match: create,
update, and, on a full sync, remove those whose Odoo line is gone (Odoo deletes
analytic lines when an entry is reset to draft or cancelled). Every line is
checked before anything changes, so a grant syncs completely or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from budgets.models import BudgetLine, Expenditure, ExpenditureSource, OdooAccountMap, OdooLink, SyncStatus
from budgets.odoo import PROTOCOLS, AnalyticLine, OdooClient, OdooError, OdooSettings
from budgets.services import prepare_expenditure
from core import clock
from core.audit import Actor
from core.errors import DomainValidationError
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
FLUSH_EVERY = 500


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
        raise OdooError(f"Odoo is not configured: set {', '.join(missing)}")
    protocol = value("PROTOCOL") or "jsonrpc"
    if protocol not in PROTOCOLS:
        raise OdooError(f"{ENV_PREFIX}PROTOCOL: '{protocol}' is not one of {', '.join(PROTOCOLS)}")
    port_text = value("PORT") or ("443" if protocol.endswith("s") else "8069")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise OdooError(f"{ENV_PREFIX}PORT: '{port_text}' is not a port number (1-65535)")
    timeout_text = value("TIMEOUT") or "20"
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 600:
        raise OdooError(f"{ENV_PREFIX}TIMEOUT: '{timeout_text}' is not a number of seconds between 0 and 600")
    return OdooSettings(
        host=value("HOST"),
        port=int(port_text),
        database=value("DATABASE"),
        login=value("LOGIN"),
        secret=value("API_KEY"),
        protocol=protocol,
        timeout=timeout,
    )


def configuration_problem(environ: Mapping[str, str]) -> str | None:
    """Why Odoo cannot be reached from the settings (names only, never values), or None when they are complete."""
    try:
        settings_from_env(environ)
    except OdooError as exc:
        return str(exc)
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
            raise DomainValidationError({"line": [f"'{line}' is not a budget line of {grant.reference}"]})
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
                {"grant": [f"{grant.reference} is not linked to Odoo; add a link under Budgets → Odoo links"]}
            )
        if not link.enabled:
            raise DomainValidationError(
                {"grant": [f"the Odoo link of {grant.reference} is switched off; enable it first"]}
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
    zero: int = 0  # lines of amount 0 (e.g. quantities only): nothing to record
    unmapped: list[UnmappedAccount] = field(default_factory=list)
    cursor: datetime | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def summary(self) -> str:
        kind = f"full sync ({self.full_reason})" if self.full else "sync of changes"
        text = (
            f"{self.grant_reference}: {kind}, {self.read} Odoo lines read: {self.created} created, "
            f"{self.updated} updated, {self.removed} removed, {self.unchanged} unchanged"
        )
        if self.zero:
            text += f", {self.zero} of amount zero skipped"
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


def _period_of(periods: list[ReportingPeriod], day: date) -> ReportingPeriod | None:
    return next((p for p in periods if p.start_date <= day <= p.end_date), None)


def _existing_by_ref(session: Session, refs: list[str]) -> dict[str, Expenditure]:
    found: dict[str, Expenditure] = {}
    for start in range(0, len(refs), 500):  # stays under every engine's bound-parameter limit
        chunk = refs[start : start + 500]
        for item in session.scalars(
            select(Expenditure).where(Expenditure.source == ExpenditureSource.odoo, Expenditure.external_ref.in_(chunk))
        ):
            found[item.external_ref or ""] = item
    return found


def _record_outcome(link: OdooLink, status: SyncStatus, message: str, now: datetime) -> None:
    link.last_status = status
    link.last_message = message
    link.last_sync_at = now


def _line_label(line: AnalyticLine, currency: str) -> str:
    return f"Odoo line {line.odoo_id} ({line.day}, {line.general_account or 'no account'}, {quantize_money(line.spent):,} {currency})"


def sync_grant(
    session: Session, client: OdooClient, link: OdooLink, *, full: bool = False, now: datetime | None = None
) -> SyncResult:
    """Bring the grant's Odoo spending up to date; returns what changed and what could not be mapped.

    Reads lines changed since the last sync; reads all of them (and removes
    expenditures whose Odoo line is gone) when ``full``, on the first sync, or
    when the link or the account mappings changed since the last one. Lines of
    unmapped accounts are not imported but reported with their count and total.

    Raises SyncRefused, naming each Odoo line and its problem, when any line
    cannot be recorded (date outside the grant or its periods, no exchange rate,
    currency other than the link's, already counted for another grant), and
    OdooError when Odoo cannot be read. In both cases no expenditure and not the
    cursor changed: only the link's outcome (status, message, time) is set and
    flushed, for the caller to commit. Other exceptions: the caller rolls back.
    """
    now = now or clock.now()
    grant = link.grant
    currency = link.company_currency
    database = client.settings.database
    maps = list(session.scalars(select(OdooAccountMap).where(OdooAccountMap.grant_id == grant.id)))
    mapping = {m.odoo_account_id: m.line for m in maps}
    fingerprint = {
        "database": database,
        "plan": link.analytic_plan,
        "account": link.analytic_account_id,
        "currency": currency,
        "mapping": {str(m.odoo_account_id): m.line_id for m in sorted(maps, key=lambda m: m.odoo_account_id)},
    }
    reason = "asked for" if full else ""
    if not full and link.last_write_date is None:
        full, reason = True, "first sync"
    elif not full and link.synced_with != fingerprint:
        # Lines of a newly mapped account were skipped before and are older than the cursor.
        full, reason = True, "the link or its account mappings changed since the last sync"
    since = None if full or link.last_write_date is None else link.last_write_date - CURSOR_OVERLAP

    try:
        column = client.plan_column(link.analytic_plan)
        lines = list(client.analytic_lines([link.analytic_account_id], plan_column=column, since=since))
    except OdooError as exc:
        _record_outcome(link, SyncStatus.failed, str(exc), now)
        session.flush()
        raise

    result = SyncResult(grant.reference, currency, full, reason, read=len(lines))
    prefix = external_ref(database, 0)[:-1]
    refs = {external_ref(database, line.odoo_id): line for line in lines}
    existing = _existing_by_ref(session, list(refs))
    periods = sorted(grant.periods, key=lambda p: p.start_date)
    problems: dict[str, list[str]] = {}
    unmapped: dict[int | None, UnmappedAccount] = {}
    to_create: list[Expenditure] = []
    to_update: list[Expenditure] = []
    to_remove: dict[int, Expenditure] = {}

    with session.no_autoflush:
        for ref, line in refs.items():
            current = existing.get(ref)
            if current is not None and current.grant_id != grant.id:
                problems.setdefault(_line_label(line, currency), []).append(
                    f"is already recorded for grant {current.grant.reference}; one Odoo line counts for one grant only"
                )
                continue
            budget_line = mapping.get(line.general_account_id) if line.general_account_id is not None else None
            if budget_line is None:
                account = unmapped.setdefault(
                    line.general_account_id,
                    UnmappedAccount(line.general_account_id, line.general_account or "(no general account)"),
                )
                account.lines += 1
                account.total = quantize_money(account.total + line.spent)
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
            if current is not None and (
                Decimal(current.amount),
                current.spent_on,
                current.description or "",
                current.line_id,
                current.currency,
            ) == (amount, line.day, description, budget_line.id, currency):
                result.unchanged += 1
                continue
            # The checks record_expenditure makes, done for every line before anything changes.
            if not grant.start_date <= line.day <= grant.end_date:
                problems.setdefault(_line_label(line, currency), []).append(
                    f"is dated {line.day}, outside grant {grant.reference} ({grant.start_date} to {grant.end_date}); "
                    "correct its date or analytic account in Odoo"
                )
                continue
            period = _period_of(periods, line.day)
            if period is None:
                problems.setdefault(_line_label(line, currency), []).append(
                    f"is dated {line.day}, in no reporting period of {grant.reference}; create the grant's periods first"
                )
                continue
            if current is None:
                item = Expenditure(
                    grant_id=grant.id,
                    line=budget_line,
                    spent_on=line.day,
                    amount=amount,
                    currency=currency,
                    description=description,
                    source=ExpenditureSource.odoo,
                    external_ref=ref,
                )
            else:
                item = current
                item.line, item.spent_on, item.amount, item.currency, item.description = (
                    budget_line,
                    line.day,
                    amount,
                    currency,
                    description,
                )
                to_update.append(item)
            try:
                # Checked and converted here, once; the flush below only checks.
                prepare_expenditure(session, item)
            except DomainValidationError as exc:
                problems.setdefault(_line_label(line, currency), []).extend(
                    message for messages in exc.errors.values() for message in messages
                )
                continue
            if current is None:
                to_create.append(item)

        if full:
            for item in session.scalars(
                select(Expenditure).where(
                    Expenditure.grant_id == grant.id,
                    Expenditure.source == ExpenditureSource.odoo,
                    Expenditure.external_ref.startswith(prefix, autoescape=True),
                )
            ):
                if item.external_ref not in refs:
                    to_remove[item.id] = item

    if problems:
        for item in to_update:
            session.expire(item)  # drops the prepared changes: a refused sync changes no expenditure
        shown = dict(list(problems.items())[:MAX_PROBLEMS_SHOWN])
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown["_"] = [f"and {len(problems) - MAX_PROBLEMS_SHOWN} more Odoo lines with problems"]
        refusal = SyncRefused(shown)
        _record_outcome(link, SyncStatus.refused, f"Nothing saved. {refusal.summary()}", now)
        session.flush()
        raise refusal

    for item in to_remove.values():
        session.delete(item)
    session.flush()
    for start in range(0, len(to_create), FLUSH_EVERY):
        # Added in batches rather than through services.create_expenditure (one flush each): a first sync takes half the time.
        session.add_all(to_create[start : start + FLUSH_EVERY])
        session.flush()
    result.created, result.updated, result.removed = len(to_create), len(to_update), len(to_remove)
    result.unmapped = sorted(unmapped.values(), key=lambda u: (-u.total, u.label))

    stamps = [line.write_date for line in lines if line.write_date is not None]
    if not full and link.last_write_date is not None:
        stamps.append(link.last_write_date)
    if stamps:
        link.last_write_date = max(stamps)
    result.cursor = link.last_write_date
    link.synced_with = fingerprint
    link.last_unmapped = [u.as_dict() for u in result.unmapped]
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


def sync_and_commit(
    session: Session, client: OdooClient, link: OdooLink, *, full: bool = False, now: datetime | None = None
) -> SyncResult:
    """``sync_grant`` as one transaction, for the CLI and the web: committed, or refused with its outcome kept.

    Re-raises OdooError / SyncRefused after committing the link's outcome (and
    nothing else); anything unexpected rolls the whole grant back, records the
    failure on the link and is re-raised.
    """
    link_id = link.id
    try:
        result = sync_grant(session, client, link, full=full, now=now)
    except (OdooError, SyncRefused):
        session.commit()
        raise
    except Exception as exc:
        session.rollback()
        fresh = session.get(OdooLink, link_id)
        if fresh is not None:
            _record_outcome(
                fresh,
                SyncStatus.failed,
                f"Nothing saved: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}",
                now or clock.now(),
            )
            session.commit()
        raise
    session.commit()
    return result
