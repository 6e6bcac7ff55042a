"""Reading rates: ``convert()``, ``quote()`` and the in-process rate table behind them.

Hot reads never make a network round trip per call. Each process keeps the table of published
rates in memory (a ``RateTable`` in ``_TABLE``), built from the Redis cache (``fx:rates:<BASE>``)
and, for a base Redis no longer holds, from the latest snapshots in Postgres. At most every
``FX_LOCAL_CACHE_SECONDS`` (default 5 s) one call reads ``fx:version`` (one GET) and reloads
the table if a refresh published since. So a process serves a new rate at most
``FX_LOCAL_CACHE_SECONDS`` after the refresh that stored it (immediately in the process that
ran the refresh), and never a stale one: staleness (``fx.publication``: older than
``FX_MAX_AGE_HOURS`` and past a publication it missed) is checked on every call against the
rate's own ``as_of``.

Pairs: a stored pair (``base → quote``) is used as is, its inverse as ``1 / rate``, and any
other pair through a base that quotes both (``rate(B→to) / rate(B→from)``), all with 34
significant digits; when several paths exist the most recent wins (then: direct, inverse,
cross through the provider's own pivot, cross through the other bases in
``FX_BASE_CURRENCIES`` order). A derived pair is as old as its older leg.
"""

from __future__ import annotations

import decimal
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from redis.exceptions import RedisError

from fx.currencies import normalize, quantum
from fx.errors import InvalidAmount, RateUnavailable, UnknownCurrency
from fx.providers import registry
from fx.publication import TARGET_PUBLISHERS, search_since, usable_until
from fx.selectors import Pair, latest_published, published_rates
from fx.services.cache import CachedRate, read_version

logger = logging.getLogger(__name__)

# Products of amount × rate and derived rates: 34 significant digits (decimal128), whatever the
# caller's thread context says. quantize() to the currency's minor units then applies the
# configured rounding.
CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, decimal.DivisionByZero,
                                                            decimal.Overflow])
ONE = Decimal(1)
_NEVER = float("inf")

# Amounts are below 10**18 in magnitude (18 integer digits, as many as an ``exchange_rate`` row's
# numeric(38, 20) holds): times any real rate, the result keeps its minor units within the 34
# significant digits above. decimal would otherwise raise a bare InvalidOperation.
AMOUNT_DIGITS = 18
AMOUNT_RANGE = "amounts must be finite numbers strictly between -1e18 and 1e18"

_PIVOTS = {name: module.PIVOT for name, module in registry().items()}

# A table entry is a tuple, indexed on the hot path:
RATE, QUANTUM, EXPIRES, ROUNDING, AS_OF, PROVIDER, VIA, FROM, TO = range(9)


@dataclass(frozen=True)
class Quote:
    """The rate ``convert`` used: ``rate`` units of ``to_currency`` per 1 ``from_currency``."""

    from_currency: str
    to_currency: str
    rate: Decimal
    as_of: datetime | None  # None for a currency converted to itself
    provider: str
    via: str  # "direct", "inverse", "cross via EUR" or "same currency"


