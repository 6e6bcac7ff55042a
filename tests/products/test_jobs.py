"""The product-sync payload and the secrets' masking."""

from __future__ import annotations

import pytest

from broxiva.queues import InvalidPayload, enqueue, get_queue
from products.jobs import ProductSyncJobData, product_sync_job
from products.secrets import mask


def test_the_payload_is_the_seeds_in_snake_case_plus_the_connection():
    data = ProductSyncJobData(sync_id="12", tenant_id=3, connection_id=4, source="woocommerce", mode="full")
    assert data.model_dump() == {
        "sync_id": 12,
        "tenant_id": 3,
        "connection_id": 4,
        "source": "woocommerce",
        "mode": "full",
        "conflict_resolution": None,
        "webhook_data": None,
    }


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"source": "magento"}, "source"),
        ({"mode": "everything"}, "mode"),
        ({"conflict_resolution": "coin_toss"}, "conflict_resolution"),
        ({"credentials": {"access_token": "x"}}, "credentials"),
        ({"sync_id": None}, "sync_id"),
    ],
)
def test_a_bad_payload_is_refused_before_it_reaches_redis(changes, problem):
    fields = {"sync_id": 1, "tenant_id": 1, "connection_id": 1, "source": "shopify", "mode": "delta", **changes}
    with pytest.raises(InvalidPayload, match=problem):
        enqueue("product-sync", product_sync_job, **fields)
    assert get_queue("product-sync").count == 0


def test_mask_hides_every_form_of_a_connections_secrets():
    class Conn:
        credentials = {"consumer_key": "ck_abcdef123456", "consumer_secret": "cs_a/b+c=123456"}
        webhook_secret = "whsec_0123456789"

    text = (
        "failed ck_abcdef123456 cs_a%2Fb%2Bc%3D123456 Basic Y2tfYWJjZGVmMTIzNDU2OmNzX2EvYitjPTEyMzQ1Ng== "
        "whsec_0123456789"
    )
    assert mask(text, Conn()) == "failed *** *** Basic *** ***"
