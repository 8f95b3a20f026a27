"""The reconcile engine's orchestration on the in-memory twins: one test per branch, at unit speed.

The fake GitHub is held to the real client's behaviour by tests/contract/test_github_repo_contract.py;
the emulator end-to-end tests prove the same paths over HTTP.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.errors import InvalidPath, NotFastForward, RetryLater
from ghsync.domain.models import Author, FileMode, FileWrite
from ghsync.domain.operations import SyncOperation
from ghsync.ports.github import GitHubRepo, counting_requests
from ghsync.services.linking import LinkService
from ghsync.services.pairs import PairRebuilder
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import EngineSettings, ReconcileService

MIB = 1024 * 1024
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
ADA = Author("Ada Lovelace", "ada@example.com")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(64)


@dataclass
class World:
    github: InMemoryGitHub
    uow: MemoryUnitOfWorkFactory
    store: GitStore
    projects: ProjectService
    versions: VersionService
    links: LinkService
    tmp: Path
    installation: int

    def repo(self) -> GitHubRepo:
        return self.github.repo(self.installation, "octo", "site")

    def engine(self, **settings: object) -> ReconcileService:
        return ReconcileService(self.uow, self.store, self.github, EngineSettings(**settings))  # type: ignore[arg-type]

    def linked(self, mode: str = "direct_commit", files: dict[str, str | bytes] | None = None) -> str:
        self.github.add_repo("octo", "site", default_branch="trunk", files=files)
        project = self.projects.create_project("site")
        self.links.link(project.id, owner="octo", repo="site", sync_mode=mode)
        return project.id

    def remote_files(self, branch: str = "trunk") -> dict[str, tuple[str, bytes]]:
        """Every file on the GitHub branch: path -> (mode, bytes), read straight from the fake's git."""
        repo = self.repo()
        head = self.github.head("octo", "site", branch)
        assert head is not None
        return {
            entry.path: (entry.mode.value, repo.get_blob(entry.sha))
            for entry in repo.get_tree(repo.get_commit(head).tree_sha)
        }

    def local_files(self, project_id: str) -> dict[str, tuple[str, bytes]]:
        head = self.store.head(project_id)
        assert head is not None
        return {
            entry.path: (entry.mode.value, self.store.read_file(project_id, head, entry.path))
            for entry in self.store.list_files(project_id, head)
        }

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
        yield World(
            github, uow, store, projects, VersionService(uow, store, projects), links, tmp_path, installation
        )


def write(
    world: World, project_id: str, files: dict[str, bytes], deletes: tuple[str, ...] = (), **kw: object
) -> str:
    writes = [
        FileWrite(path, content, FileMode(str(kw.get("modes", {}).get(path, "100644"))))  # type: ignore[attr-defined]
        for path, content in files.items()
    ]
    return world.versions.create_version(
        project_id, message=str(kw.get("message", "A change")), writes=writes, deletes=deletes, author=ADA
    ).id


# --- first reconcile after linking -----------------------------------------------------------------------


def test_linking_a_repository_with_content_to_an_empty_project_imports_it(world: World) -> None:
    project = world.linked(files={"index.html": "<h1>hi</h1>\n", "img/logo.png": PNG})
    world.engine().reconcile(project)
    assert world.local_files(project) == world.remote_files()
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.direction, operation.status) == (
        "import",
        "from_github",
        "success",
    )
    head = world.store.head(project)
    assert head is not None and world.store.get_version(project, head).source == "github"
    # Level-triggered: asking again finds both sides in step and does nothing.
    world.engine().reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"


def test_identical_trees_at_link_time_are_paired_without_a_commit(world: World) -> None:
    world.github.add_repo("octo", "site", default_branch="trunk", files={"a.txt": "same\n"})
    project = world.projects.create_project("site").id
    write(world, project, {"a.txt": b"same\n"})
    world.links.link(project, owner="octo", repo="site")
    before = world.github.head("octo", "site", "trunk")
    world.engine().reconcile(project)
    assert world.github.head("octo", "site", "trunk") == before
    assert world.last_operation(project).operation_type == "record_pair"


