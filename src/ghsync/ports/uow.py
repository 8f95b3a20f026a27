"""The unit-of-work port: one atomic transaction over every table a use case touches, and the outbox.

A service does its work inside `with uow_factory() as uow:` and calls `uow.commit()`; leaving the block
without committing rolls everything back. Each outcome is one commit: "record this delivery and request
a reconcile", or "store the pair, the operation, the audit row and the SHA columns".

`uow.request_reconcile(project_id, reason)` writes an outbox row in the caller's transaction; the queue
is told after the commit (and a periodic relay re-tells it about requests still pending, so a crash
between the commit and the queue can't lose one). The reconcile marks the requests it served with its
operation id, so a trigger's request id leads to the operation that served it.

Adapters: SQLAlchemy (SQLite, PostgreSQL) in `ghsync.adapters.db.uow`, in memory in
`ghsync.adapters.memory_uow`; tests/contract/test_uow_contract.py holds all three to this contract.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from ghsync.domain.link import Link, OpenPullRequest, Project, SyncPair, Tracking
from ghsync.domain.models import VersionInfo
from ghsync.domain.operations import (
    AuditEntry,
    ConflictRecord,
    DeliveryStatus,
    ReconcileRequest,
    SyncOperation,
    WebhookDelivery,
)
from ghsync.ports.notify import NotificationOutbox


class Projects(Protocol):
    def add(self, project: Project) -> None:
        """Insert a new project (with no link)."""

    def get(self, project_id: str) -> Project | None: ...

    def page(self, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Project]:
        """Newest first; `after` is the (created_at, id) of the last project of the previous page."""

    def ids(self) -> list[str]: ...

    def link(self, project_id: str, link: Link, *, webhook_secret: str, tracking: Tracking) -> bool:
        """Link an unlinked project (compare-and-set): False when it is linked already (or unknown)."""

    def save_link(self, project_id: str, link: Link) -> None:
        """Replace a linked project's link settings (a rename followed, a mode changed, ...)."""

    def unlink(self, project_id: str) -> bool:
        """Clear the link, its secret, its PR and its SHA columns; False when it was not linked."""

    def set_tracking(self, project_id: str, tracking: Tracking) -> None: ...

    def set_pull_request(self, project_id: str, pull_request: OpenPullRequest | None) -> None: ...

    def sealed_secrets(self) -> list[tuple[str, str]]:
        """(project id, sealed webhook secret) of every project that has one."""

    def set_webhook_secret(self, project_id: str, sealed: str) -> None: ...

    def by_repository(self, repository_id: int) -> list[Project]:
        """The projects linked to this GitHub repository id (webhooks name repositories by id)."""

    def by_repositories(self, repository_ids: Collection[int]) -> list[Project]:
        """The projects linked to any of these repository ids, ordered by id (one read for a batch)."""

    def by_installation(self, installation_id: int) -> list[Project]:
        """The projects linked through this GitHub App installation."""


class Versions(Protocol):
    """An index of the store's versions (the store's commits are the truth)."""

    def max_number(self, project_id: str) -> int:
        """The highest version number recorded, 0 when none is."""

    def add_all(self, project_id: str, versions: Sequence[VersionInfo]) -> int:
        """Record versions, skipping those recorded already (concurrent indexers); returns how many new."""

    def get(self, project_id: str, version_id: str) -> VersionInfo | None: ...

    def by_commit(self, project_id: str, commit_sha: str) -> VersionInfo | None: ...

    def latest(self, project_id: str) -> VersionInfo | None: ...

    def page(self, project_id: str, *, limit: int, before_number: int | None = None) -> list[VersionInfo]:
        """Newest first; `before_number` continues after the last version of the previous page."""


class Pairs(Protocol):
    def add(self, project_id: str, pair: SyncPair) -> None: ...

    def latest(self, project_id: str, repository_id: int) -> SyncPair | None:
        """The base of the next decision: the newest pair of this repository (pairs of an earlier link
        to another repository never count)."""

    def all(self, project_id: str) -> list[SyncPair]:
        """Oldest first."""

    def delete_all(self, project_id: str) -> int: ...


