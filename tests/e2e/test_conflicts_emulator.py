"""Conflicts and the PR lifecycle end to end: each strategy with both sides edited; PRs merged or closed.

The engine is wired as the worker wires it (the real `GitHubAppClient` over loopback HTTP, SQLite,
`GitStore`, `ReconcileService`; see outbound_support.py) and the emulator plays GitHub. This proves over
HTTP what tests/unit/test_reconcile_conflicts.py and tests/unit/test_pull_request_lifecycle.py prove on
the in-memory twins (issue 11's Acceptance); the conflict API (stale resolutions, plans, held deletions,
resets) is proven in tests/integration/test_conflict_api.py. Every test ends with a person's `git clone`
of the repository holding what it should, with `git fsck --strict` clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from outbound_support import TRANSPORTS, Outbound, fast_emulator, git, outbound_world

from ghsync.domain.sync import ConflictStrategy

pytestmark = pytest.mark.e2e

BASE = "one\ntwo\nthree\nfour\nfive\n"
LOCAL = BASE.replace("three", "three, as edited locally")
THEIRS = BASE.replace("three", "three, as a person edited it on GitHub")
SAME_LINE_OTHER_LINE = BASE.replace("five", "five, edited on GitHub")
B_THEIRS = "b, edited on GitHub\n"
STRATEGIES = ("auto_merge", "github_wins", "local_wins", "manual")
LAYOUTS = ("same_file", "different_files")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outbound]:
    tmp = tmp_path_factory.mktemp("conflicts")
    with fast_emulator(tmp / "emulator") as emu, outbound_world(tmp, emu) as world:
        yield world


@pytest.fixture(autouse=True)
def _no_faults_left(world: Outbound) -> Iterator[None]:
    yield
    world.emu.clear_faults()


# --- helpers ---------------------------------------------------------------------------------------------


def is_ancestor(clone: Path, old: str, new: str = "HEAD") -> bool:
    """`old` is in `new`'s history in a person's clone: GitHub's branch moved forward, never rewritten."""
    return git(clone, "merge-base", "--is-ancestor", old, new, check=False).returncode == 0


def files_at(world: Outbound, project: str, tree: str) -> dict[str, bytes]:
    return {
        path: world.store.read_blob(project, e.sha)
        for path, e in world.store.flat_tree(project, tree).items()
    }


def local_files(world: Outbound, project: str) -> dict[str, bytes]:
    return files_at(world, project, world.local_tree(project))


def clone_files(clone: Path) -> dict[str, bytes]:
    listed = git(clone, "ls-files", "-z").stdout
    return {path: (clone / path).read_bytes() for path in filter(None, listed.split("\0"))}


def open_conflict(world: Outbound, project: str) -> Any:
    with world.uow() as uow:
        return uow.conflicts.open_for(project)


def version_commits(world: Outbound, project: str) -> set[str]:
    return {v.commit_sha for v in world.store.list_versions(project)}


def edit_both_sides(world: Outbound, project: str, repo: str, layout: str) -> tuple[str, str]:
    """A local version and a person's push on GitHub since the base pair; returns (the local head
    commit, GitHub's head: the person's commit)."""
    world.write(project, {"a.txt": LOCAL.encode()}, message="Local edit")
    theirs = {"a.txt": THEIRS} if layout == "same_file" else {"b.txt": B_THEIRS}
    person = world.person_push(repo, "main", theirs)
    local_head = world.store.head(project)
    assert local_head is not None
    return local_head, person


