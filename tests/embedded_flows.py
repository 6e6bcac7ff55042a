"""Run every worker's main flow on the embedded default (SQLite, no keys), in one process.

Started by ``tests/test_embedded_default.py`` with ``DATABASE_URL`` pointing at an empty SQLite
file; the local servers it talks to are the test's (loopback, passed in the environment). Prints
one JSON object of what each flow ended with.
"""

from __future__ import annotations

import json
import os
import sys

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402


def run_jobs() -> None:
    """Work every queue until empty, in this process (a burst worker of the project's class)."""
    from broxiva.queues import PRIORITY_ORDER, get_queue
    from broxiva.worker import BroxivaSimpleWorker

    queues = [get_queue(name) for name in PRIORITY_ORDER]
    BroxivaSimpleWorker(queues, connection=queues[0].connection).work(burst=True, with_scheduler=False)


def main() -> dict[str, object]:
    from broxiva.models import Tenant

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(slug="demo", name="Demo", default_locale="en", enabled_locales=["en", "fr"],
                                   contact_email="ops@demo.test")

    from notifications.models import OutboundEmail, WebhookDelivery, WebhookEndpoint
    from notifications.services import publish_event, queue_email
    from products.models import Product, SourceConnection, SyncRun
    from products.services import start_sync
    from translations.models import Translation

    with transaction.atomic():
        email_id = queue_email(to="buyer@demo.test", subject="Hello", text="Plain text", html="<p>Hi</p>")
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, url=os.environ["EMBEDDED_RECEIVER_URL"])
    with transaction.atomic():
        publish_event(tenant_id=tenant.id, event_type="order.created", payload={"id": 1})
    connection = SourceConnection.objects.create(
        tenant=tenant, source="custom", base_url=os.environ["EMBEDDED_FEED_URL"], currency="EUR"
    )
    run = start_sync(connection_id=connection.id, mode="full")
    for _ in range(3):  # the sync hands text to translations, whose jobs run on the next pass
        run_jobs()

    run.refresh_from_db()

    # Domains: a TXT record on the test's local DNS server (DNS_NAMESERVERS) proves the domain.
    from django.conf import settings

    from domains.models import TenantDomain
    from domains.services import add_domain, expected_record
    from tests.domains.dns_server import DnsServer

    domain = add_domain(tenant_id=tenant.id, domain="Shop.Demo.test.", method="dns_txt")
    record = expected_record(domain)
    with DnsServer() as nameserver:  # an authoritative server on loopback, in this process
        settings.DNS_NAMESERVERS = [nameserver.address]
        nameserver.set(record["name"], "TXT", [record["value"]])
        run_jobs()
    domain.refresh_from_db()

    # Sitemaps: the French title published by a reviewer, then a generation on the filesystem
    # storage (var/sitemaps) through the job.
    from django.contrib.auth import get_user_model
    from django.core.files.storage import storages

    from seo.jobs import request_generation
    from seo.models import SitemapGeneration
    from translations.services import approve, publish

    staff = get_user_model().objects.create_superuser("reviewer", "reviewer@demo.test", "x")
    title_fr = Translation.objects.get(field_name="title", target_locale="fr")
    publish(approve(title_fr.pk, user=staff).pk, user=staff)
    request_generation(tenant_id=tenant.id)
    run_jobs()
    generation = SitemapGeneration.objects.get(tenant=tenant)
    sitemaps = storages["sitemaps"]

    return {
        "domain": (domain.domain, domain.status, TenantDomain.objects.filter(status="verified").count()),
        "sitemaps": (generation.status, generation.url_count,
                     all(sitemaps.exists(path) for path in [f["path"] for f in generation.files]
                         + list(generation.index_files))),
        "sitemap_location": getattr(sitemaps, "location", ""),
        "email": OutboundEmail.objects.get(pk=email_id).status,
        "webhook": sorted(
            WebhookDelivery.objects.filter(endpoint=endpoint).values_list("message__event_type", "status")),
        "emails": sorted(OutboundEmail.objects.values_list("subject", "status")),
        "sync": run.status,
        "products": list(Product.objects.values_list("title", flat=True)),
        "translations": sorted(
            (t.field_name, t.target_locale, t.status, t.provider) for t in Translation.objects.all()
        ),
        "translated_sample": Translation.objects.filter(field_name="title").values_list(
            "translated_text", flat=True).first(),
        "run_error": SyncRun.objects.get(pk=run.pk).error,
    }


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