class RateTable:
    """This process's published rates, and the pairs derived from them as they are asked for.

    ``load`` builds one from Redis (Postgres for a base Redis lost), ``refreshed`` returns it or
    a reloaded one when ``fx:version`` changed, ``lookup`` answers a pair (cached in ``pairs``).
    """

    __slots__ = ("version", "direct", "bases", "pairs", "rounding", "max_age_hours", "check_after")

    def __init__(self, version: Any, direct: dict[Pair, CachedRate], check_after: float) -> None:
        self.version = version
        self.direct = direct
        configured = list(settings.FX_BASE_CURRENCIES)
        others = sorted({base for base, _ in direct} - set(configured))
        self.bases = configured + others
        self.pairs: dict[tuple[Any, Any], tuple] = {}
        self.rounding = getattr(decimal, settings.FX_ROUNDING)
        self.max_age_hours = float(settings.FX_MAX_AGE_HOURS)
        self.check_after = check_after

    @classmethod
    def empty(cls) -> RateTable:
        return cls(_UNLOADED, {}, 0.0)

    @classmethod
    def load(cls, version: Any, now: float) -> RateTable:
        """Load the rates of ``FX_BASE_CURRENCIES`` from Redis, and Postgres for a base it lost."""
        direct, from_db = published_rates(settings.FX_BASE_CURRENCIES, since=_search_since(now))
        logger.debug("fx rate table loaded pairs=%d from_db=%s", len(direct), ",".join(from_db) or "-")
        return cls(version, direct, now + float(settings.FX_LOCAL_CACHE_SECONDS))

    @classmethod
    def load_from_db(cls, now: float) -> RateTable:
        return cls(_UNLOADED, latest_published(bases=settings.FX_BASE_CURRENCIES, since=_search_since(now)), now)

    def refreshed(self, now: float) -> RateTable:
        """Return this table, or a reloaded one if a refresh published since it was loaded."""
        try:
            version = read_version()
        except RedisError as exc:
            # Keep serving what we have (staleness is still checked per call); look again later.
            logger.warning("fx rate table: Redis unreachable (%s); keeping the loaded table", exc.__class__.__name__)
            table = RateTable.load_from_db(now) if self.version is _UNLOADED else self
            table.check_after = now + float(settings.FX_LOCAL_CACHE_SECONDS)
            return table
        if self.version is _UNLOADED or version != self.version:
            return RateTable.load(version, now)
        self.check_after = now + float(settings.FX_LOCAL_CACHE_SECONDS)
        return self

    def lookup(self, from_currency: Any, to_currency: Any, now: float) -> tuple:
        """Return the table entry of a pair, computed once per table."""
        entry = self.pairs.get((from_currency, to_currency))
        if entry is None:
            entry = self.entry(from_currency, to_currency, now=now)
            self.pairs[(from_currency, to_currency)] = entry
        return entry

    def entry(self, f_raw: Any, t_raw: Any, *, now: float, at: datetime | None = None) -> tuple:
        f, t = normalize(f_raw), normalize(t_raw)
        pair = (str(f_raw), str(t_raw))
        if f is None:
            raise UnknownCurrency(f_raw, pair=pair)
        if t is None:
            raise UnknownCurrency(t_raw, pair=pair)
        if f == t:
            return (ONE, quantum(t), _NEVER, self.rounding, None, "", "same currency", f, t)
        found = None if at is not None else _candidates(self.direct, self.bases, f, t, self.max_age_hours)
        if found is None:
            # Not in the table (or a historical question): ask Postgres for the legs, any age, so
            # a stale rate is reported with its age rather than as missing.
            moment = at or datetime.fromtimestamp(now, tz=UTC)
            legs = _legs_from_db(f, t, self.bases, moment)
            bases = self.bases + sorted({b for b, _ in legs} - set(self.bases))
            found = _candidates(legs, bases, f, t, self.max_age_hours)
        if found is None:
            return (None, None, -_NEVER, self.rounding, None, "", "", f, t)
        rate, as_of, provider, via, expires = found
        return (rate, quantum(t), expires, self.rounding, as_of, provider, via, f, t)


_UNLOADED = object()
_TABLE = RateTable.empty()


def reset_local_cache() -> None:
    """Drop this process's rate table: the next call reloads it (a refresh here calls this)."""
    global _TABLE
    _TABLE = RateTable.empty()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("FX_") or setting.startswith("REDIS") or setting == "DATABASES":
        reset_local_cache()


setting_changed.connect(_on_setting_changed, dispatch_uid="fx.rates.reset")


def _current(now: float) -> RateTable:
    """Return the table, reloaded if a refresh published since the last check."""
    global _TABLE
    _TABLE = _TABLE.refreshed(now)
    return _TABLE


