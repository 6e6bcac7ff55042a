from __future__ import annotations

import pickle
import threading
import time

import pytest
import redis

from broxiva.connections import get_redis
from broxiva.keys import build_key
from broxiva.locks import LockNotAcquired, acquire_lock, extend_lock, lock_key, release_lock, with_lock
from tests.broxiva.coord_procs import run_processes
from tests.workers import wait_for

COUNTER = build_key("product", "counter", "lock-test")
PROCESSES = 8
INCREMENTS = 250


def _increment(client) -> None:
    # Deliberately non-atomic read-modify-write: only mutual exclusion keeps it correct.
    value = int(client.get(COUNTER) or 0)
    client.set(COUNTER, value + 1)


def _locked_increments(index: int) -> int:
    client = get_redis()
    for _ in range(INCREMENTS):
        with with_lock("test:counter"):  # the defaults: 30 s lease, 5 s wait
            _increment(client)
    return INCREMENTS


def _unlocked_increments(index: int) -> int:
    client = get_redis()
    for _ in range(INCREMENTS):
        _increment(client)
    return INCREMENTS


class ContentionTests:
    def test_it_serialises_increments_across_processes(self):
        run_processes(_locked_increments, PROCESSES)
        assert int(get_redis().get(COUNTER)) == PROCESSES * INCREMENTS
        assert not get_redis().exists(lock_key("test:counter"))

    def test_without_the_lock_the_same_increments_lose_updates(self):
        run_processes(_unlocked_increments, PROCESSES)
        assert int(get_redis().get(COUNTER)) < PROCESSES * INCREMENTS


class AcquireReleaseTests:
    def test_it_stores_the_holders_token_under_lock(self):
        result = acquire_lock("fx:refresh:USD", ttl_seconds=30)
        assert result.acquired and result.lock_id
        assert result.key == "lock:fx:refresh:USD"
        assert get_redis().get("lock:fx:refresh:USD").decode() == result.lock_id
        assert 29_000 < get_redis().pttl("lock:fx:refresh:USD") <= 30_000

    def test_a_second_caller_does_not_acquire_a_held_lock(self):
        first = acquire_lock("res")
        second = acquire_lock("res")
        assert first.acquired and not second.acquired
        assert second.lock_id is None

    def test_a_wrong_token_does_not_release(self):
        held = acquire_lock("res")
        assert release_lock("res", "not-the-token") is False
        assert release_lock("res", None) is False
        assert not acquire_lock("res").acquired
        assert release_lock("res", held.lock_id) is True
        assert release_lock("res", held.lock_id) is False  # already released
        assert acquire_lock("res").acquired

    def test_an_expired_lock_can_be_taken_by_another_and_the_old_token_cannot_release_it(self):
        old = acquire_lock("res", ttl_seconds=0.2)
        wait_for(lambda: not get_redis().exists(old.key), timeout=5, what="lock expiry")
        new = acquire_lock("res")
        assert new.acquired
        assert release_lock("res", old.lock_id) is False
        assert extend_lock("res", old.lock_id, 30) is False
        assert get_redis().get(new.key).decode() == new.lock_id

    def test_a_waiter_gets_the_lock_within_its_wait_after_release(self):
        held = acquire_lock("res")
        threading.Timer(0.3, release_lock, args=("res", held.lock_id)).start()
        started = time.monotonic()
        waiter = acquire_lock("res", wait_time_ms=3000)
        elapsed = time.monotonic() - started
        assert waiter.acquired
        assert 0.25 <= elapsed < 3.0

    def test_a_waiter_gives_up_after_its_wait(self):
        acquire_lock("res")
        started = time.monotonic()
        waiter = acquire_lock("res", wait_time_ms=300)
        assert not waiter.acquired
        assert time.monotonic() - started >= 0.25

    def test_wait_time_zero_returns_at_once(self):
        acquire_lock("res")
        started = time.monotonic()
        assert not acquire_lock("res", wait_time_ms=0).acquired
        assert time.monotonic() - started < 0.5

    def test_extend_resets_the_lease_for_the_holder_only(self):
        held = acquire_lock("res", ttl_seconds=5)
        assert extend_lock("res", held.lock_id, 60) is True
        assert get_redis().pttl(held.key) > 55_000
        assert extend_lock("res", "someone-else", 600) is False
        assert get_redis().pttl(held.key) <= 60_000

    def test_tenant_locks_are_separate(self, acme, globex):
        assert acquire_lock("sync", tenant=acme).key == "lock:acme:sync"
        assert acquire_lock("sync", tenant=globex).acquired

    @pytest.mark.parametrize("resource", ["", "a b", "a::b", "a:", "x\n", "*"])
    def test_it_refuses_a_bad_resource_name(self, resource):
        with pytest.raises(ValueError):
            acquire_lock(resource)

    @pytest.mark.parametrize("ttl_seconds", [0, -1, 0.0001, float("nan"), float("inf")])
    def test_it_refuses_a_lock_without_a_usable_expiry(self, ttl_seconds):
        with pytest.raises(ValueError, match="ttl_seconds"):
            acquire_lock("res", ttl_seconds=ttl_seconds)
        held = acquire_lock("res")
        with pytest.raises(ValueError, match="ttl_seconds"):
            extend_lock("res", held.lock_id, ttl_seconds)


