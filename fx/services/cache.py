"""The Redis side of the rates (main Redis DB, ``fx:`` keys, TTL from ``broxiva.keys``: 1 h).

- ``fx:rates:<BASE>``: a hash, one field per quote currency, ``"<rate>|<as_of epoch>|<provider>"``.
  Only published rates go here, and a field is only ever replaced by a rate at least as recent,
  so a response that omits a currency leaves that currency's last rate in place.
- ``fx:refreshed:<BASE>``: JSON marker of the last successful fetch for the base; while it
  exists (1 h) the refresh is fresh and a non-forced refresh makes no provider call.
- ``fx:version``: a new unique value on every publish. Processes compare it (at most every
  ``FX_LOCAL_CACHE_SECONDS``) to reload their in-process rate table; being unique rather than
  a counter, it cannot come back to a value a process has already seen after it expires.
- ``ratelimit:fx:<provider>:cooldown``: set from a 429's ``Retry-After``; the chain skips the
  provider until it expires.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from broxiva.connections import get_redis
from broxiva.keys import build_key, ttl


@dataclass(frozen=True)
class CachedRate:
    rate: Decimal
    as_of: float  # epoch seconds
    provider: str

    def encode(self) -> str:
        return f"{self.rate}|{int(self.as_of)}|{self.provider}"

    @classmethod
    def decode(cls, raw: bytes | str) -> CachedRate | None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            rate, as_of, provider = text.split("|", 2)
            return cls(Decimal(rate), float(as_of), provider)
        except (ValueError, ArithmeticError):
            return None


@dataclass(frozen=True)
class Marker:
    base: str
    fetched_at: float
    as_of: float
    provider: str


def rates_key(base: str) -> str:
    return build_key("fx", "rates", base)


def marker_key(base: str) -> str:
    return build_key("fx", "refreshed", base)


def version_key() -> str:
    return build_key("fx", "version")


def cooldown_key(provider: str) -> str:
    return build_key("ratelimit", "fx", provider, "cooldown")


def read_rates(bases: Iterable[str]) -> dict[str, dict[str, CachedRate]]:
    """Return the cached table of each base (one round trip); a missing hash gives ``{}``."""
    bases = list(bases)
    with get_redis().pipeline(transaction=False) as pipe:
        for base in bases:
            pipe.hgetall(rates_key(base))
        raw = pipe.execute()
    result: dict[str, dict[str, CachedRate]] = {}
    for base, fields in zip(bases, raw, strict=True):
        table: dict[str, CachedRate] = {}
        for quote, value in fields.items():
            decoded = CachedRate.decode(value)
            if decoded is not None:
                table[quote.decode()] = decoded
        result[base] = table
    return result


def publish(rates: dict[str, dict[str, CachedRate]], *, markers: Iterable[Marker] = ()) -> int:
    """Write published rates (keeping any field that is newer) and markers; bump the version.

    Two round trips whatever the number of currencies. Return the number of fields written.
    The caller holds the refresh lock, so the read-compare-write cannot interleave with another.
    """
    client = get_redis()
    current = read_rates(rates.keys())
    seconds = ttl("fx")
    written = 0
    with client.pipeline(transaction=True) as pipe:
        for base, table in rates.items():
            fields = {
                quote: value.encode()
                for quote, value in table.items()
                if quote not in current[base] or current[base][quote].as_of <= value.as_of
            }
            if fields:
                pipe.hset(rates_key(base), mapping=fields)
                written += len(fields)
            if fields or current[base]:
                pipe.expire(rates_key(base), seconds)
        for marker in markers:
            pipe.set(marker_key(marker.base), json.dumps(marker.__dict__), ex=seconds)
        pipe.set(version_key(), f"{time.time_ns()}-{uuid.uuid4().hex[:8]}", ex=seconds)
        pipe.execute()
    return written


def read_markers(bases: Iterable[str], targets: Iterable[str] = ()) -> dict[str, tuple[Marker | None, bool]]:
    """Return ``{base: (marker or None, every target is cached)}`` in one round trip."""
    bases, targets = list(bases), list(targets)
    wanted = {base: [t for t in targets if t != base] for base in bases}
    with get_redis().pipeline(transaction=False) as pipe:
        for base in bases:
            pipe.get(marker_key(base))
            if wanted[base]:
                pipe.hmget(rates_key(base), wanted[base])
        raw = iter(pipe.execute())
    result: dict[str, tuple[Marker | None, bool]] = {}
    for base in bases:
        blob = next(raw)
        complete = all(v is not None for v in next(raw)) if wanted[base] else True
        marker = None
        if blob is not None:
            try:
                marker = Marker(**json.loads(blob))
            except (TypeError, ValueError):
                marker = None
        result[base] = (marker, complete)
    return result


def read_version() -> bytes | None:
    return get_redis().get(version_key())


def cooldown_remaining(provider: str) -> float:
    """Return the seconds left of a provider's 429 cooldown (0 when none)."""
    ms = get_redis().pttl(cooldown_key(provider))
    return ms / 1000 if ms and ms > 0 else 0.0


def start_cooldown(provider: str, seconds: float) -> None:
    if seconds > 0:
        get_redis().set(cooldown_key(provider), "1", px=max(int(seconds * 1000), 1))


def epoch(moment: datetime) -> float:
    return moment.astimezone(UTC).timestamp()
