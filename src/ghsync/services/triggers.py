"""Sync triggers and the operations log: request a reconcile, say what served it, and the admin views.

A trigger never syncs by itself: it writes one outbox row (`uow.request_reconcile`) in its own unit of
work and the queue is told after the commit, like every other requester (versions, webhooks, polling).
Requests coalesce: a reconcile serves every request pending when it read the project, so several
request ids may name the one operation that served them. The admin views read the operations table
(the plan's `github_sync_operations`) and derive each project's state as its status page does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from ghsync.domain.errors import Conflict, InvalidInput, NotFound
from ghsync.domain.operations import AuditEntry, OperationStatus, ReconcileRequest, SyncOperation
from ghsync.domain.sync import SyncState, derive_state
from ghsync.observability.logging import get_logger
from ghsync.ports.jobs import JobQueue
from ghsync.ports.uow import UnitOfWork, UnitOfWorkFactory
from ghsync.services.projects import (
    Page,
    _check_limit,
    _decode_cursor,
    _encode_cursor,
    parse_project_id,
)

log = get_logger(__name__)

TRIGGER_REASON = "api_trigger"
RETRY_REASON = "retry_failed"
OPERATION_STATUSES: tuple[str, ...] = get_args(OperationStatus)
# The window of the operation counts in the admin status (a day of traffic, as a dashboard shows it).
STATUS_WINDOW = timedelta(hours=24)

RequestState = Literal["pending", "served"]


@dataclass(frozen=True)
class RequestStatus:
    """A reconcile request and, once served, the operation that served it."""

    request: ReconcileRequest
    state: RequestState
    operation: SyncOperation | None


@dataclass(frozen=True)
class SyncOverview:
    """GET /v1/admin/github/sync-status: projects by state, recent operations by status, jobs."""

    projects_total: int
    projects_linked: int
    projects_by_state: dict[str, int]
    operations_by_status: dict[str, int]
    operations_since: datetime
    pending_requests: int
    jobs: dict[str, int]


class SyncTriggers:
    """Request reconciles on demand, look requests up, and the admin views of the operations log."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        queue: JobQueue,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._now = clock

    # --- per project -----------------------------------------------------------------------------

    def trigger(self, project_id: str, *, actor: str = "api") -> ReconcileRequest:
        """Request a reconcile of a linked, enabled project: one outbox row and its audit entry."""
        key = parse_project_id(project_id)
        with self._uow() as uow:
            project = uow.projects.get(key)
            if project is None:
                raise NotFound(f"project {key} not found")
            if project.link is None:
                raise Conflict("project is not linked to a GitHub repository", code="not_linked")
            if not project.link.enabled:
                raise Conflict("sync is disabled for this project; enable it first", code="sync_disabled")
            request = uow.request_reconcile(key, TRIGGER_REASON)
            uow.audit.add(AuditEntry(actor, "github.sync_trigger", key, {"request_id": request.id}))
            uow.commit()
        log.info("sync_triggered", project_id=key, request_id=request.id, actor=actor)
        return request

    def request_status(self, project_id: str, request_id: str) -> RequestStatus:
        """The request, pending or with the operation that served it (404 unless it is this project's)."""
        key = parse_project_id(project_id)
        with self._uow() as uow:
            if uow.projects.get(key) is None:
                raise NotFound(f"project {key} not found")
            request = uow.requests.get(request_id)
            if request is None or request.project_id != key:
                raise NotFound(f"reconcile request {request_id!r} not found for project {key}")
            operation = uow.operations.get(request.operation_id) if request.operation_id else None
        return RequestStatus(request, "served" if request.operation_id else "pending", operation)

    # --- admin -----------------------------------------------------------------------------------

    def operations(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        project_id: str | None = None,
        status: str | None = None,
        operation_type: str | None = None,
    ) -> Page[SyncOperation]:
        """The operations log, newest first, filtered by project, status and type."""
        _check_limit(limit)
        key = parse_project_id(project_id) if project_id is not None else None
        if status is not None and status not in OPERATION_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(OPERATION_STATUSES)}", code="invalid_status"
            )
        before = None
        if cursor is not None:
            at, last = _decode_cursor(cursor, 2)
            try:
                before = (datetime.fromisoformat(at), last)
            except ValueError:
                raise InvalidInput(
                    f"cursor {cursor!r} is not one this API returned", code="invalid_cursor"
                ) from None
        with self._uow() as uow:
            rows = uow.operations.recent(
                limit=limit + 1,
                project_id=key,
                status=status,
                operation_type=operation_type,
                before=before,
            )
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last_row = rows[-1]
            assert last_row.created_at is not None and last_row.id is not None  # stored rows have both
            next_cursor = _encode_cursor(last_row.created_at.isoformat(), last_row.id)
        return Page(rows, next_cursor)

    def overview(self) -> SyncOverview:
        """Every project's state (as its status page derives it), counted, and the last day's operations."""
        since = self._now() - STATUS_WINDOW
        states: Counter[str] = Counter({state.value: 0 for state in SyncState})
        with self._uow() as uow:
            project_ids = uow.projects.ids()
            facts = [self._facts(uow, key) for key in project_ids]
            operations = uow.operations.counts_by_status(since=since)
            pending = uow.requests.pending_projects()
        linked = 0
        for fact in facts:
            linked += fact.linked
            jobs = self._queue.reconcile_state(fact.id)
            # The same derivation as the project's status page (LinkService.status).
            state = derive_state(
                enabled=fact.enabled,
                open_conflict=fact.open_conflict,
                job_running=jobs.running,
                job_queued=jobs.queued,
                last_operation_failed=fact.last_status == "failed",
                plan_held=fact.last_status == "held",
            )
            states[state.value] += 1
        return SyncOverview(
            projects_total=len(project_ids),
            projects_linked=linked,
            projects_by_state=dict(states),
            operations_by_status={status: operations.get(status, 0) for status in OPERATION_STATUSES},
            operations_since=since,
            pending_requests=len(pending),
            jobs=self._queue.counts(),
        )

    def retry_failed(self, *, actor: str = "admin") -> list[ReconcileRequest]:
        """Request a reconcile of every linked, enabled project whose last operation failed (one commit)."""
        requests: list[ReconcileRequest] = []
        with self._uow() as uow:
            for key in uow.projects.ids():
                fact = self._facts(uow, key)
                if fact.enabled and fact.last_status == "failed":
                    requests.append(uow.request_reconcile(key, RETRY_REASON))
            uow.audit.add(
                AuditEntry(
                    actor,
                    "github.retry_failed_syncs",
                    None,
                    {"requests": {r.project_id: r.id for r in requests}},
                )
            )
            uow.commit()
        log.info("retry_failed_syncs", actor=actor, projects=len(requests))
        return requests

    @staticmethod
    def _facts(uow: UnitOfWork, key: str) -> _ProjectFacts:
        project = uow.projects.get(key)
        link = project.link if project else None
        last = uow.operations.latest(key)
        return _ProjectFacts(
            key,
            linked=link is not None,
            enabled=link is not None and link.enabled,
            open_conflict=link is not None and uow.conflicts.open_for(key) is not None,
            last_status=last.status if last else None,
        )


@dataclass(frozen=True)
class _ProjectFacts:
    """What a project's state is derived from, besides its jobs."""

    id: str
    linked: bool
    enabled: bool
    open_conflict: bool
    last_status: str | None
