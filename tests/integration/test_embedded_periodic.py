"""The embedded runner's period claims on a real database: they run each period once and don't pile up.

Once-per-deployment across instances is in the contract suite (tests/contract/test_jobs_contract.py);
this file checks what only the database adapter has: the `periodic_runs` rows, pruned by the sweep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine, session_factory
from ghsync.adapters.db.models import PeriodicRunRow
from ghsync.adapters.queue.embedded import EmbeddedQueue, EmbeddedQueueSettings
from ghsync.ports.jobs import period_start

PERIOD = 0.1
SWEEP = 0.2
TIMEOUT = 15.0


@pytest.fixture
def migrated(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_old_period_claims_are_pruned_by_the_sweep(migrated: Engine) -> None:
    runs: list[datetime] = []
    lock = threading.Lock()

    def tick(start: datetime) -> None:
        with lock:
            runs.append(start)

    settings = EmbeddedQueueSettings(
        threads=1, poll_interval=0.02, heartbeat_interval=0.2, stale_after=5.0, sweep_interval=SWEEP
    )
    queue = EmbeddedQueue(migrated, settings=settings)
    queue.periodic("tick", PERIOD, tick)
    queue.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(set(runs)) < 12:
            assert time.monotonic() < deadline, f"only {len(runs)} periods ran"
            time.sleep(0.02)
    finally:
        assert queue.stop(timeout=TIMEOUT)

    with session_factory(migrated)() as session:
        kept = session.scalar(
            select(func.count()).select_from(PeriodicRunRow).where(PeriodicRunRow.task == "tick")
        )
        newest = session.scalar(select(func.max(PeriodicRunRow.period_start)))
    assert len(runs) == len(set(runs)) and all(period_start(start, PERIOD) == start for start in runs)
    # The sweep keeps the current and the previous period; at most SWEEP / PERIOD (+1) were claimed since.
    assert kept is not None and 1 <= kept <= 2 + round(SWEEP / PERIOD) + 1 < len(runs)
    assert newest is not None and newest >= max(runs)  # the newest claims are the ones kept
