"""The convergence model: random interleavings of everything that can happen to a linked project, on the
in-memory twins, checked after every step (hypothesis `RuleBasedStateMachine`).

Rules: local versions; a person's pushes and force-pushes on GitHub; PR merges; webhooks that arrive
(a reconcile), arrive twice, or never (no reconcile); injected API faults; a worker that dies after its
GitHub writes and before recording them; strategy changes.

Invariants, after every step:
- each side's history only grows, except by a person's force-push on GitHub;
- no ref is ever force-updated by ghsync;
- every tree either side had when ghsync looked is still reachable (a version, a tag, a backup ref in the
  local store, or a commit on GitHub);
and after a settle (reconciles until nothing changes): both sides hold the same tree, or exactly one
conflict (or held plan) is open, or in PR modes the open PR carries the local tree (or was rejected).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pygit2
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ghsync.domain.errors import GhsyncError, GitHubServerError, RetryLater
from ghsync.domain.models import FileWrite
from ghsync.domain.sync import ConflictStrategy
from ghsync.services.reconcile import ReconcileService
from support.engine_world import World, make_world

PATHS = ("a.txt", "b.txt", "dir/c.txt")
CONTENTS = ("one\n", "two\n", "three\n", "one\ntwo\n")
SETTLED = {"nothing", "await_resolution", "held", "blocked"}
FAULT_POINTS = (
    "get_branch",
    "get_tree",
    "create_tree",
    "create_commit",
    "update_ref",
    "create_pull",
    "get_blob",
)


_FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


class Crash(BaseException):
    """The worker dies (kill -9): nothing after this point of the reconcile happens."""


def _reachable_trees(repo: pygit2.Repository) -> set[str]:
    trees: set[str] = set()
    for name in repo.references:
        target = repo.references[name].peel(pygit2.Commit)
        for commit in repo.walk(target.id):
            trees.add(str(commit.tree_id))
    return trees


class ConvergenceModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Thousands of tiny git repositories: on a RAM disk when the machine has one.
        self._tmp = Path(tempfile.mkdtemp(prefix="ghsync-model-", dir=_FAST_TMP))
        self._gen: object = None
        self.world: World | None = None
        self.seen_trees: set[str] = set()
        self.local_history: list[str] = []
        self.github_head: str | None = None
        self.forced = False
        self.strategy = ConflictStrategy.MANUAL

    def teardown(self) -> None:
        if self._gen is not None:
            self._gen.close()  # type: ignore[attr-defined]
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    @initialize(
        mode=st.sampled_from(["direct_commit", "protected_pr", "hybrid"]),
        strategy=st.sampled_from(list(ConflictStrategy)),
    )
    def link(self, mode: str, strategy: ConflictStrategy) -> None:
        gen = make_world(self._tmp, strategy.value, mode)
        self.world = next(gen)
        self._gen = gen
        self.strategy = strategy
        self._observe()

    # --- what happens ---------------------------------------------------------------------------

    @rule(path=st.sampled_from(PATHS), content=st.sampled_from(CONTENTS), delete=st.booleans())
    def local_version(self, path: str, content: str, delete: bool) -> None:
        files = self.w.local()
        try:
            if delete and path in files and len(files) > 1:
                self.w.versions.create_version(self.w.project, message="delete", writes=[], deletes=[path])
            else:
                self.w.versions.create_version(
                    self.w.project, message="edit", writes=[FileWrite(path, content.encode())]
                )
        except GhsyncError as exc:
            assert exc.code == "no_changes"

    @rule(path=st.sampled_from(PATHS), content=st.sampled_from((*CONTENTS, None)))
    def person_pushes(self, path: str, content: str | None) -> None:
        if content is None and path not in self.w.remote():
            return
        self.w.push_on_github({path: content})

    @rule()
    def person_force_pushes(self) -> None:
        repo = self.w.github.repo(self.w.installation, "octo", "site")
        head = self.w.github.head("octo", "site", "trunk")
        assert head is not None
        parents = repo.get_commit(head).parents
        if parents:
            self.w.github.force_push("octo", "site", "trunk", parents[0])
            self.forced = True

    @rule(method=st.sampled_from(["merge", "squash", "rebase"]))
    def person_merges_the_pr(self, method: str) -> None:
        repo = self.w.github.repo(self.w.installation, "octo", "site")
        pull = repo.find_open_pull(f"ghsync/{self.w.project}", "trunk")
        if pull is None:
            return
        # Not mergeable (a conflict with the base) is fine: a person would resolve it first.
        with contextlib.suppress(GhsyncError):
            self.w.github.merge_pull("octo", "site", pull.number, method)  # type: ignore[arg-type]

    @rule(times=st.integers(min_value=1, max_value=2))
    def webhook_arrives(self, times: int) -> None:
        for _ in range(times):  # a duplicated delivery is just one more reconcile
            self._reconcile()

    @rule(point=st.sampled_from(FAULT_POINTS))
    def github_fails_mid_sync(self, point: str) -> None:
        self.w.github.inject_fault(GitHubServerError("Server Error", status=502), operation=point)
        self._reconcile()
        self.w.github._faults.clear()  # an unused fault must not leak into later steps

    @rule()
    def worker_dies_before_recording(self) -> None:
        original = ReconcileService._record

        def crash(*args: object, **kwargs: object) -> str:
            raise Crash()

        ReconcileService._record = crash  # type: ignore[method-assign,assignment]
        try:
            self._reconcile()
        except Crash:
            pass
        finally:
            ReconcileService._record = original  # type: ignore[method-assign]

    @rule(strategy=st.sampled_from(list(ConflictStrategy)))
    def strategy_changes(self, strategy: ConflictStrategy) -> None:
        self.w.set_strategy(strategy)
        self.strategy = strategy

    @precondition(lambda self: self.world is not None)
    @rule()
    def settle(self) -> None:
        for _ in range(6):
            self._reconcile()
            operation = self.w.last_operation()
            if operation is not None and operation.operation_type in SETTLED:
                break
        self._check_converged()

    # --- how ghsync runs ---------------------------------------------------------------------------

    def _reconcile(self) -> None:
        try:
            self.w.engine.reconcile(self.w.project)
        except (GhsyncError, RetryLater):
            self._observe(github=False)  # the job runner retries; the next reconcile picks it up
            return
        self._observe()

    def _observe(self, *, github: bool = True) -> None:
        """Record the trees ghsync has seen (the local head; GitHub's head after a reconcile read it):
        they must stay reachable whatever happens next."""
        local = self.w.store.head(self.w.project)
        if local is not None:
            self.seen_trees.add(self.w.store.tree_sha(self.w.project, local))
        head = self.w.github.head("octo", "site", "trunk")
        if github and head is not None:
            self.seen_trees.add(
                self.w.github.repo(self.w.installation, "octo", "site").get_commit(head).tree_sha
            )

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def histories_only_grow(self) -> None:
        if self.world is None:
            return
        versions = [
            v.commit_sha for v in sorted(self.w.store.list_versions(self.w.project), key=lambda v: v.number)
        ]
        assert versions[: len(self.local_history)] == self.local_history, "a local version disappeared"
        self.local_history = versions
        head = self.w.github.head("octo", "site", "trunk")
        git = self.w.github._find("octo", "site").git
        if self.github_head is not None and head != self.github_head and not self.forced:
            assert head is not None and git.descendant_of(head, self.github_head), (
                "GitHub's branch was rewritten"
            )
        self.github_head, self.forced = head, False

    @invariant()
    def every_tree_seen_is_reachable(self) -> None:
        if self.world is None:
            return
        reachable = _reachable_trees(pygit2.Repository(str(self.w.store.project_dir(self.w.project))))
        reachable |= _reachable_trees(self.w.github._find("octo", "site").git)
        lost = self.seen_trees - reachable
        assert not lost, f"trees lost: {lost}"

    def _check_converged(self) -> None:
        with self.w.uow() as uow:
            open_conflicts = [c for c in self.w.uow.database.tables.conflicts.values() if c.status == "open"]
            held = uow.operations.recent(limit=1, project_id=self.w.project)
            project = uow.projects.get(self.w.project)
        assert len(open_conflicts) <= 1, "more than one open conflict"
        if open_conflicts or (held and held[0].status == "held"):
            return
        local, remote = self.w.local(), self.w.remote()
        if local == remote:
            return
        assert project is not None and project.link is not None
        branch = f"ghsync/{self.w.project}"
        pull = self.w.github.repo(self.w.installation, "octo", "site").find_open_pull(branch, "trunk")
        if pull is not None:
            assert self.w.remote(branch) == local, "the open PR does not carry the local tree"
            return
        last = self.w.last_operation()
        reason = last.metadata.get("decision", {}).get("reason") if last else None
        assert reason == "outbound_rejected", f"not converged: last operation {last}"


ConvergenceModel.TestCase.settings = settings(
    # At least 1,000 interleavings in `make test`; GHSYNC_MODEL_EXAMPLES runs more (or fewer, to debug).
    max_examples=int(os.environ.get("GHSYNC_MODEL_EXAMPLES", "1000")),
    stateful_step_count=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_convergence = ConvergenceModel.TestCase
