"""The reconcile engine's git transport on the in-memory twins (`InMemoryGitRemote` over `InMemoryGitHub`,
held to the smart-HTTP adapter by tests/contract/test_git_remote_contract.py): the first commit into an
empty repository, large changes by git, a rejected push read again, and the same tree either way.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.github.memory_git import InMemoryGitRemote
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.errors import GhsyncError
from ghsync.domain.models import Author, FileMode, FileWrite
from ghsync.domain.operations import SyncOperation
from ghsync.domain.outbound import TransportThresholds
from ghsync.ports.git_remote import RemoteRepo
from ghsync.ports.github import GitHubRepo, counting_requests
from ghsync.services.linking import LinkService
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import EngineSettings, ReconcileService

MIB = 1024 * 1024
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
ADA = Author("Ada Lovelace", "ada@example.com")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(64)
ALWAYS_GIT = TransportThresholds(min_files=1)
NEVER_GIT = TransportThresholds(enabled=False)


@dataclass
class World:
    github: InMemoryGitHub
    git: InMemoryGitRemote
    uow: MemoryUnitOfWorkFactory
    store: GitStore
    projects: ProjectService
    versions: VersionService
    links: LinkService
    installation: int

    def repo(self, name: str = "site") -> GitHubRepo:
        return self.github.repo(self.installation, "octo", name)

    def engine(
        self, git_transport: TransportThresholds | None = None, *, git: bool = True
    ) -> ReconcileService:
        settings = EngineSettings(git_transport=git_transport or TransportThresholds())
        return ReconcileService(self.uow, self.store, self.github, settings, self.git if git else None)

    def linked(
        self, name: str = "site", mode: str = "direct_commit", files: dict[str, str | bytes] | None = None
    ) -> str:
        self.github.add_repo("octo", name, default_branch="trunk", files=files)
        project = self.projects.create_project(name)
        self.links.link(project.id, owner="octo", repo=name, sync_mode=mode)
        return project.id

    def remote_tree(self, name: str = "site", branch: str = "trunk") -> str:
        head = self.github.head("octo", name, branch)
        assert head is not None
        return self.repo(name).get_commit(head).tree_sha

    def remote_files(self, name: str = "site", branch: str = "trunk") -> dict[str, tuple[str, bytes]]:
        repo = self.repo(name)
        return {
            e.path: (e.mode.value, repo.get_blob(e.sha))
            for e in repo.get_tree(self.remote_tree(name, branch))
        }

    def local_tree(self, project_id: str) -> str:
        head = self.store.head(project_id)
        assert head is not None
        return self.store.tree_sha(project_id, head)

    def last_operation(self, project_id: str) -> SyncOperation:
        with self.uow() as uow:
            operation = uow.operations.latest(project_id)
        assert operation is not None
        return operation


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with InMemoryGitHub(tmp_path / "github") as github:
        installation = github.add_installation("octo", selection="all")
        queue = InMemoryQueue()
        queue.register("reconcile", lambda args: None)  # the tests run the engine themselves
        uow = MemoryUnitOfWorkFactory(notify=queue.request_reconcile)
        store = GitStore(tmp_path / "projects", max_file_size=100 * MIB)
        projects = ProjectService(uow, store)
        links = LinkService(uow, store, projects, github, SecretBox.from_setting([KEY]), queue)
        git = InMemoryGitRemote(github, lambda project_id: store.project_dir(project_id) / ".git")
        yield World(
            github, git, uow, store, projects, VersionService(uow, store, projects), links, installation
        )


def write(
    world: World,
    project_id: str,
    files: dict[str, bytes],
    deletes: tuple[str, ...] = (),
    modes: dict[str, str] | None = None,
    message: str = "A change",
) -> str:
    writes = [
        FileWrite(path, content, FileMode((modes or {}).get(path, "100644")))
        for path, content in files.items()
    ]
    return world.versions.create_version(
        project_id, message=message, writes=writes, deletes=deletes, author=ADA
    ).id


# --- the empty repository ------------------------------------------------------------------------------


def test_an_empty_repository_gets_the_first_commit_over_git(world: World) -> None:
    project = world.linked()  # no files: an empty repository
    version = write(world, project, {"index.html": b"<h1>hi</h1>\n", "logo.png": PNG}, message="First")
    engine = world.engine()
    with counting_requests() as count:
        engine.reconcile(project)
    head = world.github.head("octo", "site", "trunk")
    assert head is not None
    assert world.remote_tree() == world.local_tree(project)
    assert world.remote_files()["logo.png"] == ("100644", PNG)
    commit = world.repo().get_commit(head)
    assert commit.parents == ()  # the root commit
    assert commit.message == f"First\n\nGhsync-Version: {version}\n"
    assert (commit.author.name, commit.author.email) == (ADA.name, ADA.email)
    assert count.content_creating == 0  # no REST content creation at all
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.status, operation.direction) == (
        "first_commit",
        "success",
        "to_github",
    )
    assert operation.metadata["transport"] == "git" and operation.github_commit_sha == head
    # Our own commit coming back is a no-op, with no git traffic.
    engine.reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"
    assert world.github.head("octo", "site", "trunk") == head


def test_without_git_an_empty_repository_is_an_error_that_changes_nothing(world: World) -> None:
    project = world.linked()
    write(world, project, {"a.txt": b"a\n"})
    with pytest.raises(GhsyncError) as raised:
        world.engine(git=False).reconcile(project)
    assert raised.value.code == "repository_empty"
    assert world.github.head("octo", "site", "trunk") is None


# --- the rule in the engine ---------------------------------------------------------------------------


def test_a_large_change_goes_by_git_and_a_small_one_by_the_git_data_api(world: World) -> None:
    project = world.linked(files={"seed.txt": "0\n"})
    engine = world.engine(TransportThresholds(min_files=50))
    engine.reconcile(project)
    write(world, project, {f"pages/{n:03}.md": f"# page {n}\n".encode() for n in range(120)})
    before = world.github.head("octo", "site", "trunk")
    with counting_requests() as large:
        engine.reconcile(project)
    operation = world.last_operation(project)
    assert operation.metadata["transport"] == "git" and operation.status == "success"
    assert world.remote_tree() == world.local_tree(project)
    head = world.github.head("octo", "site", "trunk")
    assert head is not None and world.repo().get_commit(head).parents == (before,)  # on top, not forced
    # GitHub's head came by git (the import), so the push needed no fetch first; no REST content
    # creation at all.
    assert large.content_creating == 0
    assert operation.metadata["git_fetched"] == {}
    write(world, project, {"pages/000.md": b"# the first page\n"})
    with counting_requests() as small:
        engine.reconcile(project)
    assert world.last_operation(project).metadata["transport"] == "git_data_api"
    assert small.content_creating == 3  # tree, commit, ref
    assert world.remote_tree() == world.local_tree(project)


def test_a_push_after_our_own_git_push_needs_no_fetch(world: World) -> None:
    project = world.linked()
    engine = world.engine(ALWAYS_GIT)
    write(world, project, {"a.txt": b"a\n"})
    engine.reconcile(project)  # the first commit, pushed from the store
    write(world, project, {"b.txt": b"b\n"})
    with counting_requests() as count:
        engine.reconcile(project)
    operation = world.last_operation(project)
    assert operation.metadata["transport"] == "git" and operation.metadata["git_fetched"] == {}
    # REST reads of the snapshot, then one push: its advertisement and its POST.
    assert count.content_creating == 0
    assert world.remote_tree() == world.local_tree(project)


def test_binary_blobs_github_lacks_go_by_git(world: World) -> None:
    project = world.linked(files={"seed.txt": "0\n"})
    engine = world.engine(TransportThresholds(min_missing_blobs=2))
    engine.reconcile(project)
    write(world, project, {"a.png": PNG, "b.png": PNG[::-1], "c.txt": b"c\n"})
    engine.reconcile(project)
    assert world.last_operation(project).metadata["transport"] == "git"
    assert world.remote_files()["b.png"] == ("100644", PNG[::-1])


# --- GitHub moving, protection ------------------------------------------------------------------------


def test_a_rejected_push_is_read_again_and_never_forced(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine(ALWAYS_GIT)
    engine.reconcile(project)
    write(world, project, {"b.txt": b"b\n"})
    real_push = world.git.push
    moved: list[str] = []

    def racing_push(
        project_id: str, remote: RemoteRepo, branch: str, sha: str, *, expected: str | None
    ) -> None:
        if not moved:  # a person pushes between our read and our push
            moved.append(world.github.push("octo", "site", "trunk", {"c.txt": "person\n"}))
        real_push(project_id, remote, branch, sha, expected=expected)

    world.git.push = racing_push  # type: ignore[method-assign]
    engine.reconcile(project)
    operation = world.last_operation(project)
    # Read again: both sides changed since the base, a conflict for the project's strategy.
    assert operation.operation_type == "conflict" and operation.retry_count == 1
    head = world.github.head("octo", "site", "trunk")
    assert head is not None
    # The person's commit is still on GitHub's branch: at the head, or below a merge on top of it.
    assert world.repo().compare(moved[0], head).status in ("identical", "ahead")


def test_a_protected_branch_refuses_the_git_push_and_the_change_goes_to_a_pr(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine(ALWAYS_GIT)
    engine.reconcile(project)
    before = world.github.head("octo", "site", "trunk")
    # Protected after the snapshot read the branch as unprotected: only GitHub's refusal tells.
    real_push = world.git.push

    def protect_then_push(
        project_id: str, remote: RemoteRepo, branch: str, sha: str, *, expected: str | None
    ) -> None:
        world.github.protect("octo", "site", "trunk")
        real_push(project_id, remote, branch, sha, expected=expected)

    world.git.push = protect_then_push  # type: ignore[method-assign]
    write(world, project, {"b.txt": b"b\n"})
    engine.reconcile(project)
    assert world.github.head("octo", "site", "trunk") == before
    operation = world.last_operation(project)
    assert operation.metadata["transport"] == "git"
    assert operation.metadata["pull_request"]["branch"] == f"ghsync/{project}"
    assert world.remote_tree(branch=f"ghsync/{project}") == world.local_tree(project)


def test_the_pr_branch_is_updated_by_git_without_force(world: World) -> None:
    project = world.linked(mode="protected_pr", files={"a.txt": "a\n"})
    engine = world.engine(ALWAYS_GIT)
    engine.reconcile(project)
    branch = f"ghsync/{project}"
    write(world, project, {"b.txt": b"b\n"})
    engine.reconcile(project)
    first = world.github.head("octo", "site", branch)
    write(world, project, {"c.txt": b"c\n"})
    engine.reconcile(project)
    second = world.github.head("octo", "site", branch)
    assert second is not None and world.repo().get_commit(second).parents == (first,)
    assert world.remote_tree(branch=branch) == world.local_tree(project)
    operation = world.last_operation(project)
    assert operation.metadata["transport"] == "git" and operation.metadata["pull_request"]["number"] == 1


# --- both transports ----------------------------------------------------------------------------------


def test_both_transports_produce_the_same_tree(world: World) -> None:
    seed: dict[str, str | bytes] = {
        "keep.txt": "keep\n",
        "old.png": PNG,
        "gone.txt": "bye\n",
        "dir/x.txt": "x\n",
    }
    by_git, by_api = world.linked("one", files=seed), world.linked("two", files=seed)
    engines = {by_git: world.engine(ALWAYS_GIT), by_api: world.engine(NEVER_GIT)}
    for project, engine in engines.items():
        engine.reconcile(project)  # import
        world.versions.create_version(
            project,
            message="Every kind of change",
            writes=[
                FileWrite("new/moved.png", PNG),  # a rename: GitHub has the blob
                FileWrite("run.sh", b"#!/bin/sh\necho hi\n", FileMode.EXECUTABLE),
                FileWrite("link", b"keep.txt", FileMode.SYMLINK),
                FileWrite("bin/data.bin", bytes(range(256)) * 8),
                FileWrite("keep.txt", b"changed\n"),
            ],
            deletes=["old.png", "gone.txt", "dir/x.txt"],
            author=ADA,
        )
        engine.reconcile(project)
    assert world.last_operation(by_git).metadata["transport"] == "git"
    assert world.last_operation(by_api).metadata["transport"] == "git_data_api"
    assert world.local_tree(by_git) == world.local_tree(by_api)
    assert world.remote_tree("one") == world.remote_tree("two") == world.local_tree(by_git)
    assert world.remote_files("one")["run.sh"] == ("100755", b"#!/bin/sh\necho hi\n")
    assert world.remote_files("one")["link"] == ("120000", b"keep.txt")
    # The same history shape too: one commit on top of GitHub's head, the same message and author.
    one, two = (world.repo(n).get_commit(world.github.head("octo", n, "trunk") or "") for n in ("one", "two"))
    assert len(one.parents) == len(two.parents) == 1
    assert one.message.split("Ghsync-Version")[0] == two.message.split("Ghsync-Version")[0]
    assert (one.author, one.committer) == (two.author, two.committer)


def test_a_failed_push_is_recorded_and_the_next_reconcile_converges_without_a_duplicate(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine(ALWAYS_GIT)
    engine.reconcile(project)
    before = world.github.head("octo", "site", "trunk")
    write(world, project, {"b.txt": b"b\n"})
    world.github.inject_fault(operation="git_push")  # a 502 answering the push
    with pytest.raises(GhsyncError):
        engine.reconcile(project)
    assert world.github.head("octo", "site", "trunk") == before
    assert world.last_operation(project).status == "failed"
    engine.reconcile(project)  # the runner's retry
    head = world.github.head("octo", "site", "trunk")
    assert head is not None and world.repo().get_commit(head).parents == (before,)  # one commit, not two
    assert world.remote_tree() == world.local_tree(project)
    engine.reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"


@pytest.mark.parametrize("mode", ["protected_pr", "hybrid"])
def test_the_first_commit_goes_to_the_default_branch_in_every_mode(world: World, mode: str) -> None:
    # There is no branch to open a pull request against yet: the first commit creates it.
    project = world.linked(mode=mode)
    write(world, project, {"a.txt": b"a\n"})
    world.engine().reconcile(project)
    assert world.remote_tree() == world.local_tree(project)
    assert world.github.head("octo", "site", f"ghsync/{project}") is None
    assert world.last_operation(project).operation_type == "first_commit"


# --- inbound by git -------------------------------------------------------------------------------------


def test_a_first_import_comes_by_one_git_fetch(world: World) -> None:
    project = world.linked(files={f"f{n}.txt": f"{n}\n" for n in range(30)} | {"logo.png": PNG})
    with counting_requests() as count:
        world.engine().reconcile(project)
    assert world.local_tree(project) == world.remote_tree()
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.metadata["transport"]) == ("import", "git")
    assert count.total < 10  # not one request per blob


def test_many_missing_blobs_come_by_git_few_by_rest(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    world.github.push("octo", "site", "trunk", {"b.txt": "b\n"})
    engine.reconcile(project)
    assert world.last_operation(project).metadata["transport"] == "rest"
    world.github.push("octo", "site", "trunk", {f"many/{n}.txt": f"{n}\n" for n in range(20)})
    engine.reconcile(project)
    assert world.last_operation(project).metadata["transport"] == "git"
    assert world.local_tree(project) == world.remote_tree()


def test_an_evil_path_fetched_by_git_is_refused_too(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    head = world.store.head(project)
    world.github.push("octo", "site", "trunk", {f"ok/{n}.txt": "x\n" for n in range(5)} | {"..\\evil": "x\n"})
    with pytest.raises(GhsyncError) as refused:
        engine.reconcile(project)
    assert refused.value.code == "invalid_path"
    assert world.store.head(project) == head


def test_paths_differing_only_in_case_fetched_by_git_are_refused_too(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    head = world.store.head(project)
    world.store.fold_case = True
    world.github.push("octo", "site", "trunk", {f"ok/{n}.txt": "x\n" for n in range(5)} | {"OK/6.txt": "x\n"})
    with pytest.raises(GhsyncError) as refused:
        engine.reconcile(project)
    assert refused.value.code == "invalid_path" and "'OK' and 'ok'" in refused.value.message
    assert world.store.head(project) == head


def test_the_plan_names_the_transport_the_rule_picks(world: World) -> None:
    project = world.linked(files={"seed.txt": "0\n"})
    engine = world.engine(TransportThresholds(min_files=50))
    engine.reconcile(project)
    write(world, project, {f"pages/{n:03}.md": f"# page {n}\n".encode() for n in range(60)})
    plan = engine.plan(project)
    assert (plan.action, plan.transport, plan.expected_requests["content_creating"]) == (
        "push_direct",
        "git",
        0,
    )
    engine.reconcile(project)
    assert world.last_operation(project).metadata["transport"] == "git"
    write(world, project, {"pages/000.md": b"# one page\n"})
    plan = engine.plan(project)
    assert (plan.transport, plan.expected_requests["content_creating"]) == ("git_data_api", 3)
