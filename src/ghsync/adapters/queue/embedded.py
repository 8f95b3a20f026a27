"""The embedded job runner: the jobs port served in-process from the `jobs` table (SQLite or PostgreSQL).

How the port's promises are kept:

- Claiming is one short transaction: `BEGIN IMMEDIATE` on SQLite (writers are serialised), and
  `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL. A job is claimable when it is queued, due, and
  no job with its `lock` is running; a partial unique index (one running job per lock) makes the
  database refuse a second one even if two claims race.
- One queued job per queueing lock uses the partial unique index on `queueing_lock` for queued jobs:
  a request finds the queued job (and only brings its `run_at` forward) or inserts one; a racing
  insert fails on the index and the request retries, finding the winner's job.
- Workers heartbeat their running jobs from a dedicated thread. Any worker, at start-up and every
  `sweep_interval`, puts back `running` jobs whose heartbeat is older than `stale_after` (their worker
  died, e.g. `kill -9`), so they run again. A stall on the last attempt marks the job failed, so a
  job that kills its worker can't loop forever.
- Finishing a job checks that this worker still owns it (status running, our worker id): a worker
  that was presumed dead and comes back does not overwrite what happened since.
- Periodic tasks: each worker process computes the current period of each task and claims it by
  inserting `(task, period_start)` into `periodic_runs` (its primary key), deferring the period's
  job in the same transaction. Of several processes exactly one insert succeeds, so each period
  runs once per deployment; the others see the key violation and move on to the next period.
- Times come from this process's clock (UTC); with several hosts on one PostgreSQL, keep clocks in sync.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from ghsync.adapters.db.base import utcnow
from ghsync.adapters.db.engine import is_sqlite, session_factory, write_session
from ghsync.adapters.db.models import JobRow, PeriodicRunRow
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

MAX_ERROR_CHARS = 8000
_DEFER_RACE_RETRIES = 10
# `_queued_already`'s read, built once: every webhook batch runs it for each project it requests.
_QUEUED_BY_LOCK = select(JobRow.task, JobRow.run_at, JobRow.started_at).where(
    JobRow.queueing_lock == bindparam("queueing_lock"), JobRow.status == "queued"
)


@dataclass(frozen=True)
class EmbeddedQueueSettings:
    """Tuning of the embedded runner; the defaults suit production, tests shrink the intervals."""

    threads: int = 2
    poll_interval: float = 0.5  # how often idle threads look for due jobs another process queued
    heartbeat_interval: float = 5.0
    stale_after: float = 60.0  # a running job without a heartbeat for this long is presumed lost
    sweep_interval: float = 15.0  # how often a worker looks for stalled jobs and prunes old ones
    keep_succeeded: float = 7 * 24 * 3600.0  # succeeded jobs are deleted after this; failed ones stay
    stop_timeout: float | None = None  # graceful stop waits this long for running jobs (None: forever)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        if min(self.poll_interval, self.heartbeat_interval, self.sweep_interval) <= 0:
            raise ValueError("intervals must be positive")
        if self.stale_after < 2 * self.heartbeat_interval:
            # A live worker must get at least two heartbeats in before its jobs count as stalled.
            raise ValueError("stale_after must be at least twice heartbeat_interval")


@dataclass(frozen=True)
class _Claimed:
    id: int
    task: str
    args: dict[str, Any]
    attempts: int
    max_attempts: int


def _json_copy(args: Mapping[str, Any]) -> dict[str, Any]:
    # Fail in the caller, not in a worker later, when the arguments are not JSON.
    return cast(dict[str, Any], json.loads(json.dumps(dict(args))))


def _format_error(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    if len(text) > MAX_ERROR_CHARS:
        # Keep the end: the exception line matters more than the outer frames.
        text = "...\n" + text[-MAX_ERROR_CHARS:]
    return text


class EmbeddedQueue(JobQueue):
    """The jobs port on the ghsync database, run by threads of this process."""

    def __init__(
        self,
        engine: Engine,
        *,
        settings: EmbeddedQueueSettings | None = None,
        rng: random.Random | None = None,
        worker_id: str | None = None,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._sqlite = is_sqlite(engine)
        self._sessions = session_factory(engine)
        # `_queued_already`'s connection: on PostgreSQL its one statement runs outside a transaction (no
        # BEGIN, no ROLLBACK: two round trips fewer). SQLite's are in-process; its connections stay as
        # `make_engine` set them, since returning one from AUTOCOMMIT would turn sqlite3's own BEGINs on.
        self._reads = engine if self._sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")
        self._settings = settings or EmbeddedQueueSettings()
        self._rng = rng or random.Random()
        self.worker_id = worker_id or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # The period each periodic task was last claimed for (by us or by another process).
        self._claimed_periods: dict[str, datetime] = {}
        self._running: set[int] = set()  # ids of jobs this process runs now (heartbeat them)
        self._running_lock = threading.Lock()
        # Woken when a job is deferred or finished here, so local work starts without waiting a poll.
        self._wakeup = threading.Condition()

    @property
    def settings(self) -> EmbeddedQueueSettings:
        return self._settings

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
        payload = _json_copy(args)
        run_at = utcnow() + timedelta(seconds=max(0.0, delay))
        if queueing_lock is not None and self._queued_already(task, queueing_lock, run_at):
            self._wake()
            return False
        for attempt in range(_DEFER_RACE_RETRIES):
            try:
                with write_session(self._engine) as session:
                    queued = self._defer_in(session, task, payload, lock, queueing_lock, run_at)
                break
            except IntegrityError:
                # PostgreSQL only: another request inserted the queued job first; find it next time.
                if queueing_lock is None or attempt == _DEFER_RACE_RETRIES - 1:
                    raise
        self._wake()
        return queued

    def _defer_in(
        self,
        session: Session,
        task: str,
        payload: dict[str, Any],
        lock: str | None,
        queueing_lock: str | None,
        run_at: datetime,
        max_attempts: int | None = None,
    ) -> bool:
        """Queue a job in `session`'s transaction; False when the queueing lock's job was queued already."""
        if queueing_lock is not None and self._join_queued(session, task, queueing_lock, run_at):
            return False
        session.add(
            JobRow(
                task=task,
                lock=lock,
                queueing_lock=queueing_lock,
                args=payload,
                status="queued",
                attempts=0,
                max_attempts=max_attempts or self._settings.retry.max_attempts,
                run_at=run_at,
                created_at=utcnow(),
            )
        )
        session.flush()  # a racing insert fails here, inside the caller's retry
        return True

    def _queued_already(self, task: str, queueing_lock: str, run_at: datetime) -> bool:
        """Whether the lock's queued job already runs by `run_at`, so joining it would change nothing.

        A read, without the write transaction (on SQLite, without taking the database's write lock):
        the common case of a busy project, whose every webhook asks again while a reconcile is queued.
        It is safe because the job is still queued after the caller committed what it wants served, so
        the reconcile it runs reads that. Anything else goes to `_join_queued`.
        """
        with self._reads.connect() as connection:
            row = connection.execute(_QUEUED_BY_LOCK, {"queueing_lock": queueing_lock}).first()
        return row is not None and row.task == task and (row.started_at is not None or row.run_at <= run_at)

    def _join_queued(self, session: Session, task: str, queueing_lock: str, run_at: datetime) -> bool:
        query = select(JobRow).where(JobRow.queueing_lock == queueing_lock, JobRow.status == "queued")
        if not self._sqlite:
            query = query.with_for_update()
        row = session.scalars(query).first()
        if row is None:
            return False
        if row.task != task:
            raise ValueError(f"queueing lock {queueing_lock!r} is held by a {row.task!r} job, not {task!r}")
        # A job that ran before and was put back (backoff, RetryLater) keeps its time: the runner chose it.
        # A job that never ran takes the earliest requested time. Its arguments are never touched.
        if row.started_at is None and run_at < row.run_at:
            row.run_at = run_at
        return True

    # ---- observing -------------------------------------------------------------------------

    def stats(self) -> JobStats:
        now = utcnow()
        with self._sessions() as session:
            counts: dict[str, int] = {
                status: count
                for status, count in session.execute(
                    select(JobRow.status, func.count()).group_by(JobRow.status)
                )
            }
            oldest_due = session.scalar(
                select(func.min(JobRow.run_at)).where(JobRow.status == "queued", JobRow.run_at <= now)
            )
        return JobStats(
            queued=counts.get("queued", 0),
            running=counts.get("running", 0),
            succeeded=counts.get("succeeded", 0),
            failed=counts.get("failed", 0),
            oldest_due_age_seconds=(now - oldest_due).total_seconds() if oldest_due is not None else None,
        )

    def lock_state(self, lock: str) -> LockState:
        with self._sessions() as session:
            statuses = set(
                session.scalars(
                    select(JobRow.status).where(JobRow.lock == lock, JobRow.status.in_(("queued", "running")))
                )
            )
        return LockState(queued="queued" in statuses, running="running" in statuses)

    def jobs(self, status: JobStatus | None = None, limit: int = 100) -> list[JobInfo]:
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        query = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(JobRow.status == status)
        with self._sessions() as session:
            return [
                JobInfo(
                    id=row.id,
                    task=row.task,
                    status=cast(JobStatus, row.status),
                    args=dict(row.args),
                    lock=row.lock,
                    queueing_lock=row.queueing_lock,
                    attempts=row.attempts,
                    max_attempts=row.max_attempts,
                    run_at=row.run_at,
                    created_at=row.created_at,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    last_error=row.last_error,
                )
                for row in session.scalars(query)
            ]

    # ---- running ---------------------------------------------------------------------------

    def run_until_idle(self) -> int:
        ran = 0
        while (job := self._claim()) is not None:
            self._execute(job)
            ran += 1
        return ran

    def run_worker(self, stop_event: threading.Event, *, threads: int | None = None) -> None:
        settings = self._settings
        threads = threads or settings.threads
        log.info("worker %s starting with %d threads", self.worker_id, threads)
        self._sweep()  # jobs of a worker that died before we started run again first
        executors = [
            threading.Thread(
                target=self._executor_loop, args=(stop_event,), name=f"ghsync-job-{i}", daemon=True
            )
            for i in range(threads)
        ]
        heartbeat_stop = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat_loop, args=(heartbeat_stop,), name="ghsync-job-heartbeat", daemon=True
        )
        heartbeat.start()
        for thread in executors:
            thread.start()
        next_sweep = time.monotonic() + settings.sweep_interval
        try:
            while not stop_event.is_set():
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep()
                    next_sweep = now + settings.sweep_interval
                next_periodic = self._run_due_periodic()
                stop_event.wait(max(0.0, min(next_sweep, next_periodic) - time.monotonic()))
        finally:
            stop_event.set()  # also when we leave through an exception: the executors must stop too
            self._wake()
            deadline = None if settings.stop_timeout is None else time.monotonic() + settings.stop_timeout
            for thread in executors:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            # Jobs still running past stop_timeout stay `running`; the next worker's sweep requeues them.
            heartbeat_stop.set()
            heartbeat.join()
            log.info("worker %s stopped", self.worker_id)

    def _executor_loop(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            try:
                job = self._claim()
            except Exception:
                log.exception("claiming a job failed; retrying after the poll interval")
                job = None
            if job is None:
                with self._wakeup:
                    if not stop_event.is_set():
                        self._wakeup.wait(self._settings.poll_interval)
                continue
            try:
                self._execute(job)
            except Exception:
                # Never lose the thread; the job, if still marked running, is recovered by a sweep.
                log.exception("running job %s failed outside its handler", job.id)

    def _wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    def _claim(self) -> _Claimed | None:
        now = utcnow()
        running = aliased(JobRow)
        lock_busy = (
            select(running.id).where(running.lock == JobRow.lock, running.status == "running").exists()
        )
        claimable = (
            JobRow.status == "queued",
            JobRow.run_at <= now,
            or_(JobRow.lock.is_(None), ~lock_busy),
        )
        # A plain read first: idle polls then take no write lock (SQLite has one for the whole file).
        with self._sessions() as session:
            if session.scalar(select(JobRow.id).where(*claimable).limit(1)) is None:
                return None
        query = select(JobRow).where(*claimable).order_by(JobRow.run_at, JobRow.id).limit(1)
        if not self._sqlite:
            query = query.with_for_update(skip_locked=True, of=JobRow)
        try:
            with write_session(self._engine) as session:
                row = session.scalars(query).first()
                if row is None:
                    return None
                row.status = "running"
                row.attempts += 1
                row.started_at = now
                row.heartbeat_at = now
                row.finished_at = None
                row.worker_id = self.worker_id
                claimed = _Claimed(row.id, row.task, dict(row.args), row.attempts, row.max_attempts)
        except IntegrityError:
            # PostgreSQL: another worker started a job with the same lock between our read and write.
            return None
        with self._running_lock:
            self._running.add(claimed.id)
        return claimed

    def _execute(self, job: _Claimed) -> None:
        handler = self._handler(job.task)
        try:
            if handler is None:
                raise LookupError(f"no handler for task {job.task!r} in this process")
            handler(job.args)
        except RetryLater as later:
            log.info("job %s (%s) asks to run again at %s: %s", job.id, job.task, later.at, later.reason)
            self._finish(job, requeue_at=later.at, count_attempt=False, error=f"retry later: {later}")
        except Exception as exc:
            error = _format_error(exc)
            if job.attempts >= job.max_attempts:
                log.error("job %s (%s) failed for good after %d attempts", job.id, job.task, job.attempts)
                self._finish(job, status="failed", error=error)
            else:
                delay = self._settings.retry.delay(job.attempts, self._rng)
                log.warning(
                    "job %s (%s) attempt %d failed; retry in %.2fs", job.id, job.task, job.attempts, delay
                )
                self._finish(job, requeue_at=utcnow() + timedelta(seconds=delay), error=error)
        else:
            self._finish(job, status="succeeded")
        finally:
            with self._running_lock:
                self._running.discard(job.id)
            self._wake()  # the job's lock is free: a queued job of the same project may be claimable

    def _finish(
        self,
        job: _Claimed,
        *,
        status: JobStatus | None = None,
        requeue_at: datetime | None = None,
        count_attempt: bool = True,
        error: str | None = None,
    ) -> None:
        try:
            with write_session(self._engine) as session:
                query = select(JobRow).where(JobRow.id == job.id)
                if not self._sqlite:
                    query = query.with_for_update()
                row = session.scalars(query).first()
                if row is None or row.status != "running" or row.worker_id != self.worker_id:
                    log.warning(
                        "job %s was taken from worker %s (presumed dead); result dropped",
                        job.id,
                        self.worker_id,
                    )
                    return
                if error is not None:
                    row.last_error = error
                if requeue_at is not None:
                    if not count_attempt:
                        row.attempts -= 1
                    self._requeue(session, row, requeue_at)
                else:
                    assert status is not None
                    row.status = status
                    row.finished_at = utcnow()
        except SQLAlchemyError:
            # The database is away: the job stays `running`, stops heartbeating, and a sweep requeues it.
            log.exception("recording the outcome of job %s failed", job.id)

    def _requeue(self, session: Session, row: JobRow, run_at: datetime) -> None:
        """Put a running job back in the queue, absorbing a queued twin (same queueing lock) if any."""
        if row.queueing_lock is not None:
            query = select(JobRow).where(
                JobRow.queueing_lock == row.queueing_lock, JobRow.status == "queued", JobRow.id != row.id
            )
            if not self._sqlite:
                query = query.with_for_update()
            twin = session.scalars(query).first()
            if twin is not None:
                # The twin never ran: the retry does the same work (handlers are level-triggered), so
                # keep the older job, its attempt count and its time (the backoff is a floor).
                session.delete(twin)
                session.flush()  # the twin must be gone before this row becomes queued (unique index)
        row.status = "queued"
        row.run_at = run_at
        row.worker_id = None
        row.heartbeat_at = None

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._settings.heartbeat_interval):
            try:
                self._heartbeat()
            except Exception:
                log.exception("heartbeat failed")

    def _heartbeat(self) -> None:
        with self._running_lock:
            ids = sorted(self._running)
        if not ids:
            return
        with write_session(self._engine) as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id.in_(ids), JobRow.worker_id == self.worker_id, JobRow.status == "running")
                .values(heartbeat_at=utcnow())
            )

    def _sweep(self) -> None:
        try:
            self.recover_stalled()
            self._prune()
        except Exception:
            log.exception("stalled-job sweep failed")

    def recover_stalled(self) -> int:
        """Requeue running jobs whose worker stopped heartbeating; returns how many were handled."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self._settings.stale_after)
        query = select(JobRow).where(
            JobRow.status == "running",
            or_(JobRow.heartbeat_at < cutoff, JobRow.heartbeat_at.is_(None) & (JobRow.started_at < cutoff)),
        )
        if not self._sqlite:
            query = query.with_for_update(skip_locked=True)
        with self._running_lock:
            mine = set(self._running)
        handled = 0
        with write_session(self._engine) as session:
            for row in session.scalars(query).all():
                if row.worker_id == self.worker_id and row.id in mine:
                    continue  # ours and alive (a late heartbeat), not stalled
                handled += 1
                message = f"worker {row.worker_id} stopped heartbeating during attempt {row.attempts}"
                if row.attempts >= row.max_attempts:
                    log.error("job %s stalled on its last attempt; marking it failed", row.id)
                    row.status = "failed"
                    row.finished_at = now
                    row.last_error = message + " (the last one)"
                else:
                    log.warning("job %s stalled (%s); requeueing it", row.id, message)
                    row.last_error = message
                    self._requeue(session, row, now)
        if handled:
            self._wake()
        return handled

    def _prune(self) -> None:
        now = utcnow()
        cutoff = now - timedelta(seconds=self._settings.keep_succeeded)
        with write_session(self._engine) as session:
            session.execute(delete(JobRow).where(JobRow.status == "succeeded", JobRow.finished_at < cutoff))
            for task in self._periodic_tasks():
                # Only the current period is ever claimed; keep one more for a host whose clock lags.
                every = timedelta(seconds=task.every_seconds)
                session.execute(
                    delete(PeriodicRunRow).where(
                        PeriodicRunRow.task == task.name,
                        PeriodicRunRow.period_start < period_start(now, task.every_seconds) - every,
                    )
                )

    def _run_due_periodic(self) -> float:
        """Claim the current period of each periodic task; returns when (monotonic) to look again."""
        now = utcnow()
        wait = 3600.0
        for task in self._periodic_tasks():
            start = period_start(now, task.every_seconds)
            if self._claimed_periods.get(task.name) != start:
                try:
                    if self._claim_period(task, start):
                        log.info("periodic task %s: claimed the period starting %s", task.name, start)
                    self._claimed_periods[task.name] = start  # ours or another process's: handled
                except SQLAlchemyError:
                    log.exception("claiming periodic task %s failed; retrying", task.name)
                    wait = min(wait, self._settings.poll_interval)
                    continue
            next_start = start + timedelta(seconds=task.every_seconds)
            wait = min(wait, (next_start - now).total_seconds())
        return time.monotonic() + max(0.0, wait)

    def _claim_period(self, task: PeriodicTask, start: datetime) -> bool:
        """Insert the period's row and defer its job in one transaction; False when another process has it."""
        try:
            with write_session(self._engine) as session:
                session.add(PeriodicRunRow(task=task.name, period_start=start, worker_id=self.worker_id))
                session.flush()  # the primary key decides who runs this period
                self._defer_in(
                    session,
                    task.name,
                    {PERIOD_START_ARG: start.isoformat()},
                    None,
                    periodic_queueing_lock(task.name),
                    utcnow(),
                    max_attempts=1,  # not retried: the next period is the retry
                )
        except IntegrityError:
            return False
        self._wake()
        return True
