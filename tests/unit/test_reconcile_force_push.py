"""A force-push on GitHub's default branch, on the in-memory twins: the local side is kept under
refs/ghsync/backup/force-push/..., the operation records it, and the decision is the usual one."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.models import Author, FileWrite
from ghsync.domain.operations import SyncOperation
from ghsync.services.linking import LinkService
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import EngineSettings, ReconcileService

KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
ADA = Author("Ada Lovelace", "ada@example.com")
BACKUPS = "refs/ghsync/backup/force-push/"


@dataclass
class World:
    github: InMemoryGitHub
    uow: MemoryUnitOfWorkFactory
    store: GitStore
    projects: ProjectService
    versions: VersionService
    links: LinkService
    installation: int

    def linked(self, strategy: str = "manual") -> str:
        self.github.add_repo("octo", "site", default_branch="trunk", files={"a.txt": "base\n"})
        project = self.projects.create_project("site")
        self.links.link(
            project.id, owner="octo", repo="site", sync_mode="direct_commit", conflict_strategy=strategy
        )
        self.reconcile(project.id)
        return project.id

    def reconcile(self, project_id: str) -> SyncOperation:
        ReconcileService(self.uow, self.store, self.github, EngineSettings()).reconcile(project_id)
        with self.uow() as uow:
            operation = uow.operations.latest(project_id)
        assert operation is not None
        return operation

    def local(self, project_id: str, path: str) -> bytes:
        head = self.store.head(project_id)
        assert head is not None
        return self.store.read_file(project_id, head, path)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with InMemoryGitHub(tmp_path / "github") as github:
        installation = github.add_installation("octo", selection="all")
        queue = InMemoryQueue()
        queue.register("reconcile", lambda args: None)
        uow = MemoryUnitOfWorkFactory(notify=queue.request_reconcile)
        store = GitStore(tmp_path / "projects", max_file_size=1 << 20)
        projects = ProjectService(uow, store)
        links = LinkService(uow, store, projects, github, SecretBox.from_setting([KEY]), queue)
        yield World(github, uow, store, projects, VersionService(uow, store, projects), links, installation)


def rewrite_history(world: World, files: dict[str, str | None]) -> str:
    """A person rewrites trunk: a commit on top of the first one (not of the current head), force-pushed."""
    root = world.github.repo(world.installation, "octo", "site")
    head = world.github.head("octo", "site", "trunk")
    assert head is not None
    first = head
    while parents := root.get_commit(first).parents:
        first = parents[0]
    rewritten = world.github.push("octo", "site", "rewrite", files, parent=first)
    world.github.force_push("octo", "site", "trunk", rewritten)
    return rewritten


def test_an_ordinary_push_is_no_force_push(world: World) -> None:
    project = world.linked()
    world.github.push("octo", "site", "trunk", {"a.txt": "pushed\n"})
    operation = world.reconcile(project)
    assert operation.direction == "from_github" and "force_push" not in operation.metadata
    assert world.store.list_refs(project, BACKUPS) == {}


def test_a_force_push_keeps_the_local_side_and_comes_in_as_a_version(world: World) -> None:
    project = world.linked()
    world.github.push("octo", "site", "trunk", {"a.txt": "pushed, then dropped\n"})
    world.reconcile(project)
    before = world.store.head(project)
    rewritten = rewrite_history(world, {"a.txt": "history rewritten\n"})

    operation = world.reconcile(project)

    assert operation.direction == "from_github" and operation.github_commit_sha == rewritten
    assert world.local(project, "a.txt") == b"history rewritten\n"
    forced = operation.metadata["force_push"]
    assert forced["github_head"] == rewritten and forced["relation"] == "diverged"
    kept = world.store.list_refs(project, BACKUPS)
    assert list(kept.values()) == [before] and forced["kept_local_ref"] in kept
    # The commit GitHub dropped stays readable locally: its version is what the ref keeps.
    assert world.store.read_file(project, before, "a.txt") == b"pushed, then dropped\n"  # type: ignore[arg-type]


def test_planning_after_a_force_push_writes_nothing_not_even_the_backup_ref(world: World) -> None:
    project = world.linked()
    world.github.push("octo", "site", "trunk", {"a.txt": "pushed, then dropped\n"})
    world.reconcile(project)
    before = world.store.head(project)
    rewrite_history(world, {"a.txt": "history rewritten\n"})

    plan = ReconcileService(world.uow, world.store, world.github, EngineSettings()).plan(project)

    assert plan.action == "pull_inbound" and plan.github_head != plan.base_github
    assert world.store.list_refs(project, BACKUPS) == {}  # a dry run keeps nothing: it changes nothing
    assert world.store.head(project) == before
    # The reconcile that follows keeps the local side, as without the plan.
    world.reconcile(project)
    assert list(world.store.list_refs(project, BACKUPS).values()) == [before]


def test_a_force_push_back_to_an_ancestor_is_behind_and_kept_too(world: World) -> None:
    project = world.linked()
    first = world.github.head("octo", "site", "trunk")
    assert first is not None
    world.github.push("octo", "site", "trunk", {"b.txt": "b\n"})
    world.reconcile(project)
    world.github.force_push("octo", "site", "trunk", first)  # a reset of the branch
    operation = world.reconcile(project)
    assert operation.metadata["force_push"]["relation"] == "behind"
    (kept,) = world.store.list_refs(project, BACKUPS).values()
    head = world.store.head(project)
    assert head is not None
    assert "b.txt" not in [e.path for e in world.store.list_files(project, head)]  # GitHub's reset applied
    assert world.store.read_file(project, kept, "b.txt") == b"b\n"  # what it dropped, kept


def test_a_force_push_against_local_changes_is_a_divergence_and_nothing_is_lost(world: World) -> None:
    project = world.linked(strategy="manual")
    world.github.push("octo", "site", "trunk", {"a.txt": "pushed\n"})
    world.reconcile(project)
    version = world.versions.create_version(
        project, message="local", writes=[FileWrite("a.txt", b"local edit\n")], author=ADA
    )
    rewrite_history(world, {"a.txt": "rewritten\n"})

    operation = world.reconcile(project)

    assert "force_push" in operation.metadata
    assert operation.conflicts_detected >= 1  # manual: recorded for a person, like any divergence
    assert world.local(project, "a.txt") == b"local edit\n"  # the local side untouched
    assert list(world.store.list_refs(project, BACKUPS).values()) == [version.commit_sha]
