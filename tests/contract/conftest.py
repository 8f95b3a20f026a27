"""Adapters of the jobs port, for the contract suite: each param is one adapter on one database.

A new adapter (procrastinate on PostgreSQL) is one more param and one more branch in `_make`; the
suite in test_jobs_contract.py runs against it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.queue.embedded import EmbeddedQueue, EmbeddedQueueSettings
from ghsync.adapters.queue.port import JobQueue, ReconcileHandler, RetryPolicy, TaskHandler

# Fast retries for tests; no jitter so backoff is checkable to the millisecond.
TEST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=1.0, jitter=0.0)


@dataclass
class QueueHarness:
    """Builds adapter instances on one database; each instance has its own engine (like a process)."""

    adapter: str
    url: str
    engines: list[Engine] = field(default_factory=list)
    queues: list[JobQueue] = field(default_factory=list)

    def make(
        self,
        reconcile: ReconcileHandler,
        *,
        retry: RetryPolicy = TEST_RETRY,
        threads: int = 2,
        tasks: Mapping[str, TaskHandler] | None = None,
    ) -> JobQueue:
        engine = make_engine(self.url)
        self.engines.append(engine)
        queue: JobQueue
        if self.adapter == "embedded":
            queue = EmbeddedQueue(
                engine,
                reconcile,
                tasks=tasks,
                settings=EmbeddedQueueSettings(
                    threads=threads,
                    poll_interval=0.05,
                    heartbeat_interval=0.2,
                    stale_after=5.0,
                    sweep_interval=1.0,
                    stop_timeout=10.0,
                    retry=retry,
                ),
            )
        else:  # pragma: no cover - a new adapter must be added here
            raise AssertionError(f"unknown adapter {self.adapter}")
        self.queues.append(queue)
        return queue

    def close(self) -> None:
        for queue in self.queues:
            queue.stop(timeout=10)
        for engine in self.engines:
            engine.dispose()


@pytest.fixture(
    params=[
        "embedded-sqlite",
        pytest.param("embedded-postgresql", marks=pytest.mark.postgres),
    ]
)
def queues(request: pytest.FixtureRequest) -> Iterator[QueueHarness]:
    """A migrated database and a way to build adapter instances on it."""
    adapter, database = str(request.param).split("-", 1)
    url = str(request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url"))
    setup = make_engine(url)
    migrate.upgrade(setup)
    setup.dispose()
    harness = QueueHarness(adapter=adapter, url=url)
    try:
        yield harness
    finally:
        harness.close()
