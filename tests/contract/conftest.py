"""Adapters of the jobs port, for the contract suite: each param is one adapter (on one database).

A new adapter (procrastinate on PostgreSQL) is one more param and one more branch in `make`; the
suite in test_jobs_contract.py runs against it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.queue.embedded import EmbeddedQueue, EmbeddedQueueSettings
from ghsync.adapters.queue.memory import InMemoryJobStore, InMemoryQueue
from ghsync.ports.jobs import RECONCILE_TASK, JobQueue, RetryPolicy, TaskHandler

# Fast retries for tests; no jitter so backoff is checkable to the millisecond.
TEST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=1.0, jitter=0.0)

ReconcileBody = Callable[[str], None]


@dataclass
class QueueHarness:
    """Builds adapter instances on one backing store; each instance is like one process.

    Database adapters: each instance has its own engine. Memory: instances share one InMemoryJobStore.
    `url` is a migrated database for the test's own use (the memory adapter itself never touches it).
    """

    adapter: str
    url: str
    engines: list[Engine] = field(default_factory=list)
    queues: list[JobQueue] = field(default_factory=list)
    memory_store: InMemoryJobStore = field(default_factory=InMemoryJobStore)

    @property
    def shares_a_database(self) -> bool:
        return self.adapter == "embedded"

    def make(
        self,
        reconcile: ReconcileBody | None = None,
        *,
        retry: RetryPolicy = TEST_RETRY,
        threads: int = 2,
        tasks: Mapping[str, TaskHandler] | None = None,
    ) -> JobQueue:
        queue: JobQueue
        if self.adapter == "embedded":
            engine = make_engine(self.url)
            self.engines.append(engine)
            queue = EmbeddedQueue(
                engine,
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
        elif self.adapter == "memory":
            queue = InMemoryQueue(self.memory_store, retry=retry, threads=threads, poll_interval=0.05)
        else:  # pragma: no cover - a new adapter must be added here
            raise AssertionError(f"unknown adapter {self.adapter}")
        if reconcile is not None:
            body = reconcile
            queue.register(RECONCILE_TASK, lambda args: body(str(args["project_id"])))
        for name, handler in (tasks or {}).items():
            queue.register(name, handler)
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
        "memory",
    ]
)
def queues(request: pytest.FixtureRequest) -> Iterator[QueueHarness]:
    """A migrated database and a way to build adapter instances on it (the memory adapter: on one store)."""
    adapter, _, database = str(request.param).partition("-")
    url = str(request.getfixturevalue("postgres_url" if database == "postgresql" else "sqlite_url"))
    setup = make_engine(url)
    migrate.upgrade(setup)
    setup.dispose()
    harness = QueueHarness(adapter=adapter, url=url)
    try:
        yield harness
    finally:
        harness.close()