# --- each strategy, both sides edited concurrently -------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_both_sides_edited_is_settled_by_the_strategy_and_nothing_is_lost_or_forced(
    world: Outbound, strategy: str, layout: str, transport: str
) -> None:
    project, repo = world.linked({"a.txt": BASE, "b.txt": "b\n"}, strategy=strategy)
    imported = world.head(repo, "main")
    assert imported is not None
    local_head, person = edit_both_sides(world, project, repo, layout)
    person_tree = world.commit(repo, person)["tree"]["sha"]
    local_tree = world.local_tree(project)

    world.engine(transport).reconcile(project)

    operation = world.last_operation(project)
    assert operation.conflicts_detected == 1
    details = operation.metadata["conflict"]
    # GitHub's side is kept in the local store whatever a person does on GitHub next.
    kept_github = world.store.list_refs(project, details["kept_github"])
    assert [world.store.tree_sha(project, sha) for sha in kept_github.values()] == [person_tree]
    assert local_head in version_commits(world, project)  # the local side stays a version
    merged_cleanly = strategy == "auto_merge" and layout == "different_files"
    waits = strategy == "manual" or (strategy == "auto_merge" and layout == "same_file")
    ours, theirs_b = LOCAL.encode(), B_THEIRS.encode()

    if waits:
        # Nothing applied on either side; one open conflict names the file both sides changed (none
        # when they changed different files: manual still waits for a person, with both sides kept).
        assert world.head(repo, "main") == person
        assert world.local_tree(project) == local_tree
        conflict = open_conflict(world, project)
        files = [{"path": "a.txt", "kind": "content"}] if layout == "same_file" else []
        assert conflict is not None and conflict.paths == tuple(f["path"] for f in files)
        assert conflict.details["files"] == files
        assert (conflict.local_commit_sha, conflict.github_commit_sha) == (local_head, person)
        if strategy == "auto_merge":
            assert details["fell_back_to"] == "manual"  # never a half-merge
        clone = world.assert_github_holds(project, repo, "main", tree=person_tree)
        theirs = {"a.txt": THEIRS.encode(), "b.txt": b"b\n"} if layout == "same_file" else {}
        assert clone_files(clone) == (theirs or {"a.txt": BASE.encode(), "b.txt": theirs_b})
        assert local_files(world, project) == {"a.txt": ours, "b.txt": b"b\n"}
        world.engine(transport).reconcile(project)
        assert world.last_operation(project).operation_type == "await_resolution"
        assert world.head(repo, "main") == person
        return

    assert open_conflict(world, project) is None
    after = world.head(repo, "main")
    assert after is not None
    if strategy == "github_wins":
        # GitHub untouched; the local side became GitHub's tree, the old local head kept under a ref.
        assert after == person
        assert world.local_tree(project) == person_tree
        kept_local = world.store.list_refs(project, "refs/ghsync/backup/github-wins/")
        assert list(kept_local.values()) == [local_head]
        assert operation.metadata["kept_local"] in kept_local
        clone = world.assert_github_holds(project, repo, "main")
        expected_a = THEIRS.encode() if layout == "same_file" else BASE.encode()
        expected = {"a.txt": expected_a, "b.txt": theirs_b if layout == "different_files" else b"b\n"}
    else:
        # One new commit on top of the person's: GitHub's history stays (no force-push).
        clone = world.assert_github_holds(project, repo, "main")
        assert [p["sha"] for p in world.commit(repo, after)["parents"]] == [person]
        assert git(clone, "rev-list", f"{person}..HEAD").stdout.split() == [after]
        if merged_cleanly:
            expected = {"a.txt": ours, "b.txt": theirs_b}
        else:  # local_wins: the local tree, exactly
            assert world.local_tree(project) == local_tree
            expected = {"a.txt": ours, "b.txt": b"b\n"}
        # The person's version of the files stays in GitHub's history.
        assert git(clone, "show", f"{person}:{'a.txt' if layout == 'same_file' else 'b.txt'}").stdout == (
            THEIRS if layout == "same_file" else B_THEIRS
        )
    assert local_files(world, project) == expected == clone_files(clone)
    assert is_ancestor(clone, person) and is_ancestor(clone, imported)
    # Settled: the next reconcile has nothing to do.
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"
    assert world.head(repo, "main") == after


def test_auto_merge_of_edits_to_different_lines_of_one_file_merges_the_text(world: Outbound) -> None:
    project, repo = world.linked({"a.txt": BASE, "b.txt": "b\n"}, strategy="auto_merge")
    world.write(project, {"a.txt": LOCAL.encode()})
    person = world.person_push(repo, "main", {"a.txt": SAME_LINE_OTHER_LINE})
    world.engine("git_data_api").reconcile(project)
    merged = BASE.replace("three", "three, as edited locally").replace("five", "five, edited on GitHub")
    assert local_files(world, project)["a.txt"] == merged.encode()
    clone = world.assert_github_holds(project, repo, "main")
    assert (clone / "a.txt").read_text() == merged
    assert git(clone, "rev-parse", "HEAD^").stdout.strip() == person


def test_a_manual_conflict_is_settled_by_a_later_strategy_as_a_commit_on_top(world: Outbound) -> None:
    project, repo = world.linked({"a.txt": BASE, "b.txt": "b\n"})
    local_head, person = edit_both_sides(world, project, repo, "same_file")
    world.engine("git_data_api").reconcile(project)
    assert open_conflict(world, project) is not None
    world.engine("git_data_api").resolve_conflict(
        project, local_head=local_head, github_head=person, strategy=ConflictStrategy.LOCAL_WINS
    )
    assert open_conflict(world, project) is None
    clone = world.assert_github_holds(project, repo, "main")
    assert (clone / "a.txt").read_text() == LOCAL and is_ancestor(clone, person)
    world.engine("git_data_api").reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"


# --- the PR lifecycle ------------------------------------------------------------------------------------


