"""The unit-of-work port in memory: the services' twin database for unit tests (one process).

It keeps the SQL adapter's promises that services rely on, and the contract suite proves it: a unit of
work sees its own writes, nothing is visible to others before `commit()`, leaving without committing
discards everything, units of work are serialised (like SQLite's `BEGIN IMMEDIATE`), compare-and-set
link/unlink, deduplicated deliveries, and reconciles told to the queue only after the commit.
Rows are frozen dataclasses, so a transaction's private copy is a shallow copy of each table.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from ghsync.adapters.db.ids import uuid7
from ghsync.domain.link import Link, OpenPullRequest, Project, SyncPair, Tracking
from ghsync.domain.models import VersionInfo
from ghsync.domain.notifications import Notification
from ghsync.domain.operations import (
    AuditEntry,
    ConflictRecord,
    DeliveryStatus,
    ReconcileRequest,
    SyncOperation,
    WebhookDelivery,
)
from ghsync.ports.uow import ReconcileNotifier

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Tables:
    projects: dict[str, Project] = field(default_factory=dict)
    versions: dict[tuple[str, str], VersionInfo] = field(default_factory=dict)
    pairs: list[tuple[str, SyncPair]] = field(default_factory=list)
    operations: dict[str, SyncOperation] = field(default_factory=dict)  # insertion order = age
    conflicts: dict[str, ConflictRecord] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    deliveries: dict[str, WebhookDelivery] = field(default_factory=dict)
    requests: dict[str, ReconcileRequest] = field(default_factory=dict)
    notifications: dict[str, Notification] = field(default_factory=dict)  # insertion order = age

    def copy(self) -> _Tables:
        return _Tables(
            projects=dict(self.projects),
            versions=dict(self.versions),
            pairs=list(self.pairs),
            operations=dict(self.operations),
            conflicts=dict(self.conflicts),
            audit=list(self.audit),
            deliveries=dict(self.deliveries),
            requests=dict(self.requests),
            notifications=dict(self.notifications),
        )


class MemoryDatabase:
    """The committed state every `MemoryUnitOfWork` of one test shares."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self.lock = threading.Lock()


class _Repo:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def _t(self) -> _Tables:
        return self._uow._tables()


class MemoryProjects(_Repo):
    def add(self, project: Project) -> None:
        if project.id in self._t.projects:
            raise ValueError(f"project {project.id} exists")
        self._t.projects[project.id] = project

    def get(self, project_id: str) -> Project | None:
        return self._t.projects.get(project_id)

    def page(self, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Project]:
        ordered = sorted(self._t.projects.values(), key=lambda p: (p.created_at, p.id), reverse=True)
        if after is not None:
            ordered = [p for p in ordered if (p.created_at, p.id) < after]
        return ordered[:limit]

    def ids(self) -> list[str]:
        return sorted(self._t.projects)

    def link(self, project_id: str, link: Link, *, webhook_secret: str, tracking: Tracking) -> bool:
        project = self._t.projects.get(project_id)
        if project is None or project.link is not None:
            return False
        self._t.projects[project_id] = replace(
            project, link=link, tracking=tracking, webhook_secret=webhook_secret, pull_request=None
        )
        return True

    def save_link(self, project_id: str, link: Link) -> None:
        self._t.projects[project_id] = replace(self._linked(project_id), link=link)

    def unlink(self, project_id: str) -> bool:
        project = self._t.projects.get(project_id)
        if project is None or project.link is None:
            return False
        self._t.projects[project_id] = replace(
            project, link=None, tracking=Tracking(), webhook_secret=None, pull_request=None
        )
        return True

    def set_tracking(self, project_id: str, tracking: Tracking) -> None:
        self._t.projects[project_id] = replace(self._linked(project_id), tracking=tracking)

    def set_pull_request(self, project_id: str, pull_request: OpenPullRequest | None) -> None:
        self._t.projects[project_id] = replace(self._linked(project_id), pull_request=pull_request)

    def sealed_secrets(self) -> list[tuple[str, str]]:
        return [(p.id, p.webhook_secret) for p in self._t.projects.values() if p.webhook_secret is not None]

    def set_webhook_secret(self, project_id: str, sealed: str) -> None:
        self._t.projects[project_id] = replace(self._linked(project_id), webhook_secret=sealed)

    def by_repository(self, repository_id: int) -> list[Project]:
        return self._linked_where(lambda link: link.repository_id == repository_id)

    def by_repositories(self, repository_ids: Collection[int]) -> list[Project]:
        wanted = frozenset(repository_ids)
        return self._linked_where(lambda link: link.repository_id in wanted)

    def by_installation(self, installation_id: int) -> list[Project]:
        return self._linked_where(lambda link: link.installation_id == installation_id)

    def _linked_where(self, keep: Callable[[Link], bool]) -> list[Project]:
        # Ordered by id, as the SQL adapter orders them.
        return sorted(
            (p for p in self._t.projects.values() if p.link is not None and keep(p.link)), key=lambda p: p.id
        )

    def _linked(self, project_id: str) -> Project:
        project = self._t.projects.get(project_id)
        if project is None or project.link is None:
            raise LookupError(f"project {project_id} is not linked")
        return project


