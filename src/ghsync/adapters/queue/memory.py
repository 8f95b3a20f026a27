"""The in-memory jobs adapter: the jobs port in one process without a database, for unit tests.

Like procrastinate's `InMemoryConnector`, it imitates the database's constraints rather than
skipping them, so tests on it stay honest: one queued job per queueing lock, one running job per
lock, one claim per (periodic task, period). Several `InMemoryQueue`s built on one `InMemoryJobStore`
behave like several worker processes on one database (each with its own handlers).

Nothing survives the process, and there is no stalled-job recovery (a job can't outlive its worker
here). Finished jobs are kept for `jobs()`; this adapter is not meant to run for days.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from ghsync.ports.jobs import (
    JOB_STATUSES,
    PERIOD_START_ARG,
    JobInfo,
    JobQueue,
    JobStats,
    JobStatus,
    LockState,
    PeriodicTask,
    RetryLater,
    RetryPolicy,
    period_start,
    periodic_queueing_lock,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Job:
    id: int
    task: str
    args: dict[str, Any]
    lock: str | None
    queueing_lock: str | None
    max_attempts: int
    run_at: datetime
    created_at: datetime
    status: JobStatus = "queued"
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None

    def info(self) -> JobInfo:
        return JobInfo(
            id=self.id,
            task=self.task,
            status=self.status,
            args=json.loads(json.dumps(self.args)),
            lock=self.lock,
            queueing_lock=self.queueing_lock,
            attempts=self.attempts,
            max_attempts=self.max_attempts,
            run_at=self.run_at,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            last_error=self.last_error,
        )


@dataclass
class InMemoryJobStore:
    """What the database is to the embedded runner: the jobs and the constraints, shared by queues.

    Every field is guarded by `changed`, whose waiters (idle worker threads) are woken on each change.
    """

    changed: threading.Condition = field(default_factory=threading.Condition)
    jobs: dict[int, _Job] = field(default_factory=dict)
    queued_by_queueing_lock: dict[str, int] = field(default_factory=dict)  # the partial unique index
    running_locks: set[str] = field(default_factory=set)  # the other one
    periodic_claims: set[tuple[str, datetime]] = field(default_factory=set)  # the primary key
    next_id: int = 1


class InMemoryQueue(JobQueue):
    """The jobs port held in memory; `run_until_idle()` runs due jobs in the calling thread."""

    def __init__(
        self,
        store: InMemoryJobStore | None = None,
        *,
        retry: RetryPolicy | None = None,
        threads: int = 2,
        poll_interval: float = 0.05,
        clock: Clock = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.store = store or InMemoryJobStore()
        self._retry = retry or RetryPolicy()
        self._threads = threads
        self._poll_interval = poll_interval
        self._clock = clock
        self._rng = rng or random.Random()
        self._claimed_periods: dict[str, datetime] = {}

    # ---- producing -------------------------------------------------------------------------

    def defer(
        self,
        task: str,
        args: Mapping[str, Any],
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        delay: float = 0,
    ) -> bool:
        self._require_registered(task)
        # A JSON round trip, as the database does: fail in the caller when the arguments are not JSON.
        payload = cast(dict[str, Any], json.loads(json.dumps(dict(args))))
        run_at = self._clock() + timedelta(seconds=max(0.0, delay))
        with self.store.changed:
            queued = self._defer_locked(task, payload, lock, queueing_lock, run_at, self._retry.max_attempts)
            self.store.changed.notify_all()
        return queued

    def _defer_locked(
        self,
        task: str,
        payload: dict[str, Any],
        lock: str | None,
        queueing_lock: str | None,
        run_at: datetime,
        max_attempts: int,
    ) -> bool:
        store = self.store
        if queueing_lock is not None and (existing := store.queued_by_queueing_lock.get(queueing_lock)):
            job = store.jobs[existing]
            if job.task != task:
                raise ValueError(
                    f"queueing lock {queueing_lock!r} is held by a {job.task!r} job, not {task!r}"
                )
            # Same rule as the embedded runner: a job put back by the runner keeps its time.
            if job.started_at is None and run_at < job.run_at:
                job.run_at = run_at
            return False
        job = _Job(
            id=store.next_id,
            task=task,
            args=payload,
            lock=lock,
            queueing_lock=queueing_lock,
            max_attempts=max_attempts,
            run_at=run_at,
            created_at=self._clock(),
        )
        store.next_id += 1
        store.jobs[job.id] = job
        if queueing_lock is not None:
            store.queued_by_queueing_lock[queueing_lock] = job.id
        return True

    # ---- observing -------------------------------------------------------------------------

    def stats(self) -> JobStats:
        now = self._clock()
        with self.store.changed:
            jobs = list(self.store.jobs.values())
        counts = {status: sum(1 for job in jobs if job.status == status) for status in JOB_STATUSES}
        due = [job.run_at for job in jobs if job.status == "queued" and job.run_at <= now]
        return JobStats(
            queued=counts["queued"],
            running=counts["running"],
            succeeded=counts["succeeded"],
            failed=counts["failed"],
            oldest_due_age_seconds=(now - min(due)).total_seconds() if due else None,
        )

    def lock_state(self, lock: str) -> LockState:
        with self.store.changed:
            statuses = {job.status for job in self.store.jobs.values() if job.lock == lock}
        return LockState(queued="queued" in statuses, running="running" in statuses)

    def jobs(self, status: JobStatus | None = None, limit: int = 100) -> list[JobInfo]:
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.store.changed:
            rows = sorted(self.store.jobs.values(), key=lambda job: job.id, reverse=True)
            return [job.info() for job in rows if status is None or job.status == status][:limit]

    # ---- running ---------------------------------------------------------------------------

    def run_until_idle(self) -> int:
        ran = 0
        while (job := self._claim()) is not None:
            self._execute(job)
            ran += 1
        return ran

    def run_worker(self, stop_event: threading.Event, *, threads: int | None = None) -> None:
        executors = [
            threading.Thread(
                target=self._executor_loop, args=(stop_event,), name=f"ghsync-mem-job-{i}", daemon=True
            )
            for i in range(threads or self._threads)
        ]
        for thread in executors:
            thread.start()
        try:
            while not stop_event.is_set():
                stop_event.wait(self._claim_due_periods())
        finally:
            stop_event.set()
            with self.store.changed:
                self.store.changed.notify_all()
            for thread in executors:
                thread.join()

    def _executor_loop(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            job = self._claim()
            if job is None:
                with self.store.changed:
                    if not stop_event.is_set():
                        self.store.changed.wait(self._poll_interval)
                continue
            try:
                self._execute(job)
            except Exception:  # pragma: no cover - _execute handles the handler's errors itself
                log.exception("running job %s failed outside its handler", job.id)

    def _claim(self) -> _Job | None:
        now = self._clock()
        store = self.store
        with store.changed:
            due = [
                job
                for job in store.jobs.values()
                if job.status == "queued"
                and job.run_at <= now
                and (job.lock is None or job.lock not in store.running_locks)
            ]
            if not due:
                return None
            job = min(due, key=lambda candidate: (candidate.run_at, candidate.id))
            if job.queueing_lock is not None:
                del store.queued_by_queueing_lock[job.queueing_lock]
            if job.lock is not None:
                store.running_locks.add(job.lock)
            job.status = "running"
            job.attempts += 1
            job.started_at = now
            job.finished_at = None
            return job

    def _execute(self, job: _Job) -> None:
        handler = self._handler(job.task)
        try:
            if handler is None:
                raise LookupError(f"no handler for task {job.task!r} in this queue")
            handler(json.loads(json.dumps(job.args)))
        except RetryLater as later:
            log.info("job %s (%s) asks to run again at %s: %s", job.id, job.task, later.at, later.reason)
            self._finish(job, requeue_at=later.at, count_attempt=False, error=f"retry later: {later}")
        except Exception as exc:
            error = "".join(traceback.format_exception(exc))
            if job.attempts >= job.max_attempts:
                self._finish(job, status="failed", error=error)
            else:
                delay = self._retry.delay(job.attempts, self._rng)
                self._finish(job, requeue_at=self._clock() + timedelta(seconds=delay), error=error)
        else:
            self._finish(job, status="succeeded")

    def _finish(
        self,
        job: _Job,
        *,
        status: JobStatus | None = None,
        requeue_at: datetime | None = None,
        count_attempt: bool = True,
        error: str | None = None,
    ) -> None:
        store = self.store
        with store.changed:
            if job.lock is not None:
                store.running_locks.discard(job.lock)
            if error is not None:
                job.last_error = error
            if requeue_at is None:
                assert status is not None
                job.status = status
                job.finished_at = self._clock()
            else:
                if not count_attempt:
                    job.attempts -= 1
                if job.queueing_lock is not None:
                    twin = store.queued_by_queueing_lock.pop(job.queueing_lock, None)
                    if twin is not None:
                        # As in the embedded runner: the retry keeps its history and its time.
                        del store.jobs[twin]
                    store.queued_by_queueing_lock[job.queueing_lock] = job.id
                job.status = "queued"
                job.run_at = requeue_at
            store.changed.notify_all()

    def claim_periods(self) -> int:
        """Claim the current period of each periodic task, as a worker does; returns how many this queue got.

        For unit tests with a fake clock: `claim_periods()` then `run_until_idle()` runs what is due.
        """
        return self._claim_periods_at(self._clock())

    def _claim_periods_at(self, now: datetime) -> int:
        claimed = 0
        for task in self._periodic_tasks():
            start = period_start(now, task.every_seconds)
            if self._claimed_periods.get(task.name) != start:
                claimed += self._claim_period(task, start)
                self._claimed_periods[task.name] = start
        return claimed

    def _claim_due_periods(self) -> float:
        """Claim due periods; returns seconds until the next period of any task starts."""
        now = self._clock()
        self._claim_periods_at(now)
        wait = self._poll_interval * 20  # a task registered meanwhile is seen this soon
        for task in self._periodic_tasks():
            next_start = period_start(now, task.every_seconds) + timedelta(seconds=task.every_seconds)
            wait = min(wait, (next_start - now).total_seconds())
        return max(0.0, wait)

    def _claim_period(self, task: PeriodicTask, start: datetime) -> bool:
        store = self.store
        with store.changed:
            if (task.name, start) in store.periodic_claims:
                return False  # another queue on this store has it
            store.periodic_claims.add((task.name, start))
            # Only the current period is ever claimed: older claims can go (one kept for lagging clocks).
            horizon = start - timedelta(seconds=task.every_seconds)
            store.periodic_claims = {
                (name, claimed)
                for name, claimed in store.periodic_claims
                if name != task.name or claimed >= horizon
            }
            self._defer_locked(
                task.name,
                {PERIOD_START_ARG: start.isoformat()},
                None,
                periodic_queueing_lock(task.name),
                self._clock(),
                max_attempts=1,  # not retried: the next period is the retry
            )
            store.changed.notify_all()
        return True
