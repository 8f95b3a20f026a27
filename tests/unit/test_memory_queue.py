"""The in-memory queue on a fake clock: what unit tests of services get from it, without sleeping.

Its behaviour as a jobs adapter is proven by tests/contract/test_jobs_contract.py; this file checks
only that time is the injected clock's, so delays, backoff and periods are deterministic in unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ghsync.adapters.queue.memory import InMemoryJobStore, InMemoryQueue
from ghsync.ports.jobs import RECONCILE_TASK, RetryLater, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_delays_and_backoff_follow_the_injected_clock() -> None:
    clock = FakeClock()
    attempts: list[datetime] = []

    def flaky(args: Mapping[str, Any]) -> None:
        attempts.append(clock.now)
        if len(attempts) == 1:
            raise RuntimeError("transient")

    queue = InMemoryQueue(retry=RetryPolicy(max_attempts=3, base_delay=10, jitter=0), clock=clock)
    queue.register(RECONCILE_TASK, flaky)
    queue.request_reconcile("p1", delay=30)
    assert queue.run_until_idle() == 0
    clock.advance(30)
    assert queue.run_until_idle() == 1  # fails: retried 10 s later
    clock.advance(9.9)
    assert queue.run_until_idle() == 0
    clock.advance(0.1)
    assert queue.run_until_idle() == 1
    assert attempts == [
        datetime(2026, 12, 1, 8, 0, 30, tzinfo=UTC),
        datetime(2026, 12, 1, 8, 0, 40, tzinfo=UTC),
    ]
    assert queue.counts()["succeeded"] == 1


def test_retry_later_waits_for_its_time_on_the_injected_clock() -> None:
    clock = FakeClock()
    runs: list[datetime] = []

    def limited(args: Mapping[str, Any]) -> None:
        runs.append(clock.now)
        if len(runs) == 1:
            raise RetryLater(clock.now + timedelta(minutes=5), "secondary rate limit")

    queue = InMemoryQueue(retry=RetryPolicy(max_attempts=1), clock=clock)
    queue.register(RECONCILE_TASK, limited)
    queue.request_reconcile("p1")
    assert queue.run_until_idle() == 1
    queue.request_reconcile("p1")  # a webhook meanwhile: joins the job, does not cut the wait short
    clock.advance(299)
    assert queue.run_until_idle() == 0
    clock.advance(1)
    assert queue.run_until_idle() == 1
    [job] = queue.jobs()
    assert (job.status, job.attempts) == ("succeeded", 1)


def test_periods_are_claimed_once_per_store_on_the_injected_clock() -> None:
    clock = FakeClock()
    store = InMemoryJobStore()
    ran: list[datetime] = []
    first, second = InMemoryQueue(store, clock=clock), InMemoryQueue(store, clock=clock)
    for queue in (first, second):
        queue.periodic("poll", 60, ran.append)

    assert (first.claim_periods(), second.claim_periods()) == (1, 0)  # the second "process" sees the claim
    assert first.claim_periods() == 0  # same period
    assert second.run_until_idle() == 1  # any worker may run the period's job
    clock.advance(59)
    assert first.claim_periods() + second.claim_periods() == 0
    clock.advance(1)
    assert (second.claim_periods(), first.claim_periods()) == (1, 0)
    assert first.run_until_idle() == 1
    assert ran == [datetime(2026, 12, 1, 8, 0, tzinfo=UTC), datetime(2026, 12, 1, 8, 1, tzinfo=UTC)]
