"""The in-memory twin of the `GitRemote` port: git fetch and push between a project's store and an
`InMemoryGitHub`'s bare repositories, by path, with GitHub's rules (held to the smart-HTTP adapter by
tests/contract/test_git_remote_contract.py).

Objects are copied between the two object databases (only what the other side lacks, as a pack would
carry); the branch moves only when it is at `expected` and the commit descends from it; a branch
protected for pull requests refuses the push like GitHub's protected-branch hook (GH006). Each
transfer counts the requests smart HTTP would send: the ref advertisement, plus one POST when objects
move, none content-creating. Injected faults (`InMemoryGitHub.inject_fault(operation="git_fetch")` or
`"git_push"`) fail the advertisement.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygit2

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.domain.errors import BranchProtected, GitHubNotFound, NotFastForward
from ghsync.ports.git_remote import TRACKING_PREFIX, RemoteRepo
from ghsync.ports.github import record_request

_GITLINK = pygit2.GIT_FILEMODE_COMMIT


def copy_objects(src: pygit2.Repository, dst: pygit2.Repository, tip: str) -> int:
    """Copy into `dst` every object reachable from commit `tip` that `dst` lacks; returns how many.

    A commit `dst` already has is taken to come with its whole history (git's own assumption)."""
    copied = 0
    stack = [pygit2.Oid(hex=tip)]
    seen: set[pygit2.Oid] = set()
    while stack:
        oid = stack.pop()
        if oid in seen or oid in dst.odb:
            continue
        seen.add(oid)
        kind, data = src.odb.read(oid)
        dst.odb.write(kind, data)
        copied += 1
        obj = src.get(oid)
        if isinstance(obj, pygit2.Commit):
            stack.append(obj.tree_id)
            stack.extend(obj.parent_ids)
        elif isinstance(obj, pygit2.Tree):
            stack.extend(entry.id for entry in obj if entry.filemode != _GITLINK)
    return copied


class InMemoryGitRemote:
    """Fetch from and push to `hub`'s repositories; `local_git_dir(project_id)` is the project's store."""

    def __init__(self, hub: InMemoryGitHub, local_git_dir: Callable[[str], Path]) -> None:
        self._hub = hub
        self._local = local_git_dir

    def _open(self, remote: RemoteRepo, operation: str) -> pygit2.Repository:
        """The advertisement request: counted, maybe faulted, 404 for a repository the App cannot see."""
        hub = self._hub
        hub._request("GET", remote.installation_id, operation)
        repo = hub._find_or_none(remote.owner, remote.name)
        if repo is None or not hub._may_see(remote.installation_id, repo):
            raise GitHubNotFound(f"repository {remote.full_name} not found", status=404)
        return repo.git

    def fetch(self, project_id: str, remote: RemoteRepo, branch: str) -> str | None:
        local = pygit2.Repository(str(self._local(project_id)))
        tracking = TRACKING_PREFIX + branch
        with self._hub._lock:
            git = self._open(remote, "git_fetch")
            head = self._hub._ref(self._hub._find(remote.owner, remote.name), branch)
            if head is None:
                if tracking in local.references:
                    local.references.delete(tracking)
                return None
            if copy_objects(git, local, head):
                record_request("GET")  # the upload-pack POST that carried the pack
        local.references.create(tracking, pygit2.Oid(hex=head), force=True)
        return head

    def push(
        self, project_id: str, remote: RemoteRepo, branch: str, sha: str, *, expected: str | None
    ) -> None:
        local = pygit2.Repository(str(self._local(project_id)))
        commit = local.get(sha)
        if not isinstance(commit, pygit2.Commit):
            raise ValueError(f"{sha} is not a commit of project {project_id}'s store")
        if (
            expected is not None
            and expected != sha
            and not local.descendant_of(commit.id, pygit2.Oid(hex=expected))
        ):
            raise NotFastForward(f"{sha} does not descend from {expected}; a push would rewrite history")
        hub = self._hub
        with hub._lock:
            git = self._open(remote, "git_push")
            repo = hub._find(remote.owner, remote.name)
            current = hub._ref(repo, branch)
            if current != expected:
                raise NotFastForward(
                    f"refs/heads/{branch} is at {current or 'nothing'}, not at {expected or 'nothing'}",
                    status=422,
                )
            copy_objects(local, git, sha)
            record_request("GET")  # the receive-pack POST (not a REST content-creating request)
            if repo.protected.get(branch):
                raise BranchProtected(
                    f"GH006: Protected branch update failed for refs/heads/{branch}. "
                    "Changes must be made through a pull request.",
                    status=422,
                )
            git.references.create(f"refs/heads/{branch}", commit.id, force=True)
            hub._branch_moved(repo, branch, current, sha)
        local.references.create(TRACKING_PREFIX + branch, commit.id, force=True)


__all__ = ["InMemoryGitRemote", "copy_objects"]