def test_content_on_both_sides_at_link_time_is_a_conflict_that_loses_nothing(world: World) -> None:
    world.github.add_repo("octo", "site", default_branch="trunk", files={"a.txt": "github\n"})
    project = world.projects.create_project("site").id
    write(world, project, {"a.txt": b"local\n"})
    world.links.link(project, owner="octo", repo="site")
    world.engine().reconcile(project)
    assert world.remote_files()["a.txt"][1] == b"github\n"
    assert world.local_files(project)["a.txt"][1] == b"local\n"
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.conflicts_detected) == ("conflict", 1)
    world.engine().reconcile(project)
    assert world.last_operation(project).operation_type == "await_resolution"


# --- outbound, direct ----------------------------------------------------------------------------------


def test_a_version_becomes_one_commit_with_every_file_and_the_trailer(world: World) -> None:
    project = world.linked(files={"index.html": "old\n", "gone.txt": "bye\n"})
    engine = world.engine()
    engine.reconcile(project)
    version = write(
        world,
        project,
        {"index.html": b"new\n", "docs/a.md": b"# A\n", "run.sh": b"#!/bin/sh\necho hi\n", "img.png": PNG},
        deletes=("gone.txt",),
        modes={"run.sh": "100755"},
        message="Add docs and a script",
    )
    before = world.github.head("octo", "site", "trunk")
    with counting_requests() as count:
        engine.reconcile(project)
    assert world.remote_files() == world.local_files(project)
    assert world.remote_files()["run.sh"][0] == "100755"
    repo = world.repo()
    head = world.github.head("octo", "site", "trunk")
    assert head is not None
    commit = repo.get_commit(head)
    assert commit.parents == (before,)  # one commit, on top of GitHub's head: no force
    assert commit.message == f"Add docs and a script\n\nGhsync-Version: {version}\n"
    assert (commit.author.name, commit.author.email) == (ADA.name, ADA.email)
    # Reads, one blob upload (the PNG; text goes inline), one tree, one commit, one ref update.
    assert count.content_creating == 4
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.direction, operation.status) == (
        "push_direct",
        "to_github",
        "success",
    )
    assert operation.github_commit_sha == head and operation.local_version_id == version
    assert operation.files_changed == 5 and operation.insertions >= 3 and operation.deletions >= 1
    assert operation.metadata["blobs_uploaded"] == 1
    assert operation.metadata["requests"]["content_creating"] == 4
    with world.uow() as uow:
        stored = uow.projects.get(project)
        pair = uow.pairs.latest(project, stored.link.repository_id if stored and stored.link else 0)
    assert (
        stored is not None
        and stored.tracking.last_remote_main_sha == head == stored.tracking.last_synced_main_sha
    )
    assert pair is not None and pair.github_commit_sha == head and pair.version_id == version
    # Our own commit coming back (a webhook, a poll) is a no-op.
    with counting_requests() as again:
        engine.reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"
    assert again.content_creating == 0 and world.github.head("octo", "site", "trunk") == head


def test_a_rename_and_a_known_binary_upload_nothing_again(world: World) -> None:
    project = world.linked(files={"a.png": PNG})
    engine = world.engine()
    engine.reconcile(project)
    world.versions.create_version(
        project, message="rename", writes=[FileWrite("b/moved.png", PNG)], deletes=["a.png"], author=ADA
    )
    with counting_requests() as count:
        engine.reconcile(project)
    assert world.remote_files() == {"b/moved.png": ("100644", PNG)}
    assert count.content_creating == 3  # tree, commit, ref: GitHub had the blob


def test_symlinks_travel_as_symlinks(world: World) -> None:
    project = world.linked(files={"target.txt": "t\n"})
    engine = world.engine()
    engine.reconcile(project)
    write(world, project, {"link": b"target.txt"}, modes={"link": "120000"})
    engine.reconcile(project)
    assert world.remote_files()["link"] == ("120000", b"target.txt")