def _search_since(now: float) -> datetime:
    return search_since(datetime.fromtimestamp(now, tz=UTC), settings.FX_MAX_AGE_HOURS)


def _candidates(direct: dict[Pair, CachedRate], bases: list[str], f: str, t: str, max_age_hours: float) -> tuple | None:
    """Return ``(rate, as_of, provider, via, usable_until)`` of the best path from ``f`` to ``t``, or None."""
    found = []
    leg = direct.get((f, t))
    if leg is not None:
        until = usable_until(leg.as_of, leg.provider, max_age_hours)
        found.append((leg.as_of, 0, leg.rate, leg.provider, "direct", until))
    leg = direct.get((t, f))
    if leg is not None:
        until = usable_until(leg.as_of, leg.provider, max_age_hours)
        found.append((leg.as_of, 1, CONTEXT.divide(ONE, leg.rate), leg.provider, "inverse", until))
    for n, base in enumerate(bases):
        if base in (f, t):
            continue
        leg_f, leg_t = direct.get((base, f)), direct.get((base, t))
        if leg_f is not None and leg_t is not None:
            same = leg_t.provider == leg_f.provider
            provider = leg_t.provider if same else f"{leg_f.provider}+{leg_t.provider}"
            # Through the provider's own pivot the legs are its numbers, not already-derived ones.
            rank = 2 if same and _PIVOTS.get(provider) == base else 3 + n
            until = min(usable_until(leg_f.as_of, leg_f.provider, max_age_hours),
                        usable_until(leg_t.as_of, leg_t.provider, max_age_hours))
            found.append((min(leg_f.as_of, leg_t.as_of), rank, CONTEXT.divide(leg_t.rate, leg_f.rate), provider,
                          f"cross via {base}", until))
    if not found:
        return None
    as_of, _, rate, provider, via, until = max(found, key=lambda c: (c[0], -c[1]))
    return rate, as_of, provider, via, until


def _legs_from_db(f: str, t: str, bases: list[str], moment: datetime) -> dict[Pair, CachedRate]:
    """Return the latest published rate at ``moment`` of every stored leg a path f→t could use."""
    candidates = set(bases) | {f, t}
    legs: dict[Pair, CachedRate] = {}
    # First as far back as a rate can still be usable (an index range scan), then any age for
    # the error message.
    for since in (search_since(moment, settings.FX_MAX_AGE_HOURS), None):
        legs = latest_published(bases=candidates, quotes=(f, t), since=since, until=moment)
        if legs:
            break
    return legs


def _unavailable(entry: tuple, now: float) -> RateUnavailable:
    if entry[AS_OF] is None:
        return RateUnavailable(entry[FROM], entry[TO])
    as_of = datetime.fromtimestamp(entry[AS_OF], tz=UTC)
    reason = f"older than FX_MAX_AGE_HOURS={settings.FX_MAX_AGE_HOURS}"
    if entry[PROVIDER] in TARGET_PUBLISHERS and entry[EXPIRES] > entry[AS_OF] + float(settings.FX_MAX_AGE_HOURS) * 3600:
        # The calendar kept it longer: say which publication it missed.
        missed = datetime.fromtimestamp(entry[EXPIRES], tz=UTC) - timedelta(days=1)
        reason += f" and its source's publication of {missed:%Y-%m-%d} is missing"
    return RateUnavailable(entry[FROM], entry[TO], as_of=as_of, age_hours=(now - entry[AS_OF]) / 3600, reason=reason)


