"""Currencies and exchange rates: which rate converts a foreign-currency expenditure, and saying so.

Design: the conversion is done once, when an expenditure is saved, and stored on
it (converted amount, the multiplier, and a sentence naming the rate). Reports
then only add up stored figures, so they are fast, identical on every engine and
every figure can say which rate produced it. When a grant's policy or an exchange
rate changes, ``reconvert_grant`` redoes the stored conversions in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from budgets.models import ExchangeRate, Expenditure, RateMethod, RatePolicy, to_cents
from core.errors import DomainValidationError
from core.money import quantize_money, to_decimal
from grants.models import Grant, ReportingPeriod
from grants.services import period_for_date

# The Eastern Caribbean dollar has been pegged at 2.70 per US dollar since 1976.
PEGGED_RATES: dict[tuple[str, str], tuple[Decimal, str]] = {
    ("USD", "XCD"): (Decimal("2.70"), "ECCB peg since 1976"),
}
# A transaction on a weekend or holiday uses the last published rate up to this many days before.
RATE_LOOKBACK_DAYS = 7
_MULTIPLIER_PLACES = Decimal("1E-10")


@dataclass(frozen=True)
class Conversion:
    """How one amount became grant currency: ``converted = amount × multiplier``."""

    converted: Decimal
    multiplier: Decimal
    source: str


class MissingRateError(DomainValidationError):
    """No rate for a currency pair on a date; the message names both."""


def _divide(amount: Decimal, rate: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        return amount / rate


def _multiply(amount: Decimal, rate: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        return amount * rate


def _plain_rate(rate: Decimal) -> str:
    """2.7000000000 → "2.70"; 0.3703703704 → "0.370370": readable, at least two decimals."""
    text = f"{rate.quantize(Decimal('1E-6')).normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


QuotedRow = tuple[Decimal, date, str, str | None]  # rate, its day, the currency it converts from, its source


def _quoted_rate(session: Session, from_ccy: str, to_ccy: str, day: date) -> tuple[Decimal, str] | None:
    """1 from_ccy = X to_ccy on ``day`` (or the last rate within the look-back), direct or inverse."""
    earliest = day - timedelta(days=RATE_LOOKBACK_DAYS)
    rows = session.execute(
        select(ExchangeRate.rate, ExchangeRate.rate_date, ExchangeRate.from_currency, ExchangeRate.source)
        .where(
            or_(
                (ExchangeRate.from_currency == from_ccy) & (ExchangeRate.to_currency == to_ccy),
                (ExchangeRate.from_currency == to_ccy) & (ExchangeRate.to_currency == from_ccy),
            ),
            ExchangeRate.rate_date <= day,
            ExchangeRate.rate_date >= earliest,
        )
        .order_by(ExchangeRate.rate_date.desc(), (ExchangeRate.from_currency == from_ccy).desc())
        .limit(1)
    ).all()
    return pick_quoted([tuple(row) for row in rows], from_ccy, to_ccy, day)  # type: ignore[misc]


def pick_quoted(rows: Iterable[QuotedRow], from_ccy: str, to_ccy: str, day: date) -> tuple[Decimal, str] | None:
    """Of the quotes of a pair (either way), the one that converts on ``day``, said in words; else a peg.

    The latest quote within the look-back wins, a quote in the asked direction before its inverse.
    ``_quoted_rate`` reads the one row it needs; bulk writers pass every quote of the pair, read once.
    """
    earliest = day - timedelta(days=RATE_LOOKBACK_DAYS)
    best: QuotedRow | None = None
    for row in rows:
        if earliest <= row[1] <= day and (
            best is None or (row[1], row[2] == from_ccy) > (best[1], best[2] == from_ccy)
        ):
            best = row
    if best is not None:
        rate, rate_day, quoted_from, source = best
        rate = Decimal(rate)
        if quoted_from != from_ccy:
            rate = _divide(Decimal(1), rate)
        when = f"rate of {rate_day}" + ("" if rate_day == day else f" (last before {day})")
        return rate, f"{when}{', ' + source if source else ''}"
    for (a, b), (peg, why) in PEGGED_RATES.items():
        if (a, b) == (from_ccy, to_ccy):
            return peg, why
        if (b, a) == (from_ccy, to_ccy):
            return _divide(Decimal(1), peg), why
    return None


def pair_quotes(session: Session, from_ccy: str, to_ccy: str, start: date, end: date) -> list[QuotedRow]:
    """Every quote of a pair (either way) a conversion between ``start`` and ``end`` may use: one query."""
    rows = session.execute(
        select(ExchangeRate.rate, ExchangeRate.rate_date, ExchangeRate.from_currency, ExchangeRate.source).where(
            or_(
                (ExchangeRate.from_currency == from_ccy) & (ExchangeRate.to_currency == to_ccy),
                (ExchangeRate.from_currency == to_ccy) & (ExchangeRate.to_currency == from_ccy),
            ),
            ExchangeRate.rate_date <= end,
            ExchangeRate.rate_date >= start - timedelta(days=RATE_LOOKBACK_DAYS),
        )
    ).all()
    return [(Decimal(rate), when, quoted_from, source) for rate, when, quoted_from, source in rows]


@dataclass(frozen=True)
class ConversionRule:
    """How any amount of one currency on one day becomes grant currency: the part of ``convert`` that needs the database.

    ``divisor`` set: converted = amount / divisor (a fixed rate is quoted the other way);
    otherwise converted = amount × ``exact``. ``multiplier`` is what is stored.
    """

    exact: Decimal
    multiplier: Decimal
    source: str
    divisor: Decimal | None = None

    def apply(self, amount: Decimal) -> Conversion:
        if self.divisor is not None:
            return Conversion(quantize_money(_divide(amount, self.divisor)), self.multiplier, self.source)
        if self.exact == 1 and self.divisor is None and self.multiplier == 1:
            return Conversion(quantize_money(amount), self.multiplier, self.source)
        return Conversion(quantize_money(_multiply(amount, self.exact)), self.multiplier, self.source)


def convert(
    session: Session, grant: Grant, amount: Decimal, currency: str, day: date, period: ReportingPeriod | None = None
) -> Conversion:
    """Convert ``amount`` of ``currency`` spent on ``day`` into the grant's currency under its rate policy.

    Raises MissingRateError naming the date and the currency pair when no rate applies.
    """
    return conversion_rule(session, grant, currency, day, period).apply(amount)


_POLICY_UNSET: object = object()


def conversion_rule(
    session: Session,
    grant: Grant,
    currency: str,
    day: date,
    period: ReportingPeriod | None = None,
    *,
    policy: RatePolicy | None | object = _POLICY_UNSET,
    quotes: Iterable[QuotedRow] | None = None,
) -> ConversionRule:
    """The rule ``convert`` applies to ``currency`` on ``day`` (bulk writers keep one per currency and day).

    ``policy``: the grant's rate policy when the caller has read it already (None: it has none);
    ``quotes``: every quote of the pair around ``day``, read once by the caller (``pair_quotes``).
    """
    target = grant.currency
    if currency == target:
        return ConversionRule(Decimal(1), Decimal(1), "same currency as the grant")
    if policy is _POLICY_UNSET:
        policy = session.scalar(select(RatePolicy).where(RatePolicy.grant_id == grant.id))
    assert policy is None or isinstance(policy, RatePolicy)
    method = policy.method if policy else RateMethod.transaction_date
    if method == RateMethod.fixed:
        assert policy is not None and policy.fixed_rate is not None
        if currency != policy.fixed_currency:
            raise MissingRateError(
                {
                    "currency": [
                        f"{grant.reference} converts only {policy.fixed_currency} at a fixed rate; "
                        f"there is no fixed {currency}→{target} rate (change the grant's rate policy)"
                    ]
                }
            )
        fixed = Decimal(policy.fixed_rate)
        inverse = _divide(Decimal(1), fixed)
        return ConversionRule(
            inverse,
            inverse.quantize(_MULTIPLIER_PLACES),
            f"fixed rate 1 {target} = {_plain_rate(fixed)} {currency} (grant policy)",
            divisor=fixed,
        )
    if method == RateMethod.period_average:
        if period is None:
            period = period_for_date(session, grant.id, day)
        if period is None:
            raise MissingRateError({"spent_on": [f"{day} is in no reporting period of {grant.reference}"]})
        multiplier = _period_average(session, currency, target, period)
        if multiplier is None:
            cross = cross_rate(session, currency, target, period.end_date, period=period)
            if cross is not None:
                return ConversionRule(cross.multiplier, cross.multiplier.quantize(_MULTIPLIER_PLACES), cross.sentence)
            raise MissingRateError(
                {
                    "currency": [
                        f"no {currency}→{target} exchange rate between {period.start_date} and "
                        f"{period.end_date} to average for period {period.label}; add rates under Exchange rates"
                    ]
                }
            )
        return ConversionRule(
            multiplier,
            multiplier.quantize(_MULTIPLIER_PLACES),
            f"average {currency}→{target} rate of period {period.label} ({multiplier.quantize(Decimal('1E-6'))})",
        )
    if quotes is not None:
        quoted = pick_quoted(quotes, currency, target, day)
    else:
        quoted = _quoted_rate(session, currency, target, day)
    if quoted is None:
        cross = cross_rate(session, currency, target, day)
        if cross is None:
            raise MissingRateError(
                {
                    "currency": [
                        f"no {currency}→{target} exchange rate for {day} (nor in the {RATE_LOOKBACK_DAYS} days "
                        f"before), and no path through {' or '.join(_pivots(currency, target)) or 'another currency'}; "
                        "add one under Exchange rates"
                    ]
                }
            )
        return ConversionRule(cross.multiplier, cross.multiplier.quantize(_MULTIPLIER_PLACES), cross.sentence)
    multiplier, why = quoted
    return ConversionRule(
        multiplier,
        multiplier.quantize(_MULTIPLIER_PLACES),
        f"1 {currency} = {_plain_rate(multiplier)} {target}, {why}",
    )


def _period_average(session: Session, from_ccy: str, to_ccy: str, period: ReportingPeriod) -> Decimal | None:
    """Mean of the daily from→to rates published within the period (inverse quotes inverted)."""
    rows = session.execute(
        select(ExchangeRate.from_currency, ExchangeRate.rate).where(
            or_(
                (ExchangeRate.from_currency == from_ccy) & (ExchangeRate.to_currency == to_ccy),
                (ExchangeRate.from_currency == to_ccy) & (ExchangeRate.to_currency == from_ccy),
            ),
            ExchangeRate.rate_date >= period.start_date,
            ExchangeRate.rate_date <= period.end_date,
        )
    ).all()
    if not rows:
        for (a, b), (peg, _why) in PEGGED_RATES.items():
            if (a, b) == (from_ccy, to_ccy):
                return peg
            if (b, a) == (from_ccy, to_ccy):
                return _divide(Decimal(1), peg)
        return None
    values = [Decimal(r) if f == from_ccy else _divide(Decimal(1), Decimal(r)) for f, r in rows]
    return _divide(sum(values, Decimal(0)), Decimal(len(values)))


# Currencies a conversion may go through when there is no direct rate: pegs first (their
# anchor currency), then the common currencies finance staff quote against.
COMMON_CURRENCIES: tuple[str, ...] = ("USD", "EUR")
# Up to this many currencies in between (XCD→USD→GBP is one; XCD→USD→EUR→GBP two).
MAX_INTERMEDIATES = 2


@dataclass(frozen=True)
class Leg:
    """One step of a cross rate: 1 ``from_ccy`` = ``multiplier`` ``to_ccy``, said as quoted."""

    from_ccy: str
    to_ccy: str
    multiplier: Decimal
    said: str


@dataclass(frozen=True)
class CrossRate:
    """A rate with no direct quote, found through one or two other currencies."""

    from_ccy: str
    to_ccy: str
    legs: tuple[Leg, ...]
    multiplier: Decimal  # to_ccy per from_ccy
    sentence: str


def _pivots(from_ccy: str, to_ccy: str) -> list[str]:
    anchors = [a if b in (from_ccy, to_ccy) else b for (a, b) in PEGGED_RATES if {a, b} & {from_ccy, to_ccy}]
    return [c for c in dict.fromkeys([*anchors, *COMMON_CURRENCIES]) if c not in (from_ccy, to_ccy)]


def _rate_edges(
    session: Session, day: date, period: ReportingPeriod | None
) -> dict[tuple[str, str], tuple[Decimal, str]]:
    """Every usable step on ``day`` (or averaged over ``period``): {(from, to): (multiplier, how it is said)}.

    Quoted rates are said as stored ("1 USD = 0.78 GBP on 2026-07-31") whichever way they are used;
    a peg only fills a pair nobody quoted. One query.
    """
    if period is None:
        start, end = day - timedelta(days=RATE_LOOKBACK_DAYS), day
    else:
        start, end = period.start_date, period.end_date
    rows = session.execute(
        select(ExchangeRate.from_currency, ExchangeRate.to_currency, ExchangeRate.rate, ExchangeRate.rate_date)
        .where(ExchangeRate.rate_date >= start, ExchangeRate.rate_date <= end)
        .order_by(ExchangeRate.rate_date.desc(), ExchangeRate.id.desc())
    ).all()
    quoted: dict[tuple[str, str], list[tuple[Decimal, date]]] = {}
    for a, b, rate, when in rows:
        quoted.setdefault((a, b), []).append((Decimal(rate), when))
    edges: dict[tuple[str, str], tuple[Decimal, str]] = {}
    for (a, b), values in quoted.items():
        if period is None:
            rate, when = values[0]  # the latest within the look-back
            said = f"1 {a} = {_plain_rate(rate)} {b} on {when}"
        else:
            rate = _divide(sum((v for v, _w in values), Decimal(0)), Decimal(len(values)))
            said = f"average 1 {a} = {_plain_rate(rate)} {b} in {period.label}"
        for key, multiplier in (((a, b), rate), ((b, a), _divide(Decimal(1), rate))):
            if key not in edges or key == (a, b):  # a pair quoted both ways: its own direction wins
                edges[key] = (multiplier, said)
    for (a, b), (peg, _why) in PEGGED_RATES.items():
        said = f"fixed {_plain_rate(peg)} {b} per {a}"
        edges.setdefault((a, b), (peg, said))
        edges.setdefault((b, a), (_divide(Decimal(1), peg), said))
    return edges


def cross_rate(
    session: Session, from_ccy: str, to_ccy: str, day: date, *, period: ReportingPeriod | None = None
) -> CrossRate | None:
    """1 ``from_ccy`` in ``to_ccy`` through one or two other currencies, when no direct rate exists.

    Pegs (XCD at 2.70 per USD) and quoted rates are the steps; the fewest steps win, then
    paths through a pegged or common currency (USD, EUR). None when no path exists.
    """
    edges = _rate_edges(session, day, period)
    preference = {c: i for i, c in enumerate(_pivots(from_ccy, to_ccy))}
    neighbours: dict[str, list[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
    for targets in neighbours.values():
        targets.sort(key=lambda c: (preference.get(c, len(preference)), c))
    frontier: list[list[str]] = [[from_ccy]]
    for _step in range(MAX_INTERMEDIATES + 1):
        found = [path + [to_ccy] for path in frontier if to_ccy in neighbours.get(path[-1], [])]
        found = [p for p in found if len(p) > 2]  # a direct step is _quoted_rate's job
        if found:
            return _as_cross(from_ccy, to_ccy, found[0], edges)
        frontier = [
            path + [nxt]
            for path in frontier
            for nxt in neighbours.get(path[-1], [])
            if nxt not in path and nxt != to_ccy
        ]
    return None


def _as_cross(
    from_ccy: str, to_ccy: str, path: list[str], edges: dict[tuple[str, str], tuple[Decimal, str]]
) -> CrossRate:
    legs = tuple(Leg(a, b, *edges[(a, b)]) for a, b in zip(path, path[1:]))
    multiplier = Decimal(1)
    for leg in legs:
        multiplier = _multiply(multiplier, leg.multiplier)
    inverse = _divide(Decimal(1), multiplier).quantize(Decimal("1E-4"))
    via = " and ".join(path[1:-1])
    steps = ", ".join(dict.fromkeys(leg.said for leg in legs))
    return CrossRate(from_ccy, to_ccy, legs, multiplier, f"1 {to_ccy} = {inverse} {from_ccy} via {via}: {steps}")


def set_rate_policy(
    session: Session,
    grant: Grant,
    method: RateMethod | str,
    *,
    fixed_currency: str | None = None,
    fixed_rate: Decimal | str | None = None,
    notes: str | None = None,
) -> RatePolicy:
    """Set how a grant converts foreign spending; every stored conversion of the grant is redone.

    For the fixed method without a rate, a known peg is used (XCD: 2.70 per USD).
    Refused as a whole if any expenditure could not be converted under the new policy.
    """
    try:
        method = RateMethod(method)
    except ValueError:
        known = ", ".join(m.value for m in RateMethod)
        raise DomainValidationError({"method": [f"'{method}' is not one of {known}"]}) from None
    if method == RateMethod.fixed:
        fixed_currency = (fixed_currency or "").strip().upper()
        if fixed_rate is None and (grant.currency, fixed_currency) in PEGGED_RATES:
            fixed_rate = PEGGED_RATES[(grant.currency, fixed_currency)][0]
        if fixed_rate is not None:
            try:
                fixed_rate = to_decimal(fixed_rate, "fixed_rate")
            except ValueError as exc:
                raise DomainValidationError({"fixed_rate": [str(exc).split(": ", 1)[-1]]}) from None
    else:
        fixed_currency, fixed_rate = None, None
    policy = session.scalar(select(RatePolicy).where(RatePolicy.grant_id == grant.id))
    if policy is None:
        policy = RatePolicy(grant=grant)
        session.add(policy)
    policy.method = method
    policy.fixed_currency = fixed_currency
    policy.fixed_rate = fixed_rate  # type: ignore[assignment]
    policy.notes = notes
    save_policy(session, policy)
    return policy


def reconvert_grant(session: Session, grant_id: int) -> int:
    """Redo the stored conversion of every expenditure of a grant; all or nothing.

    Returns how many changed. Raises DomainValidationError listing every
    expenditure that no rate can convert (the caller rolls back).
    """
    grant = session.get(Grant, grant_id)
    if grant is None:
        return 0
    errors: dict[str, list[str]] = {}
    changed = 0
    periods = {p.id: p for p in session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == grant_id))}
    rows = session.scalars(
        select(Expenditure).where(Expenditure.grant_id == grant_id, Expenditure.currency != grant.currency)
    )
    for expenditure in rows:
        try:
            conversion = convert(
                session,
                grant,
                expenditure.amount,
                expenditure.currency,
                expenditure.spent_on,
                periods.get(expenditure.period_id),
            )
        except DomainValidationError as exc:
            for messages in exc.errors.values():
                for message in messages:
                    if message not in errors.get("_", []):
                        errors.setdefault("_", []).append(message)
            continue
        if (conversion.converted, conversion.multiplier, conversion.source) != (
            expenditure.converted_amount,
            expenditure.rate,
            expenditure.rate_source,
        ):
            expenditure.converted_amount = conversion.converted
            expenditure.converted_cents = to_cents(conversion.converted)
            expenditure.rate = conversion.multiplier
            expenditure.rate_source = conversion.source[:200]
            changed += 1
    if errors:
        raise DomainValidationError(errors)
    session.flush()
    return changed


def grants_using_pair(session: Session, currencies: Iterable[str]) -> list[int]:
    """Grants whose stored conversions may depend on a rate between these currencies."""
    wanted = list(currencies)
    # Direct conversions between the two, and any foreign spending that may now (or no longer)
    # go through one of them: a cross rate uses a pair at one end, or is already "via" another currency.
    return list(
        session.scalars(
            select(Expenditure.grant_id)
            .join(Grant, Grant.id == Expenditure.grant_id)
            .where(
                Expenditure.currency != Grant.currency,
                or_(
                    Expenditure.currency.in_(wanted),
                    Grant.currency.in_(wanted),
                    Expenditure.rate_source.like("% via %"),
                ),
            )
            .group_by(Expenditure.grant_id)
        )
    )


def record_rate(
    session: Session,
    rate_date: date,
    from_currency: str,
    to_currency: str,
    rate: Decimal | str,
    source: str | None = None,
) -> ExchangeRate:
    """Add or correct the rate of a day; conversions that depend on it are redone."""
    try:
        value = to_decimal(rate, "rate")
    except ValueError as exc:
        raise DomainValidationError({"rate": [str(exc).split(": ", 1)[-1]]}) from None
    from_currency, to_currency = (from_currency or "").strip().upper(), (to_currency or "").strip().upper()
    existing = session.scalar(
        select(ExchangeRate).where(
            ExchangeRate.rate_date == rate_date,
            ExchangeRate.from_currency == from_currency,
            ExchangeRate.to_currency == to_currency,
        )
    )
    if existing is None:
        existing = ExchangeRate(rate_date=rate_date, from_currency=from_currency, to_currency=to_currency)
    existing.rate = value
    existing.source = source
    save_rate(session, existing)
    return existing


def save_rate(session: Session, rate: ExchangeRate) -> int:
    """Add or correct a rate (``record_rate``, a form, the API) and redo the conversions that use its pair.

    Returns how many conversions changed; refused as a whole (DomainValidationError,
    the caller rolls back) when some expenditure would be left without a rate.
    """
    rate.from_currency = (rate.from_currency or "").strip().upper()
    rate.to_currency = (rate.to_currency or "").strip().upper()
    session.add(rate)
    session.flush()
    return _refresh_after_rate_change(session, [rate.from_currency, rate.to_currency])


def delete_rate(session: Session, rate: ExchangeRate) -> int:
    """Remove a rate and redo the conversions that used it; refused (nothing changed) when
    some expenditure would be left without a rate."""
    currencies = [rate.from_currency, rate.to_currency]
    session.delete(rate)
    session.flush()
    return _refresh_after_rate_change(session, currencies)


def save_policy(session: Session, policy: RatePolicy) -> int:
    """Set or change a grant's rate policy (``set_rate_policy``, a form, the API): every conversion
    of the grant is redone, or the change is refused as a whole."""
    if policy.fixed_currency is not None:
        policy.fixed_currency = policy.fixed_currency.strip().upper()
    session.add(policy)
    session.flush()
    return reconvert_grant(session, policy.grant_id if policy.grant_id is not None else policy.grant.id)


def _refresh_after_rate_change(session: Session, currencies: Iterable[str]) -> int:
    """Redo conversions of every grant that converts between these currencies."""
    changed = 0
    for grant_id in grants_using_pair(session, currencies):
        changed += reconvert_grant(session, grant_id)
    return changed


def latest_rates(session: Session, limit: int = 20) -> list[ExchangeRate]:
    return list(session.scalars(select(ExchangeRate).order_by(ExchangeRate.rate_date.desc()).limit(limit)))


def rate_count(session: Session) -> int:
    return session.scalar(select(func.count(ExchangeRate.id))) or 0
