"""The sync decision: given a snapshot of both sides and their base pair, what one reconcile does (pure).

Level-triggered: `decide()` looks only at where things stand now, never at what event woke it, so a
webhook, a poll, a retry and our own commit coming back are all the same question. Its answer is one
action; the engine executes it and records the outcome, and the next reconcile asks again.

The rules, in order (the first that applies wins):

1. Sync disabled -> blocked (`disabled`).
2. A conflict is open, neither side moved since it was recorded, and the strategy is the one it was
   recorded under -> wait for its resolution (a changed strategy gets a new try).
3. Neither side has a commit -> nothing. Only GitHub has one -> import it. Only local has one -> the
   first commit into the empty repository.
4. Both trees are identical -> nothing when the base pair is exactly these heads, else record the pair
   (our own commit coming back, both sides making the same change, a squash-merged PR).
5. No base pair and different trees -> conflict (two unrelated histories: nothing may be lost).
6. Only local moved since the base -> outbound, unless the change holds a blocker: direct to the default
   branch in `direct_commit` mode (and in `hybrid` when unprotected), else a pull request; when the PR
   branch already holds the local tree, nothing; when a person closed the PR holding exactly the local
   tree without merging, nothing either (rejected: the next local version opens a fresh PR); when a
   person committed on the open PR's branch, their edits come back inbound first (never written over),
   in direct mode too (a PR left from when the branch refused direct commits); a direct commit closes
   such a PR of ours, superseded.
7. Only GitHub moved -> inbound.
8. Both moved -> conflict (the project's strategy decides what happens to it), unless the open PR already
   holds the local tree merged with GitHub's current head (a conflict settled onto the PR): nothing.

Branch protection is read from GitHub on every reconcile (`github_protected`) and always forces the PR
path: https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ghsync.domain.link import Blocker, SyncSnapshot
from ghsync.domain.sync import SyncMode


class ActionKind(StrEnum):
    NOTHING = "nothing"
    RECORD_PAIR = "record_pair"
    PUSH_DIRECT = "push_direct"
    PULL_REQUEST = "pull_request"  # open the project's PR, or update it
    PULL_INBOUND = "pull_inbound"
    PULL_PR_EDITS = "pull_pr_edits"  # a person's commits on the project's PR branch come back inbound
    IMPORT = "import"  # the repository has content and the project has none
    FIRST_COMMIT = "first_commit"  # the repository is empty and the project is not
    CONFLICT = "conflict"
    AWAIT_RESOLUTION = "await_resolution"
    BLOCKED = "blocked"
    HELD = "held"  # the blast-radius guard holds the change for a person's confirmation
    RESOLVE = "resolve"  # a person resolves the open conflict (API)
    RESET = "reset"  # a person adopts one side (API)


@dataclass(frozen=True, slots=True)
class Action:
    """What to do, and why (`reason` is a stable, machine-readable word; `blockers` when blocked)."""

    kind: ActionKind
    reason: str
    blockers: tuple[Blocker, ...] = ()

    @property
    def outbound(self) -> bool:
        return self.kind in (ActionKind.PUSH_DIRECT, ActionKind.PULL_REQUEST, ActionKind.FIRST_COMMIT)


def _act(kind: ActionKind, reason: str, blockers: tuple[Blocker, ...] = ()) -> Action:
    return Action(kind, reason, blockers)


# Actions that change nothing on either side: nothing to hold.
RESTING_KINDS = frozenset(
    {ActionKind.NOTHING, ActionKind.AWAIT_RESOLUTION, ActionKind.BLOCKED, ActionKind.HELD}
)


def held_for_confirmation(action: Action, why: str) -> Action:
    """`action` held until a person confirms it (`POST .../github/sync/confirm`); `reason` names it."""
    return Action(ActionKind.HELD, action.kind.value, (Blocker("held_for_confirmation", why),))


def hold_after_force_push(action: Action, *, force_pushed: bool, hold_force_pushes: bool) -> Action:
    """A project that holds syncs after a force-push (`hold_force_pushes`) holds any action that would
    change a side once GitHub's history was rewritten; anything else goes ahead."""
    if force_pushed and hold_force_pushes and action.kind not in RESTING_KINDS:
        return held_for_confirmation(
            action,
            "a force-push rewrote GitHub's history; this project holds such syncs until confirmed "
            "(POST .../github/sync/confirm with the heads of GET .../github/sync/plan)",
        )
    return action