class MemoryVersions(_Repo):
    def _of(self, project_id: str) -> list[VersionInfo]:
        return [v for (pid, _), v in self._t.versions.items() if pid == project_id]

    def max_number(self, project_id: str) -> int:
        return max((v.number for v in self._of(project_id)), default=0)

    def add_all(self, project_id: str, versions: Sequence[VersionInfo]) -> int:
        numbers = {v.number for v in self._of(project_id)}
        added = 0
        for version in versions:
            key = (project_id, version.id)
            if key in self._t.versions or version.number in numbers:
                continue  # the unique (project, number) and the primary key, as in SQL
            self._t.versions[key] = version
            numbers.add(version.number)
            added += 1
        return added

    def get(self, project_id: str, version_id: str) -> VersionInfo | None:
        return self._t.versions.get((project_id, version_id))

    def by_commit(self, project_id: str, commit_sha: str) -> VersionInfo | None:
        return next((v for v in self._of(project_id) if v.commit_sha == commit_sha), None)

    def latest(self, project_id: str) -> VersionInfo | None:
        found = self.page(project_id, limit=1)
        return found[0] if found else None

    def page(self, project_id: str, *, limit: int, before_number: int | None = None) -> list[VersionInfo]:
        ordered = sorted(self._of(project_id), key=lambda v: v.number, reverse=True)
        if before_number is not None:
            ordered = [v for v in ordered if v.number < before_number]
        return ordered[:limit]


class MemoryPairs(_Repo):
    def add(self, project_id: str, pair: SyncPair) -> None:
        if (project_id, pair.version_id) not in self._t.versions:
            # The SQL foreign key: a pair names a version the index already has.
            raise LookupError(f"version {pair.version_id} of project {project_id} is not indexed")
        self._t.pairs.append((project_id, replace(pair, created_at=pair.created_at or _now())))

    def latest(self, project_id: str, repository_id: int) -> SyncPair | None:
        mine = [p for pid, p in self._t.pairs if pid == project_id and p.repository_id == repository_id]
        return mine[-1] if mine else None

    def all(self, project_id: str) -> list[SyncPair]:
        return [p for pid, p in self._t.pairs if pid == project_id]

    def delete_all(self, project_id: str) -> int:
        before = len(self._t.pairs)
        self._t.pairs[:] = [(pid, p) for pid, p in self._t.pairs if pid != project_id]
        return before - len(self._t.pairs)


