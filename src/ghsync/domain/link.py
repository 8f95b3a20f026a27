"""A project's link to a repository, the pairs of identical trees, and what `decide()` reads (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ghsync.domain.github import PullRequest
from ghsync.domain.sync import ConflictStrategy, SyncMode


@dataclass(frozen=True, slots=True)
class Link:
    """Where a project syncs to, and how. `repository_id` survives renames and transfers."""

    project_id: str
    owner: str
    repo: str
    repository_id: int
    installation_id: int
    default_branch: str
    protected: bool
    mode: SyncMode
    strategy: ConflictStrategy
    enabled: bool
    # An operator's explicit opt-in: `local_wins` may then rewrite GitHub's branch (audit-logged, the
    # overwritten head kept on a backup branch). Off, ghsync never force-pushes.
    allow_force_push: bool = False
    # Hold the sync for confirmation when a person's force-push rewrote GitHub's history.
    hold_force_pushes: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


@dataclass(frozen=True, slots=True)
class SyncPair:
    """A local version and a GitHub commit whose trees are identical; the newest is the next base."""

    version_id: str
    local_commit_sha: str
    github_commit_sha: str
    tree_sha: str
    repository_id: int
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Head:
    """A side's current commit and its tree (None fields: the side has no commit yet)."""

    commit_sha: str | None
    tree_sha: str | None

    @property
    def empty(self) -> bool:
        return self.commit_sha is None


@dataclass(frozen=True, slots=True)
class OpenConflict:
    """An unresolved divergence recorded earlier: which heads it was about."""

    id: str
    local_commit_sha: str | None
    github_commit_sha: str | None
    paths: tuple[str, ...]
    strategy: str | None = None  # the strategy it was recorded under; a new one gets a new try


@dataclass(frozen=True, slots=True)
class Blocker:
    """Why a change cannot go to GitHub as it is (a file over 100 MiB, an LFS pointer, ...): the code,
    the path it is about, and a message that says what to do."""

    code: str
    message: str
    path: str | None = None


@dataclass(frozen=True, slots=True)
class SyncSnapshot:
    """Everything `decide()` reads, loaded once per reconcile: link, base pair, both heads, PR, conflict.

    `github` is the head of the default branch as read now, `github_protected` its protection as read
    now (the link's flag may be stale); `pr_head` is the head of the project's PR branch when it exists;
    `blockers` are what the local change holds that GitHub would refuse; `rejected_tree` is the tree of
    the project's PR when a person closed it without merging.
    """

    link: Link
    base: SyncPair | None
    local: Head
    github: Head
    github_protected: bool = False
    open_pr: PullRequest | None = None
    pr_head: Head | None = None
    open_conflict: OpenConflict | None = None
    blockers: tuple[Blocker, ...] = ()
    rejected_tree: str | None = None  # the tree of our PR that was closed without merging
    pr_edited_base: str | None = None  # a person committed on the PR branch on top of this tree of ours
    pr_contains_github: bool = (
        False  # the PR branch already merged GitHub's current head (a settled conflict)
    )


@dataclass(frozen=True, slots=True)
class Tracking:
    """The plan's SHA columns of a linked project (what the status API shows), written with each pair."""

    last_remote_main_sha: str | None = None
    last_synced_main_sha: str | None = None
    last_outbound_base_sha: str | None = None
    last_github_sync_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenPullRequest:
    """The project's ghsync/<project> pull request, while one is open."""

    number: int
    url: str


@dataclass(frozen=True, slots=True)
class Project:
    """A platform project; `link` is None until it is linked to a repository.

    `webhook_secret` is the sealed envelope (never the secret itself): only the secret box opens it.
    """

    id: str
    name: str
    created_at: datetime
    link: Link | None = None
    tracking: Tracking = Tracking()
    pull_request: OpenPullRequest | None = None
    webhook_secret: str | None = None
