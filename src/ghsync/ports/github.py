"""The GitHub ports: what the services call on GitHub, at the App level and for one linked repository.

Two adapters serve them and one contract suite (tests/contract/test_github_repo_contract.py) holds both
to the same behaviour: `ghsync.adapters.github.GitHubAppClient` (REST, against GitHub or the emulator)
and `ghsync.adapters.github.memory.InMemoryGitHub` (a bare pygit2 repository in memory, for unit tests).

Every failure is a `ghsync.domain.errors.GitHubError` subclass (`NotFastForward`, `BranchProtected`,
`RepositoryEmpty`, `RetryAt`, ...), so services catch them without importing an adapter.

The request counter is part of the port: an operation wraps its calls in `counting_requests()` and
records how many API requests it used and how many of them created content, the quantity GitHub's
secondary rate limit counts (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from ghsync.domain.github import (
    Branch,
    Commit,
    Comparison,
    Installation,
    PullRequest,
    RateLimitState,
    Repository,
)
from ghsync.domain.models import Author, FileMode
from ghsync.domain.polling import HeadsRead
from ghsync.domain.redelivery import HookDelivery
from ghsync.domain.trees import TreeEntry

Priority = Literal["user", "background"]
PullState = Literal["open", "closed"]

# GitHub counts POST, PATCH, PUT and DELETE against the content-creation limit (80 a minute, 500 an
# hour) and as 5 points of the per-minute point budget; GET, HEAD and OPTIONS are 1 point.
# https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits
CONTENT_CREATING_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


# ---- tree writes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeWrite:
    """One entry of `create_tree`: put a blob (`sha`) or inline text (`content`) at `path`, or delete it.

    GitHub's create-a-tree takes either `sha` or `content`, never both; `sha: null` deletes the path from
    `base_tree` (https://docs.github.com/en/rest/git/trees#create-a-tree). Use the constructors.
    """

    path: str
    mode: FileMode = FileMode.REGULAR
    sha: str | None = None
    content: str | None = None

    def __post_init__(self) -> None:
        if self.sha is not None and self.content is not None:
            raise ValueError("a tree entry takes a blob sha or inline content, not both")

    @classmethod
    def blob(cls, path: str, sha: str, mode: FileMode = FileMode.REGULAR) -> TreeWrite:
        return cls(path, mode, sha=sha)

    @classmethod
    def text(cls, path: str, content: str, mode: FileMode = FileMode.REGULAR) -> TreeWrite:
        return cls(path, mode, content=content)

    @classmethod
    def delete(cls, path: str) -> TreeWrite:
        return cls(path)

    @property
    def is_delete(self) -> bool:
        return self.sha is None and self.content is None


# ---- the request counter -----------------------------------------------------------------------


@dataclass(slots=True)
class RequestCount:
    """Requests sent to GitHub inside one `counting_requests()` block (retries are requests too)."""

    total: int = 0
    content_creating: int = 0


_COUNTERS: ContextVar[tuple[RequestCount, ...]] = ContextVar("ghsync_github_request_counters", default=())
# A block's counter may be reached from several threads (a copied context): increments are locked.
_COUNT_LOCK = threading.Lock()


@contextmanager
def counting_requests() -> Iterator[RequestCount]:
    """Count the GitHub requests made in this block (this thread or task). Blocks nest: an inner
    block's requests count in the outer block too."""
    count = RequestCount()
    token = _COUNTERS.set((*_COUNTERS.get(), count))
    try:
        yield count
    finally:
        _COUNTERS.reset(token)


def record_request(method: str) -> None:
    """Called by the adapters once per request they send (each attempt of a retried call)."""
    counters = _COUNTERS.get()
    if not counters:
        return
    creating = method.upper() in CONTENT_CREATING_METHODS
    with _COUNT_LOCK:
        for count in counters:
            count.total += 1
            if creating:
                count.content_creating += 1


# ---- the ports ---------------------------------------------------------------------------------


class GitHubRepo(Protocol):
    """One repository, through an installation of the App. Branch names are short (`trunk`, not
    `refs/heads/trunk`). Git Data writes on an empty repository raise `RepositoryEmpty` (409)."""

    @property
    def owner(self) -> str: ...

    @property
    def name(self) -> str: ...

    # reads

    def get_repository(self) -> Repository:
        """The repository, with its default branch as GitHub names it."""

    def get_branch(self, name: str) -> Branch | None:
        """The branch head and whether it is protected (one request); None when it does not exist."""

    def get_commit(self, sha: str) -> Commit:
        """A commit (its tree, parents, message, author); `GitHubNotFound` when absent."""

    def get_tree(self, sha: str) -> list[TreeEntry]:
        """Every file of a tree (or of a commit's tree), recursively, sorted by path. Submodules
        (gitlinks) are not files and are left out."""

    def get_blob(self, sha: str) -> bytes:
        """A blob's bytes; `GitHubNotFound` when absent."""

    def compare(self, base: str, head: str) -> Comparison:
        """How `head` relates to `base` (commits or branch names), every commit listed."""

    # writes

    def create_blob(self, content: bytes) -> str:
        """Store a blob; returns its SHA (git's, so identical to the local one)."""

    def create_tree(self, base_tree: str | None, entries: Sequence[TreeWrite]) -> str:
        """A new tree: `base_tree` (None: start empty) with `entries` applied; returns its SHA."""

    def create_commit(
        self,
        tree: str,
        parents: Sequence[str],
        message: str,
        author: Author,
        committer: Author | None = None,
    ) -> Commit:
        """A commit object (no ref moves)."""

    def update_ref(self, branch: str, sha: str) -> None:
        """Move `branch` to `sha` only if that is a fast-forward (`force: false`): `NotFastForward` when
        the branch moved meanwhile, `BranchProtected` when protection refuses a direct update."""

    def force_update_ref(self, branch: str, sha: str) -> None:
        """Move `branch` to `sha` even when that rewrites history (`force: true`); `BranchProtected` when
        protection refuses. Used only when an operator enabled force-pushing for the project."""

    def create_ref(self, branch: str, sha: str) -> None:
        """Create `branch` at `sha`; `GitHubValidation` when it exists."""

    def delete_ref(self, branch: str) -> None:
        """Delete `branch`; `GitHubValidation` when it does not exist (or is the default branch)."""

    # pull requests

    def find_open_pull(self, head_branch: str, base: str) -> PullRequest | None:
        """The open pull request from `head_branch` (in this repository) into `base`, if any."""

    def create_pull(
        self, head_branch: str, base: str, title: str, body: str = "", *, draft: bool = False
    ) -> PullRequest:
        """Open a pull request; `GitHubValidation` when one is already open for the pair."""

    def update_pull(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: PullState | None = None,
    ) -> PullRequest:
        """Change a pull request's title, body or state (close or reopen)."""

    def get_pull(self, number: int) -> PullRequest:
        """A pull request, with `merged` and `merge_commit_sha` once it is merged."""


class GitHubApp(Protocol):
    """The App's view of GitHub: installations, repositories by id, quota, and one repository's port."""

    def find_installation(self, owner: str, repo: str) -> int:
        """The installation that can access `owner/repo`: `RepositoryNotFound` or `AppNotInstalled`."""

    def get_installation(self, installation_id: int) -> Installation: ...

    def get_repository_by_id(self, installation_id: int, repository_id: int) -> Repository:
        """The repository by its stable id, so a renamed or transferred repository is followed."""

    def rate_limit(self, installation_id: int) -> RateLimitState | None:
        """The last quota seen for the installation (no request is made)."""

    def priority(self, priority: Priority) -> AbstractContextManager[None]:
        """Mark the calls of a block as user-triggered (may spend the reserve) or background."""

    def app_identity(self) -> Author:
        """The App's bot account (`<slug>[bot]` and its noreply email), the committer of our commits."""

    def repo(self, installation_id: int, owner: str, name: str) -> GitHubRepo:
        """The port of one repository through `installation_id` (no request is made)."""

    def default_branch_heads(self, installation_id: int, repos: Sequence[tuple[str, str]]) -> HeadsRead:
        """The default-branch heads of up to 100 `(owner, name)` repositories in one GraphQL query
        (about one point); repositories missing or not installed are left out of `heads`. A GitHub
        without GraphQL raises a `GitHubError` (the caller falls back to REST `get_branch`)."""


class AppHookDeliveries(Protocol):
    """The App webhook's delivery log, for the delivery sweep (App JWT auth): list, and redeliver
    (https://docs.github.com/en/rest/apps/webhooks)."""

    def list_hook_deliveries(self, *, since: datetime | None = None) -> list[HookDelivery]:
        """Attempts newest first, every page (by GitHub's cursor), stopping past `since`."""

    def redeliver_hook_delivery(self, delivery_id: int) -> None:
        """Ask GitHub to send delivery `delivery_id` again (same GUID, `redelivery: true`)."""


__all__ = [
    "CONTENT_CREATING_METHODS",
    "AppHookDeliveries",
    "GitHubApp",
    "GitHubRepo",
    "Priority",
    "PullState",
    "RequestCount",
    "TreeWrite",
    "counting_requests",
    "record_request",
]
