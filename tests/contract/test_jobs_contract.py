"""The jobs port's contract: every adapter (see conftest.py `queues`) must pass this suite unchanged.

Waits poll the adapter's state with a timeout; wall-clock measurements only ever check a lower bound
(a delay or a backoff was honoured), never that something happened "soon enough".
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from ghsync.adapters.db.engine import make_engine, session_factory
from ghsync.adapters.db.models import ProjectRow, SyncOperationRow
from ghsync.adapters.queue.port import (
    MAX_MERGED_LIST_ITEMS,
    JobQueue,
    RetryLater,
    RetryPolicy,
    merge_args,
)
from ghsync.services.reconcile import NoopReconciler

if TYPE_CHECKING:
    from tests.contract.conftest import QueueHarness

TIMEOUT = 15.0
CLOCK_SLACK = 0.005  # wall clock vs monotonic clock rounding


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        time.sleep(0.02)


def idle(queue: JobQueue) -> bool:
    stats = queue.stats()
    return stats.queued == 0 and stats.running == 0


@contextmanager
def worker(queue: JobQueue, threads: int | None = None) -> Iterator[None]:
    queue.start(threads=threads)
    try:
        yield
    finally:
        assert queue.stop(timeout=TIMEOUT), "the worker did not stop"


@dataclass
class Recorder:
    """A reconcile handler that records its calls and whether two runs of one project overlapped."""

    hold: float = 0.0
    calls: list[tuple[str, list[str], float]] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    max_active: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, project_id: str, reasons: list[str]) -> None:
        with self.lock:
            self.active[project_id] = self.active.get(project_id, 0) + 1
            self.max_active[project_id] = max(self.max_active.get(project_id, 0), self.active[project_id])
            self.calls.append((project_id, list(reasons), time.monotonic()))
        try:
            if self.hold:
                time.sleep(self.hold)  # simulated work, so overlaps have a chance to happen
        finally:
            with self.lock:
                self.active[project_id] -= 1

    def runs(self, project_id: str) -> list[list[str]]:
        with self.lock:
            return [reasons for pid, reasons, _ in self.calls if pid == project_id]


# ---- durability ---------------------------------------------------------------------------


def test_a_request_is_durable_when_it_returns(queues: QueueHarness) -> None:
    producer = queues.make(Recorder())
    producer.request_reconcile("p1", "api")

    # Another instance with its own connections (as another process would) sees and runs it.
    recorder = Recorder()
    consumer = queues.make(recorder)
    assert consumer.stats().queued == 1
    assert consumer.run_until_idle() == 1
    assert recorder.runs("p1") == [["api"]]
    assert consumer.counts() == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}


# ---- serialization and parallelism ---------------------------------------------------------


def test_runs_of_one_project_never_overlap(queues: QueueHarness) -> None:
    recorder = Recorder(hold=0.03)
    # Two instances with three threads each: six threads competing for one project's jobs.
    first, second = queues.make(recorder, threads=3), queues.make(recorder, threads=3)
    with worker(first), worker(second):
        for i in range(30):
            first.request_reconcile("p1", f"r{i}")
            second.request_reconcile("p2", f"r{i}")
            time.sleep(0.005)  # spread the requests over several runs
        wait_for(lambda: idle(first), "all jobs done")
    assert len(recorder.runs("p1")) >= 2, "the test needs requests arriving during a run"
    assert recorder.max_active == {"p1": 1, "p2": 1}
    # Nothing lost: every reason was handled by some run.
    for project in ("p1", "p2"):
        handled = {reason for reasons in recorder.runs(project) for reason in reasons}
        assert handled == {f"r{i}" for i in range(30)}


def test_different_projects_run_in_parallel(queues: QueueHarness) -> None:
    # Each run waits for the other to start: only parallel runs get past the barrier.
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    met: list[str] = []

    def handler(project_id: str, reasons: list[str]) -> None:
        barrier.wait()
        met.append(project_id)

    queue = queues.make(handler, threads=2)
    queue.request_reconcile("p1", "a")
    queue.request_reconcile("p2", "b")
    with worker(queue):
        wait_for(lambda: len(met) == 2, "both projects ran")
    assert sorted(met) == ["p1", "p2"]


# ---- coalescing ------------------------------------------------------------------------------


def test_pending_requests_coalesce_into_one_run(queues: QueueHarness) -> None:
    recorder = Recorder()
    queue = queues.make(recorder)
    for i in range(10):
        queue.request_reconcile("p1", f"r{i}")
    queue.request_reconcile("p1", "r3")  # a repeated reason is kept once
    queue.request_reconcile("p2", "other")
    assert queue.stats().queued == 2

    assert queue.run_until_idle() == 2
    assert recorder.runs("p1") == [[f"r{i}" for i in range(10)]]
    assert recorder.runs("p2") == [["other"]]


def test_requests_during_a_run_make_exactly_one_more_run(queues: QueueHarness) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def handler(project_id: str, reasons: list[str]) -> None:
        calls.append(reasons)
        if len(calls) == 1:
            started.set()
            assert release.wait(TIMEOUT)

    queue = queues.make(handler, threads=2)
    with worker(queue):
        queue.request_reconcile("p1", "first")
        assert started.wait(TIMEOUT)
        for reason in ("a", "b", "c"):
            queue.request_reconcile("p1", reason)
        stats = queue.stats()
        assert (stats.running, stats.queued) == (1, 1)
        release.set()
        wait_for(lambda: len(calls) == 2 and idle(queue), "the follow-up run")
    assert calls == [["first"], ["a", "b", "c"]]
    assert queue.counts()["succeeded"] == 2


def test_a_merged_request_keeps_the_earliest_time(queues: QueueHarness) -> None:
    recorder = Recorder()
    queue = queues.make(recorder)
    queue.request_reconcile("p1", "later", delay=60)
    assert queue.run_until_idle() == 0  # not due
    queue.request_reconcile("p1", "now")
    assert queue.run_until_idle() == 1
    assert recorder.runs("p1") == [["later", "now"]]


def test_merge_rule() -> None:
    assert merge_args({"reasons": ["a", "b"], "x": 1}, {"reasons": ["b", "c"], "x": 2, "y": 3}) == {
        "reasons": ["a", "b", "c"],
        "x": 1,
        "y": 3,
    }
    many = merge_args({"reasons": []}, {"reasons": [str(i) for i in range(500)]})
    assert len(many["reasons"]) == MAX_MERGED_LIST_ITEMS


# ---- delays ----------------------------------------------------------------------------------


def test_a_delayed_request_waits_for_its_time(queues: QueueHarness) -> None:
    recorder = Recorder()
    queue = queues.make(recorder)
    with worker(queue):
        requested = time.monotonic()
        queue.request_reconcile("p1", "delayed", delay=0.6)
        queue.request_reconcile("p2", "now")
        assert queue.stats().queued >= 1
        wait_for(lambda: len(recorder.calls) == 2, "both runs")
    (first, _, _), (second, _, ran_at) = recorder.calls
    assert (first, second) == ("p2", "p1")
    assert ran_at - requested >= 0.6 - CLOCK_SLACK


# ---- retries ---------------------------------------------------------------------------------


def test_a_failing_job_is_retried_with_exponential_backoff(queues: QueueHarness) -> None:
    times: list[float] = []

    def flaky(project_id: str, reasons: list[str]) -> None:
        times.append(time.monotonic())
        if len(times) < 3:
            raise RuntimeError(f"transient failure {len(times)}")

    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=5.0, jitter=0.0)
    queue = queues.make(flaky, retry=policy)
    queue.request_reconcile("p1", "go")
    with worker(queue):
        wait_for(lambda: queue.counts()["succeeded"] == 1, "the job succeeded")
    assert len(times) == 3
    assert times[1] - times[0] >= 0.1 - CLOCK_SLACK
    assert times[2] - times[1] >= 0.2 - CLOCK_SLACK  # doubled
    [job] = queue.jobs()
    assert (job.status, job.attempts) == ("succeeded", 3)


def test_exhausted_attempts_leave_the_job_failed_with_its_error(queues: QueueHarness) -> None:
    calls: list[int] = []

    def broken(project_id: str, reasons: list[str]) -> None:
        calls.append(1)
        raise ValueError(f"boom {len(calls)}")

    queue = queues.make(broken, retry=RetryPolicy(max_attempts=3, base_delay=0.02, jitter=0.0))
    queue.request_reconcile("p1", "go")
    with worker(queue):
        wait_for(lambda: queue.counts()["failed"] == 1, "the job failed")
    assert len(calls) == 3
    [job] = queue.jobs(status="failed")
    assert job.attempts == 3
    assert job.last_error is not None and "ValueError: boom 3" in job.last_error
    assert idle(queue)

    # A failed job does not block the project: the next request runs.
    calls.clear()
    queue.request_reconcile("p1", "again")
    assert queue.run_until_idle() == 1
    assert len(calls) == 1


def test_a_request_during_backoff_joins_the_retry_and_keeps_its_time(queues: QueueHarness) -> None:
    calls: list[tuple[list[str], float]] = []

    def fails_once(project_id: str, reasons: list[str]) -> None:
        calls.append((reasons, time.monotonic()))
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")

    queue = queues.make(fails_once, retry=RetryPolicy(max_attempts=3, base_delay=0.5, jitter=0.0))
    queue.request_reconcile("p1", "first")
    with worker(queue):
        wait_for(lambda: bool(calls) and queue.stats().queued == 1, "the job waits for its retry")
        queue.request_reconcile("p1", "late")  # must not cut the backoff short
        assert queue.stats().queued == 1
        wait_for(lambda: queue.counts()["succeeded"] == 1, "the retry succeeded")
    assert [reasons for reasons, _ in calls] == [["first"], ["first", "late"]]
    assert calls[1][1] - calls[0][1] >= 0.5 - CLOCK_SLACK


def test_retry_later_reschedules_without_using_an_attempt(queues: QueueHarness) -> None:
    times: list[float] = []

    def rate_limited(project_id: str, reasons: list[str]) -> None:
        times.append(time.monotonic())
        if len(times) == 1:
            raise RetryLater(datetime.now(UTC) + timedelta(seconds=0.4), "rate limit")

    # One attempt only: if RetryLater counted as a failure, the job would end failed.
    queue = queues.make(rate_limited, retry=RetryPolicy(max_attempts=1, base_delay=0.01))
    queue.request_reconcile("p1", "go")
    with worker(queue):
        wait_for(lambda: bool(times) and queue.stats().queued == 1, "the job waits for its time")
        queue.request_reconcile("p1", "webhook")  # joins the job; must not cut the wait short
        wait_for(lambda: queue.counts()["succeeded"] == 1, "the job succeeded")
    assert len(times) == 2
    assert times[1] - times[0] >= 0.4 - CLOCK_SLACK
    [job] = queue.jobs()
    assert job.attempts == 1
    assert job.args["reasons"] == ["go", "webhook"]


def test_retry_later_needs_an_aware_time() -> None:
    with pytest.raises(ValueError):
        RetryLater(datetime.now(), "naive")


def test_backoff_policy_is_exponential_bounded_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=10.0, jitter=0.25)
    rng = random.Random(7)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        for _ in range(50):
            assert full * 0.75 <= policy.delay(attempt, rng) <= full
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# ---- worker lifecycle and periodic tasks ---------------------------------------------------------


def test_graceful_stop_lets_the_running_job_finish(queues: QueueHarness) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(project_id: str, reasons: list[str]) -> None:
        started.set()
        assert release.wait(TIMEOUT)

    queue = queues.make(slow)
    queue.request_reconcile("p1", "go")
    queue.start()
    assert started.wait(TIMEOUT)
    assert not queue.stop(timeout=0.2)  # still waiting for the job
    release.set()
    assert queue.stop(timeout=TIMEOUT)
    assert queue.counts() == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}


def test_periodic_tasks_run_while_the_worker_runs(queues: QueueHarness) -> None:
    ticks: list[float] = []
    failures: list[float] = []

    def failing() -> None:
        failures.append(time.monotonic())
        raise RuntimeError("a periodic failure must not stop the schedule")

    queue = queues.make(Recorder())
    queue.register_periodic("tick", 0.05, lambda: ticks.append(time.monotonic()))
    queue.register_periodic("failing", 0.05, failing)
    with pytest.raises(ValueError):
        queue.register_periodic("tick", 1, lambda: None)
    with worker(queue):
        wait_for(lambda: len(ticks) >= 3 and len(failures) >= 3, "three runs of each")
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= 0.05 - CLOCK_SLACK


# ---- the no-op reconcile body, run by the queue ----------------------------------------------------


def test_the_noop_reconcile_records_an_operation(queues: QueueHarness) -> None:
    engine = make_engine(queues.url)
    queues.engines.append(engine)
    project_id = uuid.uuid4()
    with session_factory(engine)() as session, session.begin():
        session.add(ProjectRow(id=project_id, name="demo"))

    queue = queues.make(NoopReconciler(engine))
    queue.request_reconcile(str(project_id), "api")
    queue.request_reconcile(str(project_id), "poll")
    queue.request_reconcile(str(uuid.uuid4()), "deleted project")  # ignored, not retried
    assert queue.run_until_idle() == 2
    assert queue.counts()["succeeded"] == 2

    with session_factory(engine)() as session:
        [operation] = session.scalars(select(SyncOperationRow)).all()
    assert operation.project_id == project_id
    assert (operation.operation_type, operation.status, operation.direction) == (
        "reconcile",
        "success",
        "none",
    )
    assert operation.metadata_ == {"noop": True, "reasons": ["api", "poll"]}
    assert operation.started_at is not None and operation.completed_at is not None