def superseded_pull_request(snapshot: SyncSnapshot, *, github_holds_local: bool) -> bool:
    """Whether our open PR is moot: the branch takes direct commits now (hybrid unprotected, or the mode
    changed), the default branch holds the local tree (`github_holds_local`), and no person committed on
    the PR (their edits come back first). Level-triggered: a rerun after a crash asks it again."""
    protected = snapshot.github_protected or snapshot.link.protected
    return (
        snapshot.open_pr is not None
        and snapshot.pr_edited_base is None
        and not uses_pull_request(snapshot.link.mode, protected)
        and github_holds_local
    )


def uses_pull_request(mode: SyncMode, protected: bool) -> bool:
    """Whether local changes go through the project's PR rather than straight to the default branch."""
    if protected:
        return True
    return mode is SyncMode.PROTECTED_PR


def decide(snapshot: SyncSnapshot) -> Action:
    """The one action a reconcile takes now (see the module doc for the rules)."""
    link, base, local, github = snapshot.link, snapshot.base, snapshot.local, snapshot.github
    if not link.enabled:
        return _act(ActionKind.BLOCKED, "disabled")

    conflict = snapshot.open_conflict
    if (
        conflict is not None
        and (conflict.local_commit_sha, conflict.github_commit_sha) == (local.commit_sha, github.commit_sha)
        and conflict.strategy in (None, link.strategy.value)
    ):
        return _act(ActionKind.AWAIT_RESOLUTION, "conflict_open")

    if local.empty and github.empty:
        return _act(ActionKind.NOTHING, "both_empty")
    if local.empty:
        return _act(ActionKind.IMPORT, "project_empty")
    if github.empty:
        if snapshot.blockers:
            return _act(ActionKind.BLOCKED, "blocked_change", snapshot.blockers)
        return _act(ActionKind.FIRST_COMMIT, "repository_empty")

    if local.tree_sha == github.tree_sha:
        if base is not None and (base.local_commit_sha, base.github_commit_sha) == (
            local.commit_sha,
            github.commit_sha,
        ):
            return _act(ActionKind.NOTHING, "in_sync")
        return _act(ActionKind.RECORD_PAIR, "identical_trees")

    if base is None:
        return _act(ActionKind.CONFLICT, "unrelated_histories")

    local_moved = local.commit_sha != base.local_commit_sha and local.tree_sha != base.tree_sha
    github_moved = github.commit_sha != base.github_commit_sha and github.tree_sha != base.tree_sha
    if local_moved and github_moved:
        pr = snapshot.pr_head
        if (
            snapshot.open_pr
            and pr is not None
            and pr.tree_sha == local.tree_sha
            and snapshot.pr_contains_github
        ):
            # A divergence already settled onto the PR (a merge of GitHub's head): the PR is current.
            return _act(ActionKind.NOTHING, "pull_request_current")
        return _act(ActionKind.CONFLICT, "both_changed")
    if github_moved:
        # Local kept the base tree (a new commit with the same tree counts as unchanged).
        return _act(ActionKind.PULL_INBOUND, "github_changed")

    if snapshot.blockers:
        return _act(ActionKind.BLOCKED, "blocked_change", snapshot.blockers)
    protected = snapshot.github_protected or link.protected
    if not uses_pull_request(link.mode, protected):
        if snapshot.open_pr is not None and snapshot.pr_edited_base is not None:
            # The PR opened while direct commits were refused (hybrid, protected then) holds a person's
            # commits: they come back first, so the direct commit carries them.
            return _act(ActionKind.PULL_PR_EDITS, "pull_request_edited")
        return _act(ActionKind.PUSH_DIRECT, "local_changed")
    if snapshot.pr_head is not None and snapshot.pr_head.tree_sha == local.tree_sha and snapshot.open_pr:
        return _act(ActionKind.NOTHING, "pull_request_current")
    if snapshot.open_pr is not None and snapshot.pr_edited_base is not None:
        # A person committed on our PR branch: bring that in first, never write over it.
        return _act(ActionKind.PULL_PR_EDITS, "pull_request_edited")
    if snapshot.open_pr is None and snapshot.rejected_tree == local.tree_sha:
        # A person closed our PR without merging: the change was rejected; a new version opens a new PR.
        return _act(ActionKind.NOTHING, "outbound_rejected")
    return _act(ActionKind.PULL_REQUEST, "protected" if protected else "local_changed")
