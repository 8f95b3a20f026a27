"""Rebuilding a project's base pair from history alone, for when the database lost its `sync_pairs`.

A pair is a local version and a GitHub commit with identical trees. Walking GitHub's default branch
back from its head (first parents), the newest commit that pairs with a local version is the base:
our outbound commits name their version in the `Ghsync-Version` trailer, and any other commit (a merge
of our PR, an inbound change we applied) pairs by tree with the newest local version holding that tree.
"""

from __future__ import annotations

import uuid

from ghsync.domain.errors import Conflict, NotFound
from ghsync.domain.link import SyncPair
from ghsync.domain.operations import AuditEntry
from ghsync.domain.outbound import version_of_message
from ghsync.observability.logging import get_logger
from ghsync.ports.github import GitHubApp
from ghsync.ports.store import VersionStore
from ghsync.ports.uow import UnitOfWorkFactory
from ghsync.services.projects import parse_project_id

log = get_logger(__name__)


class PairRebuilder:
    def __init__(self, uow: UnitOfWorkFactory, store: VersionStore, github: GitHubApp) -> None:
        self._uow = uow
        self._store = store
        self._github = github

    def rebuild(
        self, project_id: str | uuid.UUID, *, max_commits: int = 200, actor: str = "cli"
    ) -> SyncPair | None:
        """Find and record the base pair; None when no GitHub commit within `max_commits` pairs."""
        key = parse_project_id(project_id)
        with self._uow() as uow:
            project = uow.projects.get(key)
        if project is None:
            raise NotFound(f"project {key} not found")
        if project.link is None:
            raise Conflict("project is not linked to a GitHub repository", code="not_linked")
        link = project.link
        versions = self._store.list_versions(key)
        by_id = {v.id: v for v in versions}
        newest_by_tree = {v.tree_sha: v for v in sorted(versions, key=lambda v: v.number)}
        repo = self._github.repo(link.installation_id, link.owner, link.repo)
        branch = repo.get_branch(repo.get_repository().default_branch)
        sha = branch.sha if branch else None
        pair = None
        for _ in range(max_commits):
            if sha is None:
                break
            commit = repo.get_commit(sha)
            named = by_id.get(version_of_message(commit.message) or "")
            found = named if named is not None and named.tree_sha == commit.tree_sha else None
            version = found or newest_by_tree.get(commit.tree_sha)
            if version is not None:
                pair = SyncPair(
                    version.id, version.commit_sha, commit.sha, commit.tree_sha, link.repository_id
                )
                break
            sha = commit.parents[0] if commit.parents else None
        if pair is None:
            log.warning("pair_rebuild_found_nothing", project_id=key, walked=max_commits)
            return None
        with self._uow() as uow:
            uow.versions.add_all(key, versions)  # the index may be gone too
            uow.pairs.add(key, pair)
            uow.audit.add(
                AuditEntry(
                    actor,
                    "github.pairs_rebuilt",
                    key,
                    {"version_id": pair.version_id, "github_commit": pair.github_commit_sha},
                )
            )
            uow.commit()
        log.info(
            "pair_rebuilt", project_id=key, version_id=pair.version_id, github_commit=pair.github_commit_sha
        )
        return pair
