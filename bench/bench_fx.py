"""FX: ``fx.services.convert`` against django-money's ``convert_money``, and one big refresh.

    python3 -m venv bench/.venv && bench/.venv/bin/pip install -r bench/requirements.txt
    REDIS_DB=4 REDIS_QUEUE_DB=5 bench/.venv/bin/python bench/bench_fx.py [--calls 200000] [--rounds 5]

django-money is installed only in the benchmark environment (``bench/requirements.txt``).

1. **convert()** — calls per second, on the same rates (170 currencies quoted per USD, the
   size of an Open Exchange Rates table) and the same 24 currency pairs, cycled:
   - ours: ``convert(amount, from, to)`` with its in-process table warm (Redis checked at most
     every ``FX_LOCAL_CACHE_SECONDS``), result rounded to the target's minor units;
   - django-money ``convert_money(Money(amount, from), to)`` with its rate cache in Django's
     default cache: (a) LocMemCache, warm — the baseline of the ≥ 5× target; (b) Redis (one
     round trip per call); (c) no cache (a SQL query per call; fewer calls, it is slow).
   Each round times every contender back to back, so machine load hits all alike; the median
   of ``--rounds`` is reported.
2. **refresh** — one ``rates_refresh(force=True)`` fetching an OXR-format response from a local
   HTTP server and storing ``N`` currencies × 3 bases (USD, EUR, GBP), for N = 30, 90, 170:
   SQL queries (must not grow with N) and wall time, median of ``--rounds``.

Only the bench database (``BENCH_DATABASE_URL``, default ``broxiva_bench_fx``, created if
missing) and the ``fx:``/``ratelimit:fx:``/``lock:fx:`` keys of ``REDIS_DB`` are written.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import types
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402  (after the path is set)

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/broxiva_bench_fx")
# django-money's exchange app names its rate table "exchange_rate" too: it gets a database of its own.
DJMONEY_DB = BENCH_DB + "_djmoney"
os.environ["DATABASE_URL"] = BENCH_DB
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DEBUG", "false")
for _name in ("OPEN_EXCHANGE_RATES_APP_ID", "FIXER_API_KEY"):
    os.environ.pop(_name, None)




class DjmoneyRouter:
    """django-money's models (app label ``exchange``) live in the ``djmoney`` database."""

    def db_for_read(self, model: type, **hints: object) -> str | None:
        return "djmoney" if model._meta.app_label == "exchange" else None

    db_for_write = db_for_read

    def allow_migrate(self, db: str, app_label: str, **hints: object) -> bool:
        return (db == "djmoney") == (app_label == "exchange")


def _settings_module() -> None:
    """broxiva.settings plus django-money, with the caches django-money is measured on."""
    import dj_database_url

    module = types.ModuleType("bench_fx_settings")
    exec("from broxiva.settings import *", module.__dict__)  # noqa: S102 -- our own settings module
    module.DATABASES["djmoney"] = dj_database_url.parse(DJMONEY_DB)
    module.DATABASE_ROUTERS = [f"{__name__}.DjmoneyRouter"]
    module.INSTALLED_APPS = [*module.INSTALLED_APPS, "djmoney", "djmoney.contrib.exchange"]
    module.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    module.REDIS_CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": module.REDIS_URL,
                          "KEY_PREFIX": "bench-fx"}
    module.FX_PROVIDERS = ["openexchangerates"]
    module.OPEN_EXCHANGE_RATES_APP_ID = "bench-app-id"
    module.OPEN_EXCHANGE_RATES_MONTHLY_BUDGET = 0
    module.LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
    sys.modules[module.__name__] = module
    os.environ["DJANGO_SETTINGS_MODULE"] = module.__name__


ensure_database(BENCH_DB)
ensure_database(DJMONEY_DB)
_settings_module()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from djmoney.contrib.exchange.models import ExchangeBackend, Rate, convert_money  # noqa: E402
from djmoney.money import Money  # noqa: E402

from broxiva.connections import get_redis  # noqa: E402
from broxiva.keys import pattern  # noqa: E402
from fx.currencies import CODES, quantum  # noqa: E402
from fx.models import ExchangeRate  # noqa: E402
from fx.services import convert, rates_refresh, reset_local_cache  # noqa: E402

PAIRS = [
    ("USD", "EUR"), ("EUR", "USD"), ("USD", "JPY"), ("JPY", "USD"), ("EUR", "GBP"), ("GBP", "EUR"),
    ("GBP", "JPY"), ("EUR", "CHF"), ("CHF", "JPY"), ("USD", "KWD"), ("KWD", "EUR"), ("CAD", "AUD"),
    ("INR", "USD"), ("BRL", "MXN"), ("SEK", "NOK"), ("ZAR", "GBP"), ("CNY", "HKD"), ("SGD", "MYR"),
    ("USD", "CAD"), ("EUR", "PLN"), ("THB", "IDR"), ("KRW", "JPY"), ("NZD", "AUD"), ("AED", "SAR"),
]
MUST_HAVE = sorted({c for pair in PAIRS for c in pair} - {"USD"})


