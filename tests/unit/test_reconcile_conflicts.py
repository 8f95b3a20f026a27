"""Conflicts in the engine, on the in-memory twins: both sides edited since the base, each strategy, the
same file and different files; nothing is ever lost and nothing is force-pushed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghsync.domain.sync import ConflictStrategy
from ghsync.services.reconcile import ReconcileService
from support.engine_world import BASE_TEXT, World, make_world


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    strategy, mode = getattr(request, "param", ("manual", "direct_commit"))
    yield from make_world(tmp_path, strategy, mode)


def strategy_world(strategy: str, mode: str = "direct_commit") -> pytest.MarkDecorator:
    return pytest.mark.parametrize("world", [(strategy, mode)], indirect=True)


@strategy_world("auto_merge")
def test_auto_merge_of_edits_to_different_files(world: World) -> None:
    world.edit_locally({"a.txt": BASE_TEXT + "six\n"})
    person = world.push_on_github({"b.txt": "b edited on GitHub\n"})
    world.engine.reconcile(world.project)
    expected = {"a.txt": (BASE_TEXT + "six\n").encode(), "b.txt": b"b edited on GitHub\n"}
    assert world.local() == expected and world.remote() == expected
    head = world.github.head("octo", "site", "trunk")
    assert head is not None
    repo = world.github.repo(world.installation, "octo", "site")
    assert repo.get_commit(head).parents == (person,)  # on top of GitHub's head: the person's commit stays
    assert world.open_conflict() is None
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "nothing"


@strategy_world("auto_merge")
def test_auto_merge_of_edits_to_different_lines_of_one_file(world: World) -> None:
    world.edit_locally({"a.txt": BASE_TEXT.replace("one", "ONE")})
    world.push_on_github({"a.txt": BASE_TEXT.replace("five", "FIVE")})
    world.engine.reconcile(world.project)
    merged = BASE_TEXT.replace("one", "ONE").replace("five", "FIVE").encode()
    assert world.local()["a.txt"] == merged and world.remote()["a.txt"] == merged


@strategy_world("auto_merge")
def test_an_unclean_auto_merge_falls_back_to_manual_never_a_half_merge(world: World) -> None:
    world.edit_locally({"a.txt": BASE_TEXT.replace("three", "local three"), "c.txt": "only local\n"})
    world.push_on_github({"a.txt": BASE_TEXT.replace("three", "github three")})
    local_before, remote_before = world.local(), world.remote()
    world.engine.reconcile(world.project)
    assert world.local() == local_before and world.remote() == remote_before  # nothing applied
    conflict = world.open_conflict()
    assert conflict is not None and conflict.paths == ("a.txt",)
    assert conflict.details["files"] == [{"path": "a.txt", "kind": "content"}]
    operation = world.last_operation()
    assert operation.conflicts_detected == 1 and operation.metadata["conflict"]["fell_back_to"] == "manual"
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "await_resolution"


@strategy_world("github_wins")
def test_github_wins_keeps_the_local_side_as_a_version_and_a_ref(world: World) -> None:
    world.edit_locally({"a.txt": "local\n"})
    local_head = world.store.head(world.project)
    world.push_on_github({"a.txt": "github\n"})
    world.engine.reconcile(world.project)
    assert world.local() == world.remote() and world.local()["a.txt"] == b"github\n"
    kept = world.store.list_refs(world.project, "refs/ghsync/backup/github-wins/")
    assert list(kept.values()) == [local_head]
    assert local_head in {v.commit_sha for v in world.store.list_versions(world.project)}  # still a version


@strategy_world("local_wins")
def test_local_wins_is_a_new_commit_on_top_of_github_never_a_force_push(world: World) -> None:
    world.edit_locally({"a.txt": "local\n"})
    person = world.push_on_github({"a.txt": "github\n"})
    world.engine.reconcile(world.project)
    assert world.remote() == world.local() and world.remote()["a.txt"] == b"local\n"
    head = world.github.head("octo", "site", "trunk")
    assert head is not None
    assert world.github.repo(world.installation, "octo", "site").get_commit(head).parents == (person,)


def test_manual_waits_and_a_changed_strategy_gets_a_new_try(world: World) -> None:
    world.edit_locally({"a.txt": "local\n"})
    world.push_on_github({"a.txt": "github\n"})
    world.engine.reconcile(world.project)
    assert world.open_conflict() is not None
    assert world.local()["a.txt"] == b"local\n" and world.remote()["a.txt"] == b"github\n"
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "await_resolution"

    world.set_strategy(ConflictStrategy.LOCAL_WINS)
    world.engine.reconcile(world.project)
    assert world.remote()["a.txt"] == b"local\n"
    assert world.open_conflict() is None
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "nothing"


@strategy_world("auto_merge", "protected_pr")
def test_auto_merge_in_pr_mode_updates_the_pr_with_a_mergeable_commit(world: World) -> None:
    world.edit_locally({"a.txt": BASE_TEXT + "six\n"})
    world.engine.reconcile(world.project)  # opens the PR
    branch = f"ghsync/{world.project}"
    repo = world.github.repo(world.installation, "octo", "site")
    pull = repo.find_open_pull(branch, "trunk")
    assert pull is not None
    person = world.push_on_github({"b.txt": "b edited on GitHub\n"})  # the base moved under the PR
    world.engine.reconcile(world.project)
    expected = {"a.txt": (BASE_TEXT + "six\n").encode(), "b.txt": b"b edited on GitHub\n"}
    assert world.local() == expected and world.remote(branch) == expected
    head = world.github.head("octo", "site", branch)
    assert head is not None and person in repo.get_commit(head).parents
    world.github.merge_pull("octo", "site", pull.number, "merge")
    world.engine.reconcile(world.project)
    assert world.remote() == expected
    assert world.last_operation().operation_type == "record_pair"


@pytest.mark.parametrize(
    "world", [("auto_merge", "protected_pr"), ("local_wins", "protected_pr")], indirect=True
)
def test_in_pr_mode_a_settled_conflict_is_settled_once(world: World) -> None:
    world.edit_locally({"a.txt": BASE_TEXT + "six\n"})
    world.push_on_github({"b.txt": "b edited on GitHub\n"})
    world.engine.reconcile(world.project)
    branch = f"ghsync/{world.project}"
    head = world.github.head("octo", "site", branch)
    world.engine.reconcile(world.project)
    assert world.last_operation().metadata["decision"]["reason"] == "pull_request_current"
    assert world.github.head("octo", "site", branch) == head  # no merge commit added again


def _link_flags(world: World, **flags: bool) -> None:
    with world.uow() as uow:
        project = uow.projects.get(world.project)
        assert project is not None and project.link is not None
        uow.projects.save_link(world.project, replace(project.link, **flags))  # type: ignore[arg-type]
        uow.commit()


@pytest.mark.parametrize("world", [("local_wins", "direct_commit")], indirect=True)
def test_with_the_operator_s_opt_in_local_wins_force_pushes_keeping_and_logging_what_it_overwrote(
    world: World,
) -> None:
    _link_flags(world, allow_force_push=True)
    synced = world.github.head("octo", "site", "trunk")
    world.edit_locally({"a.txt": "local\n"})
    person = world.push_on_github({"a.txt": "github\n"})
    world.engine.reconcile(world.project)
    head = world.github.head("octo", "site", "trunk")
    repo = world.github.repo(world.installation, "octo", "site")
    assert head is not None and repo.get_commit(head).parents == (synced,)  # rewritten, on the last sync
    assert world.remote() == world.local()
    assert world.github.head("octo", "site", f"ghsync/backup/{person[:12]}") == person  # kept on GitHub
    with world.uow() as uow:
        audit = [e for e in uow.audit.for_project(world.project) if e.action == "github.force_push"]
    assert len(audit) == 1 and audit[0].details["forced"]["overwritten"] == person
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "nothing"


def test_a_project_can_hold_syncs_after_a_person_s_force_push(world: World) -> None:
    _link_flags(world, hold_force_pushes=True)
    first = world.github.head("octo", "site", "trunk")
    world.push_on_github({"b.txt": "pushed\n"})
    world.engine.reconcile(world.project)  # in step with the person's push
    assert first is not None
    world.github.force_push("octo", "site", "trunk", first)  # the push is rewritten away
    before = world.local()
    world.engine.reconcile(world.project)
    operation = world.last_operation()
    assert operation.status == "held" and "force-push" in operation.metadata["held"]["why"]
    assert world.local() == before  # nothing applied
    # Every reconcile while held (a poll, a webhook, minutes later) sees the force-push again: the local
    # side it keeps is the same commit, so it stays one backup ref, not one more per reconcile.
    later = ReconcileService(
        world.uow, world.store, world.github, clock=lambda: datetime.now(UTC) + timedelta(minutes=5)
    )
    later.reconcile(world.project)
    assert world.last_operation().status == "held"
    local = world.store.head(world.project)
    assert list(world.store.list_refs(world.project, "refs/ghsync/backup/force-push/").values()) == [local]
    world.engine.confirm(world.project, local_head=local, github_head=first)
    assert world.local() == world.remote() and world.local()["b.txt"] == b"b\n"  # the rewrite came in
