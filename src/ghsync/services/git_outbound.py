"""Outbound over git: the change's shape for the transport rule, and a version's commit built in the local
store on top of GitHub's head(s) and pushed without force (used by `ReconcileService`).

The commit is the one the Git Data API path would make: the version's tree, its message ending with the
`Ghsync-Version` trailer, the version's author as author and committer (as that path sends them), so
the two transports leave the same tree and the same history shape on GitHub.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ghsync.domain.errors import NotFastForward
from ghsync.domain.models import Author, VersionInfo
from ghsync.domain.outbound import BlobFacts, OutboundPlan, blob_facts, outbound_message, plan_writes
from ghsync.domain.trees import GitIdentity
from ghsync.ports.git_remote import GitRemote, RemoteRepo
from ghsync.ports.store import VersionStore


def local_plan(
    store: VersionStore,
    project_id: str,
    *,
    github_tree: str | None,
    fallback_tree: str | None,
    version: VersionInfo,
    facts: MutableMapping[str, BlobFacts],
    inline_limit: int,
) -> OutboundPlan:
    """What the Git Data API would send to turn GitHub's tree into the version's, planned from the store
    alone (no request): against `github_tree` when the store holds it, else against `fallback_tree` (the
    base pair's tree, what GitHub had at the last sync), else against nothing."""
    since = github_tree if github_tree and store.has_objects(project_id, [github_tree]) else fallback_tree
    remote = store.flat_tree(project_id, since) if since else {}
    local = store.flat_tree(project_id, version.tree_sha)
    missing = {e.sha for e in local.values()} - {e.sha for e in remote.values()}
    for sha in missing - set(facts):
        facts[sha] = blob_facts(store.read_blob(project_id, sha))
    return plan_writes(remote, local, facts, inline_limit=inline_limit)


@dataclass(frozen=True, slots=True)
class Parent:
    """A parent of the commit to push: GitHub's commit `sha`, the head of `branch` when it was read."""

    sha: str
    branch: str


def push_version(
    store: VersionStore,
    git: GitRemote,
    project_id: str,
    remote: RemoteRepo,
    version: VersionInfo,
    *,
    branch: str,
    parents: Sequence[Parent],
    expected: str | None,
    when: datetime,
    fetched: MutableMapping[str, str | None] | None = None,
    committer: Author | None = None,
) -> str:
    """Commit the version's tree on `parents` in the store and push it to `branch` (which must be at
    `expected`, None: absent); returns the commit's SHA.

    A parent the store lacks is fetched first (its branch); when the fetched head is not that parent,
    GitHub moved since it was read: `NotFastForward`, so the engine reads and decides again. `fetched`
    collects the branches fetched and their heads (for the operation's metadata).
    """
    shas = [p.sha for p in parents]
    have = store.has_objects(project_id, shas)
    for parent in parents:
        if parent.sha in have:
            continue
        head = git.fetch(project_id, remote, parent.branch)
        if fetched is not None:
            fetched[parent.branch] = head
        if head != parent.sha:
            raise NotFastForward(
                f"GitHub's {parent.branch} is at {head or 'nothing'}, not at {parent.sha} as read", status=422
            )
    person = GitIdentity(version.author.name, version.author.email, when)
    app = GitIdentity(committer.name, committer.email, when) if committer else person  # the App commits
    commit = store.write_commit(
        project_id,
        tree_sha=version.tree_sha,
        parents=shas,
        message=outbound_message(version.message, version.id),
        author=person,
        committer=app,
    )
    git.push(project_id, remote, branch, commit, expected=expected)
    return commit


def transport_metadata(
    transport: str, plan: OutboundPlan, fetched: Mapping[str, str | None]
) -> dict[str, object]:
    """The operation metadata of an outbound change by `transport` (git sends no REST blobs)."""
    if transport != "git":
        return {"transport": transport}
    return {"transport": "git", "blobs_uploaded": 0, "git_fetched": dict(fetched)}


__all__ = ["Parent", "local_plan", "push_version", "transport_metadata"]
