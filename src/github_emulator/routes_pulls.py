"""REST routes for pull requests (https://docs.github.com/rest/pulls/pulls)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from github_emulator import pulls
from github_emulator.auth import Principal
from github_emulator.core import Emulator
from github_emulator.deps import emulator, json_response, paginate, principal, repo_access, require_auth, urls

router = APIRouter()


@router.post("/repos/{owner}/{repo}/pulls")
def create_pull(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo, write=True)
    u = urls(request)
    pr = pulls.create(emu, r, body, who, u)
    return json_response(pulls.pull_json(emu, r, pr, u), status=201)


@router.get("/repos/{owner}/{repo}/pulls")
def list_pulls(
    owner: str,
    repo: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    """Filters: ``state``, ``head`` (``owner:branch``), ``base``, ``sort``, ``direction``."""
    r = repo_access(emu, who, owner, repo)
    q = request.query_params
    state = q.get("state", "open")
    head = q.get("head")
    base = q.get("base")
    items = emu.pulls_for(r)
    if state != "all":
        items = [p for p in items if p.state == state]
    if head and ":" in head:
        # ``head`` is ``user:ref-name`` (https://docs.github.com/rest/pulls/pulls#list-pull-requests);
        # without the ``user:`` GitHub ignores the filter and lists every PR (recorded in
        # https://github.com/github/docs/pull/16647 and https://github.com/hub4j/github-api/pull/538).
        h_owner, _, h_ref = head.partition(":")
        items = [
            p for p in items if h_owner.lower() == r.owner.lower() and (not h_ref or p.head_ref == h_ref)
        ]
    if base:
        items = [p for p in items if p.base_ref == base]
    sort = q.get("sort", "created")
    key = {"updated": lambda p: p.updated_at, "created": lambda p: (p.created_at, p.number)}.get(
        sort, lambda p: (p.created_at, p.number)
    )
    direction = q.get("direction", "desc")
    items.sort(key=key, reverse=direction != "asc")
    u = urls(request)
    chunk, headers = paginate(request, items)
    return json_response([pulls.pull_json(emu, r, p, u, full=False) for p in chunk], headers=headers)


@router.get("/repos/{owner}/{repo}/pulls/{number}")
def get_pull(
    owner: str,
    repo: str,
    number: int,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    pr = pulls.find(emu, r, number)
    # Asking for one pull request starts GitHub's mergeability job (see pulls.check_mergeability).
    started = pulls.check_mergeability(emu, r, pr)
    return json_response(pulls.pull_json(emu, r, pr, urls(request), just_started=started))


@router.patch("/repos/{owner}/{repo}/pulls/{number}")
def update_pull(
    owner: str,
    repo: str,
    number: int,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo, write=True)
    pr = pulls.find(emu, r, number)
    u = urls(request)
    pulls.update(emu, r, pr, body, who, u)
    return json_response(pulls.pull_json(emu, r, pr, u))


@router.get("/repos/{owner}/{repo}/pulls/{number}/merge")
def is_merged(
    owner: str, repo: str, number: int, emu: Emulator = Depends(emulator), who: Principal = Depends(principal)
) -> Response:
    """204 when merged, 404 when not (https://docs.github.com/rest/pulls/pulls#check-if-a-pull-request-has-been-merged)."""
    r = repo_access(emu, who, owner, repo)
    pr = pulls.find(emu, r, number)
    if pr.merged_at is None:
        return json_response(
            {"message": "Not Found", "documentation_url": pulls.PULLS_DOCS, "status": "404"}, status=404
        )
    return Response(status_code=204)


@router.put("/repos/{owner}/{repo}/pulls/{number}/merge")
def merge_pull(
    owner: str,
    repo: str,
    number: int,
    request: Request,
    body: dict[str, Any] | None = Body(default=None),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo, write=True)
    pr = pulls.find(emu, r, number)
    sha = pulls.merge(emu, r, pr, body or {}, who, urls(request))
    from github_emulator.payloads import pull_merge_result

    return json_response(pull_merge_result(sha))


@router.get("/repos/{owner}/{repo}/pulls/{number}/commits")
def pull_commits(
    owner: str,
    repo: str,
    number: int,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    from github_emulator import gitrepo
    from github_emulator.routes_repos import commit_json

    r = repo_access(emu, who, owner, repo)
    pr = pulls.find(emu, r, number)
    git = emu.open_git(r)
    mb = git.merge_base(pr.base_sha, pr.head_sha) if pr.merged_at is None else None
    hide = [str(mb)] if mb else [pr.base_sha]
    u = urls(request)
    items = [commit_json(emu, r, c, u) for c in gitrepo.commits_between(git, pr.head_sha, hide, limit=250)]
    chunk, headers = paginate(request, items)
    return json_response(chunk, headers=headers)
