"""The sitemaps storage on S3 (django-storages over boto3) against moto's server on loopback."""

from __future__ import annotations

import gzip

import boto3
import pytest
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from seo.services import generate_sitemaps
from tests.seo.helpers import add_products, entries, validate_index, validate_urlset

pytestmark = pytest.mark.django_db
BUCKET = "broxiva-sitemaps"


@pytest.fixture
def s3(settings):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {"aws_access_key_id": "AKIATESTSITEMAPS", "aws_secret_access_key": "test-secret-sitemaps"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1", **credentials)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    settings.STORAGES = {
        **settings.STORAGES,
        # The production entry of broxiva/settings.py, pointed at the local server.
        "sitemaps": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET, "region_name": "eu-west-1", "endpoint_url": endpoint,
                "access_key": credentials["aws_access_key_id"], "secret_key": credentials["aws_secret_access_key"],
                "default_acl": None, "querystring_auth": False, "file_overwrite": True,
            },
        },
    }
    yield client
    server.stop()


def keys(client) -> list[str]:
    return sorted(obj["Key"] for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_it_stores_the_sitemaps_in_s3_and_serves_them_from_there(client, s3, acme):
    add_products(acme, ["anvil", "salt&pepper"])
    first = generate_sitemaps(tenant_id=acme.pk)
    prefix = f"tenant-{acme.pk}/{first.pk}"
    assert keys(s3) == [f"{prefix}/products-en-1.xml.gz", f"{prefix}/sitemap.xml"]
    body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/products-en-1.xml.gz")["Body"].read()
    doc = validate_urlset(gzip.decompress(body))
    assert "https://acme.broxiva.com/en/products/salt&pepper" in entries(doc)
    assert storages["sitemaps"].__class__.__name__ == "S3Storage"

    response = client.get("/sitemap.xml", HTTP_HOST="acme.broxiva.com")
    assert response.status_code == 200
    validate_index(b"".join(response.streaming_content))
    served = client.get(f"/sitemaps/{first.pk}/products-en-1.xml.gz", HTTP_HOST="acme.broxiva.com")
    assert gzip.decompress(b"".join(served.streaming_content)) == gzip.decompress(body)

    second = generate_sitemaps(tenant_id=acme.pk)  # the older generation's objects are removed
    prefix = f"tenant-{acme.pk}/{second.pk}"
    assert keys(s3) == [f"{prefix}/products-en-1.xml.gz", f"{prefix}/sitemap.xml"]
