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


@dataclass(frozen=True, slots=True)
class Comparison:
    """GET compare base...head: how far head is ahead of / behind base, and the merge base."""

    status: str  # identical | ahead | behind | diverged
    ahead_by: int
    behind_by: int
    merge_base_sha: str
    commits: tuple[str, ...] = field(default=())  # oldest first, as GitHub lists them
