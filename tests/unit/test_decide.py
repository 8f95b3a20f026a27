"""decide(): one table row per situation a reconcile can find (pure, no I/O)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ghsync.domain.decide import Action, ActionKind, decide, hold_after_force_push, superseded_pull_request
from ghsync.domain.github import PullRequest
from ghsync.domain.link import Blocker, Head, Link, OpenConflict, SyncPair, SyncSnapshot
from ghsync.domain.sync import ConflictStrategy, SyncMode

# Commits are named L* (local) and G* (GitHub), trees T*; the base pair is (L1, G1) with tree T1.
L1, L2, G1, G2, G3 = (
    "l1".ljust(40, "0"),
    "l2".ljust(40, "0"),
    "g1".ljust(40, "0"),
    "g2".ljust(40, "0"),
    "g3".ljust(40, "0"),
)
T1, T2, T3 = "a1".ljust(40, "0"), "a2".ljust(40, "0"), "a3".ljust(40, "0")
BASE = SyncPair("v1", L1, G1, T1, repository_id=1)
LINK = Link("p", "octo", "site", 1, 7, "trunk", False, SyncMode.DIRECT_COMMIT, ConflictStrategy.MANUAL, True)
PR = PullRequest(3, "https://example/pull/3", "open", "ghsync/p", G3, "trunk", G1)
BIG = Blocker("file_too_large", "big.bin is 120 MiB; GitHub refuses files over 100 MiB", "big.bin")
EMPTY = Head(None, None)


def snap(local: Head, github: Head, base: SyncPair | None = BASE, **changes: object) -> SyncSnapshot:
    return replace(SyncSnapshot(link=LINK, base=base, local=local, github=github), **changes)  # type: ignore[arg-type]


def mode(value: SyncMode, **link_changes: object) -> Link:
    return replace(LINK, mode=value, **link_changes)  # type: ignore[arg-type]


CASES = [
    # (name, snapshot, expected kind, expected reason)
    (
        "disabled",
        snap(Head(L2, T2), Head(G1, T1), link=replace(LINK, enabled=False)),
        ActionKind.BLOCKED,
        "disabled",
    ),
    ("both empty", snap(EMPTY, EMPTY, None), ActionKind.NOTHING, "both_empty"),
    ("import into an empty project", snap(EMPTY, Head(G1, T1), None), ActionKind.IMPORT, "project_empty"),
    (
        "first commit into an empty repository",
        snap(Head(L1, T1), EMPTY, None),
        ActionKind.FIRST_COMMIT,
        "repository_empty",
    ),
    (
        "first commit blocked",
        snap(Head(L1, T1), EMPTY, None, blockers=(BIG,)),
        ActionKind.BLOCKED,
        "blocked_change",
    ),
    ("in sync", snap(Head(L1, T1), Head(G1, T1)), ActionKind.NOTHING, "in_sync"),
    (
        "our own commit coming back",
        snap(Head(L2, T2), Head(G2, T2)),
        ActionKind.RECORD_PAIR,
        "identical_trees",
    ),
    (
        "same trees on both sides at link time",
        snap(Head(L1, T1), Head(G1, T1), None),
        ActionKind.RECORD_PAIR,
        "identical_trees",
    ),
    (
        "both have content at link time",
        snap(Head(L1, T1), Head(G1, T2), None),
        ActionKind.CONFLICT,
        "unrelated_histories",
    ),
    (
        "local changed, direct: fast-forward",
        snap(Head(L2, T2), Head(G1, T1)),
        ActionKind.PUSH_DIRECT,
        "local_changed",
    ),
    (
        "local changed, a person's empty commit on GitHub",
        snap(Head(L2, T2), Head(G2, T1)),
        ActionKind.PUSH_DIRECT,
        "local_changed",
    ),
    (
        "local changed but blocked",
        snap(Head(L2, T2), Head(G1, T1), blockers=(BIG,)),
        ActionKind.BLOCKED,
        "blocked_change",
    ),
    (
        "local changed, protected_pr",
        snap(Head(L2, T2), Head(G1, T1), link=mode(SyncMode.PROTECTED_PR)),
        ActionKind.PULL_REQUEST,
        "local_changed",
    ),
    (
        "local changed, direct but the branch is protected now",
        snap(Head(L2, T2), Head(G1, T1), github_protected=True),
        ActionKind.PULL_REQUEST,
        "protected",
    ),
    (
        "local changed, direct, link says protected",
        snap(Head(L2, T2), Head(G1, T1), link=mode(SyncMode.DIRECT_COMMIT, protected=True)),
        ActionKind.PULL_REQUEST,
        "protected",
    ),
    (
        "hybrid, unprotected: direct",
        snap(Head(L2, T2), Head(G1, T1), link=mode(SyncMode.HYBRID)),
        ActionKind.PUSH_DIRECT,
        "local_changed",
    ),
    (
        "hybrid, protected: PR",
        snap(Head(L2, T2), Head(G1, T1), link=mode(SyncMode.HYBRID), github_protected=True),
        ActionKind.PULL_REQUEST,
        "protected",
    ),
    (
        "PR already carries the local head",
        snap(Head(L2, T2), Head(G1, T1), link=mode(SyncMode.PROTECTED_PR), open_pr=PR, pr_head=Head(G3, T2)),
        ActionKind.NOTHING,
        "pull_request_current",
    ),
    (
        "PR carries an older local head",
        snap(Head(L2, T3), Head(G1, T1), link=mode(SyncMode.PROTECTED_PR), open_pr=PR, pr_head=Head(G3, T2)),
        ActionKind.PULL_REQUEST,
        "local_changed",
    ),
    (
        "PR branch left over, PR closed",
        snap(Head(L2, T2), Head(G1, T1), link=mode(SyncMode.PROTECTED_PR), pr_head=Head(G3, T2)),
        ActionKind.PULL_REQUEST,
        "local_changed",
    ),
    (
        "PR closed unmerged with the local tree: rejected",
        snap(
            Head(L2, T2),
            Head(G1, T1),
            link=mode(SyncMode.PROTECTED_PR),
            pr_head=Head(G3, T2),
            rejected_tree=T2,
        ),
        ActionKind.NOTHING,
        "outbound_rejected",
    ),
    (
        "a new version after a rejected PR",
        snap(
            Head(L2, T3),
            Head(G1, T1),
            link=mode(SyncMode.PROTECTED_PR),
            pr_head=Head(G3, T2),
            rejected_tree=T2,
        ),
        ActionKind.PULL_REQUEST,
        "local_changed",
    ),
    (
        "a person committed on the open PR's branch",
        snap(
            Head(L2, T2),
            Head(G1, T1),
            link=mode(SyncMode.PROTECTED_PR),
            open_pr=PR,
            pr_head=Head(G3, T3),
            pr_edited_base=T2,
        ),
        ActionKind.PULL_PR_EDITS,
        "pull_request_edited",
    ),
    (
        "hybrid, unprotected again: a person's commits on the leftover PR come back first",
        snap(
            Head(L2, T2),
            Head(G1, T1),
            link=mode(SyncMode.HYBRID),
            open_pr=PR,
            pr_head=Head(G3, T3),
            pr_edited_base=T2,
        ),
        ActionKind.PULL_PR_EDITS,
        "pull_request_edited",
    ),
    (
        "hybrid, unprotected again: a leftover PR of ours only does not stop the direct commit",
        snap(Head(L2, T3), Head(G1, T1), link=mode(SyncMode.HYBRID), open_pr=PR, pr_head=Head(G3, T2)),
        ActionKind.PUSH_DIRECT,
        "local_changed",
    ),
    (
        "both changed, settled onto the PR already",
        snap(
            Head(L2, T2),
            Head(G2, T3),
            link=mode(SyncMode.PROTECTED_PR),
            open_pr=PR,
            pr_head=Head(G3, T2),
            pr_contains_github=True,
        ),
        ActionKind.NOTHING,
        "pull_request_current",
    ),
    (
        "both changed, the PR does not hold GitHub's head yet",
        snap(Head(L2, T2), Head(G2, T3), link=mode(SyncMode.PROTECTED_PR), open_pr=PR, pr_head=Head(G3, T2)),
        ActionKind.CONFLICT,
        "both_changed",
    ),
    ("GitHub changed", snap(Head(L1, T1), Head(G2, T2)), ActionKind.PULL_INBOUND, "github_changed"),
    (
        "GitHub changed, local re-committed the base tree",
        snap(Head(L2, T1), Head(G2, T2)),
        ActionKind.PULL_INBOUND,
        "github_changed",
    ),
    ("both changed", snap(Head(L2, T2), Head(G2, T3)), ActionKind.CONFLICT, "both_changed"),
    ("both changed identically", snap(Head(L2, T2), Head(G2, T2)), ActionKind.RECORD_PAIR, "identical_trees"),
    (
        "conflict open, nothing moved",
        snap(Head(L2, T2), Head(G2, T3), open_conflict=OpenConflict("c", L2, G2, ("a",))),
        ActionKind.AWAIT_RESOLUTION,
        "conflict_open",
    ),
    (
        "conflict open, the strategy changed since",
        snap(
            Head(L2, T2),
            Head(G2, T3),
            link=replace(LINK, strategy=ConflictStrategy.GITHUB_WINS),
            open_conflict=OpenConflict("c", L2, G2, ("a",), "manual"),
        ),
        ActionKind.CONFLICT,
        "both_changed",
    ),
    (
        "conflict open, GitHub moved on",
        snap(Head(L2, T2), Head(G3, T3), open_conflict=OpenConflict("c", L2, G2, ("a",))),
        ActionKind.CONFLICT,
        "both_changed",
    ),
    (
        "conflict open, since settled by hand",
        snap(Head(L2, T3), Head(G2, T3), open_conflict=OpenConflict("c", L1, G2, ("a",))),
        ActionKind.RECORD_PAIR,
        "identical_trees",
    ),
]


@pytest.mark.parametrize(("name", "snapshot", "kind", "reason"), CASES, ids=[c[0] for c in CASES])
def test_decide(name: str, snapshot: SyncSnapshot, kind: ActionKind, reason: str) -> None:
    action = decide(snapshot)
    assert (action.kind, action.reason) == (kind, reason)


def test_the_default_branch_name_plays_no_part() -> None:
    for branch in ("main", "trunk", "release/2026"):
        snapshot = snap(Head(L2, T2), Head(G1, T1), link=replace(LINK, default_branch=branch))
        assert decide(snapshot).kind is ActionKind.PUSH_DIRECT


def test_a_blocked_action_names_its_blockers() -> None:
    action = decide(snap(Head(L2, T2), Head(G1, T1), blockers=(BIG,)))
    assert action.blockers == (BIG,) and not action.outbound


def test_github_moving_between_read_and_write_is_a_new_decision() -> None:
    # The engine's push found GitHub at G2 (422 not a fast forward): it re-reads and decides again.
    before = decide(snap(Head(L2, T2), Head(G1, T1)))
    after = decide(snap(Head(L2, T2), Head(G2, T3)))
    assert before.kind is ActionKind.PUSH_DIRECT and after.kind is ActionKind.CONFLICT


@pytest.mark.parametrize(
    ("name", "snapshot", "holds", "superseded"),
    [
        (
            "hybrid, unprotected, our PR only, trunk holds local",
            snap(Head(L2, T2), Head(G2, T2), link=mode(SyncMode.HYBRID), open_pr=PR),
            True,
            True,
        ),
        (
            "trunk does not hold the local tree yet",
            snap(Head(L2, T2), Head(G1, T1), link=mode(SyncMode.HYBRID), open_pr=PR),
            False,
            False,
        ),
        (
            "a person committed on it",
            snap(Head(L2, T2), Head(G2, T2), link=mode(SyncMode.HYBRID), open_pr=PR, pr_edited_base=T1),
            True,
            False,
        ),
        (
            "protected again: the PR is the way",
            snap(Head(L2, T2), Head(G2, T2), link=mode(SyncMode.HYBRID), open_pr=PR, github_protected=True),
            True,
            False,
        ),
        (
            "PR mode: the PR is the way",
            snap(Head(L2, T2), Head(G2, T2), link=mode(SyncMode.PROTECTED_PR), open_pr=PR),
            True,
            False,
        ),
        (
            "the mode changed to direct",
            snap(Head(L2, T2), Head(G2, T2), link=mode(SyncMode.DIRECT_COMMIT), open_pr=PR),
            True,
            True,
        ),
        ("no open PR", snap(Head(L2, T2), Head(G2, T2), link=mode(SyncMode.HYBRID)), True, False),
    ],
)
def test_which_open_pull_request_a_direct_commit_supersedes(
    name: str, snapshot: SyncSnapshot, holds: bool, superseded: bool
) -> None:
    assert superseded_pull_request(snapshot, github_holds_local=holds) is superseded, name


@pytest.mark.parametrize(
    ("kind", "force_pushed", "hold", "held"),
    [
        (ActionKind.PULL_INBOUND, True, True, True),
        (ActionKind.PUSH_DIRECT, True, True, True),
        (ActionKind.CONFLICT, True, True, True),
        (ActionKind.PULL_INBOUND, True, False, False),  # the project does not hold force-pushes
        (ActionKind.PULL_INBOUND, False, True, False),  # no force-push
        (ActionKind.NOTHING, True, True, False),  # nothing would change: nothing to hold
        (ActionKind.BLOCKED, True, True, False),
    ],
)
def test_a_force_push_holds_what_would_change_a_side_when_the_project_asks(
    kind: ActionKind, force_pushed: bool, hold: bool, held: bool
) -> None:
    action = Action(kind, "why")
    result = hold_after_force_push(action, force_pushed=force_pushed, hold_force_pushes=hold)
    if held:
        assert (result.kind, result.reason) == (ActionKind.HELD, kind.value)
        assert [b.code for b in result.blockers] == ["held_for_confirmation"]
    else:
        assert result is action
