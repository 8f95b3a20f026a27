"""Routes where a person steers a project's sync: the open conflict and its resolution, the dry-run plan,
confirming a held plan, resets, and the link's settings.

These are user actions: the engine runs in the request (the handlers are plain functions, so FastAPI runs
them in its threadpool, off the event loop; GitHub calls go at user priority) and the answer is the
operation it recorded. A command that does not fit the state any more (stale heads, nothing held, no open
conflict) is refused with 409 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ghsync.bootstrap import Container
from ghsync.domain.errors import GhsyncError, NotFound, RetryLater
from ghsync.domain.sync import ConflictStrategy
from ghsync.entrypoints.api.deps import container_of
from ghsync.entrypoints.api.github import OperationOut, operation_out
from ghsync.entrypoints.api.limits import MAX_FILES_PER_VERSION
from ghsync.entrypoints.api.openapi import one_of
from ghsync.entrypoints.api.projects import _decode_file
from ghsync.entrypoints.api.schemas import FileIn, RepoPath
from ghsync.services.conflicts import ConflictFile, FileSide
from ghsync.services.linking import LinkStatus
from ghsync.services.projects import parse_project_id
from ghsync.services.reconcile import Refused

router = APIRouter(prefix="/v1/projects/{project_id}/github", tags=["sync"])

# A full git commit SHA (what GitHub and the local store both use).
Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]

T = TypeVar("T")


class TryLater(GhsyncError, RetryLater):
    """The engine would have rescheduled itself (both sides kept moving while it decided): 503."""

    code = "try_later"

    def __init__(self, at: datetime, reason: str) -> None:
        # Exception.__init__ directly, as `RetryAt` does: the two bases' initialisers take different
        # arguments. A `RetryLater` answers 503 (errors.STATUS_BY_CLASS).
        message = f"try again after {at.isoformat()}" + (f": {reason}" if reason else "")
        Exception.__init__(self, message)
        self.message, self.at, self.reason = message, at, reason


def _as_user(container: Container, work: Callable[[], T]) -> T:
    """Run the engine for a person: GitHub calls at user priority. GitHub's rate limit (`RetryAt`, a
    `GhsyncError`) answers 503 `github_rate_limited` as it is; any other `RetryLater` becomes `TryLater`."""
    try:
        if container.github is None:
            return work()
        with container.github.priority("user"):
            return work()
    except RetryLater as exc:
        if isinstance(exc, GhsyncError):
            raise
        raise TryLater(exc.at, exc.reason) from None


def _operation(container: Container, operation_id: str) -> OperationOut:
    with container.uow() as uow:
        operation = uow.operations.get(operation_id)
    if operation is None:  # recorded in the same call: only a deleted project gets here
        raise NotFound(f"operation {operation_id} not found")
    return operation_out(operation)


# --- the open conflict ---------------------------------------------------------------------------------


class FileSideOut(BaseModel):
    sha: str | None
    mode: str | None
    size: int | None
    content: str | None


class ConflictFileOut(BaseModel):
    path: str
    kind: str
    binary: bool
    base: FileSideOut
    local: FileSideOut
    github: FileSideOut
    diff: str | None


class ConflictOut(BaseModel):
    """The open conflict; a resolution quotes `local_head` and `github_head`."""

    id: str
    created_at: datetime | None
    strategy: str | None
    local_head: str | None
    github_head: str | None
    base_local: str | None
    base_github: str | None
    files: list[ConflictFileOut]


def _side_out(side: FileSide) -> FileSideOut:
    return FileSideOut(sha=side.sha, mode=side.mode, size=side.size, content=side.content)


def _file_out(file: ConflictFile) -> ConflictFileOut:
    return ConflictFileOut(
        path=file.path,
        kind=file.kind,
        binary=file.binary,
        base=_side_out(file.base),
        local=_side_out(file.local),
        github=_side_out(file.github),
        diff=file.diff,
    )


@router.get("/conflict", response_model=ConflictOut)
def conflict(project_id: str, request: Request) -> ConflictOut:
    """The open conflict, per file: kind, base / local / GitHub contents (or SHAs and sizes), a diff."""
    container = container_of(request)
    view = _as_user(container, lambda: container.conflicts.open_conflict(project_id))
    return ConflictOut(
        id=view.id,
        created_at=view.created_at,
        strategy=view.strategy,
        local_head=view.local_head,
        github_head=view.github_head,
        base_local=view.base_local,
        base_github=view.base_github,
        files=[_file_out(f) for f in view.files],
    )


class ResolveIn(BaseModel):
    """Either a strategy, or the merged files (and deletions) of a person's resolution."""

    # The either/or in the schema too (openapi.py's one_of), so that a schema-valid body is a valid one.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=one_of(
            {"required": ["strategy"], "properties": {"files": {"maxItems": 0}, "delete": {"maxItems": 0}}},
            {
                "properties": {"strategy": {"type": "null"}},
                "anyOf": [
                    {"required": ["files"], "properties": {"files": {"minItems": 1}}},
                    {"required": ["delete"], "properties": {"delete": {"minItems": 1}}},
                ],
            },
            present="strategy",
        ),
    )
    local_head: Sha
    github_head: Sha
    strategy: Literal["auto_merge", "github_wins", "local_wins"] | None = None
    files: list[FileIn] = Field(default_factory=list, max_length=MAX_FILES_PER_VERSION)
    delete: list[RepoPath] = Field(default_factory=list, max_length=MAX_FILES_PER_VERSION)

    @model_validator(mode="after")
    def _one_way(self) -> ResolveIn:
        if (self.strategy is None) == (not self.files and not self.delete):
            raise ValueError("give either a strategy or the merged files (files and/or delete)")
        return self


