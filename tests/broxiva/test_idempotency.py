from __future__ import annotations

import pytest

from broxiva.connections import get_redis
from broxiva.idempotency import claim, complete, idempotency_key, idempotent, release, try_acquire_lock
from tests.broxiva.coord_procs import run_processes
from tests.workers import wait_for

EVENT = "webhook:shopify:evt_123"
REDIS_KEY = "idempotency:webhook:shopify:evt_123"


def _claim(index: int) -> tuple[bool, str]:
    result = try_acquire_lock(EVENT)
    return result.acquired, result.state


def _claim_many(index: int, count: int) -> list[int]:
    """Claim events 0..count-1 in order; return the ones this process acquired."""
    return [n for n in range(count) if try_acquire_lock(("webhook", "shopify", f"evt_{n}")).acquired]


class ConcurrentClaimTests:
    def test_exactly_one_of_50_concurrent_processes_acquires(self):
        outcomes = run_processes(_claim, 50)
        assert sum(acquired for acquired, _ in outcomes) == 1
        assert sorted(state for _, state in outcomes) == ["new"] + ["processing"] * 49

    def test_exactly_one_process_acquires_each_of_many_contended_keys(self):
        # One key gives a race a single chance; 2000 keys claimed in the same order by 10
        # processes give it thousands: a check-then-set claim (GET, then SET) fails this every time.
        count = 2000
        acquired = [n for per_process in run_processes(_claim_many, 10, count) for n in per_process]
        assert sorted(acquired) == list(range(count))

    def test_after_release_it_can_be_acquired_again_and_after_complete_never(self):
        first = try_acquire_lock(EVENT)
        assert first.acquired and first.state == "new" and first.key == REDIS_KEY
        assert release(EVENT, token=first.token) is True
        outcomes = run_processes(_claim, 10)
        assert sum(acquired for acquired, _ in outcomes) == 1

        assert complete(EVENT) is True
        outcomes = run_processes(_claim, 10)
        assert outcomes == [(False, "done")] * 10
        assert 86_000 < get_redis().ttl(REDIS_KEY) <= 86_400


