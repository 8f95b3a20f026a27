"""The jobs port: what ghsync asks of a job queue, whichever adapter (embedded or procrastinate) serves it.

Semantics every adapter keeps (the contract suite in tests/contract/test_jobs_contract.py proves them):

- `defer` is durable when it returns: the job is committed to the database.
- `lock`: at most one job per lock value runs at a time (reconcile uses the project id).
- `queueing_lock`: at most one *queued* job per value. A further request merges into it (see
  `merge_args`) and the job keeps the earliest `run_at`, unless the queued job has run before and was
  put back (a retry waiting out its backoff, a `RetryLater`): its `run_at` is a floor requests don't lower.
  A request while the job is running creates one new queued job, which runs after it.
- A handler that raises is retried with exponential backoff (`RetryPolicy`) until `max_attempts`;
  then the job is `failed` with `last_error`. `RetryLater(at)` reschedules without counting an attempt.
- Delivery is at least once: a job whose worker dies runs again, so handlers must be idempotent
  (reconcile is, by design).
"""

from __future__ import annotations

import abc
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ghsync.domain.errors import RetryLater as RetryLater  # re-exported: handlers raise it

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed")

RECONCILE_TASK = "reconcile"

# The reconcile body: (project id, the coalesced reasons, oldest first).
ReconcileHandler = Callable[[str, list[str]], None]
# Any other task: receives the job's JSON arguments.
TaskHandler = Callable[[dict[str, Any]], None]
PeriodicFn = Callable[[], None]

# Coalesced list arguments (reasons) stop growing here, so a storm of webhooks can't bloat one row.
MAX_MERGED_LIST_ITEMS = 100


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


def merge_args(queued: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The coalescing rule, shared by every adapter so they can't drift.

    List values are unioned in arrival order without duplicates (capped at MAX_MERGED_LIST_ITEMS);
    keys the queued job lacks are added; any other value keeps the queued job's.
    """
    merged = dict(queued)
    for key, value in new.items():
        old = merged.get(key)
        if isinstance(old, list) and isinstance(value, list):
            items = list(old)
            for item in value:
                if item not in items and len(items) < MAX_MERGED_LIST_ITEMS:
                    items.append(item)
            merged[key] = items
        elif key not in merged:
            merged[key] = value
    return merged


def reconcile_locks(project_id: str) -> tuple[str, str]:
    """(lock, queueing_lock) of a project's reconcile job.

    The lock is the bare project id so that any future per-project task serialises with reconcile;
    the queueing lock names the task, so only reconcile requests coalesce with each other.
    """
    return project_id, f"{RECONCILE_TASK}:{project_id}"


class JobQueue(abc.ABC):
    """The port. Handlers are given to the adapter's constructor; nothing runs until a worker starts.

    Adapters call `super().__init__()`; `start`/`stop` run `run_worker` on a background thread
    (for `ghsync serve`, where the API owns the main thread).
    """

    def __init__(self) -> None:
        self._background_stop = threading.Event()
        self._background: threading.Thread | None = None

    @abc.abstractmethod
    def defer(
        self,
        task: str,
        args: Mapping[str, Any],
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        delay: float = 0,
    ) -> None:
        """Record a job (durably, before returning); coalesces on `queueing_lock` as described above."""

    def request_reconcile(self, project_id: str, reason: str, delay: float = 0) -> None:
        """Ask for a reconcile of `project_id`; durable when it returns; coalesces with pending requests."""
        lock, queueing_lock = reconcile_locks(project_id)
        self.defer(
            RECONCILE_TASK,
            {"project_id": project_id, "reasons": [reason]},
            lock=lock,
            queueing_lock=queueing_lock,
            delay=delay,
        )

    @abc.abstractmethod
    def register_periodic(self, name: str, every_seconds: float, fn: PeriodicFn) -> None:
        """Run `fn` every `every_seconds` while a worker runs (first run when the worker starts).

        `fn` should be quick and idempotent (e.g. request reconciles, which coalesce): with several
        worker processes each may run it.
        """

    @abc.abstractmethod
    def run_worker(self, stop_event: threading.Event, *, threads: int | None = None) -> None:
        """Run jobs and periodic tasks until `stop_event` is set, then finish running jobs and return.

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