def to_amount(amount: Any) -> Decimal:
    """Return ``amount`` as the ``Decimal`` ``convert`` multiplies.

    Raise ``InvalidAmount`` (a ``ValueError``) for a string that is not a number, NaN, an
    infinity, or an amount whose magnitude is ``10**AMOUNT_DIGITS`` or more; ``TypeError`` for
    anything that is not a ``Decimal``, an int, a float or a string.
    """
    if isinstance(amount, bool):
        raise TypeError("amount must be a Decimal, an int or a numeric string, not a bool")
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, int):
        value = Decimal(amount)
    elif isinstance(amount, float):
        value = Decimal(repr(amount))  # the float's shortest repr, not its binary expansion
    elif isinstance(amount, str):
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise InvalidAmount(amount, "is not a number", allowed=AMOUNT_RANGE) from None
    else:
        raise TypeError(f"amount must be a Decimal, an int or a numeric string, not {type(amount).__name__}")
    if not value.is_finite():
        raise InvalidAmount(value, "is not a finite number", allowed=AMOUNT_RANGE)
    if value and value.adjusted() >= AMOUNT_DIGITS:
        raise InvalidAmount(value, "is out of range", allowed=AMOUNT_RANGE)
    return value


def _moment(at: date | datetime) -> datetime:
    """A date means "that day's rate" (the last one by the end of the day, UTC); naive is UTC."""
    if isinstance(at, datetime):
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if isinstance(at, date):
        return datetime(at.year, at.month, at.day, tzinfo=UTC) + timedelta(days=1, microseconds=-1)
    raise TypeError(f"at must be a date or a datetime, not {type(at).__name__}")


def _historical(from_currency: Any, to_currency: Any, at: date | datetime) -> tuple[tuple, float]:
    moment = _moment(at)
    now = moment.timestamp()
    return RateTable.empty().entry(from_currency, to_currency, now=now, at=moment), now


def convert(amount: Any, from_currency: str, to_currency: str, *, at: date | datetime | None = None) -> Decimal:
    """Return ``amount`` of ``from_currency`` in ``to_currency``, rounded to its minor units.

    Rounding is ``FX_ROUNDING`` (half-up by default) to the ISO 4217 minor units (JPY 0, USD 2,
    KWD 3). ``at`` answers with the snapshot in force then (a date: that day's last rate).
    Raise ``RateUnavailable`` (naming the pair and, for a stale rate, its age) when there is no
    published rate that is not stale (``fx.publication``); ``UnknownCurrency`` (a
    ``RateUnavailable`` and a ``ValueError``) for a code that is not ISO 4217; ``InvalidAmount``
    (a ``ValueError`` naming the allowed range) for an amount that is not a finite number
    within ±10**18, or whose result has more than 34 significant digits.
    """
    if at is not None:
        entry, now = _historical(from_currency, to_currency, at)
    else:
        now = time.time()
        table = _TABLE
        if now >= table.check_after:
            table = _current(now)
        entry = table.pairs.get((from_currency, to_currency))
        if entry is None:
            entry = table.lookup(from_currency, to_currency, now)
    if now > entry[EXPIRES]:
        raise _unavailable(entry, now)
    if amount.__class__ is not Decimal or not amount.is_finite() or amount.adjusted() >= AMOUNT_DIGITS:
        amount = to_amount(amount)
    try:
        return CONTEXT.multiply(amount, entry[RATE]).quantize(entry[QUANTUM], entry[ROUNDING], CONTEXT)
    except InvalidOperation:
        # Only a rate of 10**10 or more (no real currency's) takes an amount under 10**18 this far.
        raise InvalidAmount(amount, f"is out of range: in {entry[TO]} it has more than 34 significant digits",
                            allowed=AMOUNT_RANGE) from None


def quote(from_currency: str, to_currency: str, *, at: date | datetime | None = None) -> Quote:
    """Return the rate ``convert`` would use now (or ``at``), with its date, provider and path."""
    if at is not None:
        entry, now = _historical(from_currency, to_currency, at)
    else:
        now = time.time()
        table = _TABLE if now < _TABLE.check_after else _current(now)
        entry = table.lookup(from_currency, to_currency, now)
    if now > entry[EXPIRES]:
        raise _unavailable(entry, now)
    as_of = None if entry[AS_OF] is None else datetime.fromtimestamp(entry[AS_OF], tz=UTC)
    return Quote(entry[FROM], entry[TO], entry[RATE], as_of, entry[PROVIDER], entry[VIA])
