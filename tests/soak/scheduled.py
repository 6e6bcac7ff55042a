"""The soak's scheduled-kind jobs: exchange rates, catalogue syncs and sitemaps, with their servers.

A few of each, as a marketplace has few of them beside its flood of messages: ``fx-refresh``
jobs against a local ECB feed (``ok``), Fixer answering its permanent error 101 (``failing``,
failed at once) and Open Exchange Rates answering 429 with an hour's Retry-After (``deferred``);
``product-sync`` full runs against a local WooCommerce shop (``ok``, three pages each), with a
revoked secret (``failing``: 401, failed at once) and against a shop that always answers 429
(``deferred``); ``sitemap-generation`` for tenants of their own (``ok``) and for a tenant that
does not exist (``failing``). Each is accounted for from where it keeps its outcome: the sync's
run row and the generation's rows in PostgreSQL; an exchange-rate job keeps its outcome only as
its job (the rates are shared by every job of a base), so it is read from the job in Redis, which
the outbox put back if the failover lost it.
"""

from __future__ import annotations

import collections
from typing import Any

from django.db.models import Count
from rq.job import JobStatus

from broxiva.queues import enqueue, get_queue
from tests.fx import feeds
from tests.products.woo_server import KEY, SECRET, WooShop, woo_product

ECB_PATH = "/ecb/eurofxref-daily.xml"
FIXER_KEY = "fixer-soak-access-key-0123456789"
OXR_APP_ID = "oxr-soak-app-id-0123456789"
PRODUCTS_PER_SHOP = 6  # three pages of PRODUCT_SYNC_PAGE_SIZE=2: a kill can land between pages

# Sub-kinds per job type, in turn: so few jobs of each need their exact mix, not a weighted draw.
CYCLES = {
    "fx": ["ok", "failing", "ok", "deferred"],
    "product": ["ok", "failing", "ok", "deferred", "ok", "failing", "ok", "ok"],
    "sitemap": ["ok", "ok", "ok", "failing", "ok", "ok", "ok", "ok"],
}
FX_PROVIDER = {"ok": "ecb", "failing": "fixer", "deferred": "openexchangerates"}
BASES = ["USD", "EUR", "GBP", "CHF", "JPY", "CAD"]
WANTED = {"ok": "finished", "failing": "failed", "deferred": "deferred"}  # each sub-kind's outcome

# The queues' soak settings (merged into the soak's QUEUE_OVERRIDES): fast retries, short leases.
OVERRIDES = {
    "fx-refresh": {"backoff_base": 1, "max_delay": 2, "timeout": 20},
    "product-sync": {"backoff_base": 1, "max_delay": 2, "timeout": 20},
    "sitemap-generation": {"backoff_base": 1, "max_delay": 2, "timeout": 20},
}


class ThrottledShop(WooShop):
    """A WooCommerce shop over its rate limit for the next hour, whatever is asked."""

    def answer(self, handler) -> tuple[int, dict[str, str], Any]:
        self.requests.append({"path": handler.path})
        return 429, {"Retry-After": "3600"}, {"code": "too_many_requests", "message": "Slow down", "data": {}}