class Operations(Protocol):
    def add(self, operation: SyncOperation) -> str:
        """Record an operation; returns its id."""

    def get(self, operation_id: str) -> SyncOperation | None: ...

    def latest(self, project_id: str) -> SyncOperation | None: ...

    def recent(
        self,
        *,
        limit: int,
        project_id: str | None = None,
        status: str | None = None,
        operation_type: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[SyncOperation]:
        """Newest first (by created_at, then id); `before` is the (created_at, id) of the last operation
        of the previous page."""

    def counts_by_status(self, *, since: datetime | None = None) -> dict[str, int]:
        """How many operations of each status were created at or after `since` (all when None)."""


class Conflicts(Protocol):
    def add(self, conflict: ConflictRecord) -> str: ...

    def open_for(self, project_id: str) -> ConflictRecord | None: ...

    def resolve(self, conflict_id: str, *, resolution: str, at: datetime) -> bool:
        """Close an open conflict; False when it was not open."""


class Audit(Protocol):
    def add(self, entry: AuditEntry) -> None: ...

    def for_project(self, project_id: str, *, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""


class Deliveries(Protocol):
    def record(self, delivery: WebhookDelivery) -> bool:
        """Record a delivery; False when its id was seen and not failed (a duplicate to acknowledge).

        A delivery whose processing failed is recorded again (GitHub reuses the id when it redelivers).
        """

    def record_all(self, deliveries: Sequence[WebhookDelivery]) -> set[str]:
        """`record` for many at once (a batch of concurrent deliveries): the ids recorded. An id given
        twice is recorded once, as its first occurrence."""

    def get(self, delivery_id: str) -> WebhookDelivery | None: ...

    def set_status(self, delivery_id: str, status: DeliveryStatus) -> None: ...

    def purge_expired(self, now: datetime) -> int: ...

    def recent(self, project_id: str, *, limit: int, event: str | None = None) -> list[WebhookDelivery]:
        """A project's deliveries, newest first (by received_at), optionally of one event only."""


class ReconcileRequests(Protocol):
    """The outbox: reconcile requests, pending until an operation serves them."""

    def get(self, request_id: str) -> ReconcileRequest | None: ...

    def pending(self, project_id: str) -> list[ReconcileRequest]:
        """Oldest first."""

    def pending_projects(self) -> list[str]:
        """Projects with at least one pending request (what the relay re-tells the queue)."""

    def mark_served(self, project_id: str, request_ids: Sequence[str], operation_id: str) -> None: ...


class UnitOfWork(Protocol):
    @property
    def projects(self) -> Projects: ...

    @property
    def versions(self) -> Versions: ...

    @property
    def pairs(self) -> Pairs: ...

    @property
    def operations(self) -> Operations: ...

    @property
    def conflicts(self) -> Conflicts: ...

    @property
    def audit(self) -> Audit: ...

    @property
    def deliveries(self) -> Deliveries: ...

    @property
    def requests(self) -> ReconcileRequests: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""

    def commit(self) -> None:
        """Make every change of this unit of work durable at once, then tell the queue of requests."""

    def rollback(self) -> None: ...

    @property
    def notifications(self) -> NotificationOutbox: ...

    def request_reconcile(self, project_id: str, reason: str) -> ReconcileRequest:
        """Write an outbox row in this transaction; the queue hears of it after `commit()`."""

    def request_reconciles(self, requests: Sequence[tuple[str, str]]) -> list[ReconcileRequest]:
        """`request_reconcile` for many (project id, reason) at once, in order; the queue hears of each
        project once."""


UnitOfWorkFactory = Callable[[], UnitOfWork]
# What the unit of work tells after a commit that requested reconciles (bootstrap: the job queue).
ReconcileNotifier = Callable[[str], None]