def usd_table(size: int) -> dict[str, Decimal]:
    """``size`` ISO currencies per 1 USD, deterministic, six decimals (django-money's scale)."""
    others = [c for c in sorted(CODES) if c not in MUST_HAVE and c != "USD"]
    codes = (MUST_HAVE + others)[:size]
    return {code: Decimal(f"{0.05 + (i * 7919 % 99991) / 997:.6f}") for i, code in enumerate(codes)}


class Feed:
    body = b""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(Feed.body)))
        self.end_headers()
        self.wfile.write(Feed.body)

    def log_message(self, *args: object) -> None:
        pass


def serve(rates: dict[str, Decimal], timestamp: int) -> None:
    Feed.body = json.dumps({
        "disclaimer": "bench", "license": "bench", "timestamp": timestamp, "base": "USD",
        "rates": {code: float(rate) for code, rate in rates.items()},
    }).encode()


def clean() -> None:
    client = get_redis()
    for prefix in (pattern("fx"), pattern("ratelimit", "fx"), pattern("lock", "fx")):
        keys = list(client.scan_iter(match=prefix, count=1000))
        if keys:
            client.delete(*keys)
    ExchangeRate.objects.all().delete()


def rate_of(fn, calls: int) -> float:
    start = time.perf_counter()
    fn(calls)
    return calls / (time.perf_counter() - start)


def ours(calls: int) -> None:
    amount = Decimal("123.45")
    pairs = PAIRS * (calls // len(PAIRS) + 1)
    for f, t in pairs[:calls]:
        convert(amount, f, t)


def djmoney(calls: int) -> None:
    moneys = [(Money(Decimal("123.45"), f), t) for f, t in PAIRS]
    pairs = moneys * (calls // len(moneys) + 1)
    for money, t in pairs[:calls]:
        convert_money(money, t, backend="bench")


def bench_convert(calls: int, rounds: int) -> list[tuple[str, float, float]]:
    rates = usd_table(170)
    serve(rates, int(time.time()) - 60)
    rates_refresh(force=True)
    backend, _ = ExchangeBackend.objects.update_or_create(name="bench", defaults={"base_currency": "USD"})
    backend.rates.all().delete()
    Rate.objects.bulk_create([Rate(currency=c, value=v, backend=backend) for c, v in rates.items()])
    # Same answers (ours rounded to minor units, django-money's not).
    for f, t in PAIRS:
        theirs = convert_money(Money(Decimal("123.45"), f), t, backend="bench").amount
        mine = convert(Decimal("123.45"), f, t)
        assert abs(mine - theirs) <= quantum(t), (f, t, mine, theirs)
    ours(5000)
    djmoney(5000)  # warm both
    results: dict[str, list[float]] = {"ours": [], "locmem": [], "redis": [], "nocache": []}
    for _ in range(rounds):
        results["ours"].append(rate_of(ours, calls))
        results["locmem"].append(rate_of(djmoney, calls))
        with override_settings(CACHES={"default": settings.REDIS_CACHE}):
            djmoney(200)
            results["redis"].append(rate_of(djmoney, max(calls // 40, 1000)))
        with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}):
            results["nocache"].append(rate_of(djmoney, max(calls // 100, 500)))
    base = statistics.median(results["locmem"])
    labels = {
        "ours": "fx.services.convert (in-process table)",
        "locmem": "django-money convert_money, LocMemCache warm",
        "redis": "django-money convert_money, Redis cache",
        "nocache": "django-money convert_money, no cache (SQL)",
    }
    return [(labels[k], statistics.median(v), statistics.median(v) / base) for k, v in results.items()]


def bench_refresh(rounds: int) -> tuple[list[tuple[int, int, float, int]], list[str]]:
    out = []
    statements: list[str] = []
    stamp = int(time.time()) - 3600
    for size in (30, 90, 170):
        queries, seconds = [], []
        for _ in range(rounds):
            stamp += 1  # a new as_of: every row is new
            serve(usd_table(size), stamp)
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                result = rates_refresh(force=True)
                seconds.append(time.perf_counter() - start)
            assert result.total_stored == size * 3, result.stored
            queries.append(len(captured.captured_queries))
            statements = [" ".join(q["sql"].split()[:4]) for q in captured.captured_queries]
        out.append((size, int(statistics.median(queries)), statistics.median(seconds), size * 3))
    return out, statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    call_command("migrate", database="djmoney", verbosity=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.OPEN_EXCHANGE_RATES_URL = f"http://127.0.0.1:{server.server_port}/api"
    clean()
    reset_local_cache()
    try:
        print(f"convert(): {args.calls} calls per contender per round, median of {args.rounds} rounds")
        print("| contender | calls/s | × django-money (LocMem warm) |")
        print("|---|---|---|")
        for label, rate, ratio in bench_convert(args.calls, args.rounds):
            print(f"| {label} | {rate:,.0f} | {ratio:.2f}× |")
        print()
        print(f"refresh: rates_refresh(force=True), OXR response → 3 bases, median of {args.rounds} rounds")
        print("| currencies | rows stored | SQL queries | time |")
        print("|---|---|---|---|")
        table, statements = bench_refresh(args.rounds)
        for size, queries, seconds, rows in table:
            print(f"| {size} | {rows} | {queries} | {seconds * 1000:.1f} ms |")
        print("queries of the last refresh:", "; ".join(statements))
    finally:
        clean()
        server.shutdown()


if __name__ == "__main__":
    main()
