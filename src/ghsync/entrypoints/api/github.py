"""Routes that link a project to a GitHub repository and report its sync status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ghsync.entrypoints.api.deps import container_of
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