def open_pr(world: Outbound, project: str, repo: str, files: dict[str, bytes]) -> dict[str, Any]:
    world.write(project, files, message="Ours")
    world.engine("git_data_api").reconcile(project)
    (pull,) = [p for p in world.open_pulls(repo) if p["state"] == "open"]
    assert pull["head"]["ref"] == f"ghsync/{project}"
    return pull


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_a_pr_merged_on_github_comes_back_inbound_and_its_branch_is_deleted(
    world: Outbound, method: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n", "b.txt": "b\n"}, mode="protected_pr")
    branch = f"ghsync/{project}"
    pull = open_pr(world, project, repo, {"a.txt": b"ours\n"})
    pr_head = world.head(repo, branch)
    person = world.person_push(repo, "main", {"b.txt": "a person's change on main\n"})  # the base moved
    with world.rest() as rest:
        # https://docs.github.com/rest/pulls/pulls#merge-a-pull-request
        merged = rest.put(f"/repos/octo/{repo}/pulls/{pull['number']}/merge", json={"merge_method": method})
    assert merged.status_code == 200, merged.text
    merge_sha = merged.json()["sha"]
    assert world.head(repo, "main") == merge_sha
    parents = [p["sha"] for p in world.commit(repo, merge_sha)["parents"]]
    assert parents == ([person, pr_head] if method == "merge" else [person])

    world.engine("git_data_api").reconcile(project)

    operation = world.last_operation(project)
    assert operation.operation_type == "pull_inbound"
    assert operation.metadata["pull_request_merged"] == {"number": pull["number"], "branch_deleted": branch}
    assert world.head(repo, branch) is None  # the PR branch is deleted
    clone = world.assert_github_holds(project, repo, "main")  # the local head holds the merged tree
    assert clone_files(clone) == {"a.txt": b"ours\n", "b.txt": b"a person's change on main\n"}
    assert local_files(world, project) == clone_files(clone)
    assert git(clone, "ls-remote", "origin", f"refs/heads/{branch}").stdout == ""
    world.engine("git_data_api").reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"
    assert world.head(repo, "main") == merge_sha


def test_a_pr_closed_without_merging_is_rejected_until_the_next_version_opens_a_fresh_pr(
    world: Outbound,
) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode="protected_pr")
    branch = f"ghsync/{project}"
    pull = open_pr(world, project, repo, {"a.txt": b"ours\n"})
    rejected_version = world.store.head(project)
    main = world.head(repo, "main")
    old_branch_head = world.head(repo, branch)
    with world.rest() as rest:
        # https://docs.github.com/rest/pulls/pulls#update-a-pull-request
        closed = rest.patch(f"/repos/octo/{repo}/pulls/{pull['number']}", json={"state": "closed"})
    assert closed.status_code == 200, closed.text

    world.engine("git_data_api").reconcile(project)

    operation = world.last_operation(project)
    assert (operation.operation_type, operation.metadata["decision"]["reason"]) == (
        "nothing",
        "outbound_rejected",
    )
    assert operation.metadata["pull_request_rejected"]["number"] == pull["number"]
    pulls = world.open_pulls(repo)
    assert [(p["number"], p["state"]) for p in pulls] == [(pull["number"], "closed")]  # not reopened
    assert world.head(repo, "main") == main
    assert rejected_version in version_commits(world, project)  # the versions are kept
    assert world.store.head(project) == rejected_version
    world.engine("git_data_api").reconcile(project)  # still rejected, nothing sent
    assert world.last_operation(project).metadata["decision"]["reason"] == "outbound_rejected"
    assert [p["state"] for p in world.open_pulls(repo)] == ["closed"]

    world.write(project, {"c.txt": b"another try\n"}, message="Another try")
    world.engine("git_data_api").reconcile(project)
    fresh = [p for p in world.open_pulls(repo) if p["state"] == "open"]
    assert len(fresh) == 1 and fresh[0]["number"] != pull["number"]
    assert fresh[0]["head"]["ref"] == branch and fresh[0]["base"]["ref"] == "main"
    clone = world.assert_github_holds(project, repo, branch)
    assert clone_files(clone) == {"a.txt": b"ours\n", "c.txt": b"another try\n"}
    assert old_branch_head is not None and is_ancestor(clone, old_branch_head)  # the branch grew
    world.assert_github_holds(project, repo, "main", tree=world.commit(repo, main or "")["tree"]["sha"])


