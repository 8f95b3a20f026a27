"""The convergence model against the GitHub emulator: a small variant of tests/unit/test_convergence_model.py.

The same rules and invariants as the in-memory model (issue 11's Acceptance), but GitHub is the emulator
reached over loopback HTTP by the real `GitHubAppClient`, with SQLite and `GitStore` (outbound_support.py),
and every example picks its transport (the Git Data API or git). People act through the emulator's public
surfaces: pushes by the Git Data API or by `git push`, force-pushes by `PATCH .../git/refs` with
`force: true`, PR merges by `PUT .../pulls/{n}/merge`, faults by the emulator's fault injection.

Invariants, after every step:
- each side's history only grows, except by a person's force-push on GitHub;
- no branch ghsync writes (the default branch, its PR branch) is ever rewritten by ghsync;
- every tree either side had when ghsync looked is still reachable (a version, a tag, a backup ref in the
  local store, or a commit on GitHub);
and after a settle (reconciles until nothing changes): both sides hold the same tree, or exactly one
conflict (or held plan) is open, or in PR modes the open PR carries the local tree (or was rejected).
Every example ends with a settle. Few examples (GHSYNC_EMULATOR_MODEL_EXAMPLES, default 20) of a few steps
each keep it under a minute.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pygit2
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from outbound_support import OWNER, TRANSPORTS, Outbound, fast_emulator, outbound_world
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghsync.adapters.db.models import ConflictRow
from ghsync.domain.errors import GhsyncError, RetryLater
from ghsync.domain.sync import ConflictStrategy
from ghsync.services.reconcile import ReconcileService

pytestmark = pytest.mark.e2e

PATHS = ("a.txt", "b.txt", "dir/c.txt")
CONTENTS = ("one\n", "two\n", "three\n", "one\ntwo\n")
SETTLED = {"nothing", "await_resolution", "held", "blocked"}


class Crash(BaseException):
    """The worker dies (kill -9): nothing after this point of the reconcile happens."""


def _reachable_trees(repo: pygit2.Repository) -> set[str]:
    trees: set[str] = set()
    for name in repo.references:
        target = repo.references[name].peel(pygit2.Commit)
        for commit in repo.walk(target.id):
            trees.add(str(commit.tree_id))
    return trees


def _fault_points(repo: str) -> list[tuple[str, str]]:
    """(path regex, method) of the requests a reconcile makes, as the in-memory model's fault points."""
    rest = rf"^/repos/{OWNER}/{repo}"
    return [
        (rest + r"/branches/", "GET"),
        (rest + r"/git/trees/", "GET"),
        (rest + r"/git/trees$", "POST"),
        (rest + r"/git/commits$", "POST"),
        (rest + r"/git/refs/heads/", "PATCH"),
        (rest + r"/pulls$", "POST"),
        (rest + r"/git/blobs/", "GET"),
        (rf"^/{OWNER}/{repo}\.git/git-receive-pack$", "POST"),
    ]


