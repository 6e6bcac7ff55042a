from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from broxiva.cache import delete, get_or_set, get_value, set_value
from broxiva.connections import get_redis
from broxiva.idempotency import try_acquire_lock
from broxiva.keys import build_key
from broxiva.locks import acquire_lock
from broxiva.ratelimit import RateLimiter

RATES = build_key("fx", "rates", "USD")


class Loader:
    def __init__(self, value):
        self.value = value
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.value


class GetOrSetTests:
    def test_it_loads_once_then_serves_the_cached_json(self):
        loader = Loader({"EUR": "0.92", "JPY": "151.3", "n": [1, 2]})
        assert get_or_set(RATES, loader) == loader.value
        assert get_or_set(RATES, loader) == loader.value
        assert loader.calls == 1
        assert get_redis().get(RATES) == b'{"EUR":"0.92","JPY":"151.3","n":[1,2]}'

    def test_it_takes_the_ttl_from_the_key_table(self, acme):
        get_or_set(RATES, Loader(1))
        assert 3590 < get_redis().ttl(RATES) <= 3600
        translation = build_key("translation", "fr", "abc123", tenant=acme)
        get_or_set(translation, Loader("Bonjour"))
        assert 86_390 < get_redis().ttl(translation) <= 86_400
        domain = build_key("domain", "verification", "shop.example")
        get_or_set(domain, Loader(True), category="domain")
        assert 290 < get_redis().ttl(domain) <= 300

    def test_a_caller_may_shorten_the_ttl(self):
        get_or_set(RATES, Loader(1), ttl_seconds=60)
        assert 50 < get_redis().ttl(RATES) <= 60

    def test_it_caches_none_like_any_value(self):
        loader = Loader(None)
        assert get_or_set(RATES, loader) is None
        assert get_or_set(RATES, loader) is None
        assert loader.calls == 1

    def test_a_loader_error_propagates_and_caches_nothing(self):
        def broken():
            raise RuntimeError("provider down")

        with pytest.raises(RuntimeError):
            get_or_set(RATES, broken)
        assert not get_redis().exists(RATES)

    def test_a_corrupt_value_is_reloaded(self):
        get_redis().set(RATES, b"\x80not json")
        assert get_or_set(RATES, Loader([1])) == [1]
        assert get_redis().get(RATES) == b"[1]"

    def test_it_refuses_keys_outside_the_table_or_the_category(self):
        for key in ("session:abc", "fx", "fx:a b", "rates:USD"):
            with pytest.raises(ValueError):
                get_or_set(key, Loader(1))
        with pytest.raises(ValueError):
            get_or_set(RATES, Loader(1), category="translation")

    def test_it_refuses_coordination_keys(self):
        # A lock, claim or limiter key is not a cache entry: deleting or overwriting one through
        # the cache would release a lock or a claim without its token.
        held = acquire_lock("res")
        claimed = try_acquire_lock("webhook:shopify:evt_1")
        limiter = RateLimiter("test:cache", 1, 60)
        limiter.acquire()
        for key in (held.key, claimed.key, limiter.key()):
            before = get_redis().get(key)
            with pytest.raises(ValueError):
                delete(key)
            with pytest.raises(ValueError):
                set_value(key, 1)
            with pytest.raises(ValueError):
                get_or_set(key, Loader(1))
            assert get_redis().get(key) == before

    @pytest.mark.parametrize("seconds", [1.5, 0, -1, True, "60"])
    def test_it_refuses_a_ttl_redis_cannot_take_before_loading(self, seconds):
        loader = Loader(1)
        with pytest.raises(ValueError):
            get_or_set(RATES, loader, ttl_seconds=seconds)
        with pytest.raises(ValueError):
            set_value(RATES, 1, ttl_seconds=seconds)
        assert loader.calls == 0
        assert not get_redis().exists(RATES)

    def test_it_refuses_values_json_cannot_hold(self):
        with pytest.raises(TypeError):
            set_value(RATES, {"EUR": Decimal("0.92")})
        assert not get_redis().exists(RATES)


class OutageTests:
    @pytest.fixture
    def redis_down(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/4"  # nothing listens there: connection refused

    def test_a_read_during_an_outage_falls_back_to_the_loader(self, redis_down, caplog):
        loader = Loader({"EUR": "0.92"})
        with caplog.at_level(logging.WARNING, logger="broxiva.cache"):
            assert get_or_set(RATES, loader) == {"EUR": "0.92"}
        assert loader.calls == 1
        assert "cache read failed" in caplog.text and RATES in caplog.text

    def test_get_and_set_degrade_instead_of_failing(self, redis_down):
        assert get_value(RATES, default="fallback") == "fallback"
        assert set_value(RATES, 1) is False


class ValueTests:
    def test_set_get_and_delete(self):
        assert set_value(RATES, {"a": 1}) is True
        assert get_value(RATES) == {"a": 1}
        assert delete(RATES) == 1
        assert get_value(RATES, default="gone") == "gone"
