"""Shared request helpers for the routers: the emulator, the caller, URLs, access checks, paging."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from github_emulator.auth import ANONYMOUS, Principal
from github_emulator.core import Emulator, GitHubError, not_found
from github_emulator.payloads import Urls
from github_emulator.store import RepoRecord


def emulator(request: Request) -> Emulator:
    emu: Emulator = request.app.state.emulator
    return emu


def principal(request: Request) -> Principal:
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, Principal) else ANONYMOUS


def urls(request: Request) -> Urls:
    base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return Urls.for_base(base)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=json.dumps(body),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=headers,
    )


def require_app(request: Request) -> Principal:
    """Endpoints under ``/app`` need the App's JWT (https://docs.github.com/en/rest/apps/apps)."""
    who = principal(request)
    if who.kind != "app":
        raise GitHubError(
            401,
            "A JSON web token could not be decoded",
            "https://docs.github.com/rest",
        )
    return who


def require_auth(request: Request) -> Principal:
    who = principal(request)
    if who.kind == "anonymous":
        raise GitHubError(401, "Requires authentication", "https://docs.github.com/rest")
    return who


def repo_access(emu: Emulator, who: Principal, owner: str, name: str, write: bool = False) -> RepoRecord:
    """Find a repository the caller may see; GitHub answers 404 (not 403) for hidden ones."""
    repo = emu.store.find_repo(owner, name)
    if repo is None:
        raise not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
    if who.kind == "installation":
        with emu.store.lock:
            inst = emu.store.data.installations.get(who.installation_id or -1)
        allowed = inst is not None and repo.id in inst.repository_ids
        token = who.token
        if token is not None and token.repository_ids is not None:
            allowed = allowed and repo.id in token.repository_ids
        if not allowed:
            raise not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
        if write and token is not None and token.permissions.get("contents") not in (None, "write"):
            raise GitHubError(403, "Resource not accessible by integration")
        _writable(repo, write)
        return repo
    if who.kind == "user":
        _writable(repo, write)
        return repo
    if who.kind == "app":
        raise GitHubError(
            403,
            "Resource not accessible by integration",
            "https://docs.github.com/rest",
        )
    if repo.private:
        raise not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
    if write:
        raise GitHubError(401, "Requires authentication")
    return repo


def _writable(repo: RepoRecord, write: bool) -> None:
    # An archived repository is read-only: every write is refused with 403
    # (https://docs.github.com/en/repositories/archiving-a-github-repository/archiving-repositories).
    if write and repo.archived:
        raise GitHubError(
            403,
            "Repository was archived so is read-only.",
            "https://docs.github.com/repositories/archiving-a-github-repository/archiving-repositories",
        )


def paginate(
    request: Request, items: list[Any], default_per_page: int = 30
) -> tuple[list[Any], dict[str, str]]:
    """Slice ``items`` by ``page``/``per_page`` and build GitHub's ``Link`` header.

    https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
    """
    try:
        per_page = max(1, min(100, int(request.query_params.get("per_page", default_per_page))))
        page = max(1, int(request.query_params.get("page", 1)))
    except ValueError:
        per_page, page = default_per_page, 1
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    base = str(request.url.replace(query=""))
    params = dict(request.query_params)

    def link(p: int, rel: str) -> str:
        q = dict(params, per_page=str(per_page), page=str(p))
        return f'<{base}?{urlencode(q)}>; rel="{rel}"'

    links = []
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    return chunk, ({"Link": ", ".join(links)} if links else {})