class EmulatorConvergence(RuleBasedStateMachine):
    """One example: a project linked to a fresh repository of the module's emulator."""

    world: Outbound  # set by the test before hypothesis runs the machine

    def __init__(self) -> None:
        super().__init__()
        self.project = ""
        self.repo = ""
        self.transport = TRANSPORTS[0]
        self.seen_trees: set[str] = set()
        self.local_history: list[str] = []
        self.github_head: str | None = None
        self.pr_head: str | None = None
        self.forced = False
        self.pr_rewrite_allowed = 0
        self.linked = False

    def teardown(self) -> None:
        # Every example ends settled and checked (few examples: a settle step drawn by chance is rare),
        # unless a step already failed (that failure is the one to report and shrink).
        if self.linked and sys.exc_info()[0] is None:
            self.settle()

    @property
    def w(self) -> Outbound:
        return self.world

    @property
    def branch(self) -> str:
        return f"ghsync/{self.project}"

    @initialize(
        mode=st.sampled_from(["direct_commit", "protected_pr", "hybrid"]),
        strategy=st.sampled_from(list(ConflictStrategy)),
        transport=st.sampled_from(TRANSPORTS),
    )
    def link(self, mode: str, strategy: ConflictStrategy, transport: str) -> None:
        self.project, self.repo = self.w.linked(
            {"a.txt": "one\ntwo\nthree\nfour\nfive\n", "b.txt": "b\n"}, mode=mode, strategy=strategy.value
        )
        self.transport = transport
        self.linked = True
        self._observe()

    # --- what happens ---------------------------------------------------------------------------

    @rule(path=st.sampled_from(PATHS), content=st.sampled_from(CONTENTS), delete=st.booleans())
    def local_version(self, path: str, content: str, delete: bool) -> None:
        files = self._local_paths()
        try:
            if delete and path in files and len(files) > 1:
                self.w.write(self.project, {}, deletes=(path,), message="delete")
            else:
                self.w.write(self.project, {path: content.encode()}, message="edit")
        except GhsyncError as exc:
            assert exc.code == "no_changes"

    @rule(path=st.sampled_from(PATHS), content=st.sampled_from((*CONTENTS, None)))
    def person_pushes(self, path: str, content: str | None) -> None:
        """A commit made with the Git Data API on top of the default branch (no force)
        (https://docs.github.com/rest/git/trees#create-a-tree, .../commits#create-a-commit,
        .../refs#update-a-reference)."""
        head = self.w.head(self.repo, "main")
        assert head is not None
        entry: dict[str, Any] = {"path": path, "mode": "100644", "type": "blob"}
        if content is None:
            if path not in self._github_paths(head):
                return
            entry["sha"] = None  # deletes the path
        else:
            entry["content"] = content
        with self.w.rest() as rest:
            tree = rest.post(
                f"/repos/{OWNER}/{self.repo}/git/trees",
                json={"base_tree": self.w.commit(self.repo, head)["tree"]["sha"], "tree": [entry]},
            )
            assert tree.status_code == 201, tree.text
            commit = rest.post(
                f"/repos/{OWNER}/{self.repo}/git/commits",
                json={"message": "A person's change", "tree": tree.json()["sha"], "parents": [head]},
            )
            assert commit.status_code == 201, commit.text
            moved = rest.patch(
                f"/repos/{OWNER}/{self.repo}/git/refs/heads/main", json={"sha": commit.json()["sha"]}
            )
        assert moved.status_code == 200, moved.text

    @rule(
        ours=st.sampled_from(PATHS),
        theirs=st.sampled_from(PATHS),
        content=st.sampled_from(CONTENTS),
        their_content=st.sampled_from(CONTENTS),
    )
    def both_sides_edit(self, ours: str, theirs: str, content: str, their_content: str) -> None:
        """A local version and a person's push with no reconcile between: the interleaving that makes
        conflicts, drawn as one step so that few examples still meet it often."""
        self.local_version(ours, content, delete=False)
        self.person_pushes(theirs, their_content)

    @rule(path=st.sampled_from(PATHS), content=st.sampled_from(CONTENTS))
    def person_pushes_by_git(self, path: str, content: str) -> None:
        self.w.person_push(self.repo, "main", {path: content})

    @rule()
    def person_force_pushes(self) -> None:
        """The default branch moved back to its head's parent with `force: true`
        (https://docs.github.com/rest/git/refs#update-a-reference)."""
        head = self.w.head(self.repo, "main")
        assert head is not None
        parents = self.w.commit(self.repo, head)["parents"]
        if not parents:
            return
        with self.w.rest() as rest:
            moved = rest.patch(
                f"/repos/{OWNER}/{self.repo}/git/refs/heads/main",
                json={"sha": parents[0]["sha"], "force": True},
            )
        assert moved.status_code == 200, moved.text
        self.forced = True

    @rule(method=st.sampled_from(["merge", "squash", "rebase"]))
    def person_merges_the_pr(self, method: str) -> None:
        pulls = [p for p in self.w.open_pulls(self.repo) if p["state"] == "open"]
        if not pulls:
            return
        with self.w.rest() as rest:
            # https://docs.github.com/rest/pulls/pulls#merge-a-pull-request
            merged = rest.put(
                f"/repos/{OWNER}/{self.repo}/pulls/{pulls[0]['number']}/merge", json={"merge_method": method}
            )
        # 405 "not mergeable" (a conflict with the base) is fine: a person would resolve it first.
        assert merged.status_code in (200, 405), merged.text
        if merged.status_code == 200:
            self.pr_rewrite_allowed = 2  # ghsync deletes the branch; a later PR starts a new one

    @rule(times=st.integers(min_value=1, max_value=2))
    def webhook_arrives(self, times: int) -> None:
        for _ in range(times):  # a duplicated delivery is just one more reconcile
            self._reconcile()

    @rule(point=st.integers(min_value=0, max_value=7), status=st.sampled_from([500, 502]))
    def github_fails_mid_sync(self, point: int, status: int) -> None:
        path, method = _fault_points(self.repo)[point]
        self.w.fault(path, method=method, status=status, count=3)  # more than the client's retries
        try:
            self._reconcile()
        finally:
            self.w.emu.clear_faults()  # an unused fault must not leak into later steps

    @rule()
    def worker_dies_before_recording(self) -> None:
        original = ReconcileService._record

        def crash(*args: object, **kwargs: object) -> str:
            raise Crash()

        ReconcileService._record = crash  # type: ignore[method-assign]
        try:
            self._reconcile()
        except Crash:
            pass
        finally:
            ReconcileService._record = original  # type: ignore[method-assign]

    @rule(strategy=st.sampled_from(list(ConflictStrategy)))
    def strategy_changes(self, strategy: ConflictStrategy) -> None:
        with self.w.uow() as uow:
            project = uow.projects.get(self.project)
            assert project is not None and project.link is not None
            uow.projects.save_link(self.project, replace(project.link, strategy=strategy))
            uow.commit()

    @precondition(lambda self: self.linked)
    @rule()
    def settle(self) -> None:
        for _ in range(6):
            self._reconcile()
            operation = self.w.last_operation(self.project)
            if operation.operation_type in SETTLED:
                break
        event(f"settled after {operation.operation_type}")
        assert operation.operation_type in SETTLED, f"no fixed point after six reconciles: {operation}"
        self._check_converged()

    # --- how ghsync runs ---------------------------------------------------------------------------

    def _reconcile(self) -> None:
        try:
            self.w.engine(self.transport).reconcile(self.project)
        except (GhsyncError, RetryLater):
            self._observe(github=False)  # the job runner retries; the next reconcile picks it up
            return
        self._observe()

    def _observe(self, *, github: bool = True) -> None:
        """Record the trees ghsync has seen (the local head; GitHub's head after a reconcile read it):
        they must stay reachable whatever happens next."""
        local = self.w.store.head(self.project)
        if local is not None:
            self.seen_trees.add(self.w.store.tree_sha(self.project, local))
        head = self.w.head(self.repo, "main")
        if github and head is not None:
            self.seen_trees.add(self.w.commit(self.repo, head)["tree"]["sha"])

    def _emulator_git(self) -> pygit2.Repository:
        """The emulator's repository on disk, read-only: the observer's view of everything GitHub keeps
        (every branch, tag and pull ref), as the in-memory model reads its fake's repository."""
        store = self.w.emu.emulator.store
        record = store.find_repo(OWNER, self.repo)
        assert record is not None
        return pygit2.Repository(str(store.git_dir(record.id)))

    def _local_paths(self) -> set[str]:
        return set(self.w.store.flat_tree(self.project, self.w.local_tree(self.project)))

    def _github_paths(self, head: str) -> set[str]:
        git = self._emulator_git()
        commit = git.get(head)
        assert isinstance(commit, pygit2.Commit)
        paths: set[str] = set()

        def walk(tree: pygit2.Tree, prefix: str) -> None:
            for entry in tree:
                if isinstance(entry, pygit2.Tree):
                    walk(entry, f"{prefix}{entry.name}/")
                else:
                    paths.add(f"{prefix}{entry.name}")

        walk(commit.tree, "")
        return paths

    def _files(self, tree: str) -> dict[str, bytes]:
        git = self._emulator_git()
        if tree in git:
            obj = git.get(tree)
            assert isinstance(obj, pygit2.Tree)
            out: dict[str, bytes] = {}

            def walk(node: pygit2.Tree, prefix: str) -> None:
                for entry in node:
                    if isinstance(entry, pygit2.Tree):
                        walk(entry, f"{prefix}{entry.name}/")
                    else:
                        blob = git.get(entry.id)
                        assert isinstance(blob, pygit2.Blob)
                        out[f"{prefix}{entry.name}"] = blob.data

            walk(obj, "")
            return out
        flat = self.w.store.flat_tree(self.project, tree)
        return {path: self.w.store.read_blob(self.project, e.sha) for path, e in flat.items()}

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def histories_only_grow(self) -> None:
        if not self.linked:
            return
        versions = [
            v.commit_sha for v in sorted(self.w.store.list_versions(self.project), key=lambda v: v.number)
        ]
        assert versions[: len(self.local_history)] == self.local_history, "a local version disappeared"
        self.local_history = versions
        git = self._emulator_git()
        head = self.w.head(self.repo, "main")
        if self.github_head is not None and head != self.github_head and not self.forced:
            assert head is not None and git.descendant_of(head, self.github_head), (
                "GitHub's default branch was rewritten"
            )
        self.github_head, self.forced = head, False
        # ghsync's PR branch: nobody but ghsync writes it here, so it may only grow (or be deleted
        # once its PR merged, and start anew).
        pr_head = self.w.head(self.repo, self.branch)
        if self.pr_rewrite_allowed:
            self.pr_rewrite_allowed -= 1
        elif self.pr_head is not None and pr_head is not None and pr_head != self.pr_head:
            assert git.descendant_of(pr_head, self.pr_head), "the PR branch was rewritten"
        self.pr_head = pr_head

    @invariant()
    def every_tree_seen_is_reachable(self) -> None:
        if not self.linked:
            return
        reachable = _reachable_trees(pygit2.Repository(str(self.w.store.project_dir(self.project))))
        reachable |= _reachable_trees(self._emulator_git())
        lost = self.seen_trees - reachable
        assert not lost, f"trees lost: {lost}"

    def _check_converged(self) -> None:
        with Session(self.w.uow.engine) as session:
            open_conflicts = session.scalar(
                select(func.count())
                .select_from(ConflictRow)
                .where(ConflictRow.project_id == uuid.UUID(self.project), ConflictRow.status == "open")
            )
        assert open_conflicts is not None and open_conflicts <= 1, "more than one open conflict"
        last = self.w.last_operation(self.project)
        if open_conflicts or last.status == "held":
            return
        local_tree = self.w.local_tree(self.project)
        head = self.w.head(self.repo, "main")
        assert head is not None
        if self.w.commit(self.repo, head)["tree"]["sha"] == local_tree:  # the same tree, by its SHA
            return
        pulls = [p for p in self.w.open_pulls(self.repo) if p["state"] == "open"]
        if pulls:
            assert pulls[0]["head"]["ref"] == self.branch
            pr_head = self.w.head(self.repo, self.branch)
            assert pr_head is not None
            assert self.w.commit(self.repo, pr_head)["tree"]["sha"] == local_tree, (
                "the open PR does not carry the local tree"
            )
            return
        reason = last.metadata.get("decision", {}).get("reason")
        assert reason == "outbound_rejected", f"not converged: last operation {last}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outbound]:
    tmp = tmp_path_factory.mktemp("convergence")
    with fast_emulator(tmp / "emulator") as emu, outbound_world(tmp, emu) as world:
        yield world


