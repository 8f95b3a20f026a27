"""The PR lifecycle in the engine, on the in-memory twins: merged by any method, closed unmerged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ghsync.services.reconcile import ReconcileService
from support.engine_world import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, "manual", "protected_pr")


def open_pr(world: World, files: dict[str, str]) -> int:
    world.edit_locally(files)
    world.engine.reconcile(world.project)
    pull = world.github.repo(world.installation, "octo", "site").find_open_pull(
        f"ghsync/{world.project}", "trunk"
    )
    assert pull is not None
    return pull.number


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_a_merged_pr_comes_back_inbound_and_its_branch_is_deleted(world: World, method: str) -> None:
    number = open_pr(world, {"a.txt": "ours\n"})
    world.push_on_github({"b.txt": "a person's change on trunk\n"})  # the base moved meanwhile
    world.github.merge_pull("octo", "site", number, method)  # type: ignore[arg-type]
    world.engine.reconcile(world.project)
    assert world.local() == world.remote()
    assert world.local()["a.txt"] == b"ours\n" and world.local()["b.txt"] == b"a person's change on trunk\n"
    assert world.github.head("octo", "site", f"ghsync/{world.project}") is None  # branch deleted
    operation = world.last_operation()
    assert (
        operation.operation_type == "pull_inbound"
        and operation.metadata["pull_request_merged"]["number"] == number
    )
    with world.uow() as uow:
        project = uow.projects.get(world.project)
    assert project is not None and project.pull_request is None
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "nothing"


def test_a_pr_closed_unmerged_is_rejected_until_the_next_version(world: World) -> None:
    number = open_pr(world, {"a.txt": "ours\n"})
    repo = world.github.repo(world.installation, "octo", "site")
    repo.update_pull(number, state="closed")  # a person closes it without merging
    trunk = world.github.head("octo", "site", "trunk")
    world.engine.reconcile(world.project)
    operation = world.last_operation()
    assert (operation.operation_type, operation.metadata["decision"]["reason"]) == (
        "nothing",
        "outbound_rejected",
    )
    assert operation.metadata["pull_request_rejected"]["number"] == number
    assert repo.find_open_pull(f"ghsync/{world.project}", "trunk") is None  # not reopened behind their back
    assert world.github.head("octo", "site", "trunk") == trunk
    assert world.store.head(world.project) is not None  # the versions are kept

    world.edit_locally({"c.txt": "another try\n"})
    world.engine.reconcile(world.project)
    fresh = repo.find_open_pull(f"ghsync/{world.project}", "trunk")
    assert fresh is not None and fresh.number != number
    assert world.remote(f"ghsync/{world.project}") == world.local()


def test_a_person_s_edits_on_the_pr_branch_come_back_inbound(world: World) -> None:
    open_pr(world, {"a.txt": "ours\n"})
    branch = f"ghsync/{world.project}"
    person = world.github.push("octo", "site", branch, {"review.md": "a reviewer's fix\n"})
    world.engine.reconcile(world.project)
    assert world.local()["review.md"] == b"a reviewer's fix\n" and world.local()["a.txt"] == b"ours\n"
    assert world.github.head("octo", "site", branch) == person  # nothing written over it
    world.engine.reconcile(world.project)
    assert world.last_operation().metadata["decision"]["reason"] == "pull_request_current"

    # Both edit: the local side merges the person's edit, and the PR gets the merge on top of theirs.
    world.edit_locally({"c.txt": "local again\n"})
    second = world.github.push("octo", "site", branch, {"review.md": "a second fix\n"})
    world.engine.reconcile(world.project)
    expected = {
        "a.txt": b"ours\n",
        "b.txt": b"b\n",
        "c.txt": b"local again\n",
        "review.md": b"a second fix\n",
    }
    assert {k: v for k, v in world.local().items() if k in expected} == expected
    assert world.remote(branch) == world.local()
    head = world.github.head("octo", "site", branch)
    assert head is not None
    assert world.github.repo(world.installation, "octo", "site").get_commit(head).parents == (second,)


def test_clashing_edits_on_the_pr_branch_are_a_conflict_not_an_overwrite(world: World) -> None:
    open_pr(world, {"a.txt": "ours\n"})
    branch = f"ghsync/{world.project}"
    world.edit_locally({"a.txt": "ours, edited again\n"})
    person = world.github.push("octo", "site", branch, {"a.txt": "the reviewer's version\n"})
    world.engine.reconcile(world.project)
    assert world.github.head("octo", "site", branch) == person
    assert world.local()["a.txt"] == b"ours, edited again\n"
    conflict = world.open_conflict()
    assert conflict is not None and conflict.paths == ("a.txt",)
    assert conflict.details["pull_request_branch"] == person
    world.engine.reconcile(world.project)  # the project waits on it: nothing re-recorded
    assert world.last_operation().operation_type == "await_resolution"


# --- hybrid: a PR left open from when the branch was protected -------------------------------------------


@pytest.fixture
def hybrid(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, "manual", "hybrid")


def _leftover_pr(world: World) -> int:
    """A PR opened while trunk was protected; then a person lifts the protection."""
    world.github.protect("octo", "site", "trunk")
    number = open_pr(world, {"a.txt": "ours, through a PR\n"})
    world.github.unprotect("octo", "site", "trunk")
    return number


def test_a_direct_commit_closes_the_pr_it_supersedes_and_keeps_its_branch(hybrid: World) -> None:
    world = hybrid
    number = _leftover_pr(world)
    branch = f"ghsync/{world.project}"
    pr_head = world.github.head("octo", "site", branch)
    world.edit_locally({"c.txt": "after the protection was lifted\n"})

    world.engine.reconcile(world.project)

    operation = world.last_operation()
    assert operation.operation_type == "push_direct"
    assert operation.metadata["pull_request_superseded"] == {
        "number": number,
        "by": world.github.head("octo", "site", "trunk"),
    }
    assert world.remote() == world.local()  # trunk holds everything the PR held, and more
    pull = world.github.repo(world.installation, "octo", "site").get_pull(number)
    assert pull.state == "closed" and not pull.merged
    assert world.github.head("octo", "site", branch) == pr_head  # the branch is kept
    with world.uow() as uow:
        project = uow.projects.get(world.project)
    assert project is not None and project.pull_request is None
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "nothing"


def test_a_persons_commits_on_the_leftover_pr_come_back_before_the_direct_commit(hybrid: World) -> None:
    world = hybrid
    number = _leftover_pr(world)
    branch = f"ghsync/{world.project}"
    world.github.push("octo", "site", branch, {"review.md": "a reviewer's fix\n"})
    world.edit_locally({"c.txt": "local, meanwhile\n"})

    world.engine.reconcile(world.project)  # their edits first: never written over
    assert world.last_operation().operation_type == "pull_pr_edits"
    assert world.local()["review.md"] == b"a reviewer's fix\n"
    assert world.github.repo(world.installation, "octo", "site").get_pull(number).state == "open"

    world.engine.reconcile(world.project)  # then the direct commit carries them, and the PR is done
    assert world.last_operation().operation_type == "push_direct"
    remote = world.remote()
    assert remote["review.md"] == b"a reviewer's fix\n" and remote["c.txt"] == b"local, meanwhile\n"
    assert world.github.repo(world.installation, "octo", "site").get_pull(number).state == "closed"


def test_a_crash_before_the_superseded_pr_is_closed_closes_it_on_the_rerun(
    hybrid: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = hybrid
    number = _leftover_pr(world)
    world.edit_locally({"c.txt": "after the protection was lifted\n"})

    def killed(*args: object, **kwargs: object) -> None:
        raise SystemExit("kill -9 after the direct commit")

    with monkeypatch.context() as patch:
        patch.setattr(ReconcileService, "_close_superseded_pull", killed)
        with pytest.raises(SystemExit):
            world.engine.reconcile(world.project)
    repo = world.github.repo(world.installation, "octo", "site")
    assert world.remote() == world.local() and repo.get_pull(number).state == "open"

    world.engine.reconcile(world.project)  # the rerun records the pair and closes the PR

    operation = world.last_operation()
    assert operation.operation_type == "record_pair"
    assert operation.metadata["pull_request_superseded"]["number"] == number
    assert repo.get_pull(number).state == "closed"


def test_an_open_pr_holding_a_recent_version_reads_only_the_newest_versions(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each reconcile of a project with an open PR asks whether the PR branch holds one of our versions:
    # with a long history, reading every version each time would cost seconds (bench/store_history.py).
    for n in range(8):
        world.edit_locally({"a.txt": f"version {n}\n"})
    open_pr(world, {"a.txt": "ours\n"})
    read: list[str] = []
    versions_of = world.store.iter_versions

    def counted(project_id: str) -> Iterator[object]:
        for version in versions_of(project_id):
            read.append(version.commit_sha)
            yield version

    monkeypatch.setattr(world.store, "iter_versions", counted)
    monkeypatch.setattr(world.store, "list_versions", lambda _: pytest.fail("the whole history was read"))
    world.engine.reconcile(world.project)
    assert world.last_operation().metadata["decision"]["reason"] == "pull_request_current"
    assert 1 <= len(read) <= 2
