"""Routes that link a project to a GitHub repository, report its sync status, trigger syncs, and the
admin views of the operations log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ghsync.domain.operations import ReconcileRequest, SyncOperation
from ghsync.entrypoints.api.deps import container_of
from ghsync.entrypoints.api.limits import MAX_PAGE_SIZE
from ghsync.entrypoints.api.schemas import cursor_query
from ghsync.services.linking import LinkStatus
from ghsync.services.projects import parse_project_id
from ghsync.services.triggers import OPERATION_STATUSES

router = APIRouter(prefix="/v1/projects/{project_id}/github", tags=["github"])


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    # GitHub's naming rules, documented here; domain/sync.py's validate_repository_name enforces them
    # (`invalid_repository`), as the service does the modes (`invalid_sync_mode`, ...):
    # https://docs.github.com/en/repositories/creating-and-managing-repositories/about-repositories
    owner: str = Field(
        min_length=1,
        max_length=255,
        json_schema_extra={"maxLength": 39, "pattern": r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$"},
    )
    repo: str = Field(
        min_length=1,
        max_length=255,
        json_schema_extra={
            "maxLength": 100,
            # [A-Za-z0-9._-], but not "." or "..": a dot-only name has at least three dots.
            "pattern": r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*"
            r"|\.{3,})$",
        },
    )
    # Not strict: JSON Schema counts 35104.0 as an integer, so the API does too.
    installation_id: int | None = Field(default=None, gt=0, le=2**53 - 1, strict=False)
    sync_mode: str | None = Field(
        default=None, json_schema_extra={"enum": ["protected_pr", "hybrid", "direct_commit", None]}
    )
    conflict_strategy: str | None = Field(
        default=None,
        json_schema_extra={"enum": ["manual", "auto_merge", "local_wins", "github_wins", None]},
    )


@router.post("/link", status_code=201, response_model=LinkStatus)
async def link(project_id: str, body: LinkRequest, request: Request) -> LinkStatus:
    """Link the project to a repository the GitHub App is installed on; answers with the status."""
    status = await run_in_threadpool(
        container_of(request).links.link,
        parse_project_id(project_id),
        owner=body.owner,
        repo=body.repo,
        installation_id=body.installation_id,
        sync_mode=body.sync_mode,
        conflict_strategy=body.conflict_strategy,
    )
    return status


@router.delete("/unlink", response_model=LinkStatus)
def unlink(project_id: str, request: Request) -> LinkStatus:
    """Stop syncing; versions, history and the operations log are kept."""
    return container_of(request).links.unlink(parse_project_id(project_id))


@router.get("/status", response_model=LinkStatus)
def status(project_id: str, request: Request) -> LinkStatus:
    return container_of(request).links.status(parse_project_id(project_id))


# --- sync triggers and the requests they made -------------------------------------------------------


class OperationOut(BaseModel):
    """One row of the operations log (the plan's github_sync_operations, every field)."""

    id: str
    project_id: str | None
    operation_type: str
    status: str
    direction: str
    github_commit_sha: str | None
    github_commit_message: str | None
    github_author_name: str | None
    github_author_email: str | None
    local_version_id: str | None
    local_commit_sha: str | None
    files_changed: int
    insertions: int
    deletions: int
    conflicts_detected: int
    error_code: str | None
    error_message: str | None
    retry_count: int
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    metadata: dict[str, Any]


def operation_out(operation: SyncOperation) -> OperationOut:
    return OperationOut(
        id=operation.id or "",
        project_id=operation.project_id,
        operation_type=operation.operation_type,
        status=operation.status,
        direction=operation.direction,
        github_commit_sha=operation.github_commit_sha,
        github_commit_message=operation.github_commit_message,
        github_author_name=operation.github_author_name,
        github_author_email=operation.github_author_email,
        local_version_id=operation.local_version_id,
        local_commit_sha=operation.local_commit_sha,
        files_changed=operation.files_changed,
        insertions=operation.insertions,
        deletions=operation.deletions,
        conflicts_detected=operation.conflicts_detected,
        error_code=operation.error_code,
        error_message=operation.error_message,
        retry_count=operation.retry_count,
        created_at=operation.created_at,
        started_at=operation.started_at,
        completed_at=operation.completed_at,
        metadata=operation.metadata,
    )


class TriggerOut(BaseModel):
    request_id: str
    project_id: str
    status: str
    requested_at: datetime


def trigger_out(made: ReconcileRequest) -> TriggerOut:
    return TriggerOut(
        request_id=made.id, project_id=made.project_id, status="pending", requested_at=made.requested_at
    )


class RequestOut(BaseModel):
    """A reconcile request: `pending`, or `served` with the operation that served it."""

    request_id: str
    project_id: str
    reason: str
    requested_at: datetime
    status: str
    operation: OperationOut | None


@router.post("/sync/trigger", status_code=202, response_model=TriggerOut)
def trigger_sync(project_id: str, request: Request) -> TriggerOut:
    """Request a reconcile (an outbox row); the worker runs it. Look the request up by its id."""
    made = container_of(request).triggers.trigger(project_id)
    return trigger_out(made)


@router.get("/sync/requests/{request_id}", response_model=RequestOut)
def sync_request(project_id: str, request_id: str, request: Request) -> RequestOut:
    """A request and the operation that served it (coalesced requests name the same operation)."""
    found = container_of(request).triggers.request_status(project_id, request_id)
    return RequestOut(
        request_id=found.request.id,
        project_id=found.request.project_id,
        reason=found.request.reason,
        requested_at=found.request.requested_at,
        status=found.state,
        operation=operation_out(found.operation) if found.operation else None,
    )


# --- admin: the operations log across projects ---------------------------------------------------------

admin_router = APIRouter(prefix="/v1/admin/github", tags=["admin"])


class OperationPage(BaseModel):
    items: list[OperationOut]
    next_cursor: str | None


class SyncStatusOut(BaseModel):
    projects: dict[str, Any]
    operations: dict[str, Any]
    pending_requests: int
    jobs: dict[str, int]


class RetriedOut(BaseModel):
    count: int
    requests: list[TriggerOut]


@admin_router.get("/sync-operations", response_model=OperationPage)
def sync_operations(
    request: Request,
    project_id: str | None = None,
    status: Annotated[str | None, Query(json_schema_extra={"enum": list(OPERATION_STATUSES)})] = None,
    operation_type: Annotated[str | None, Query(alias="type", max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, cursor_query()] = None,
) -> OperationPage:
    """Operations newest first, filtered by project, status and operation type; paged by cursor."""
    page = container_of(request).triggers.operations(
        limit=limit,
        cursor=cursor or None,
        project_id=project_id,
        status=status,
        operation_type=operation_type,
    )
    return OperationPage(items=[operation_out(op) for op in page.items], next_cursor=page.next_cursor)


@admin_router.get("/sync-status", response_model=SyncStatusOut)
def sync_status(request: Request) -> SyncStatusOut:
    """Projects counted by sync state, the last day's operations by status, pending requests, jobs."""
    seen = container_of(request).triggers.overview()
    return SyncStatusOut(
        projects={
            "total": seen.projects_total,
            "linked": seen.projects_linked,
            "by_state": seen.projects_by_state,
        },
        operations={"since": seen.operations_since.isoformat(), "by_status": seen.operations_by_status},
        pending_requests=seen.pending_requests,
        jobs=seen.jobs,
    )


@admin_router.post("/retry-failed-syncs", status_code=202, response_model=RetriedOut)
def retry_failed_syncs(request: Request) -> RetriedOut:
    """Request a reconcile of every linked project whose last operation failed."""
    made = container_of(request).triggers.retry_failed()
    return RetriedOut(
        count=len(made),
        requests=[trigger_out(made_request) for made_request in made],
    )
