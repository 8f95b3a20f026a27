"""The record of one sync operation (the plan's github_sync_operations row), an audit entry, a delivery,
a recorded conflict, and a reconcile request (pure values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

OperationStatus = Literal["pending", "processing", "success", "failed", "cancelled", "held"]
Direction = Literal["to_github", "from_github", "none"]


@dataclass(frozen=True, slots=True)
class SyncOperation:
    """One sync operation with every field the plan lists; `metadata` carries the transport, request
    counts, the plan and anything else worth keeping for debugging."""

    project_id: str | None
    operation_type: str
    status: OperationStatus
    direction: Direction
    id: str | None = None  # assigned when recorded
    github_commit_sha: str | None = None
    github_commit_message: str | None = None
    github_author_name: str | None = None
    github_author_email: str | None = None
    local_version_id: str | None = None
    local_commit_sha: str | None = None
    files_changed: int = 0
    insertions: int = 0
    deletions: int = 0
    conflicts_detected: int = 0
    error_message: str | None = None
    error_code: str | None = None
    retry_count: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    created_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    project_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


DeliveryStatus = Literal["received", "queued", "ignored", "processed", "failed"]


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A GitHub delivery (`X-GitHub-Delivery`) seen, kept until `expires_at` for deduplication."""

    delivery_id: str
    event: str
    status: DeliveryStatus
    expires_at: datetime
    action: str | None = None
    project_id: str | None = None
    installation_id: int | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    """A divergence the strategy could not settle alone, kept until resolved."""

    project_id: str
    id: str | None = None
    status: Literal["open", "resolved"] = "open"
    base_local_commit_sha: str | None = None
    base_github_commit_sha: str | None = None
    local_commit_sha: str | None = None
    github_commit_sha: str | None = None
    paths: tuple[str, ...] = ()
    strategy: str | None = None
    resolution: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReconcileRequest:
    """One request for a reconcile (an outbox row): why, when, and which operation served it."""

    id: str
    project_id: str
    reason: str
    requested_at: datetime
    operation_id: str | None = None