class ClaimLifecycleTests:
    def test_a_processing_claim_expires_sooner_than_the_done_ttl(self, settings):
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        assert try_acquire_lock(EVENT).acquired
        assert 0 < get_redis().pttl(REDIS_KEY) <= 1000
        assert try_acquire_lock(EVENT).state == "processing"
        wait_for(lambda: try_acquire_lock(EVENT).acquired, timeout=5, what="stale claim to expire")

    def test_the_default_processing_expiry_is_at_most_an_hour(self):
        try_acquire_lock(EVENT)
        assert 0 < get_redis().ttl(REDIS_KEY) <= 3600

    def test_complete_keeps_the_ttl_the_key_was_claimed_with(self):
        result = try_acquire_lock(EVENT, ttl_seconds=600)
        assert complete(EVENT, token=result.token)
        assert 590 < get_redis().ttl(REDIS_KEY) <= 600
        assert try_acquire_lock(EVENT).state == "done"

    def test_release_does_not_undo_a_completed_key(self):
        try_acquire_lock(EVENT)
        complete(EVENT)
        assert release(EVENT) is False
        assert try_acquire_lock(EVENT).state == "done"

    def test_a_stale_processor_cannot_release_or_complete_its_successors_claim(self, settings):
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        stale = try_acquire_lock(EVENT)
        wait_for(lambda: not get_redis().exists(REDIS_KEY), timeout=5, what="claim expiry")
        current = try_acquire_lock(EVENT)
        assert current.acquired
        assert release(EVENT, token=stale.token) is False
        assert complete(EVENT, token=stale.token) is False
        assert try_acquire_lock(EVENT).state == "processing"
        assert complete(EVENT, token=current.token) is True

    def test_a_bare_release_or_complete_after_the_claim_expired_leaves_the_successors_claim(self, settings):
        # The issue's own API: try_acquire_lock, then release(key) / complete(key) without a token.
        # The claim expired while "processing" and another process took over: this slow processor
        # must neither free nor finish the newcomer's claim.
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        assert try_acquire_lock(EVENT).acquired
        wait_for(lambda: not get_redis().exists(REDIS_KEY), timeout=5, what="claim expiry")
        assert run_processes(_claim, 1) == [(True, "new")]
        successor = get_redis().get(REDIS_KEY)
        assert release(EVENT) is False
        assert complete(EVENT) is False
        assert get_redis().get(REDIS_KEY) == successor

    def test_a_bare_release_and_complete_still_act_on_the_callers_own_claim(self):
        assert try_acquire_lock(EVENT).acquired
        assert release(EVENT) is True
        assert try_acquire_lock(EVENT).acquired
        assert complete(EVENT) is True
        assert try_acquire_lock(EVENT).state == "done"

    def test_a_processor_that_finishes_after_its_claim_expired_still_marks_the_key_done(self, settings):
        # Nobody took the expired claim over: the work is done, so a replay must not run it again.
        settings.IDEMPOTENCY_PROCESSING_TTL = 1
        with claim(EVENT, ttl_seconds=600) as result:
            assert result.acquired
            wait_for(lambda: not get_redis().exists(REDIS_KEY), timeout=5, what="claim expiry")
        assert try_acquire_lock(EVENT).state == "done"
        assert 590 < get_redis().ttl(REDIS_KEY) <= 600

    def test_tenants_have_separate_keys(self, acme, globex):
        assert try_acquire_lock(EVENT, tenant=acme).key == "idempotency:acme:webhook:shopify:evt_123"
        assert try_acquire_lock(EVENT, tenant=globex).acquired
        assert try_acquire_lock(EVENT).acquired

    @pytest.mark.parametrize("key", ["", "webhook:shopify:", "webhook::x", "webhook:shopify:a b", "evt\n1", "a:*"])
    def test_it_refuses_a_bad_key(self, key):
        with pytest.raises(ValueError):
            try_acquire_lock(key)

    def test_a_forged_event_id_given_as_a_part_is_refused(self):
        for forged in ("x:y", "evt 1", "", "*"):
            with pytest.raises(ValueError):
                try_acquire_lock(("webhook", "shopify", forged))
        assert idempotency_key(("webhook", "shopify", "x-y")) == "idempotency:webhook:shopify:x-y"
        assert try_acquire_lock(("webhook", "shopify", "evt_123")).key == REDIS_KEY

    def test_it_fails_closed_when_redis_is_down(self, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/4"
        with pytest.raises(Exception, match="[Cc]onnect"):
            try_acquire_lock(EVENT)


class ClaimHelperTests:
    def test_it_completes_after_the_block(self):
        with claim(EVENT) as result:
            assert result.acquired
            assert try_acquire_lock(EVENT).state == "processing"
        assert try_acquire_lock(EVENT).state == "done"

    def test_it_releases_when_the_block_raises_so_a_retry_is_processed(self):
        with pytest.raises(RuntimeError):
            with claim(EVENT):
                raise RuntimeError("provider down")
        with claim(EVENT) as retry:
            assert retry.acquired

    def test_a_duplicate_sees_the_state_and_leaves_the_key_alone(self):
        first = try_acquire_lock(EVENT)
        with claim(EVENT) as duplicate:
            assert not duplicate.acquired and duplicate.state == "processing"
        assert get_redis().get(REDIS_KEY).decode().endswith(first.token)

    def test_the_decorator_runs_once_per_key_and_again_after_a_failure(self):
        calls: list[str] = []

        @idempotent(lambda event_id, fail=False: f"webhook:shopify:{event_id}")
        def handle(event_id: str, fail: bool = False) -> str:
            calls.append(event_id)
            if fail:
                raise RuntimeError("boom")
            return f"handled {event_id}"

        with pytest.raises(RuntimeError):
            handle("e1", fail=True)
        assert handle("e1") == "handled e1"
        assert handle("e1") is None
        assert handle("e2") == "handled e2"
        assert calls == ["e1", "e1", "e2"]