@pytest.mark.parametrize(
    "strategy",
    [
        "auto_merge",
        "github_wins",
        "local_wins",
        "manual",
    ],
)
def test_in_pr_mode_a_conflict_is_settled_once_and_the_next_reconcile_has_nothing_to_do(
    world: Outbound, strategy: str
) -> None:
    project, repo = world.linked({"a.txt": BASE, "b.txt": "b\n"}, mode="protected_pr", strategy=strategy)
    branch = f"ghsync/{project}"
    local_head, person = edit_both_sides(world, project, repo, "different_files")
    world.engine("git_data_api").reconcile(project)
    assert world.last_operation(project).conflicts_detected == 1
    assert world.head(repo, "main") == person  # the default branch is only written through a PR
    pr_head = world.head(repo, branch)
    if strategy in ("auto_merge", "local_wins"):
        # The PR shows the settled tree on top of GitHub's head: mergeable, nothing forced.
        assert [p["head"]["ref"] for p in world.open_pulls(repo) if p["state"] == "open"] == [branch]
        clone = world.assert_github_holds(project, repo, branch)
        assert is_ancestor(clone, person)
        expected_b = B_THEIRS.encode() if strategy == "auto_merge" else b"b\n"
        assert clone_files(clone) == {"a.txt": LOCAL.encode(), "b.txt": expected_b}
    else:
        assert pr_head is None and not world.open_pulls(repo)
    assert local_head in version_commits(world, project)

    for _ in range(2):
        world.engine("git_data_api").reconcile(project)
        settled = world.last_operation(project)
        assert settled.operation_type in ("nothing", "await_resolution"), settled.metadata.get("decision")
        assert world.head(repo, branch) == pr_head  # no new commit on the PR branch
    world.assert_github_holds(project, repo, "main", tree=world.commit(repo, person)["tree"]["sha"])


# --- a person on the PR branch, the base moving under the PR ---------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_person_s_edits_on_the_pr_branch_come_back_inbound_never_written_over(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode="protected_pr")
    branch = f"ghsync/{project}"
    open_pr(world, project, repo, {"a.txt": b"ours\n"})
    person = world.person_push(repo, branch, {"review.md": "a reviewer's fix\n"})
    world.engine(transport).reconcile(project)
    assert local_files(world, project) == {"a.txt": b"ours\n", "review.md": b"a reviewer's fix\n"}
    assert world.head(repo, branch) == person  # nothing written over their commit
    world.assert_github_holds(project, repo, branch)  # the PR branch holds the local head's tree
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).metadata["decision"]["reason"] == "pull_request_current"
    assert world.head(repo, branch) == person


def test_the_base_moving_under_an_open_pr_updates_it_with_auto_merge_then_its_merge_comes_back(
    world: Outbound,
) -> None:
    project, repo = world.linked({"a.txt": BASE, "b.txt": "b\n"}, mode="protected_pr", strategy="auto_merge")
    branch = f"ghsync/{project}"
    pull = open_pr(world, project, repo, {"a.txt": LOCAL.encode()})
    first = world.head(repo, branch)
    person = world.person_push(repo, "main", {"b.txt": B_THEIRS})  # the base moved
    world.engine("git_data_api").reconcile(project)
    expected = {"a.txt": LOCAL.encode(), "b.txt": B_THEIRS.encode()}
    assert local_files(world, project) == expected
    clone = world.assert_github_holds(project, repo, branch)
    assert clone_files(clone) == expected
    assert first is not None and is_ancestor(clone, first) and is_ancestor(clone, person)  # no force
    assert [p["number"] for p in world.open_pulls(repo) if p["state"] == "open"] == [pull["number"]]
    with world.rest() as rest:
        merged = rest.put(f"/repos/octo/{repo}/pulls/{pull['number']}/merge", json={"merge_method": "merge"})
    assert merged.status_code == 200, merged.text
    world.engine("git_data_api").reconcile(project)
    assert world.head(repo, branch) is None
    world.assert_github_holds(project, repo, "main")
    world.engine("git_data_api").reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"


def test_the_base_moving_under_an_open_pr_with_manual_is_reported_and_the_pr_left_alone(
    world: Outbound,
) -> None:
    project, repo = world.linked({"a.txt": BASE, "b.txt": "b\n"}, mode="protected_pr")
    branch = f"ghsync/{project}"
    pull = open_pr(world, project, repo, {"a.txt": LOCAL.encode()})
    pr_head = world.head(repo, branch)
    person = world.person_push(repo, "main", {"a.txt": THEIRS})  # the base moved, the same line
    world.engine("git_data_api").reconcile(project)
    conflict = open_conflict(world, project)
    assert conflict is not None and conflict.github_commit_sha == person
    assert world.head(repo, branch) == pr_head and world.head(repo, "main") == person
    # The PR still shows the local side against the default branch.
    assert [p["number"] for p in world.open_pulls(repo) if p["state"] == "open"] == [pull["number"]]
    world.assert_github_holds(project, repo, branch)
    world.engine("git_data_api").reconcile(project)
    assert world.last_operation(project).operation_type == "await_resolution"
