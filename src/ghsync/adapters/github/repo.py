"""One repository's GitHub operations (the `GitHubRepo` port) over the App client's request path.

Each operation is one REST call (two or more only where GitHub paginates or truncates) through
`GitHubAppClient.request()`, which brings tokens, throttling, retries, ETags, logs and the request
counter. GitHub's pages: https://docs.github.com/en/rest/git (blobs, trees, commits, refs),
https://docs.github.com/en/rest/branches/branches, https://docs.github.com/en/rest/commits/commits#compare-two-commits,
https://docs.github.com/en/rest/pulls/pulls.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ghsync.adapters.github import parsing
from ghsync.domain.errors import (
    GitHubConflict,
    GitHubConnectionError,
    GitHubNotFound,
    GitHubServerError,
)
from ghsync.domain.github import Branch, Commit, Comparison, PullRequest, Repository
from ghsync.domain.models import Author
from ghsync.domain.trees import TreeEntry
from ghsync.ports.github import PullState, TreeWrite

if TYPE_CHECKING:
    from ghsync.adapters.github.client import GitHubAppClient

# (tree sha, recursive) -> the `git-tree` body GitHub answers for GET .../git/trees/{sha}
TreeFetch = Callable[[str, bool], Mapping[str, Any]]


def read_tree(fetch: TreeFetch, sha: str) -> list[TreeEntry]:
    """Every file of tree `sha`, sorted by path, in as few requests as GitHub allows.

    One recursive read, unless GitHub answers `truncated: true`: "If you need to fetch more items, use
    the non-recursive method of fetching trees, and fetch one sub-tree at a time"
    (https://docs.github.com/en/rest/git/trees#get-a-tree). So the root is read flat and each subtree
    recursively, descending further only into subtrees that are themselves truncated. Shared by both
    adapters, so the fake costs the same requests as GitHub.
    """
    body = fetch(sha, True)
    files = parsing.tree_entries(body)[0] if not body.get("truncated") else _walk(fetch, sha, "")
    return sorted(files, key=lambda e: e.path)


def _walk(fetch: TreeFetch, sha: str, prefix: str) -> list[TreeEntry]:
    body = fetch(sha, False)
    if body.get("truncated"):
        # Past GitHub's limit for one directory level: no API read can list it (git smart HTTP can).
        raise parsing.UnexpectedResponse(f"tree {sha} ({prefix or '/'}) is too large to list through the API")
    files, subtrees = parsing.tree_entries(body, prefix)
    for path, sub in subtrees:
        inner = fetch(sub, True)
        if inner.get("truncated"):
            files.extend(_walk(fetch, sub, path + "/"))
        else:
            files.extend(parsing.tree_entries(inner, path + "/")[0])
    return files


def tree_item(entry: TreeWrite) -> dict[str, Any]:
    """A `TreeWrite` as create-a-tree's `tree[]` item (`sha: null` deletes the path)."""
    item: dict[str, Any] = {"path": entry.path, "mode": entry.mode.value, "type": "blob"}
    if entry.content is not None:
        item["content"] = entry.content
    else:
        item["sha"] = entry.sha
    return item


def person(who: Author, when: datetime) -> dict[str, str]:
    # An explicit date makes the commit object deterministic, so resending a create-commit whose
    # answer was lost makes the same commit (same SHA), not a second one.
    return {"name": who.name, "email": who.email, "date": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


class RestGitHubRepo:
    """`owner/name` through installation `installation_id`; made by `GitHubAppClient.repo()`."""

    def __init__(self, client: GitHubAppClient, installation_id: int, owner: str, name: str) -> None:
        self._client = client
        self.installation_id = installation_id
        self._owner = owner
        self._name = name
        self._where: dict[str, str | int] = {"owner": owner, "repo": name}

    def __repr__(self) -> str:
        return f"RestGitHubRepo({self._owner}/{self._name}, installation={self.installation_id})"

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def name(self) -> str:
        return self._name

    def _call(
        self,
        method: str,
        route: str,
        *,
        json: Any = None,
        query: Mapping[str, str | int] | None = None,
        etag: bool = False,
        idempotent: bool | None = None,
        **params: str | int,
    ) -> Any:
        return self._client.request(
            method,
            "/repos/{owner}/{repo}" + route,
            params={**self._where, **params},
            installation_id=self.installation_id,
            json=json,
            query=query,
            etag=etag,
            idempotent=idempotent,
        ).body

    # ---- reads -----------------------------------------------------------------------------------

    def get_repository(self) -> Repository:
        return parsing.repository(self._call("GET", "", etag=True))

    def get_branch(self, name: str) -> Branch | None:
        # GET .../branches/{branch} carries `protected` and needs only the metadata permission
        # (GET .../protection would need Administration read).
        try:
            body = self._call("GET", "/branches/{branch}", etag=True, branch=name)
        except GitHubNotFound as exc:
            if "branch not found" in exc.message.lower():
                return None
            raise
        return parsing.branch(body)

    def get_ref_sha(self, branch: str) -> str | None:
        """The commit `branch` points at (GET .../git/ref/heads/{branch}); None when absent or empty."""
        try:
            body = self._call("GET", "/git/ref/{ref}", etag=True, ref=f"heads/{branch}")
        except (GitHubNotFound, GitHubConflict):  # 409 "Git Repository is empty."
            return None
        return str(body["object"]["sha"])

    def get_commit(self, sha: str) -> Commit:
        return parsing.git_commit(self._call("GET", "/git/commits/{sha}", etag=True, sha=sha))

    def get_tree(self, sha: str) -> list[TreeEntry]:
        def fetch(tree: str, recursive: bool) -> Mapping[str, Any]:
            query = {"recursive": "1"} if recursive else None
            body: Mapping[str, Any] = self._call("GET", "/git/trees/{sha}", query=query, sha=tree)
            return body

        return read_tree(fetch, sha)

    def get_blob(self, sha: str) -> bytes:
        body = self._call("GET", "/git/blobs/{sha}", sha=sha)
        if body.get("encoding") == "base64":
            return base64.b64decode(str(body.get("content") or ""))
        return str(body.get("content") or "").encode()

    def compare(self, base: str, head: str) -> Comparison:
        pages = self._client.pages(
            "GET",
            "/repos/{owner}/{repo}/compare/{basehead}",
            params={**self._where, "basehead": f"{base}...{head}"},
            installation_id=self.installation_id,
            query={"per_page": 100},
        )
        return parsing.comparison([page.body for page in pages])

    # ---- writes ----------------------------------------------------------------------------------

    def create_blob(self, content: bytes) -> str:
        body = self._call(
            "POST",
            "/git/blobs",
            json={"content": base64.b64encode(content).decode(), "encoding": "base64"},
            idempotent=True,  # content-addressed: sending it twice stores one blob
        )
        return str(body["sha"])

    def create_tree(self, base_tree: str | None, entries: Sequence[TreeWrite]) -> str:
        payload: dict[str, Any] = {"tree": [tree_item(e) for e in entries]}
        if base_tree is not None:
            payload["base_tree"] = base_tree
        return str(self._call("POST", "/git/trees", json=payload, idempotent=True)["sha"])

    def create_commit(
        self,
        tree: str,
        parents: Sequence[str],
        message: str,
        author: Author,
        committer: Author | None = None,
    ) -> Commit:
        when = self._client.now()
        payload = {
            "message": message,
            "tree": tree,
            "parents": list(parents),
            "author": person(author, when),
            "committer": person(committer or author, when),
        }
        return parsing.git_commit(self._call("POST", "/git/commits", json=payload, idempotent=True))

    def update_ref(self, branch: str, sha: str) -> None:
        # force=false is the compare-and-swap: GitHub refuses a non-fast-forward with 422, which the
        # policy raises as NotFastForward (https://docs.github.com/en/rest/git/refs#update-a-reference).
        self._call("PATCH", "/git/refs/{ref}", json={"sha": sha, "force": False}, ref=f"heads/{branch}")

    def force_update_ref(self, branch: str, sha: str) -> None:
        # Only when an operator enabled force-pushing for the project: the engine keeps the overwritten
        # head on a backup branch first and audit-logs it (https://docs.github.com/en/rest/git/refs#update-a-reference).
        self._call("PATCH", "/git/refs/{ref}", json={"sha": sha, "force": True}, ref=f"heads/{branch}")

    def create_ref(self, branch: str, sha: str) -> None:
        self._call("POST", "/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha})

    def delete_ref(self, branch: str) -> None:
        self._call("DELETE", "/git/refs/{ref}", ref=f"heads/{branch}")

    # ---- pull requests ---------------------------------------------------------------------------

    def find_open_pull(self, head_branch: str, base: str) -> PullRequest | None:
        # `head` must be `owner:branch` (https://docs.github.com/en/rest/pulls/pulls#list-pull-requests).
        query: dict[str, str | int] = {
            "state": "open",
            "head": f"{self._owner}:{head_branch}",
            "base": base,
            "per_page": 100,
        }
        items = self._call("GET", "/pulls", query=query)
        for item in items if isinstance(items, list) else []:
            pull = parsing.pull_request(item)
            if pull.head_ref == head_branch and pull.base_ref == base:
                return pull
        return None

    def create_pull(
        self, head_branch: str, base: str, title: str, body: str = "", *, draft: bool = False
    ) -> PullRequest:
        payload = {"title": title, "head": head_branch, "base": base, "body": body, "draft": draft}
        attempt = 0
        while True:
            try:
                return parsing.pull_request(self._call("POST", "/pulls", json=payload, idempotent=False))
            except (GitHubServerError, GitHubConnectionError):
                # Not safe to resend blindly: GitHub may have opened it before failing. Re-read first.
                found = self.find_open_pull(head_branch, base)
                if found is not None:
                    return found
                attempt += 1
                if attempt > self._client.config.max_retries:
                    raise
                self._client.pause(attempt)

    def update_pull(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: PullState | None = None,
    ) -> PullRequest:
        changes = {k: v for k, v in (("title", title), ("body", body), ("state", state)) if v is not None}
        return parsing.pull_request(self._call("PATCH", "/pulls/{number}", json=changes, number=number))

    def get_pull(self, number: int) -> PullRequest:
        return parsing.pull_request(self._call("GET", "/pulls/{number}", etag=True, number=number))
