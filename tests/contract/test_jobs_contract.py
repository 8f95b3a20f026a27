"""The jobs port's contract: every adapter (see conftest.py `queues`) must pass this suite unchanged.

Waits poll the adapter's state with a timeout; wall-clock measurements only ever check a lower bound
(a delay or a backoff was honoured), never that something happened "soon enough".
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from ghsync.adapters.db.engine import make_engine, session_factory
from ghsync.adapters.db.models import ProjectRow, SyncOperationRow
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.ports.jobs import RECONCILE_TASK, JobQueue, RetryLater, RetryPolicy, period_start
from ghsync.services.reconcile import ReconcileService

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
    """A reconcile body that records when each run started and whether two runs of one project overlapped."""

    hold: float = 0.0
    calls: list[tuple[str, float]] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    max_active: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, project_id: str) -> None:
        with self.lock:
            self.active[project_id] = self.active.get(project_id, 0) + 1
            self.max_active[project_id] = max(self.max_active.get(project_id, 0), self.active[project_id])
            self.calls.append((project_id, time.monotonic()))
        try:
            if self.hold:
                time.sleep(self.hold)  # simulated work, so overlaps have a chance to happen
        finally:
            with self.lock:
                self.active[project_id] -= 1

    def starts(self, project_id: str) -> list[float]:
        with self.lock:
            return [started for pid, started in self.calls if pid == project_id]


# ---- registration ----------------------------------------------------------------------------


def test_handlers_are_registered_on_the_queue(queues: QueueHarness) -> None:
    seen: list[Mapping[str, Any]] = []
    queue = queues.make()
    with pytest.raises(ValueError, match="unknown task"):
        queue.request_reconcile("p1")  # nothing registered yet: fails in the caller, not in a worker
    queue.register("index", seen.append)
    with pytest.raises(ValueError, match="already registered"):
        queue.register("index", seen.append)
    with pytest.raises(ValueError, match="unknown task"):
        queue.defer("nope", {})
    with pytest.raises(TypeError):
        queue.defer("index", {"not json": object()})
    assert queue.defer("index", {"path": "a.txt", "n": 1}) is True
    assert queue.run_until_idle() == 1
    assert seen == [{"path": "a.txt", "n": 1}]


# ---- durability ---------------------------------------------------------------------------


def test_a_request_is_durable_when_it_returns(queues: QueueHarness) -> None:
    producer = queues.make(Recorder())
    producer.request_reconcile("p1", "api")  # the reason is accepted and ignored

    # Another instance with its own connections (as another process would) sees and runs it.
    recorder = Recorder()
    consumer = queues.make(recorder)
    assert consumer.stats().queued == 1
    assert consumer.run_until_idle() == 1
    assert len(recorder.starts("p1")) == 1
    assert consumer.counts() == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}
    [job] = consumer.jobs()
    assert (job.task, job.args, job.lock) == (RECONCILE_TASK, {"project_id": "p1"}, "p1")


# ---- serialization and parallelism ---------------------------------------------------------


def test_runs_of_one_project_never_overlap_and_no_request_is_lost(queues: QueueHarness) -> None:
    recorder = Recorder(hold=0.03)
    requested: dict[str, list[float]] = {"p1": [], "p2": []}
    # Two instances with three threads each: six threads competing for one project's jobs.
    first, second = queues.make(recorder, threads=3), queues.make(recorder, threads=3)
    with worker(first), worker(second):
        for _ in range(30):
            for project, queue in (("p1", first), ("p2", second)):
                requested[project].append(time.monotonic())
                queue.request_reconcile(project)
            time.sleep(0.005)  # spread the requests over several runs
        wait_for(lambda: idle(first), "all jobs done")
    assert recorder.max_active == {"p1": 1, "p2": 1}
    for project, times in requested.items():
        starts = recorder.starts(project)
        assert 2 <= len(starts) < len(times), "requests must arrive during runs, and fold into queued jobs"
        # Nothing lost: every request is followed by a run that started after it (level-triggered).
        assert max(starts) >= max(times)


def test_different_projects_run_in_parallel(queues: QueueHarness) -> None:
    # Each run waits for the other to start: only parallel runs get past the barrier.
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    met: list[str] = []

    def body(project_id: str) -> None:
        barrier.wait()
        met.append(project_id)

    queue = queues.make(body, threads=2)
    queue.request_reconcile("p1")
    queue.request_reconcile("p2")
    with worker(queue):
        wait_for(lambda: len(met) == 2, "both projects ran")
    assert sorted(met) == ["p1", "p2"]


# ---- at most one queued job per queueing lock -------------------------------------------------


def test_at_most_one_queued_reconcile_per_project(queues: QueueHarness) -> None:
    recorder = Recorder()
    queue = queues.make(recorder)
    for i in range(10):
        queue.request_reconcile("p1", f"r{i}")
    queue.request_reconcile("p2")
    assert queue.stats().queued == 2
    assert queue.reconcile_state("p1").queued and not queue.reconcile_state("p1").running

    assert queue.run_until_idle() == 2
    assert (len(recorder.starts("p1")), len(recorder.starts("p2"))) == (1, 1)
    assert {job.args["project_id"]: job.args for job in queue.jobs()} == {
        "p1": {"project_id": "p1"},
        "p2": {"project_id": "p2"},
    }


def test_defer_says_whether_it_queued_a_job_and_never_touches_queued_arguments(queues: QueueHarness) -> None:
    seen: list[Mapping[str, Any]] = []
    queue = queues.make(tasks={"index": seen.append, "other": seen.append})
    assert queue.defer("index", {"n": 1}, queueing_lock="q") is True
    assert queue.defer("index", {"n": 2}, queueing_lock="q") is False  # procrastinate: AlreadyEnqueued
    with pytest.raises(ValueError, match="held by"):
        queue.defer("other", {"n": 3}, queueing_lock="q")
    assert queue.defer("index", {"n": 4}) is True  # no queueing lock: always queued
    assert queue.run_until_idle() == 2
    assert sorted(item["n"] for item in seen) == [1, 4]


def test_concurrent_requests_from_two_instances_queue_one_job(queues: QueueHarness) -> None:
    first, second = queues.make(Recorder()), queues.make(Recorder())
    start = threading.Barrier(8, timeout=TIMEOUT)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def request(queue: JobQueue) -> None:
        try:
            start.wait()
            for _ in range(5):
                outcomes.append(
                    queue.defer(RECONCILE_TASK, {"project_id": "p1"}, lock="p1", queueing_lock="q:p1")
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(q,)) for q in [first, second] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert errors == []
    assert sorted(outcomes) == [False] * 39 + [True]
    assert first.stats().queued == 1


def test_requests_during_a_run_make_exactly_one_more_run(queues: QueueHarness) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def body(project_id: str) -> None:
        calls.append(project_id)
        if len(calls) == 1:
            started.set()
            assert release.wait(TIMEOUT)

    queue = queues.make(body, threads=2)
    with worker(queue):
        queue.request_reconcile("p1", "first")
        assert started.wait(TIMEOUT)
        for _ in range(3):
            queue.request_reconcile("p1")
        stats = queue.stats()
        assert (stats.running, stats.queued) == (1, 1)
        assert queue.reconcile_state("p1").running and queue.reconcile_state("p1").queued
        release.set()
        wait_for(lambda: len(calls) == 2 and idle(queue), "the follow-up run")
    assert calls == ["p1", "p1"]
    assert queue.counts()["succeeded"] == 2


def test_a_queued_request_takes_the_earliest_time(queues: QueueHarness) -> None:
    recorder = Recorder()
    queue = queues.make(recorder)
    queue.request_reconcile("p1", delay=60)
    assert queue.run_until_idle() == 0  # not due
    queue.request_reconcile("p1")  # brings the queued job forward
    assert queue.run_until_idle() == 1

    queue.request_reconcile("p2")
    queue.request_reconcile("p2", delay=60)  # a later request never postpones a queued one
    assert queue.run_until_idle() == 1
    assert (len(recorder.starts("p1")), len(recorder.starts("p2"))) == (1, 1)
    assert idle(queue)


# ---- delays ----------------------------------------------------------------------------------


def test_a_delayed_request_waits_for_its_time(queues: QueueHarness) -> None:
    recorder = Recorder()
    queue = queues.make(recorder)
    with worker(queue):
        requested = time.monotonic()
        queue.request_reconcile("p1", delay=0.6)
        queue.request_reconcile("p2")
        assert queue.stats().queued >= 1
        wait_for(lambda: len(recorder.calls) == 2, "both runs")
    (first, _), (second, ran_at) = recorder.calls
    assert (first, second) == ("p2", "p1")
    assert ran_at - requested >= 0.6 - CLOCK_SLACK


# ---- retries ---------------------------------------------------------------------------------


def test_a_failing_job_is_retried_with_exponential_backoff(queues: QueueHarness) -> None:
    times: list[float] = []

    def flaky(project_id: str) -> None:
        times.append(time.monotonic())
        if len(times) < 3:
            raise RuntimeError(f"transient failure {len(times)}")

    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=5.0, jitter=0.0)
    queue = queues.make(flaky, retry=policy)
    queue.request_reconcile("p1")
    with worker(queue):
        wait_for(lambda: queue.counts()["succeeded"] == 1, "the job succeeded")
    assert len(times) == 3
    assert times[1] - times[0] >= 0.1 - CLOCK_SLACK
    assert times[2] - times[1] >= 0.2 - CLOCK_SLACK  # doubled
    [job] = queue.jobs()
    assert (job.status, job.attempts) == ("succeeded", 3)


def test_exhausted_attempts_leave_the_job_failed_with_its_error(queues: QueueHarness) -> None:
    calls: list[int] = []

    def broken(project_id: str) -> None:
        calls.append(1)
        raise ValueError(f"boom {len(calls)}")

    queue = queues.make(broken, retry=RetryPolicy(max_attempts=3, base_delay=0.02, jitter=0.0))
    queue.request_reconcile("p1")
    with worker(queue):
        wait_for(lambda: queue.counts()["failed"] == 1, "the job failed")
    assert len(calls) == 3
    [job] = queue.jobs(status="failed")
    assert job.attempts == 3
    assert job.last_error is not None and "ValueError: boom 3" in job.last_error
    assert idle(queue)

    # A failed job does not block the project: the next request runs.
    calls.clear()
    queue.request_reconcile("p1")
    assert queue.run_until_idle() == 1
    assert len(calls) == 1


def test_a_request_during_backoff_joins_the_retry_and_keeps_its_time(queues: QueueHarness) -> None:
    calls: list[float] = []

    def fails_once(project_id: str) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")

    queue = queues.make(fails_once, retry=RetryPolicy(max_attempts=3, base_delay=0.5, jitter=0.0))
    queue.request_reconcile("p1")
    with worker(queue):
        wait_for(lambda: bool(calls) and queue.stats().queued == 1, "the job waits for its retry")
        queue.request_reconcile("p1")  # must not cut the backoff short, nor add a job
        assert queue.stats().queued == 1
        wait_for(lambda: queue.counts()["succeeded"] == 1, "the retry succeeded")
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.5 - CLOCK_SLACK
    [job] = queue.jobs()
    assert job.attempts == 2


def test_a_request_while_running_is_absorbed_by_the_retry(queues: QueueHarness) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[float] = []

    def fails_first(project_id: str) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            started.set()
            assert release.wait(TIMEOUT)
            raise RuntimeError("first attempt fails")

    queue = queues.make(fails_first, retry=RetryPolicy(max_attempts=3, base_delay=0.4, jitter=0.0))
    with worker(queue):
        queue.request_reconcile("p1")
        assert started.wait(TIMEOUT)
        queue.request_reconcile("p1")  # queued behind the running job
        assert queue.stats().queued == 1
        release.set()
        wait_for(lambda: queue.counts()["succeeded"] == 1 and idle(queue), "the retry succeeded")
    # One retry, not a retry plus the queued request; the backoff held (the request didn't cut it short).
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.4 - CLOCK_SLACK
    assert len(queue.jobs()) == 1


def test_retry_later_reschedules_without_using_an_attempt(queues: QueueHarness) -> None:
    times: list[float] = []

    def rate_limited(project_id: str) -> None:
        times.append(time.monotonic())
        if len(times) == 1:
            raise RetryLater(datetime.now(UTC) + timedelta(seconds=0.4), "rate limit")

    # One attempt only: if RetryLater counted as a failure, the job would end failed.
    queue = queues.make(rate_limited, retry=RetryPolicy(max_attempts=1, base_delay=0.01))
    queue.request_reconcile("p1")
    with worker(queue):
        wait_for(lambda: bool(times) and queue.stats().queued == 1, "the job waits for its time")
        queue.request_reconcile("p1", "webhook")  # joins the job; must not cut the wait short
        assert queue.stats().queued == 1
        wait_for(lambda: queue.counts()["succeeded"] == 1, "the job succeeded")
    assert len(times) == 2
    assert times[1] - times[0] >= 0.4 - CLOCK_SLACK
    [job] = queue.jobs()
    assert job.attempts == 1


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


# ---- worker lifecycle ------------------------------------------------------------------------


def test_graceful_stop_lets_the_running_job_finish(queues: QueueHarness) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(project_id: str) -> None:
        started.set()
        assert release.wait(TIMEOUT)

    queue = queues.make(slow)
    queue.request_reconcile("p1")
    queue.start()
    assert started.wait(TIMEOUT)
    assert not queue.stop(timeout=0.2)  # still waiting for the job
    release.set()
    assert queue.stop(timeout=TIMEOUT)
    assert queue.counts() == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}


# ---- periodic tasks ------------------------------------------------------------------------------


def test_the_period_start_is_the_floor_of_now_by_the_period() -> None:
    now = datetime(2026, 12, 1, 8, 7, 59, 999_999, tzinfo=UTC)
    assert period_start(now, 60) == datetime(2026, 12, 1, 8, 7, tzinfo=UTC)
    assert period_start(now, 300) == datetime(2026, 12, 1, 8, 5, tzinfo=UTC)
    assert period_start(now, 0.25) == datetime(2026, 12, 1, 8, 7, 59, 750_000, tzinfo=UTC)
    # Every zone names the same instant, so every process computes the same key.
    assert period_start(now.astimezone(timezone(timedelta(hours=-5))), 3600) == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        period_start(datetime(2026, 12, 1), 60)


PERIOD = 0.25


def test_periodic_tasks_run_once_per_period_while_workers_run(queues: QueueHarness) -> None:
    ticks: list[datetime] = []
    failures: list[datetime] = []

    def failing(start: datetime) -> None:
        failures.append(start)
        raise RuntimeError("a periodic failure must not stop the schedule")

    queue = queues.make()
    queue.periodic("tick", PERIOD, ticks.append)
    queue.periodic("failing", PERIOD, failing)
    with pytest.raises(ValueError):
        queue.periodic("tick", 1, ticks.append)
    assert queue.run_until_idle() == 0  # nothing runs until a worker claims a period
    with worker(queue):
        wait_for(lambda: len(ticks) >= 3 and len(failures) >= 3, "three periods of each")
    assert len(set(ticks)) == len(ticks), "a period ran twice"
    assert all(period_start(start, PERIOD) == start for start in ticks), "periods are aligned"
    assert ticks == sorted(ticks)
    failed = queue.jobs(status="failed")
    assert failed and all(job.task == "failing" and job.attempts == 1 for job in failed)  # not retried


def test_several_workers_run_each_period_once_per_deployment(queues: QueueHarness) -> None:
    # Three instances on one database (or, for the memory adapter, on one store): three "processes".
    runs: list[tuple[str, datetime]] = []
    lock = threading.Lock()
    instances = [queues.make(threads=2) for _ in range(3)]
    for index, queue in enumerate(instances):

        def run(start: datetime, who: str = f"q{index}") -> None:
            with lock:
                runs.append((who, start))

        queue.periodic("poll", PERIOD, run)
    with worker(instances[0]), worker(instances[1]), worker(instances[2]):
        wait_for(lambda: len({start for _, start in runs}) >= 4, "four periods")
        time.sleep(PERIOD / 2)  # let any duplicate claim of the last period show up
    starts = [start for _, start in runs]
    assert len(starts) == len(set(starts)), f"a period ran more than once: {sorted(runs, key=lambda r: r[1])}"


# ---- a reconcile requested through the outbox, run by the queue ----------------------------------


def test_an_outbox_request_is_served_by_one_queued_reconcile(queues: QueueHarness) -> None:
    # The requester records its reasons in the unit of work (the outbox); the queue only hears
    # "reconcile this project" after the commit, and one run serves every pending request.
    engine = make_engine(queues.url)
    queues.engines.append(engine)
    project_id = uuid.uuid4()
    with session_factory(engine)() as session, session.begin():
        session.add(ProjectRow(id=project_id, name="demo"))

    reconciler: list[ReconcileService] = []
    queue = queues.make(lambda pid: reconciler[0].reconcile(pid) and None)
    uow = SqlUnitOfWorkFactory(engine, notify=queue.request_reconcile)
    reconciler.append(ReconcileService(uow))
    for reason in ("api", "poll"):
        with uow() as work:
            work.request_reconcile(str(project_id), reason)
            work.commit()
    assert queue.stats().queued == 1
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
    assert operation.metadata_["reasons"] == ["api", "poll"]