class ScheduledWork:
    """Servers, rows and accounting of the soak's fx-refresh, product-sync and sitemap jobs."""

    def __init__(self) -> None:
        from pytest_httpserver import HTTPServer

        self.rates = HTTPServer(threaded=True)
        self.rates.start()
        self.rates.expect_request(ECB_PATH).respond_with_data(feeds.ecb_xml(), content_type="text/xml")
        self.rates.expect_request("/fixer/latest").respond_with_data(feeds.FIXER_101,
                                                                     content_type="application/json")
        self.rates.expect_request("/oxr/latest.json").respond_with_data(
            '{"error": true, "status": 429, "message": "too_many_requests"}', status=429,
            headers={"Retry-After": "3600"}, content_type="application/json")
        self.shop, self.throttled = WooShop(), ThrottledShop()
        self.shop.add(*(woo_product(i) for i in range(1, PRODUCTS_PER_SHOP + 1)))
        self.fx_jobs: dict[str, str] = {}  # job id -> kind
        self.runs: dict[int, str] = {}  # sync run id -> kind
        self.sitemaps: dict[str, str] = {}  # job id -> kind
        self.turns: dict[str, int] = collections.Counter()

    def env(self) -> dict[str, str]:
        """The workers' settings for these servers."""
        return {
            "FX_ECB_URL": self.rates.url_for(ECB_PATH), "FIXER_URL": self.rates.url_for("/fixer"),
            "OPEN_EXCHANGE_RATES_URL": self.rates.url_for("/oxr"), "FIXER_API_KEY": FIXER_KEY,
            "OPEN_EXCHANGE_RATES_APP_ID": OXR_APP_ID, "FX_PROVIDER_RETRIES": "0", "FX_PROVIDER_RETRY_DELAY": "0",
            "FX_HTTP_TIMEOUT": "5", "FX_REFRESH_DEADLINE": "8",  # under the soak's 20 s fx-refresh timeout
            "PRODUCT_SYNC_PAGE_SIZE": "2", "PRODUCT_SYNC_HTTP_TIMEOUT": "5",
        }

    def close(self) -> None:
        self.rates.clear()
        if self.rates.is_running():
            self.rates.stop()
        self.shop.close()
        self.throttled.close()

    # --- enqueueing (inside the caller's transaction: through the outbox) ------------------------

    def enqueue(self, kind: str, i: int, tenant) -> str:
        """Enqueue the plan's job ``i`` of ``kind`` (fx, product, sitemap); return its sub-kind."""
        cycle = CYCLES[kind]
        sub = cycle[self.turns[kind] % len(cycle)]
        self.turns[kind] += 1
        if kind == "fx":
            job_id = enqueue("fx-refresh", "fx.jobs.rates_refresh_job", base_currency=BASES[i % len(BASES)],
                             provider=FX_PROVIDER[sub], force_refresh=True)
            self.fx_jobs[job_id] = sub
        elif kind == "product":
            from products.models import SourceConnection
            from products.services import start_sync

            shop = self.throttled if sub == "deferred" else self.shop
            secret = "cs_revoked_secret_0123456789" if sub == "failing" else SECRET
            connection = SourceConnection.objects.create(
                tenant=tenant, name=f"Soak shop {i}", source="woocommerce", base_url=shop.url, currency="EUR",
                credentials={"consumer_key": KEY, "consumer_secret": secret})
            self.runs[start_sync(connection_id=connection.pk, mode="full").pk] = sub
        else:
            from broxiva.models import Tenant
            from seo.jobs import request_generation
            from tests.seo.helpers import add_products

            if sub == "ok":
                owner = Tenant.objects.create(slug=f"soak-sitemap-{i}", name=f"Sitemap tenant {i}")
                add_products(owner, [f"item-{i}-{n}" for n in range(3)])
                tenant_id = owner.pk
            else:
                tenant_id = 900_000 + i  # no such tenant: refused at once
            self.sitemaps[request_generation(tenant_id=tenant_id)] = sub
        return sub

    # --- progress and accounting -----------------------------------------------------------------

    def _fx_outcomes(self) -> dict[str, str]:
        """Each fx job's outcome: finished, failed, deferred (scheduled after a 429) or pending."""
        queue, outcomes = get_queue("fx-refresh"), {}
        for job_id in self.fx_jobs:
            job = queue.fetch_job(job_id)
            status = job.get_status() if job is not None else None
            if status == JobStatus.SCHEDULED and job.meta.get("broxiva_deferrals"):
                outcomes[job_id] = "deferred"
            elif status in (JobStatus.FINISHED, JobStatus.FAILED):
                outcomes[job_id] = str(status.value)
            else:
                outcomes[job_id] = "pending" if job is not None else "missing"
        return outcomes

    def _run_outcomes(self) -> dict[int, str]:
        from products.models import SyncRun

        outcomes = {}
        for pk, status in SyncRun.objects.filter(pk__in=self.runs).values_list("pk", "status"):
            if status in ("succeeded", "failed"):
                outcomes[pk] = "finished" if status == "succeeded" else "failed"
            else:  # the throttled shop's run stays open, its job scheduled an hour out
                outcomes[pk] = "deferred" if self.runs[pk] == "deferred" else "pending"
        return outcomes

    def _sitemap_outcomes(self) -> dict[str, str]:
        """Per job: finished (a generation succeeded or was skipped for a running one), failed, pending.

        A job killed mid-generation leaves a row its retry marks ``failed`` (abandoned) before it
        writes its own; a job refused at once (no such tenant) leaves no row: its job says so.
        """
        from seo.models import SitemapGeneration

        rows = collections.defaultdict(set)
        for job_id, status in SitemapGeneration.objects.filter(job_id__in=self.sitemaps).values_list("job_id",
                                                                                                       "status"):
            rows[job_id].add(status)
        queue, outcomes = get_queue("sitemap-generation"), {}
        for job_id in self.sitemaps:
            if rows[job_id] & {"succeeded", "skipped"}:
                outcomes[job_id] = "finished"
                continue
            job = queue.fetch_job(job_id)
            outcomes[job_id] = "failed" if job is not None and job.get_status() == JobStatus.FAILED else "pending"
        return outcomes

    def outstanding(self) -> int:
        """Jobs still to reach an outcome (the drain waits for none)."""
        outcomes = [*self._fx_outcomes().values(), *self._run_outcomes().values(), *self._sitemap_outcomes().values()]
        return sum(1 for outcome in outcomes if outcome in ("pending", "missing"))

    def account(self, row, problems: list[str], notes: list[str]) -> None:
        """Add a table row per job type (``row(type, enqueued, finished, failed, deferred, unknown,
        missing)``) and what went wrong to ``problems``."""
        from fx.models import ExchangeRate
        from products.models import Product, SyncRun
        from seo.models import SitemapGeneration

        def tally(kind: str, planned: dict, outcomes: dict) -> None:
            by = collections.Counter(outcomes.values())
            row(kind, len(planned), by["finished"], by["failed"], by["deferred"], 0, by["pending"] + by["missing"])
            for key, sub in planned.items():
                outcome = outcomes.get(key, "missing")
                if outcome != WANTED[sub]:
                    problems.append(f"{kind} {key} ({sub}) ended {outcome}, expected {WANTED[sub]}")

        tally("fx-refresh", self.fx_jobs, self._fx_outcomes())
        tally("product-sync", self.runs, self._run_outcomes())
        tally("sitemap", self.sitemaps, self._sitemap_outcomes())

        # Exchange rates: every ECB job stored or found its rates; no rate twice (the constraint's key).
        if self.fx_jobs and not ExchangeRate.objects.filter(provider="ecb").exists():
            problems.append("no ECB rate stored")
        if ExchangeRate.objects.exclude(provider="ecb").exists():
            problems.append("a rate stored from a provider that only failed or deferred")
        if ExchangeRate.objects.values("provider", "base_currency", "quote_currency", "as_of").annotate(
                n=Count("id")).filter(n__gt=1).exists():
            problems.append("an exchange rate stored twice")
        # Catalogue: each succeeded run holds the whole shop, once; a killed run resumed, not restarted.
        for run in SyncRun.objects.filter(pk__in=self.runs, status="succeeded"):
            held = Product.objects.filter(connection_id=run.connection_id).count()
            if held != PRODUCTS_PER_SHOP:
                problems.append(f"sync run {run.pk} succeeded holding {held} products, not {PRODUCTS_PER_SHOP}")
        if Product.objects.values("connection", "external_id").annotate(n=Count("id")).filter(n__gt=1).exists():
            problems.append("a product stored twice for one connection")
        resumed = SyncRun.objects.filter(pk__in=self.runs, jobs__gt=1, status="succeeded").count()
        notes.append(f"sync runs finished by more than one job execution (resumed after a kill or a failover): "
                     f"{resumed}")
        abandoned = SitemapGeneration.objects.filter(job_id__in=self.sitemaps, error__startswith="abandoned").count()
        notes.append(f"sitemap generations abandoned by a killed worker and closed by the retry: {abandoned}")

