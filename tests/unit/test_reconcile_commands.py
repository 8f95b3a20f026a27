"""The engine's answers to a person: the dry-run plan, the blast-radius guard and its confirmation,
conflict resolution (by strategy or with merged files) and reversible resets, on the in-memory twins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ghsync.domain.models import FileWrite
from ghsync.domain.sync import ConflictStrategy
from ghsync.services.reconcile import Refused
from support.engine_world import BASE_TEXT, World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, "manual")


def heads(world: World) -> dict[str, str | None]:
    return {
        "local_head": world.store.head(world.project),
        "github_head": world.github.head("octo", "site", "trunk"),
    }


def test_the_plan_says_what_the_next_reconcile_then_does(world: World) -> None:
    world.edit_locally({"a.txt": "changed\n", "new.txt": "new\n"})
    plan = world.engine.plan(world.project)
    assert (plan.action, plan.reason, plan.transport, plan.held) == (
        "push_direct",
        "local_changed",
        "git_data_api",
        False,
    )
    assert [(c.direction, c.status, c.path) for c in plan.changes] == [
        ("to_github", "modified", "a.txt"),
        ("to_github", "added", "new.txt"),
    ]
    assert plan.expected_requests == {"total": 3, "content_creating": 3}  # tree, commit, ref
    before = world.remote()
    assert world.remote() == before  # planning wrote nothing
    world.engine.reconcile(world.project)
    operation = world.last_operation()
    assert operation.operation_type == plan.action
    assert operation.metadata["requests"]["content_creating"] == plan.expected_requests["content_creating"]
    # The same plan is logged with the operation.
    assert operation.metadata["plan"]["changes"] == [[c.direction, c.status, c.path] for c in plan.changes]
    assert world.remote() == world.local()


def test_an_inbound_plan_lists_github_s_changes(world: World) -> None:
    world.push_on_github({"b.txt": None, "c.txt": "c\n"})
    plan = world.engine.plan(world.project)
    assert plan.action == "pull_inbound" and plan.transport == "rest"
    assert [(c.direction, c.status, c.path) for c in plan.changes] == [
        ("from_github", "deleted", "b.txt"),
        ("from_github", "added", "c.txt"),
    ]


def test_a_mass_deletion_is_held_then_confirmed(world: World) -> None:
    world.edit_locally({f"f{n:02}.txt": f"{n}\n" for n in range(20)})
    world.engine.reconcile(world.project)  # 22 files on both sides
    world.versions.create_version(
        world.project, message="delete most", writes=[], deletes=[f"f{n:02}.txt" for n in range(15)]
    )
    before = world.remote()
    plan = world.engine.plan(world.project)
    assert plan.held and plan.action == "held" and "15 of the 22 files of GitHub" in plan.blockers[0]
    world.engine.reconcile(world.project)
    assert world.last_operation().status == "held"
    assert world.remote() == before  # nothing applied

    with pytest.raises(Refused) as stale:
        world.engine.confirm(world.project, local_head="0" * 40, github_head=heads(world)["github_head"])
    assert stale.value.code == "plan_moved"
    world.engine.confirm(world.project, **heads(world))
    assert world.remote() == world.local() and len(world.remote()) == 7
    with pytest.raises(Refused) as nothing:
        world.engine.confirm(world.project, **heads(world))
    assert nothing.value.code == "nothing_held"


def _conflict(world: World) -> None:
    world.edit_locally({"a.txt": BASE_TEXT.replace("three", "local"), "c.txt": "local only\n"})
    world.push_on_github({"a.txt": BASE_TEXT.replace("three", "github"), "b.txt": "github b\n"})
    world.engine.reconcile(world.project)
    assert world.open_conflict() is not None


def test_a_conflict_resolved_by_strategy_and_a_stale_resolution_refused(world: World) -> None:
    _conflict(world)
    seen = heads(world)
    world.push_on_github({"d.txt": "later\n"})  # the conflict moves on
    with pytest.raises(Refused) as stale:
        world.engine.resolve_conflict(world.project, strategy=ConflictStrategy.LOCAL_WINS, **seen)
    assert stale.value.code == "conflict_moved"
    world.engine.reconcile(world.project)  # re-detected against the new head
    world.engine.resolve_conflict(world.project, strategy=ConflictStrategy.LOCAL_WINS, **heads(world))
    assert (
        world.remote() == world.local()
        and world.remote()["a.txt"] == BASE_TEXT.replace("three", "local").encode()
    )
    assert world.open_conflict() is None
    with pytest.raises(Refused) as none:
        world.engine.resolve_conflict(world.project, strategy=ConflictStrategy.LOCAL_WINS, **heads(world))
    assert none.value.code == "no_open_conflict"


def test_a_conflict_resolved_with_the_files_a_person_merged(world: World) -> None:
    _conflict(world)
    merged = BASE_TEXT.replace("three", "local and github")
    with pytest.raises(Refused):
        world.engine.resolve_conflict(world.project, files=[FileWrite("c.txt", b"x")], **heads(world))
    world.engine.resolve_conflict(world.project, files=[FileWrite("a.txt", merged.encode())], **heads(world))
    expected = {
        "a.txt": merged.encode(),  # the person's merge
        "b.txt": b"github b\n",  # GitHub's change outside the conflict
        "c.txt": b"local only\n",  # the local change outside the conflict
    }
    assert world.local() == expected and world.remote() == expected
    assert world.open_conflict() is None
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "nothing"


def test_a_reset_adopts_one_side_and_a_later_reset_undoes_it(world: World) -> None:
    _conflict(world)
    local_before = world.local()
    result = world.engine.reset(world.project, adopt="github")
    assert world.local() == world.remote() and world.local()["b.txt"] == b"github b\n"
    assert world.open_conflict() is None and result.kept_ref is not None
    assert result.kept_ref.startswith("refs/ghsync/backup/reset/")

    undo = world.engine.reset(world.project, restore=result.kept_ref)
    assert world.local() == local_before and world.remote() == local_before
    assert undo.kept_ref is not None  # the state it replaced is kept in turn
    world.engine.reconcile(world.project)
    assert world.last_operation().operation_type == "nothing"


def test_reset_refuses_bad_requests(world: World) -> None:
    with pytest.raises(Exception, match="adopt"):
        world.engine.reset(world.project)
    with pytest.raises(Refused) as unknown:
        world.engine.reset(world.project, restore="refs/ghsync/backup/nope")
    assert unknown.value.code == "unknown_ref"
