"""The jobs port: what ghsync asks of a job queue, whatever runs it (embedded, in memory, procrastinate).

It is shaped so that procrastinate can implement it unchanged. Semantics every adapter keeps (the
contract suite in tests/contract/test_jobs_contract.py proves them):

- Handlers are registered on the queue (`register(task, fn)`, `fn(args)`), like procrastinate's
  `@app.task`; `defer` of a task nobody registered fails at once, in the caller.
- `defer` is durable when it returns (for database adapters: the job is committed).
- `lock`: at most one job per lock value runs at a time (reconcile uses the project id).
- `queueing_lock`: at most one *queued* job per value. Deferring while one is queued adds no job
  and leaves its arguments alone (procrastinate raises `AlreadyEnqueued`; `defer` returns False);
  it only brings the queued job's `run_at` forward to the requested time, unless that job has run
  before and was put back (a retry waiting out its backoff, a `RetryLater`): that time is a floor
  requests don't lower. A request while the job runs queues one new job, which runs after it.
  The reasons for a reconcile are recorded by the requester in the database (the outbox of the
  unit of work), never in job arguments.
- A handler that raises is retried with exponential backoff (`RetryPolicy`) until `max_attempts`;
  then the job is `failed` with `last_error`. `RetryLater(at)` reschedules at or after `at` without
  counting an attempt.
- Periodic tasks (`periodic(name, every, fn)`) run once per period per deployment, not once per
  worker process: the period `[floor(now / every) * every, + every)` is claimed in the adapter's
  store (a primary key on (task, period start)) and the claimer defers one job for it, like
  procrastinate's periodic defers. `fn` receives the period's start.
- Delivery is at least once: a job whose worker dies runs again, so handlers must be idempotent
  (reconcile is, by design).

How procrastinate maps onto it (the next adapter): `register` is `app.task`; `defer` catches
`AlreadyEnqueued` and returns False, after moving the queued job's `scheduled_at` forward if it never
ran; `RetryLater(at)` becomes a retry decision at `at` that the adapter does not count against
`max_attempts` (or a fresh job scheduled at `at`); periodic tasks are its periodic defers, whose
`(task, periodic id, timestamp)` unique key plays the part of our `periodic_runs` key.
"""

from __future__ import annotations

import abc
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ghsync.domain.errors import RetryLater as RetryLater  # re-exported: handlers raise it

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed")

RECONCILE_TASK = "reconcile"

# A task's body: receives the job's JSON arguments.
TaskHandler = Callable[[Mapping[str, Any]], None]
# A periodic task's body: receives the start of the period it runs for (UTC).
PeriodicHandler = Callable[[datetime], None]

