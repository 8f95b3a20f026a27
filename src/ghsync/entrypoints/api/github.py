"""Routes that link a project to a GitHub repository and report its sync status."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ghsync.bootstrap import Container
from ghsync.services.linking import LinkStatus
from ghsync.services.projects import parse_project_id

router = APIRouter(prefix="/v1/projects/{project_id}/github", tags=["github"])


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = Field(min_length=1, max_length=255)
    repo: str = Field(min_length=1, max_length=255)
    installation_id: int | None = Field(default=None, gt=0)
    sync_mode: str | None = None
    conflict_strategy: str | None = None


class StatusOut(BaseModel):
    linked: bool
    enabled: bool
    owner: str | None
    repo: str | None
    default_branch: str | None
    protected: bool
    sync_mode: str
    conflict_strategy: str
    state: str
    last_remote_main_sha: str | None
    last_synced_main_sha: str | None
    last_outbound_base_sha: str | None
    last_github_sync_at: datetime | None
    last_operation: dict[str, Any] | None
    open_pr: dict[str, Any] | None
    open_conflict: dict[str, Any] | None
    rate_limit: dict[str, Any] | None


def _out(status: LinkStatus) -> StatusOut:
    return StatusOut(**asdict(status))


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


@router.post("/link", status_code=201, response_model=StatusOut)
async def link(project_id: str, body: LinkRequest, request: Request) -> StatusOut:
    """Link the project to a repository the GitHub App is installed on; answers with the status."""
    status = await run_in_threadpool(
        _container(request).links.link,
        parse_project_id(project_id),
        owner=body.owner,
        repo=body.repo,
        installation_id=body.installation_id,
        sync_mode=body.sync_mode,
        conflict_strategy=body.conflict_strategy,
    )
    return _out(status)


@router.delete("/unlink", response_model=StatusOut)
def unlink(project_id: str, request: Request) -> StatusOut:
    """Stop syncing; versions, history and the operations log are kept."""
    return _out(_container(request).links.unlink(parse_project_id(project_id)))


@router.get("/status", response_model=StatusOut)
def status(project_id: str, request: Request) -> StatusOut:
    return _out(_container(request).links.status(parse_project_id(project_id)))
