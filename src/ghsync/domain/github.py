"""GitHub's side as the engine sees it: repositories, branches, commits and pull requests (pure values).

The GitHub adapters parse REST answers into these; services and `decide()` read only these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ghsync.domain.models import Author


@dataclass(frozen=True, slots=True)
class Installation:
    id: int
    account: str
    permissions: dict[str, str]
    repository_selection: str  # "all" or "selected"
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository; `default_branch` is read from GitHub, never assumed (it may be `trunk`)."""

    id: int
    owner: str
    name: str
    full_name: str
    default_branch: str
    private: bool
    html_url: str
    archived: bool = False


@dataclass(frozen=True, slots=True)
class Branch:
    """A branch head, and whether the branch is protected (one request: GET /repos/{o}/{r}/branches/{b})."""

    name: str
    sha: str
    protected: bool


@dataclass(frozen=True, slots=True)
class Commit:
    """A GitHub commit: its tree, parents, message and people."""

    sha: str
    tree_sha: str
    parents: tuple[str, ...]
    message: str
    author: Author
    committer: Author
    authored_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull request as the engine needs it (head and base by branch and SHA, and its state)."""

    number: int
    url: str
    state: str  # open | closed
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    title: str = ""
    draft: bool = False
    merged: bool = False
    merge_commit_sha: str | None = None
    mergeable: bool | None = None  # None while GitHub computes it
    body: str = ""


@dataclass(frozen=True, slots=True)
class Comparison:
    """GET compare base...head: how far head is ahead of / behind base, and the merge base."""

    status: str  # identical | ahead | behind | diverged
    ahead_by: int
    behind_by: int
    merge_base_sha: str
    commits: tuple[str, ...] = field(default=())  # oldest first, as GitHub lists them


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """The last `X-RateLimit-*` values seen for one installation (or the App itself)."""

    limit: int
    remaining: int
    reset_at: datetime
    used: int | None = None
    resource: str = "core"
    observed_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    def as_dict(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "used": self.used,
            "reset_at": self.reset_at.isoformat(),
            "resource": self.resource,
        }


@dataclass(frozen=True, slots=True)
class Cooldown:
    """ "No requests of this kind for this installation until `until`": a rate limit GitHub imposed.

    `kind` is "primary" (the hourly quota ran out) or "secondary" (GitHub's abuse limits; writes wait).
    https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
    """

    until: datetime
    kind: str