def test_large_changes_are_chunked_and_reach_the_same_tree(world: World) -> None:
    project = world.linked(files={"seed.txt": "0\n"})
    engine = world.engine(tree_entry_limit=7, tree_size_bytes=64)
    engine.reconcile(project)
    write(world, project, {f"f/{n:02}.txt": f"file {n}\n".encode() * 3 for n in range(20)})
    with counting_requests() as count:
        engine.reconcile(project)
    assert world.remote_files() == world.local_files(project)
    assert count.content_creating > 4  # several tree requests chained through base_tree


def test_github_moving_during_the_push_is_read_again_never_forced(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    write(world, project, {"b.txt": b"b\n"})
    real_repo = world.github.repo

    def moving_repo(installation_id: int, owner: str, name: str):  # type: ignore[no-untyped-def]
        repo = real_repo(installation_id, owner, name)
        original = repo.update_ref

        def update_ref(branch: str, sha: str) -> None:
            if not moved:
                moved.append(world.github.push("octo", "site", "trunk", {"c.txt": "person\n"}))
                raise NotFastForward("Update is not a fast forward", status=422)
            original(branch, sha)

        repo.update_ref = update_ref  # type: ignore[method-assign]
        return repo

    moved: list[str] = []
    world.github.repo = moving_repo  # type: ignore[method-assign]
    engine.reconcile(project)
    # Re-read: both sides changed now, which is a conflict for the strategy; the person's commit stays.
    assert world.github.head("octo", "site", "trunk") == moved[0]
    assert world.last_operation(project).operation_type == "conflict"


def test_github_moving_on_every_attempt_retries_later(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine(max_decisions=2)
    engine.reconcile(project)
    write(world, project, {"b.txt": b"b\n"})
    world.github.inject_fault(
        NotFastForward("Update is not a fast forward", status=422), count=5, operation="update_ref"
    )
    with pytest.raises(RetryLater):
        engine.reconcile(project)


# --- limits ----------------------------------------------------------------------------------------------


def test_a_file_over_the_limit_blocks_the_version_and_nothing_is_pushed(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine(max_file_size=1024)
    engine.reconcile(project)
    before = world.github.head("octo", "site", "trunk")
    write(world, project, {"big.bin": os.urandom(4096), "ok.txt": b"fine\n"})
    engine.reconcile(project)
    assert world.github.head("octo", "site", "trunk") == before
    operation = world.last_operation(project)
    assert (operation.status, operation.error_code) == ("failed", "file_too_large")
    assert "big.bin" in (operation.error_message or "") and "MiB" in (operation.error_message or "")


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (
            {
                "model.bin": b"version https://git-lfs.github.com/spec/v1\noid sha256:"
                + b"a" * 64
                + b"\nsize 12\n"
            },
            "lfs_pointer",
        ),
        ({".gitattributes": b"*.psd filter=lfs diff=lfs merge=lfs -text\n"}, "lfs_filter"),
    ],
)
def test_lfs_gets_an_actionable_error(world: World, files: dict[str, bytes], code: str) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    before = world.github.head("octo", "site", "trunk")
    write(world, project, files)
    engine.reconcile(project)
    operation = world.last_operation(project)
    assert (operation.status, operation.error_code) == ("failed", code)
    assert "LFS" in (operation.error_message or "")
    assert world.github.head("octo", "site", "trunk") == before


def test_files_over_the_warning_size_sync_with_a_warning(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine(warn_file_size=1000)
    engine.reconcile(project)
    write(world, project, {"data.bin": os.urandom(2000)})
    engine.reconcile(project)
    operation = world.last_operation(project)
    assert operation.status == "success" and "data.bin" in operation.metadata["warnings"][0]


# --- pull requests ---------------------------------------------------------------------------------------


def test_protected_pr_mode_opens_one_pr_and_updates_it(world: World) -> None:
    project = world.linked(mode="protected_pr", files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    trunk = world.github.head("octo", "site", "trunk")
    write(world, project, {"b.txt": b"b\n"}, message="First change")
    engine.reconcile(project)
    branch = f"ghsync/{project}"
    repo = world.repo()
    pull = repo.find_open_pull(branch, "trunk")
    assert pull is not None and world.github.head("octo", "site", "trunk") == trunk
    assert world.remote_files(branch) == world.local_files(project)
    assert "v2: First change" in (pull.body or "")
    first_head = world.github.head("octo", "site", branch)
    with world.uow() as uow:
        stored = uow.projects.get(project)
    assert (
        stored is not None and stored.pull_request is not None and stored.pull_request.number == pull.number
    )
    assert stored.tracking.last_outbound_base_sha == trunk

    engine.reconcile(project)  # the PR already carries the local head
    assert world.last_operation(project).operation_type == "nothing"

    write(world, project, {"c.txt": b"c\n"}, message="Second change")
    engine.reconcile(project)
    again = repo.find_open_pull(branch, "trunk")
    assert again is not None and again.number == pull.number  # updated, not a second PR
    assert "v3: Second change" in (again.body or "")
    head = world.github.head("octo", "site", branch)
    assert head is not None and repo.get_commit(head).parents == (first_head,)  # never force-pushed
    assert world.remote_files(branch) == world.local_files(project)

    world.github.merge_pull("octo", "site", pull.number, "squash")
    engine.reconcile(project)  # the merge comes back: identical trees, paired
    assert world.last_operation(project).operation_type == "record_pair"
    with world.uow() as uow:
        stored = uow.projects.get(project)
    assert stored is not None and stored.pull_request is None


def test_a_protected_branch_routes_direct_mode_to_a_pr(world: World) -> None:
    project = world.linked(mode="direct_commit", files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    world.github.protect("octo", "site", "trunk")
    trunk = world.github.head("octo", "site", "trunk")
    write(world, project, {"b.txt": b"b\n"})
    engine.reconcile(project)
    assert world.github.head("octo", "site", "trunk") == trunk
    assert world.repo().find_open_pull(f"ghsync/{project}", "trunk") is not None


def test_hybrid_goes_direct_until_the_branch_is_protected(world: World) -> None:
    project = world.linked(mode="hybrid", files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    write(world, project, {"b.txt": b"b\n"})
    engine.reconcile(project)
    assert world.last_operation(project).operation_type == "push_direct"
    world.github.protect("octo", "site", "trunk")
    write(world, project, {"c.txt": b"c\n"})
    engine.reconcile(project)
    assert world.last_operation(project).operation_type == "pull_request"


# --- inbound ---------------------------------------------------------------------------------------------


def test_a_person_s_push_becomes_a_version_with_the_identical_tree(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n", "img.png": PNG})
    engine = world.engine()
    engine.reconcile(project)
    pushed = world.github.push(
        "octo", "site", "trunk", {"a.txt": "edited\n", "img.png": None, "new.md": "n\n"}
    )
    engine.reconcile(project)
    assert world.local_files(project) == world.remote_files()
    head = world.store.head(project)
    assert head is not None
    version = world.store.get_version(project, head)
    assert version.source == "github" and version.message == "A person's change"
    assert world.last_operation(project).github_commit_sha == pushed
    # The working directory holds it too.
    assert (world.store.project_dir(project) / "a.txt").read_bytes() == b"edited\n"
    assert not (world.store.project_dir(project) / "img.png").exists()


def test_an_evil_path_from_github_is_refused_and_changes_nothing(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    local_head = world.store.head(project)
    # A name git accepts and no working directory should: Windows reads it as `..\..\evil.txt`.
    world.github.push("octo", "site", "trunk", {"..\\..\\evil.txt": "x\n"})
    with pytest.raises(Exception) as raised:
        engine.reconcile(project)
    assert getattr(raised.value, "code", "") in ("invalid_path",)
    assert world.store.head(project) == local_head
    assert sorted(p.name for p in world.store.project_dir(project).iterdir()) == [".git", "a.txt"]
    assert world.last_operation(project).status == "failed"


def test_paths_differing_only_in_case_are_refused_where_the_disk_folds_case(world: World) -> None:
    project = world.linked(files={"README.md": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    local_head = world.store.head(project)
    world.store.fold_case = True  # the working directories are on a macOS or Windows volume
    world.github.push("octo", "site", "trunk", {"readme.md": "b\n"})
    with pytest.raises(InvalidPath) as raised:
        engine.reconcile(project)
    assert "'README.md' and 'readme.md'" in raised.value.message
    assert world.store.head(project) == local_head
    assert sorted(p.name for p in world.store.project_dir(project).iterdir()) == [".git", "README.md"]
    assert world.last_operation(project).status == "failed"
    world.store.fold_case = False  # where names differ by case (Linux), both files come in
    engine.reconcile(project)
    assert (world.store.project_dir(project) / "readme.md").read_bytes() == b"b\n"


def test_crash_after_the_ref_update_is_healed_by_the_next_reconcile(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    write(world, project, {"b.txt": b"b\n"})
    real_add = world.uow.database.tables.operations  # noqa: F841 - the table the crash never reaches
    # The process dies after GitHub's ref moved but before the outcome is recorded.
    original = ReconcileService._record

    def crash(*args: object, **kwargs: object) -> str:
        raise SystemExit("kill -9")

    ReconcileService._record = crash  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(SystemExit):
            engine.reconcile(project)
    finally:
        ReconcileService._record = original  # type: ignore[method-assign]
    pushed = world.github.head("octo", "site", "trunk")
    engine.reconcile(project)  # sees identical trees: records the pair, makes no second commit
    assert world.github.head("octo", "site", "trunk") == pushed
    assert world.last_operation(project).operation_type == "record_pair"


def test_unlinked_and_unknown_projects(world: World) -> None:
    project = world.projects.create_project("lonely").id
    assert world.engine().reconcile(project) is not None
    assert world.last_operation(project).metadata["why"] == "not_linked"
    assert world.engine().reconcile("00000000-0000-0000-0000-000000000000") is None
    assert world.engine().reconcile("nope") is None


def test_the_local_store_is_a_real_git_repository(world: World) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    world.engine().reconcile(project)
    repo = pygit2.Repository(str(world.store.project_dir(project)))
    assert not repo.is_empty


@pytest.mark.parametrize("last", ["outbound", "inbound"])
def test_the_trailers_rebuild_the_pairs_after_the_database_lost_them(world: World, last: str) -> None:
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    engine.reconcile(project)
    write(world, project, {"b.txt": b"b\n"})
    engine.reconcile(project)
    if last == "inbound":
        world.github.push("octo", "site", "trunk", {"c.txt": "c\n"})
        engine.reconcile(project)
    with world.uow() as uow:
        stored = uow.projects.get(project)
        assert stored is not None and stored.link is not None
        before = uow.pairs.latest(project, stored.link.repository_id)
        assert uow.pairs.delete_all(project) > 0
        uow.commit()
    rebuilt = PairRebuilder(world.uow, world.store, world.github).rebuild(project)
    assert rebuilt is not None and before is not None
    assert (rebuilt.version_id, rebuilt.github_commit_sha, rebuilt.tree_sha) == (
        before.version_id,
        before.github_commit_sha,
        before.tree_sha,
    )
    head = world.github.head("octo", "site", "trunk")
    engine.reconcile(project)  # the rebuilt base: nothing to do, no duplicate commit
    assert world.last_operation(project).operation_type == "nothing"
    assert world.github.head("octo", "site", "trunk") == head


def test_a_version_an_earlier_failed_run_made_is_indexed_before_it_is_paired(world: World) -> None:
    """A run that imported a version and then failed to record it: the retry pairs that version, so it
    must join the index first (the SQL foreign key; the in-memory twin enforces it too)."""
    project = world.linked(files={"a.txt": "a\n"})
    engine = world.engine()
    original = ReconcileService._record

    def fail(*args: object, **kwargs: object) -> str:
        raise RuntimeError("the database went away")

    ReconcileService._record = fail  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(RuntimeError):
            engine.reconcile(project)  # the import committed a version in the store, then died
    finally:
        ReconcileService._record = original  # type: ignore[method-assign]
    with world.uow() as uow:
        assert uow.versions.max_number(project) == 0
    engine.reconcile(project)  # identical trees now: the pair names the unindexed version
    assert world.last_operation(project).operation_type == "record_pair"
    with world.uow() as uow:
        assert uow.versions.max_number(project) == 1
