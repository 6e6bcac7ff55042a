"""Reading one chunk ahead in a thread (seo.services.ahead), and a generation that uses it."""

from __future__ import annotations

import threading

import pytest
from django.core.files.storage import storages
from django.db import transaction

from seo.services import catalogue
from seo.services.ahead import read_ahead
from seo.services.generate import generate_sitemaps
from tests.seo.helpers import add_products, entries, translate_products, urlsets


def _numbers(seen: list[str], stop: int | None = None, fail_at: int | None = None):
    def produce():
        n = 0
        while stop is None or n < stop:
            seen.append(threading.current_thread().name)
            if n == fail_at:
                raise ValueError(f"row {n} is broken")
            yield n
            n += 1

    return produce


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_reading_runs_in_a_thread_in_order():
    seen: list[str] = []
    assert list(read_ahead(_numbers(seen, stop=50))) == list(range(50))
    assert set(seen) == {"sitemap-read-ahead"}


@pytest.mark.django_db(transaction=True)
def test_an_error_while_reading_reaches_the_consumer_after_the_rows_before_it():
    got: list[int] = []
    with pytest.raises(ValueError, match="row 7 is broken"):
        for n in read_ahead(_numbers([], fail_at=7)):
            got.append(n)
    assert got == list(range(7))


@pytest.mark.django_db(transaction=True)
def test_a_consumer_that_stops_early_releases_the_reader():
    before = {t.ident for t in threading.enumerate()}
    ahead = read_ahead(_numbers([]))  # endless
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.name == "sitemap-read-ahead"]
    assert leftover == []


@pytest.mark.django_db
def test_inside_a_transaction_the_reading_stays_on_the_callers_connection():
    seen: list[str] = []
    with transaction.atomic():
        assert list(read_ahead(_numbers(seen, stop=3))) == [0, 1, 2]
    assert set(seen) == {threading.current_thread().name}


@pytest.mark.django_db(transaction=True)
def test_a_generation_reads_products_ahead_and_writes_what_it_would_have_written(
    acme, llm, publisher, settings, monkeypatch
):
    settings.SITEMAP_CHUNK_SIZE = 2  # several chunks for five products
    products = add_products(acme, ["a", "b", "c", "d", "e"])
    translate_products(acme, [products[1], products[4]], "fr", publisher)
    threads: list[str] = []
    published = catalogue._published

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return published(*args, **kwargs)

    monkeypatch.setattr(catalogue, "_published", spy)

    generation = generate_sitemaps(tenant_id=acme.pk, types=["products"])

    assert generation.status == "succeeded"
    assert threads and set(threads) == {"sitemap-read-ahead"}  # 3 chunks, all read in the thread
    by_file = {name: entries(doc) for name, doc in urlsets(storages["sitemaps"], generation).items()}
    host = f"https://{generation.host}"
    assert sorted(by_file["products-en-1.xml.gz"]) == [f"{host}/en/products/{h}" for h in "abcde"]
    assert sorted(by_file["products-fr-1.xml.gz"]) == [f"{host}/fr/products/{h}" for h in "be"]