@router.post("/sync/resolve-conflict", response_model=OperationOut)
def resolve_conflict(project_id: str, body: ResolveIn, request: Request) -> OperationOut:
    """Resolve the open conflict; 409 `conflict_moved` when either side moved since it was read."""
    container = container_of(request)
    key = parse_project_id(project_id)
    files = [_decode_file(f.path, f.content_base64, f.mode) for f in body.files]
    strategy = ConflictStrategy(body.strategy) if body.strategy else None

    def work() -> str:
        return container.reconciler.resolve_conflict(
            key,
            local_head=body.local_head,
            github_head=body.github_head,
            strategy=strategy,
            files=files,
            deletes=body.delete,
        )

    try:
        operation_id = _as_user(container, work)
    except Refused as refused:
        if refused.code == "conflict_moved":
            # The conflict row still shows the old heads until a reconcile sees the new ones: request it,
            # so that reading the conflict again soon shows what the person must resolve now.
            with container.uow() as uow:
                uow.request_reconcile(key, "conflict_moved")
                uow.commit()
        raise
    return _operation(container, operation_id)


# --- the plan, and a held plan's confirmation ------------------------------------------------------------


class PlannedChangeOut(BaseModel):
    direction: Literal["to_github", "from_github"]
    status: Literal["added", "modified", "deleted"]
    path: str


class PlanOut(BaseModel):
    """What the next reconcile would do; when `held`, confirm it with exactly these heads."""

    action: str
    reason: str
    local_head: str | None
    github_head: str | None
    base_local: str | None
    base_github: str | None
    changes: list[PlannedChangeOut]
    transport: str | None
    expected_requests: dict[str, int]
    held: bool
    blockers: list[str]


@router.get("/sync/plan", response_model=PlanOut)
def plan(project_id: str, request: Request) -> PlanOut:
    """The dry run: the decision and why, per-file changes per direction, transport, expected requests."""
    container = container_of(request)
    planned = _as_user(container, lambda: container.reconciler.plan(project_id))
    return PlanOut(
        action=planned.action,
        reason=planned.reason,
        local_head=planned.local_head,
        github_head=planned.github_head,
        base_local=planned.base_local,
        base_github=planned.base_github,
        changes=[
            PlannedChangeOut(direction=c.direction, status=c.status, path=c.path) for c in planned.changes
        ],
        transport=planned.transport,
        expected_requests=dict(planned.expected_requests),
        held=planned.held,
        blockers=list(planned.blockers),
    )


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    local_head: Sha | None
    github_head: Sha | None


@router.post("/sync/confirm", response_model=OperationOut)
def confirm(project_id: str, body: ConfirmIn, request: Request) -> OperationOut:
    """Apply the held plan for exactly these heads; 409 `plan_moved` / `nothing_held` otherwise."""
    container = container_of(request)
    key = parse_project_id(project_id)
    operation_id = _as_user(
        container,
        lambda: container.reconciler.confirm(key, local_head=body.local_head, github_head=body.github_head),
    )
    return _operation(container, operation_id)


# --- resets ----------------------------------------------------------------------------------------------


class ResetIn(BaseModel):
    """`{"adopt": "github"|"local"}`, or `{"restore": <a ref an earlier reset kept>}`."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=one_of(
            {"required": ["adopt"], "properties": {"restore": {"type": "null"}}},
            {"required": ["restore"], "properties": {"adopt": {"type": "null"}}},
            present="adopt",
            then_present="restore",
        ),
    )
    adopt: Literal["github", "local"] | None = None
    restore: str | None = Field(default=None, min_length=1, max_length=500, pattern=r"^refs/ghsync/")

    @model_validator(mode="after")
    def _one_way(self) -> ResetIn:
        if (self.adopt is None) == (self.restore is None):
            raise ValueError('give either "adopt" or "restore"')
        return self


class ResetOut(BaseModel):
    operation: OperationOut
    kept_ref: str | None  # the side given up; POST {"restore": kept_ref} brings it back


@router.post("/sync/reset", response_model=ResetOut)
def reset(project_id: str, body: ResetIn, request: Request) -> ResetOut:
    """Adopt one side (the other is kept first, under `kept_ref`), or restore what a reset kept."""
    container = container_of(request)
    key = parse_project_id(project_id)
    result = _as_user(
        container, lambda: container.reconciler.reset(key, adopt=body.adopt, restore=body.restore)
    )
    return ResetOut(operation=_operation(container, result.operation_id), kept_ref=result.kept_ref)


# --- settings ---------------------------------------------------------------------------------------------


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sync_mode: Literal["direct_commit", "protected_pr", "hybrid"] | None = None
    conflict_strategy: Literal["manual", "auto_merge", "local_wins", "github_wins"] | None = None
    enabled: bool | None = None
    # The operator's opt-in: `local_wins` may rewrite GitHub's branch (audit-logged, the overwritten head
    # kept on a backup branch). And: hold syncs after a person's force-push until confirmed.
    allow_force_push: bool | None = None
    hold_force_pushes: bool | None = None


@router.patch("", response_model=LinkStatus)
def update_settings(project_id: str, body: SettingsIn, request: Request) -> LinkStatus:
    """Change the mode, the conflict strategy, whether sync is enabled, or the force-push policy."""
    container = container_of(request)
    key = parse_project_id(project_id)
    container.link_settings.update(
        key,
        sync_mode=body.sync_mode,
        conflict_strategy=body.conflict_strategy,
        enabled=body.enabled,
        allow_force_push=body.allow_force_push,
        hold_force_pushes=body.hold_force_pushes,
    )
    return container.links.status(key, refresh=False)
