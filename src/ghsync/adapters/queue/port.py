"""Moved to `ghsync.ports.jobs`; this re-export keeps older imports working until they are updated."""

from __future__ import annotations

from ghsync.ports.jobs import (
    JOB_STATUSES,
    RECONCILE_TASK,
    JobInfo,
    JobQueue,
    JobStats,
    JobStatus,
    LockState,
    RetryLater,
    RetryPolicy,
    TaskHandler,
    reconcile_locks,
)

__all__ = [
    "JOB_STATUSES",
    "RECONCILE_TASK",
    "JobInfo",
    "JobQueue",
    "JobStats",
    "JobStatus",
    "LockState",
    "RetryLater",
    "RetryPolicy",
    "TaskHandler",
    "reconcile_locks",
]
