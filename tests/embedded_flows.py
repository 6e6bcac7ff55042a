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
    return {
        "email": OutboundEmail.objects.get(pk=email_id).status,
        "webhook": list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)),
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