class OutageTests:
    @pytest.fixture(autouse=True)
    def redis_down(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/4"  # nothing listens there: connection refused

    def test_acquire_raises_the_connection_error_instead_of_reporting_a_busy_lock(self):
        with pytest.raises(redis.ConnectionError):
            acquire_lock("res", wait_time_ms=5000)

    def test_with_lock_raises_the_connection_error_not_lock_not_acquired(self):
        with pytest.raises(redis.ConnectionError):
            with with_lock("res"):
                pytest.fail("entered a lock that was never taken")


class WithLockTests:
    def test_it_holds_the_lock_for_the_block_and_releases_it(self):
        with with_lock("res") as held:
            assert get_redis().get(held.key).decode() == held.lock_id
        assert not get_redis().exists(held.key)

    def test_it_raises_when_the_lock_is_held_elsewhere(self):
        acquire_lock("res")
        with pytest.raises(LockNotAcquired) as info:
            with with_lock("res", wait_time_ms=50):
                pytest.fail("entered a held lock")
        assert info.value.resource == "res"

    def test_lock_not_acquired_survives_pickling(self):
        copy = pickle.loads(pickle.dumps(LockNotAcquired(("fx", "refresh"), 50)))  # noqa: S301 -- our own bytes
        assert isinstance(copy, LockNotAcquired) and (copy.resource, copy.wait_time_ms) == (("fx", "refresh"), 50)

    def test_it_releases_when_the_block_raises(self):
        with pytest.raises(RuntimeError):
            with with_lock("res"):
                raise RuntimeError("boom")
        assert acquire_lock("res").acquired

    def test_it_does_not_release_a_lock_it_lost(self):
        with with_lock("res", ttl_seconds=0.2) as held:
            wait_for(lambda: not get_redis().exists(held.key), timeout=5, what="lock expiry")
            thief = acquire_lock("res")
        assert get_redis().get(held.key).decode() == thief.lock_id

    def test_it_works_as_a_decorator_and_takes_a_fresh_lock_per_call(self):
        tokens = []

        @with_lock("res", wait_time_ms=0)
        def critical(x: int) -> int:
            tokens.append(get_redis().get(lock_key("res")))
            return x * 2

        assert critical(2) == 4
        assert critical(3) == 6
        assert len(set(tokens)) == 2
        assert not get_redis().exists(lock_key("res"))
        acquire_lock("res")
        with pytest.raises(LockNotAcquired):
            critical(4)

    def test_keep_alive_holds_the_lock_past_its_ttl(self):
        with with_lock("res", ttl_seconds=0.6, keep_alive=True) as held:
            time.sleep(1.5)
            assert get_redis().get(held.key).decode() == held.lock_id
            assert not acquire_lock("res").acquired
        assert not get_redis().exists(held.key)

    def test_without_keep_alive_the_same_section_loses_the_lock(self):
        with with_lock("res", ttl_seconds=0.6):
            time.sleep(1.5)
            assert acquire_lock("res").acquired