class MemoryOperations(_Repo):
    def add(self, operation: SyncOperation) -> str:
        operation_id = str(uuid.uuid4())
        self._t.operations[operation_id] = replace(
            operation, id=operation_id, created_at=operation.created_at or _now()
        )
        return operation_id

    def get(self, operation_id: str) -> SyncOperation | None:
        return self._t.operations.get(operation_id)

    def latest(self, project_id: str) -> SyncOperation | None:
        found = self.recent(limit=1, project_id=project_id)
        return found[0] if found else None

    def recent(
        self,
        *,
        limit: int,
        project_id: str | None = None,
        status: str | None = None,
        operation_type: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[SyncOperation]:
        # The SQL adapter's order: created_at, then id, newest first.
        newest_first = sorted(self._t.operations.values(), key=_operation_key, reverse=True)
        return [
            op
            for op in newest_first
            if (project_id is None or op.project_id == project_id)
            and (status is None or op.status == status)
            and (operation_type is None or op.operation_type == operation_type)
            and (before is None or _operation_key(op) < before)
        ][:limit]

    def counts_by_status(self, *, since: datetime | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self._t.operations.values():
            if since is None or _operation_key(op)[0] >= since:
                counts[op.status] = counts.get(op.status, 0) + 1
        return counts


def _operation_key(operation: SyncOperation) -> tuple[datetime, str]:
    assert operation.created_at is not None and operation.id is not None  # set by add()
    return operation.created_at, operation.id


class MemoryConflicts(_Repo):
    def add(self, conflict: ConflictRecord) -> str:
        conflict_id = str(uuid.uuid4())
        self._t.conflicts[conflict_id] = replace(
            conflict, id=conflict_id, created_at=conflict.created_at or _now()
        )
        return conflict_id

    def open_for(self, project_id: str) -> ConflictRecord | None:
        mine = [c for c in self._t.conflicts.values() if c.project_id == project_id and c.status == "open"]
        return mine[-1] if mine else None

    def resolve(self, conflict_id: str, *, resolution: str, at: datetime) -> bool:
        conflict = self._t.conflicts.get(conflict_id)
        if conflict is None or conflict.status != "open":
            return False
        self._t.conflicts[conflict_id] = replace(
            conflict, status="resolved", resolution=resolution, resolved_at=at
        )
        return True


class MemoryAudit(_Repo):
    def add(self, entry: AuditEntry) -> None:
        self._t.audit.append(replace(entry, at=entry.at or _now()))

    def for_project(self, project_id: str, *, limit: int = 100) -> list[AuditEntry]:
        return [e for e in reversed(self._t.audit) if e.project_id == project_id][:limit]


class MemoryDeliveries(_Repo):
    def record(self, delivery: WebhookDelivery) -> bool:
        existing = self._t.deliveries.get(delivery.delivery_id)
        if existing is not None and existing.status != "failed":
            return False
        self._t.deliveries[delivery.delivery_id] = replace(
            delivery, received_at=delivery.received_at or _now()
        )
        return True

    def record_all(self, deliveries: Sequence[WebhookDelivery]) -> set[str]:
        recorded: set[str] = set()
        seen: set[str] = set()
        for delivery in deliveries:
            if delivery.delivery_id not in seen and self.record(delivery):
                recorded.add(delivery.delivery_id)
            seen.add(delivery.delivery_id)
        return recorded

    def get(self, delivery_id: str) -> WebhookDelivery | None:
        return self._t.deliveries.get(delivery_id)

    def set_status(self, delivery_id: str, status: DeliveryStatus) -> None:
        existing = self._t.deliveries.get(delivery_id)
        if existing is not None:
            self._t.deliveries[delivery_id] = replace(existing, status=status)

    def purge_expired(self, now: datetime) -> int:
        expired = [key for key, d in self._t.deliveries.items() if d.expires_at <= now]
        for key in expired:
            del self._t.deliveries[key]
        return len(expired)

    def recent(self, project_id: str, *, limit: int, event: str | None = None) -> list[WebhookDelivery]:
        mine = [
            d
            for d in self._t.deliveries.values()
            if d.project_id == project_id and (event is None or d.event == event)
        ]
        # The SQL adapter's order: received_at (set by record()), then delivery id, newest first.
        mine.sort(key=lambda d: (d.received_at or _now(), d.delivery_id), reverse=True)
        return mine[:limit]


class MemoryReconcileRequests(_Repo):
    def add(self, project_id: str, reason: str) -> ReconcileRequest:
        if project_id not in self._t.projects:
            raise LookupError(f"project {project_id} does not exist")  # the SQL foreign key
        request = ReconcileRequest(id=str(uuid7()), project_id=project_id, reason=reason, requested_at=_now())
        self._t.requests[request.id] = request
        return request

    def get(self, request_id: str) -> ReconcileRequest | None:
        return self._t.requests.get(request_id)

    def pending(self, project_id: str) -> list[ReconcileRequest]:
        return [r for r in self._t.requests.values() if r.project_id == project_id and r.operation_id is None]

    def pending_projects(self) -> list[str]:
        return sorted({r.project_id for r in self._t.requests.values() if r.operation_id is None})

    def mark_served(self, project_id: str, request_ids: Sequence[str], operation_id: str) -> None:
        for request_id in request_ids:
            request = self._t.requests.get(request_id)
            if request is not None and request.project_id == project_id and request.operation_id is None:
                self._t.requests[request_id] = replace(request, operation_id=operation_id)


class MemoryNotifications(_Repo):
    def add(self, notification: Notification) -> None:
        self._t.notifications[notification.id] = notification

    def due(self, now: datetime, *, limit: int) -> list[Notification]:
        rows = [
            n for n in self._t.notifications.values() if n.status == "pending" and n.next_attempt_at <= now
        ]
        return rows[:limit]

    def save(self, notification: Notification) -> None:
        if notification.id in self._t.notifications:
            self._t.notifications[notification.id] = notification

    def recent(self, *, limit: int, project_id: str | None = None) -> list[Notification]:
        rows = [n for n in self._t.notifications.values() if project_id in (None, n.project_id)]
        return rows[::-1][:limit]

    def purge(self, before: datetime) -> int:
        gone = [
            k for k, n in self._t.notifications.items() if n.status != "pending" and n.created_at < before
        ]
        for key in gone:
            del self._t.notifications[key]
        return len(gone)


class MemoryUnitOfWork:
    """A private copy of the tables while open; `commit()` publishes it atomically."""

    def __init__(self, database: MemoryDatabase, notify: ReconcileNotifier | None = None) -> None:
        self._db = database
        self._notify = notify
        self._work: _Tables | None = None
        self._requested: list[str] = []
        self.projects = MemoryProjects(self)
        self.versions = MemoryVersions(self)
        self.pairs = MemoryPairs(self)
        self.operations = MemoryOperations(self)
        self.conflicts = MemoryConflicts(self)
        self.audit = MemoryAudit(self)
        self.deliveries = MemoryDeliveries(self)
        self.requests = MemoryReconcileRequests(self)
        self.notifications = MemoryNotifications(self)

    def _tables(self) -> _Tables:
        if self._work is None:
            raise RuntimeError("the unit of work is not open (use `with uow:`)")
        return self._work

    def __enter__(self) -> Self:
        self._db.lock.acquire()
        self._work = self._db.tables.copy()
        self._requested = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._work is None:
            return
        self._work = None
        self._requested = []
        self._db.lock.release()

    def commit(self) -> None:
        self._db.tables = self._tables()
        self._work = self._db.tables.copy()
        requested, self._requested = self._requested, []
        if self._notify is None:
            return
        for project_id in requested:
            try:
                self._notify(project_id)
            except Exception:  # as the SQL adapter: the outbox relay tells the queue again later
                log.exception("could not tell the queue about a reconcile of %s; the relay will", project_id)

    def rollback(self) -> None:
        self._tables()
        self._work = self._db.tables.copy()
        self._requested = []

    def request_reconcile(self, project_id: str, reason: str) -> ReconcileRequest:
        return self.request_reconciles([(project_id, reason)])[0]

    def request_reconciles(self, requests: Sequence[tuple[str, str]]) -> list[ReconcileRequest]:
        made = [self.requests.add(project_id, reason) for project_id, reason in requests]
        for request in made:
            if request.project_id not in self._requested:
                self._requested.append(request.project_id)
        return made


class MemoryUnitOfWorkFactory:
    def __init__(self, database: MemoryDatabase | None = None, notify: ReconcileNotifier | None = None):
        self.database = database or MemoryDatabase()
        self.notify = notify

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.database, self.notify)