# The argument a periodic task's job carries: the period start, ISO 8601.
PERIOD_START_ARG = "period_start"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt n waits min(max_delay, base_delay * 2**(n-1)), less up to `jitter`."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2  # fraction of the delay removed at random, so failing jobs don't retry in step

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next one."""
        raw = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        draw: float = (rng or random).random()
        return raw * (1 - self.jitter * draw)


@dataclass(frozen=True)
class JobInfo:
    """One job as the admin API and tests see it."""

    id: int
    task: str
    status: JobStatus
    args: dict[str, Any]
    lock: str | None
    queueing_lock: str | None
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class JobStats:
    """Jobs by status, for /healthz, metrics and admin.

    `oldest_due_age_seconds` is how long the oldest queued job has been due (None when none is):
    the backlog signal, since delayed jobs waiting for their time are not a backlog.
    """

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    oldest_due_age_seconds: float | None = None


@dataclass(frozen=True)
class LockState:
    """Whether jobs holding one lock (a project's reconciles) are waiting or running now."""

    queued: bool = False
    running: bool = False


@dataclass(frozen=True)
class PeriodicTask:
    """A periodic task as declared: its name (also its task name) and its period in seconds."""

    name: str
    every_seconds: float


def reconcile_locks(project_id: str) -> tuple[str, str]:
    """(lock, queueing_lock) of a project's reconcile job.

    The lock is the bare project id so that any future per-project task serialises with reconcile;
    the queueing lock names the task, so only reconcile requests coalesce with each other.
    """
    return project_id, f"{RECONCILE_TASK}:{project_id}"


def periodic_queueing_lock(name: str) -> str:
    """The queueing lock of a periodic task's jobs: a backlog never holds two periods of one task."""
    return f"periodic:{name}"


def period_start(now: datetime, every_seconds: float) -> datetime:
    """The start of the period containing `now`: floor(now / every) * every, in whole microseconds.

    Integer arithmetic, so every process computes the very same instant (it is a primary key).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    every = round(every_seconds * 1_000_000)
    if every <= 0:
        raise ValueError("every_seconds must be at least a microsecond")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    elapsed = (now - epoch) // timedelta(microseconds=1)
    return epoch + timedelta(microseconds=elapsed - elapsed % every)


class JobQueue(abc.ABC):
    """The port. Register handlers, then defer; nothing runs until a worker starts (or `run_until_idle`).

    Adapters call `super().__init__()`; `start`/`stop` run `run_worker` on a background thread
    (for `ghsync serve`, where the API owns the main thread).
    """

    def __init__(self) -> None:
        self._background_stop = threading.Event()
        self._background: threading.Thread | None = None
        self._handlers: dict[str, TaskHandler] = {}
        self._periodic: dict[str, PeriodicTask] = {}
        self._registry_lock = threading.Lock()

    # ---- declaring -----------------------------------------------------------------------------

    def register(self, task: str, fn: TaskHandler) -> None:
        """Make `task` deferrable and runnable here; `fn(args)` runs each of its jobs."""
        with self._registry_lock:
            if task in self._handlers:
                raise ValueError(f"task {task!r} is already registered")
            self._handlers[task] = fn

    def periodic(self, name: str, every_seconds: float, fn: PeriodicHandler) -> None:
        """Run `fn(period_start)` once per period of `every_seconds` per deployment while workers run.

        `name` is also the task name of its jobs. A failed run is not retried (the next period is the
        retry), and a period whose predecessor's job is still queued is folded into that job.
        """
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")

        def run(args: Mapping[str, Any]) -> None:
            fn(datetime.fromisoformat(str(args[PERIOD_START_ARG])))

        self.register(name, run)
        with self._registry_lock:
            self._periodic[name] = PeriodicTask(name, every_seconds)

    def _handler(self, task: str) -> TaskHandler | None:
        with self._registry_lock:
            return self._handlers.get(task)

    def _require_registered(self, task: str) -> None:
        with self._registry_lock:
            if task not in self._handlers:
                raise ValueError(f"unknown task {task!r}; known: {sorted(self._handlers)}")

    def _periodic_tasks(self) -> list[PeriodicTask]:
        with self._registry_lock:
            return list(self._periodic.values())

    # ---- producing -----------------------------------------------------------------------------

    @abc.abstractmethod
    def defer(
        self,
        task: str,
        args: Mapping[str, Any],
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        delay: float = 0,
    ) -> bool:
        """Record a job (durably, before returning). True when a job was queued; False when a job with
        `queueing_lock` was queued already (procrastinate's `AlreadyEnqueued`), see the module doc."""

    def request_reconcile(self, project_id: str, reason: str | None = None, *, delay: float = 0) -> None:
        """Ask for a reconcile of `project_id`; durable when it returns; a no-op while one is queued.

        `reason` is accepted and ignored: the requester records reasons in the database (the outbox).
        """
        del reason
        lock, queueing_lock = reconcile_locks(project_id)
        self.defer(
            RECONCILE_TASK, {"project_id": project_id}, lock=lock, queueing_lock=queueing_lock, delay=delay
        )

    # ---- running -------------------------------------------------------------------------------

    @abc.abstractmethod
    def run_worker(self, stop_event: threading.Event, *, threads: int | None = None) -> None:
        """Run jobs and claim periodic tasks until `stop_event` is set, then finish running jobs and return.

        `threads` overrides the adapter's configured concurrency.
        """

    def start(self, threads: int | None = None) -> None:
        """Run the worker on a background thread until `stop()`."""
        if self._background is not None and self._background.is_alive():
            raise RuntimeError("the worker is already running")
        self._background_stop = threading.Event()
        self._background = threading.Thread(
            target=self.run_worker,
            args=(self._background_stop,),
            kwargs={"threads": threads},
            name="ghsync-worker",
            daemon=True,
        )
        self._background.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the background worker gracefully (running jobs finish); True when it has stopped."""
        self._background_stop.set()
        if self._background is None:
            return True
        self._background.join(timeout)
        stopped = not self._background.is_alive()
        if stopped:
            self._background = None
        return stopped

    @abc.abstractmethod
    def run_until_idle(self) -> int:
        """Run due jobs in the calling thread until none is runnable now; returns how many ran."""

    # ---- observing -----------------------------------------------------------------------------

    @abc.abstractmethod
    def stats(self) -> JobStats: ...

    def counts(self) -> dict[str, int]:
        """Jobs by status (every status present, zeros included), for /healthz."""
        stats = self.stats()
        return {
            "queued": stats.queued,
            "running": stats.running,
            "succeeded": stats.succeeded,
            "failed": stats.failed,
        }

    @abc.abstractmethod
    def lock_state(self, lock: str) -> LockState:
        """Queued/running jobs of one lock; `reconcile_state` is the per-project form."""

    def reconcile_state(self, project_id: str) -> LockState:
        return self.lock_state(reconcile_locks(project_id)[0])

    @abc.abstractmethod
    def jobs(self, status: JobStatus | None = None, limit: int = 100) -> list[JobInfo]:
        """The newest jobs first, optionally of one status."""
