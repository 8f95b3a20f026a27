"""The tables: the plan's projects columns and github_sync_operations, plus what the design needs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ghsync.adapters.db.base import Base, JSONType, UTCDateTime, utcnow

# BIGINT autoincrement keys; SQLite only autoincrements INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class ProjectRow(Base):
    """A platform project, its GitHub link (the plan's columns) and its SHA tracking."""

    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    github_repo_owner: Mapped[str | None] = mapped_column(String(255))
    github_repo_name: Mapped[str | None] = mapped_column(String(255))
    github_repository_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # survives renames
    github_branch: Mapped[str | None] = mapped_column(String(255))  # read from GitHub, never assumed
    github_installation_id: Mapped[int | None] = mapped_column(BigInteger)
    github_sync_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    github_sync_mode: Mapped[str] = mapped_column(String(20), server_default="protected_pr")
    github_conflict_strategy: Mapped[str] = mapped_column(String(20), server_default="manual")
    github_webhook_secret: Mapped[str | None] = mapped_column(String(255))  # encrypted envelope
    github_branch_protected: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    github_allow_force_push: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    github_hold_force_pushes: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    github_pr_number: Mapped[int | None] = mapped_column(Integer)  # the open ghsync/<project> PR
    github_pr_url: Mapped[str | None] = mapped_column(String(512))

    last_remote_main_sha: Mapped[str | None] = mapped_column(String(40))
    last_synced_main_sha: Mapped[str | None] = mapped_column(String(40))
    last_outbound_base_sha: Mapped[str | None] = mapped_column(String(40))
    last_github_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    storage_mode: Mapped[str] = mapped_column(String(20), server_default="github_primary")
    s3_canonical_sha: Mapped[str | None] = mapped_column(String(40))
    last_s3_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VersionRow(Base):
    """An index of the local store's versions (the store's commits are the truth)."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("project_id", "number", name="uq_versions_project_number"),
        Index("ix_versions_project_commit", "project_id", "commit_sha"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    commit_sha: Mapped[str] = mapped_column(String(40))
    tree_sha: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(10))  # local | github
    author_name: Mapped[str | None] = mapped_column(String(255))
    author_email: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncPairRow(Base):
    """A local version and a GitHub commit whose trees are identical; the newest is the base."""

    __tablename__ = "sync_pairs"
    __table_args__ = (Index("ix_sync_pairs_project_id", "project_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    github_repository_id: Mapped[int] = mapped_column(BigInteger)  # pairs of an earlier link stay apart
    local_commit_sha: Mapped[str] = mapped_column(String(40))
    github_commit_sha: Mapped[str] = mapped_column(String(40))
    tree_sha: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDeliveryRow(Base):
    """A GitHub delivery id seen, for deduplication when Redis is not configured."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_expires_at", "expires_at"),
        # A project's newest deliveries first (the hook's health view; bench/webhook_health.py).
        Index("ix_webhook_deliveries_project_received", "project_id", "received_at"),
    )

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))  # received | queued | ignored
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConflictRow(Base):
    """A divergence the conflict strategy could not settle alone, kept until resolved."""

    __tablename__ = "conflicts"
    __table_args__ = (Index("ix_conflicts_project_status", "project_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    base_local_commit_sha: Mapped[str | None] = mapped_column(String(40))
    base_github_commit_sha: Mapped[str | None] = mapped_column(String(40))
    local_commit_sha: Mapped[str | None] = mapped_column(String(40))
    github_commit_sha: Mapped[str | None] = mapped_column(String(40))
    paths: Mapped[list[str]] = mapped_column(JSONType, default=list)
    strategy: Mapped[str | None] = mapped_column(String(20))
    resolution: Mapped[str | None] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditLogRow(Base):
    """Who did what to which project: links, unlinks, forced updates, conflict resolutions."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_project_at", "project_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ReconcileRequestRow(Base):
    """The outbox: a reconcile request, written in the requester's transaction, pending until served."""

    __tablename__ = "reconcile_requests"
    __table_args__ = (Index("ix_reconcile_requests_pending", "project_id", "operation_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    operation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the operation that served it


class SyncOperationRow(Base):
    """The plan's github_sync_operations: every sync operation, for debugging and monitoring."""

    __tablename__ = "github_sync_operations"
    __table_args__ = (Index("idx_github_sync_project_status", "project_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    operation_type: Mapped[str] = mapped_column(String(50))  # push | pull | conflict | webhook ...
    status: Mapped[str] = mapped_column(String(50))  # pending|processing|success|failed|cancelled
    # to_github | from_github | none. The plan says VARCHAR(10), which cannot hold 'from_github' (11).
    direction: Mapped[str] = mapped_column(String(16))

    github_commit_sha: Mapped[str | None] = mapped_column(String(40))
    github_commit_message: Mapped[str | None] = mapped_column(Text)
    github_author_name: Mapped[str | None] = mapped_column(String(255))
    github_author_email: Mapped[str | None] = mapped_column(String(255))

    local_version_id: Mapped[str | None] = mapped_column(String(255))
    local_commit_sha: Mapped[str | None] = mapped_column(String(40))

    files_changed: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    insertions: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    deletions: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    conflicts_detected: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)

    error_message: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(50))
    retry_count: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONType, server_default=text("'{}'"), default=dict
    )


# The plan's indexes, newest first (declared after the class to use column expressions).
Index("idx_github_sync_created_at", SyncOperationRow.created_at.desc())
Index(
    "idx_github_sync_operation_type",
    SyncOperationRow.operation_type,
    SyncOperationRow.created_at.desc(),
)


class JobRow(Base):
    """A job of the embedded runner: at most one queued and one running per lock (project)."""

    __tablename__ = "jobs"
    __table_args__ = (
        # One pending job per queueing lock: further requests coalesce into it.
        Index(
            "uq_jobs_queueing_lock_queued",
            "queueing_lock",
            unique=True,
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        # One running job per lock (project): the database refuses a second even if two claims race.
        Index(
            "uq_jobs_lock_running",
            "lock",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_jobs_status_run_at", "status", "run_at"),
        Index("ix_jobs_lock_status", "lock", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(64))
    lock: Mapped[str | None] = mapped_column(String(255))
    queueing_lock: Mapped[str | None] = mapped_column(String(255))
    args: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20))  # queued|running|succeeded|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)


class PeriodicRunRow(Base):
    """One claimed period of a periodic task: the primary key lets exactly one process run each period."""

    __tablename__ = "periodic_runs"

    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    worker_id: Mapped[str | None] = mapped_column(String(64))


class ThrottleStateRow(Base):
    """Per-installation rate-limit facts shared by every process: the cool-down and the last quota seen."""

    __tablename__ = "throttle_state"

    installation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    cooldown_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cooldown_kind: Mapped[str | None] = mapped_column(String(20))  # primary | secondary
    quota_limit: Mapped[int | None] = mapped_column(Integer)
    quota_remaining: Mapped[int | None] = mapped_column(Integer)
    quota_used: Mapped[int | None] = mapped_column(Integer)
    quota_resource: Mapped[str | None] = mapped_column(String(64))
    quota_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quota_observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationRow(Base):
    """The notifications outbox: an event for the platform, written with the outcome it reports and
    posted later (GHSYNC_NOTIFY_URL) with exponential backoff."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|delivered|failed|skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