def test_convergence_against_the_emulator(world: Outbound) -> None:
    EmulatorConvergence.world = world
    run_state_machine_as_test(
        EmulatorConvergence,
        settings=settings(
            max_examples=int(os.environ.get("GHSYNC_EMULATOR_MODEL_EXAMPLES", "20")),
            stateful_step_count=8,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_person_s_push_rule_really_pushes(world: Outbound) -> None:
    """The model's own person: a Git Data API push lands on the default branch as one new commit on top,
    and a force-push moves it back (so the rules the machine draws do what they say)."""
    machine = EmulatorConvergence()
    machine.link("direct_commit", ConflictStrategy.MANUAL, TRANSPORTS[0])
    before = world.head(machine.repo, "main")
    machine.person_pushes("dir/c.txt", "three\n")
    after = world.head(machine.repo, "main")
    assert after != before and [p["sha"] for p in world.commit(machine.repo, after or "")["parents"]] == [
        before
    ]
    assert machine._files(world.commit(machine.repo, after or "")["tree"]["sha"])["dir/c.txt"] == b"three\n"
    machine.person_pushes("dir/c.txt", None)
    assert "dir/c.txt" not in machine._github_paths(world.head(machine.repo, "main") or "")
    machine.person_force_pushes()
    assert world.head(machine.repo, "main") == after


def test_the_machine_catches_a_rewrite_nobody_announced(world: Outbound) -> None:
    """The history invariant can fail: the default branch moved back behind the model's back (as a
    force-push by ghsync would) is caught, while the same move by the person's rule is allowed."""
    machine = EmulatorConvergence()
    machine.link("direct_commit", ConflictStrategy.MANUAL, TRANSPORTS[0])
    machine.person_pushes("b.txt", "two\n")
    machine.histories_only_grow()
    machine.person_force_pushes()
    machine.histories_only_grow()  # announced: a person's force-push
    machine.person_pushes("b.txt", "three\n")
    machine.histories_only_grow()
    head = world.head(machine.repo, "main")
    parent = world.commit(machine.repo, head or "")["parents"][0]["sha"]
    with world.rest() as rest:
        moved = rest.patch(
            f"/repos/{OWNER}/{machine.repo}/git/refs/heads/main", json={"sha": parent, "force": True}
        )
    assert moved.status_code == 200, moved.text
    with pytest.raises(AssertionError, match="rewritten"):
        machine.histories_only_grow()
