"""/sitemap.xml, its files, /robots.txt and the IndexNow key file, by Host."""

from __future__ import annotations

import gzip

import pytest

from seo.services import generate_sitemaps
from tests.seo.helpers import add_products, entries, validate_index, validate_urlset

pytestmark = pytest.mark.django_db


@pytest.fixture
def sitemaps(acme, globex):
    add_products(acme, ["anvil", "rocket"])
    add_products(globex, ["robot"])
    return generate_sitemaps(tenant_id=acme.pk), generate_sitemaps(tenant_id=globex.pk)


def test_it_serves_each_tenant_its_own_sitemap_by_host(client, sitemaps):
    acme_gen, globex_gen = sitemaps
    response = client.get("/sitemap.xml", HTTP_HOST="acme.broxiva.com")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/xml")
    index = validate_index(b"".join(response.streaming_content))
    locs = [loc.text for loc in index.iterfind("{*}sitemap/{*}loc")]
    assert locs == [f"https://acme.broxiva.com/sitemaps/{acme_gen.pk}/products-en-1.xml.gz"]

    other = client.get("/sitemap.xml", HTTP_HOST="globex.broxiva.com:443")
    body = b"".join(other.streaming_content)
    assert b"globex.broxiva.com/sitemaps/" in body and b"acme" not in body


def test_it_streams_a_sitemap_file_listed_in_the_index(client, sitemaps):
    acme_gen, globex_gen = sitemaps
    path = f"/sitemaps/{acme_gen.pk}/products-en-1.xml.gz"
    response = client.get(path, HTTP_HOST="acme.broxiva.com")
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    doc = validate_urlset(gzip.decompress(b"".join(response.streaming_content)))
    assert set(entries(doc)) == {"https://acme.broxiva.com/en/products/anvil", "https://acme.broxiva.com/en/products/rocket"}
    # Another tenant's host cannot read acme's files, nor a name that is not in the index.
    assert client.get(path, HTTP_HOST="globex.broxiva.com").status_code == 404
    assert client.get(f"/sitemaps/{acme_gen.pk}/nope-1.xml.gz", HTTP_HOST="acme.broxiva.com").status_code == 404


def test_it_redirects_to_public_storage_when_configured(client, settings, sitemaps):
    acme_gen, _ = sitemaps
    settings.SITEMAP_STORAGE_URL = "https://cdn.broxiva.test/sitemaps/"
    response = client.get(f"/sitemaps/{acme_gen.pk}/products-en-1.xml.gz", HTTP_HOST="acme.broxiva.com")
    assert response.status_code == 302
    assert response["Location"] == f"https://cdn.broxiva.test/sitemaps/tenant-{acme_gen.tenant_id}/{acme_gen.pk}/products-en-1.xml.gz"


def test_it_serves_robots_txt_per_host(client, sitemaps, acme):
    from domains.models import TenantDomain

    response = client.get("/robots.txt", HTTP_HOST="globex.broxiva.com")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert "Sitemap: https://globex.broxiva.com/sitemap.xml" in response.content.decode()

    TenantDomain.objects.create(tenant=acme, domain="shop.acme.test", token="t", status="verified")
    generate_sitemaps(tenant_id=acme.pk)
    for host in ("shop.acme.test", "acme.broxiva.com"):  # both hosts point at the canonical sitemap
        text = client.get("/robots.txt", HTTP_HOST=host).content.decode()
        assert "Sitemap: https://shop.acme.test/sitemap.xml" in text
    assert client.get("/sitemap.xml", HTTP_HOST="shop.acme.test").status_code == 200


def test_unknown_hosts_get_404(client, sitemaps, acme, globex):
    from domains.models import TenantDomain

    TenantDomain.objects.create(tenant=acme, domain="pending.acme.test", token="t", status="pending")
    globex.is_active = False
    globex.save()
    for host in ("evil.example", "pending.acme.test", "globex.broxiva.com", "a.b.broxiva.com", "testserver"):
        assert client.get("/sitemap.xml", HTTP_HOST=host).status_code == 404, host
        assert client.get("/robots.txt", HTTP_HOST=host).status_code == 404, host


def test_a_tenant_host_reaches_only_the_per_host_paths(client, sitemaps):
    # Every other path keeps Django's ALLOWED_HOSTS check: a tenant's host is refused there.
    assert client.get("/health/queues", HTTP_HOST="acme.broxiva.com").status_code == 400
    assert client.get("/admin/login/", HTTP_HOST="acme.broxiva.com").status_code == 400


def test_a_tenant_without_a_sitemap_yet_gets_404_and_a_robots_without_it(client, acme):
    assert client.get("/sitemap.xml", HTTP_HOST="acme.broxiva.com").status_code == 404
    text = client.get("/robots.txt", HTTP_HOST="acme.broxiva.com").content.decode()
    assert "User-agent: *" in text and "Sitemap:" not in text


def test_it_serves_the_indexnow_key_file_on_each_tenant_host(client, settings, acme, globex):
    settings.INDEXNOW_KEY = "0123456789abcdef0123456789abcdef"
    for host in ("acme.broxiva.com", "globex.broxiva.com"):
        response = client.get(f"/{settings.INDEXNOW_KEY}.txt", HTTP_HOST=host)
        assert response.status_code == 200 and response.content.decode() == settings.INDEXNOW_KEY
    assert client.get("/fedcba9876543210.txt", HTTP_HOST="acme.broxiva.com").status_code == 404
    assert client.get(f"/{settings.INDEXNOW_KEY}.txt", HTTP_HOST="evil.example").status_code == 404
    settings.INDEXNOW_KEY = ""
    assert client.get("/0123456789abcdef0123456789abcdef.txt", HTTP_HOST="acme.broxiva.com").status_code == 404
