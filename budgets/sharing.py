"""Shared costs: one payment split over several grants' budget lines, and the allocation keys that split them.

Design: a split is materialised. A ``SharedCost`` holds what was paid (date, amount,
currency, description, how it is split); each part is an ordinary ``Expenditure`` on
one grant's budget line, in the payment's currency, converted into that grant's
currency under that grant's own rate policy by ``budgets.services``. Budget vs actual,
the ledger, exports and the access rule therefore see a part like any other spending
of its grant, and budget vs actual stays one GROUP BY over expenditures.

The parts add up to the payment to the cent: the split is done in integer cents, each
part gets the whole cents of its exact share, and the cents left over go one by one to
the parts with the largest remainders (ties: the earlier part).

Plain functions over a session; no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from budgets import services
from budgets.models import (
    AllocationKey,
    AllocationKeyShare,
    BudgetLine,
    Expenditure,
    ExpenditureSource,
    SharedCost,
    SplitMethod,
    to_cents,
)
from core.errors import DomainValidationError, ErrorCollector
from core.money import is_currency_code, quantize_money, to_decimal

HUNDRED = Decimal(100)


def split_cents(total: int, weights: list[Decimal] | list[int]) -> list[int]:
    """Split ``total`` cents in proportion to ``weights`` so that the parts add up to ``total`` exactly.

    Largest remainder: every part first gets the whole cents of its exact share (rounded
    towards zero); the cents left over go one each to the parts with the largest
    remainders, the earlier part first on a tie. A refund (negative total) is split like
    the same payment and negated. Each part is within one cent of its exact share.
    """
    if not weights:
        raise ValueError("at least one weight is needed")
    values = [Decimal(w) for w in weights]
    if any(w < 0 for w in values) or sum(values) <= 0:
        raise ValueError("weights must not be negative and must add up to more than zero")
    sign = -1 if total < 0 else 1
    whole = abs(int(total))
    # Scale the weights to integers so the arithmetic below is exact.
    exponent = min(min(w.as_tuple().exponent for w in values), 0)  # type: ignore[type-var]
    scale = 10 ** (-int(exponent))
    ints = [int(w * scale) for w in values]
    denominator = sum(ints)
    shares = [whole * w // denominator for w in ints]
    remainders = [whole * w % denominator for w in ints]
    left = whole - sum(shares)
    for index in sorted(range(len(ints)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return [sign * s for s in shares]


@dataclass(frozen=True)
class PartSpec:
    """One part as asked for: a budget line and its percentage, amount or weight."""

    line: BudgetLine
    share: Decimal


def _decimal(value: Any, field: str) -> Decimal:
    try:
        return to_decimal(value, field)
    except ValueError as exc:
        raise DomainValidationError({field: [str(exc).split(": ", 1)[-1]]}) from None


def _line_label(line: BudgetLine) -> str:
    return f"{line.grant.reference} · {line.code}"


def _parts_from(
    session: Session, method: SplitMethod, parts: list[dict[str, Any]] | None, key: AllocationKey | None
) -> list[PartSpec]:
    """Check the requested parts; DomainValidationError on "parts" naming each wrong row."""
    errors = ErrorCollector()
    specs: list[PartSpec] = []
    if method == SplitMethod.key:
        if key is None:
            errors.add("key", "choose the allocation key this cost follows")
            errors.raise_if_any()
        assert key is not None
        if not key.shares:
            errors.add("key", f"allocation key {key.name} has no budget lines yet")
        specs = [PartSpec(share.line, Decimal(share.weight)) for share in key.shares]
        errors.raise_if_any()
        return specs
    seen: set[int] = set()
    for number, raw in enumerate(parts or [], start=1):
        line = raw.get("line")
        if line is None and raw.get("line_id"):
            line = session.get(BudgetLine, int(raw["line_id"]))
        value = raw.get("share")
        if line is None and (value is None or str(value).strip() == ""):
            continue  # an empty row of the form
        if line is None:
            errors.add("parts", f"part {number}: choose a budget line")
            continue
        if line.id in seen:
            errors.add("parts", f"part {number}: budget line {_line_label(line)} is chosen twice")
            continue
        seen.add(line.id)
        what = "percentage" if method == SplitMethod.percent else "amount"
        if value is None or str(value).strip() == "":
            errors.add("parts", f"part {number} ({_line_label(line)}): the {what} is required")
            continue
        try:
            share = to_decimal(value, what)
        except ValueError:
            errors.add("parts", f"part {number} ({_line_label(line)}): '{value}' is not a number")
            continue
        if method == SplitMethod.percent and not (0 < share <= 100):
            errors.add(
                "parts", f"part {number} ({_line_label(line)}): a percentage must be more than 0 and at most 100"
            )
            continue
        if method == SplitMethod.amount and quantize_money(share) == 0:
            errors.add("parts", f"part {number} ({_line_label(line)}): the amount must not be zero")
            continue
        specs.append(PartSpec(line, quantize_money(share) if method == SplitMethod.amount else share))
    if not specs and not errors.errors:
        errors.add("parts", "choose at least one budget line and its share")
    errors.raise_if_any()
    return specs


def _amounts(method: SplitMethod, whole: Decimal, specs: list[PartSpec], currency: str) -> list[Decimal]:
    """Each part's amount in the payment's currency; the parts add up to ``whole`` exactly."""
    if method == SplitMethod.amount:
        total = sum((s.share for s in specs), Decimal(0))
        if total != whole:
            gap = whole - total
            raise DomainValidationError(
                {
                    "parts": [
                        f"the parts add up to {total:,} {currency}, not the {whole:,} {currency} paid "
                        f"({'still to share: ' if gap > 0 else 'too much by '}{abs(gap):,} {currency})"
                    ]
                }
            )
        return [s.share for s in specs]
    if method == SplitMethod.percent:
        total = sum((s.share for s in specs), Decimal(0))
        if total != HUNDRED:
            raise DomainValidationError({"parts": [f"the percentages add up to {total.normalize():f}%, not 100%"]})
    cents = split_cents(to_cents(whole), [s.share for s in specs])
    return [Decimal(c).scaleb(-2) for c in cents]


def _apply(session: Session, cost: SharedCost, specs: list[PartSpec]) -> SharedCost:
    """Make the cost's parts match ``specs``: parts on the same line are changed in place (so the
    audit trail shows each amount before and after), others added or removed. All or nothing."""
    amounts = _amounts(cost.method, cost.amount, specs, cost.currency)
    existing = {part.line_id: part for part in cost.parts}
    wanted: list[Expenditure] = []
    errors = ErrorCollector()
    for number, (spec, amount) in enumerate(zip(specs, amounts), start=1):
        if amount == 0:
            continue  # a share too small for a cent: that line gets nothing of this payment
        part = existing.pop(spec.line.id, None)
        if part is None:
            part = Expenditure(line=spec.line, source=ExpenditureSource.manual)
        part.line = spec.line
        part.spent_on = cost.spent_on
        part.amount = amount
        part.currency = cost.currency
        part.description = cost.description
        part.share = spec.share
        try:
            services.prepare_expenditure(session, part)
        except DomainValidationError as exc:
            for messages in exc.errors.values():
                for message in messages:
                    errors.add("parts", f"part {number} ({_line_label(spec.line)}): {message}")
            continue
        wanted.append(part)
    errors.raise_if_any()
    with session.no_autoflush:
        for stale in existing.values():
            cost.parts.remove(stale)
        for part in wanted:
            if part not in cost.parts:
                cost.parts.append(part)
    session.add(cost)
    session.flush()
    return cost


def _check_payment(spent_on: Any, amount: Any, currency: str, description: str) -> tuple[Decimal, str, str]:
    errors = ErrorCollector()
    value = None
    try:
        value = quantize_money(to_decimal(amount, "amount"))
        if value == 0:
            errors.add("amount", "must not be zero (a negative amount records a refund)")
    except ValueError as exc:
        errors.add("amount", str(exc).split(": ", 1)[-1])
    currency = (currency or "").strip().upper()
    if not is_currency_code(currency):
        errors.add("currency", f"'{currency}' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)")
    if not isinstance(spent_on, date):
        errors.add("spent_on", "is required: the date the money was paid")
    description = (description or "").strip()
    if not description:
        errors.add("description", "is required: say what was paid for, e.g. Office rent July")
    errors.raise_if_any()
    assert value is not None
    return value, currency, description


def record_shared_cost(
    session: Session,
    *,
    spent_on: date,
    amount: Any,
    currency: str,
    description: str,
    method: SplitMethod | str = SplitMethod.percent,
    parts: list[dict[str, Any]] | None = None,
    key: AllocationKey | None = None,
    created_by: str | None = None,
) -> SharedCost:
    """Record a payment shared over budget lines of one or more grants.

    ``parts``: [{"line": BudgetLine, "share": "60"}, ...] (percentages adding up to 100, or
    amounts adding up to the payment); with ``method="key"`` the key's weights are used.
    Refused as a whole (DomainValidationError keyed by field, "parts" naming the row) when
    anything is wrong: nothing is saved.
    """
    try:
        method = SplitMethod(method)
    except ValueError:
        raise DomainValidationError(
            {"method": ["choose a split by percentage, by amount or by an allocation key"]}
        ) from None
    value, currency, description = _check_payment(spent_on, amount, currency, description)
    specs = _parts_from(session, method, parts, key)
    cost = SharedCost(
        spent_on=spent_on,
        amount=value,
        currency=currency,
        description=description,
        method=method,
        key=key if method == SplitMethod.key else None,
        created_by=created_by,
    )
    return _apply(session, cost, specs)


def update_shared_cost(
    session: Session,
    cost: SharedCost,
    *,
    spent_on: date | None = None,
    amount: Any = None,
    currency: str | None = None,
    description: str | None = None,
    method: SplitMethod | str | None = None,
    parts: list[dict[str, Any]] | None = None,
    key: AllocationKey | None = None,
) -> SharedCost:
    """Change a shared cost; its parts follow (same lines changed in place). All or nothing."""
    method = SplitMethod(method) if method is not None else cost.method
    value, currency, description = _check_payment(
        spent_on or cost.spent_on,
        amount if amount is not None else cost.amount,
        currency or cost.currency,
        description if description is not None else cost.description,
    )
    if method == SplitMethod.key:
        key = key or cost.key
        specs = _parts_from(session, method, None, key)
    else:
        requested = parts if parts is not None else [{"line": p.line, "share": p.share} for p in cost.parts]
        specs = _parts_from(session, method, requested, None)
    cost.spent_on = spent_on or cost.spent_on
    cost.amount = value
    cost.currency = currency
    cost.description = description
    cost.method = method
    cost.key = key if method == SplitMethod.key else None
    return _apply(session, cost, specs)


def delete_shared_cost(session: Session, cost: SharedCost) -> None:
    """Remove a shared cost and every part of it (each grant's spending goes down by its part)."""
    session.delete(cost)
    session.flush()


# ---------------------------------------------------------------- allocation keys


def save_allocation_key(
    session: Session,
    key: AllocationKey | None,
    *,
    name: str,
    basis: str | None = None,
    shares: list[dict[str, Any]],
) -> AllocationKey:
    """Create or change a key: its name, what it measures and each line's weight
    ([{"line": BudgetLine, "weight": "60"}, ...]). Changed weights are updated in place,
    so the audit trail shows each before and after. Costs following the key are re-run
    by ``rerun_key``."""
    errors = ErrorCollector()
    wanted: dict[int, tuple[BudgetLine, Decimal]] = {}
    for number, raw in enumerate(shares, start=1):
        line = raw.get("line")
        if line is None and raw.get("line_id"):
            line = session.get(BudgetLine, int(raw["line_id"]))
        weight = raw.get("weight")
        if line is None and (weight is None or str(weight).strip() == ""):
            continue
        if line is None:
            errors.add("shares", f"row {number}: choose a budget line")
            continue
        if line.id in wanted:
            errors.add("shares", f"row {number}: budget line {_line_label(line)} is chosen twice")
            continue
        try:
            value = to_decimal(weight, "weight")
        except ValueError:
            errors.add("shares", f"row {number} ({_line_label(line)}): '{weight}' is not a number")
            continue
        if value <= 0:
            errors.add("shares", f"row {number} ({_line_label(line)}): the weight must be more than zero")
            continue
        wanted[line.id] = (line, value)
    if not wanted and not errors.errors:
        errors.add("shares", "give at least one budget line and its weight")
    errors.raise_if_any()
    if key is None:
        key = AllocationKey()
        session.add(key)
    key.name = (name or "").strip()
    key.basis = (basis or "").strip() or None
    existing = {share.line_id: share for share in key.shares}
    for line_id, (line, weight) in wanted.items():
        share = existing.pop(line_id, None)
        if share is None:
            key.shares.append(AllocationKeyShare(line=line, grant_id=line.grant_id, weight=weight))
        elif Decimal(share.weight) != weight:
            share.weight = weight
    for stale in existing.values():
        key.shares.remove(stale)
    session.flush()
    return key


def costs_following(session: Session, key: AllocationKey, since: date | None = None) -> list[SharedCost]:
    query = select(SharedCost).where(SharedCost.key_id == key.id, SharedCost.method == SplitMethod.key)
    if since is not None:
        query = query.where(SharedCost.spent_on >= since)
    return list(session.scalars(query.order_by(SharedCost.spent_on, SharedCost.id)))


def rerun_key(session: Session, key: AllocationKey, since: date | None = None) -> int:
    """Split again, by the key's current weights, every shared cost that follows it (paid on or
    after ``since``). Returns how many costs changed; all or nothing."""
    changed = 0
    errors = ErrorCollector()
    for cost in costs_following(session, key, since):
        before = {p.line_id: p.amount for p in cost.parts}
        try:
            _apply(session, cost, _parts_from(session, SplitMethod.key, None, key))
        except DomainValidationError as exc:
            for messages in exc.errors.values():
                for message in messages:
                    errors.add("key", f"{cost.spent_on} {cost.description}: {message}")
            continue
        if before != {p.line_id: p.amount for p in cost.parts}:
            changed += 1
    errors.raise_if_any()
    return changed


def key_is_current(cost: SharedCost) -> bool:
    """Does a key-following cost's split still match its key's weights?"""
    if cost.method != SplitMethod.key or cost.key is None or not cost.key.shares:
        return True
    shares = list(cost.key.shares)
    cents = split_cents(to_cents(Decimal(cost.amount)), [Decimal(s.weight) for s in shares])
    wanted = {share.line_id: c for share, c in zip(shares, cents) if c}
    return wanted == {p.line_id: to_cents(Decimal(p.amount)) for p in cost.parts}
