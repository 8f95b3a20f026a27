"""REST bodies into the domain's GitHub values (`ghsync.domain.github`, `ghsync.domain.trees`).

Lenient where GitHub's schema allows a field to be absent or null, strict where ghsync would be wrong
without it: a repository without a default branch is an error, never assumed to be `main`.
Schemas: https://docs.github.com/en/rest (repos, branches, git commits/trees, pulls, compare).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ghsync.domain.errors import GitHubError
from ghsync.domain.github import Branch, Commit, Comparison, Installation, PullRequest, Repository
from ghsync.domain.models import Author, FileMode
from ghsync.domain.trees import TreeEntry


class UnexpectedResponse(GitHubError):
    """GitHub answered 2xx with a body ghsync cannot use (a field it relies on is missing)."""

    code = "github_unexpected_response"


def installation(body: Mapping[str, Any]) -> Installation:
    account = body.get("account") or {}
    return Installation(
        id=int(body["id"]),
        account=str(account.get("login") or account.get("slug") or ""),
        permissions={str(k): str(v) for k, v in (body.get("permissions") or {}).items()},
        repository_selection=str(body.get("repository_selection") or "all"),
        suspended=body.get("suspended_at") is not None,
    )


def repository(body: Mapping[str, Any]) -> Repository:
    default_branch = body.get("default_branch")
    if not default_branch:
        # GitHub always names one (an empty repository too); guessing `main` would sync the wrong branch.
        raise UnexpectedResponse(
            f"repository {body.get('full_name')!r} has no default_branch in GitHub's answer"
        )
    return Repository(
        id=int(body["id"]),
        owner=str((body.get("owner") or {}).get("login") or str(body["full_name"]).split("/")[0]),
        name=str(body["name"]),
        full_name=str(body["full_name"]),
        default_branch=str(default_branch),
        private=bool(body.get("private", False)),
        html_url=str(body.get("html_url") or ""),
        archived=bool(body.get("archived", False)),
    )


def branch(body: Mapping[str, Any]) -> Branch:
    return Branch(
        name=str(body["name"]),
        sha=str((body.get("commit") or {}).get("sha") or ""),
        protected=bool(body.get("protected", False)),
    )


def _person(body: Any) -> tuple[Author, datetime | None]:
    data = body if isinstance(body, Mapping) else {}
    when = data.get("date")
    parsed = datetime.fromisoformat(str(when).replace("Z", "+00:00")) if when else None
    return Author(name=str(data.get("name") or ""), email=str(data.get("email") or "")), parsed


def git_commit(body: Mapping[str, Any]) -> Commit:
    """The `git-commit` schema (GET/POST /repos/{o}/{r}/git/commits)."""
    author, authored_at = _person(body.get("author"))
    committer, _ = _person(body.get("committer"))
    return Commit(
        sha=str(body["sha"]),
        tree_sha=str(body["tree"]["sha"]),
        parents=tuple(str(p["sha"]) for p in body.get("parents") or ()),
        message=str(body.get("message") or ""),
        author=author,
        committer=committer,
        authored_at=authored_at,
    )


def tree_entries(body: Mapping[str, Any], prefix: str = "") -> tuple[list[TreeEntry], list[tuple[str, str]]]:
    """A `git-tree` body: its files (blobs, with `prefix` prepended to their paths) and its subtrees
    as (path, sha). Gitlinks (submodules, mode 160000) are neither and are left out."""
    files: list[TreeEntry] = []
    subtrees: list[tuple[str, str]] = []
    for item in body.get("tree") or ():
        path = prefix + str(item["path"])
        kind = item.get("type")
        if kind == "tree":
            subtrees.append((path, str(item["sha"])))
        elif kind == "blob":
            files.append(TreeEntry(path=path, mode=FileMode(str(item["mode"])), sha=str(item["sha"])))
    return files, subtrees


def comparison(pages: list[Mapping[str, Any]]) -> Comparison:
    """GET compare, every page: status and counts from the first, commits from all of them."""
    first = pages[0]
    commits = tuple(str(c["sha"]) for page in pages for c in page.get("commits") or ())
    return Comparison(
        status=str(first["status"]),
        ahead_by=int(first["ahead_by"]),
        behind_by=int(first["behind_by"]),
        merge_base_sha=str((first.get("merge_base_commit") or {}).get("sha") or ""),
        commits=commits,
    )


def pull_request(body: Mapping[str, Any]) -> PullRequest:
    head = body.get("head") or {}
    base = body.get("base") or {}
    mergeable = body.get("mergeable")
    return PullRequest(
        number=int(body["number"]),
        url=str(body.get("html_url") or ""),
        state=str(body["state"]),
        head_ref=str(head.get("ref") or ""),
        head_sha=str(head.get("sha") or ""),
        base_ref=str(base.get("ref") or ""),
        base_sha=str(base.get("sha") or ""),
        title=str(body.get("title") or ""),
        body=str(body.get("body") or ""),
        draft=bool(body.get("draft", False)),
        merged=bool(body.get("merged")) or body.get("merged_at") is not None,
        merge_commit_sha=str(body["merge_commit_sha"]) if body.get("merge_commit_sha") else None,
        mergeable=bool(mergeable) if mergeable is not None else None,
    )
