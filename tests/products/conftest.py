from __future__ import annotations

import pytest

from tests.products.woo_server import KEY, SECRET, WooShop


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """The local shops live on loopback: let the destination guard reach it (as an operator could)."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.PRODUCT_SYNC_PAGE_SIZE = 2
    settings.PRODUCT_SYNC_HTTP_TIMEOUT = 5


@pytest.fixture
def shop():
    server = WooShop()
    yield server
    server.close()


@pytest.fixture
def woo(acme, shop):
    from products.models import SourceConnection

    return SourceConnection.objects.create(
        tenant=acme,
        name="Acme Woo",
        source="woocommerce",
        base_url=shop.url,
        currency="EUR",
        credentials={"consumer_key": KEY, "consumer_secret": SECRET},
        webhook_secret="whsec-acme-woo-0123456789",
    )


def run_sync(connection, mode="delta", conflict_resolution=None):
    """Start a run and run it here, as the job would (the enqueued job stays in the outbox)."""
    from products.models import SyncRun
    from products.services import start_sync, sync_run

    run = start_sync(connection_id=connection.pk, mode=mode, conflict_resolution=conflict_resolution)
    sync_run(run_id=run.pk, connection_id=connection.pk)
    return SyncRun.objects.get(pk=run.pk)
