"""The GitRemote port: git fetch and push between a project's local store and its GitHub repository.

The second outbound transport (beside the Git Data API of `ghsync.ports.github`): the engine builds the
commit in the local store, on top of GitHub's head, and pushes it over git smart HTTP. Any number of
files, text or binary, travels in a few requests, none of them a REST content-creating request, and it
also reaches an empty repository, where the Git Data API answers 409.

Rules every adapter keeps (the contract suite is tests/contract/test_git_remote_contract.py):

- A push never forces. It names the head it replaces (`expected`, None to create the branch): when
  GitHub's branch is elsewhere, or the new commit does not descend from it, nothing changes and
  `NotFastForward` is raised, like the Git Data API's 422 "Update is not a fast forward".
- Branch protection refusing the push raises `BranchProtected`.
- A fetch brings the branch's head and everything it needs into the project's store, and keeps it
  reachable under `refs/ghsync/github/heads/<branch>` (a local ref: nothing moves on GitHub).
- Each HTTP request is counted by `ghsync.ports.github.counting_requests()`, never as content-creating:
  git's POSTs to upload-pack and receive-pack are not REST requests.

Adapters: `ghsync.adapters.github.git_transport.SmartHttpGitRemote` (pygit2 over smart HTTP, the
installation token as `x-access-token`) and `ghsync.adapters.github.memory_git.InMemoryGitRemote` (into an
`InMemoryGitHub`'s bare repositories by path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Where a fetched GitHub branch is kept in a project's store.
TRACKING_PREFIX = "refs/ghsync/github/heads/"


@dataclass(frozen=True, slots=True)
class RemoteRepo:
    """The repository a transfer goes to, and the installation whose token authenticates it."""

    installation_id: int
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GitRemote(Protocol):
    def fetch(self, project_id: str, remote: RemoteRepo, branch: str) -> str | None:
        """Fetch `branch` into the project's store; returns its head SHA, or None when GitHub has no such
        branch (an empty repository). `GitHubNotFound` when the repository is missing or hidden."""

    def push(
        self, project_id: str, remote: RemoteRepo, branch: str, sha: str, *, expected: str | None
    ) -> None:
        """Move GitHub's `branch` from `expected` (None: the branch must not exist) to commit `sha` of the
        project's store, sending the objects GitHub lacks. Never forced: `NotFastForward` when the branch
        is not at `expected` or `sha` does not descend from it, `BranchProtected` when protection
        refuses; nothing changes on GitHub in either case."""


__all__ = ["TRACKING_PREFIX", "GitRemote", "RemoteRepo"]
