"""What a reconcile is about to do, before it does it: the plan the dry run shows, the blast-radius guard
that holds a sweeping change for confirmation, and the resolution of a conflict (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ghsync.domain.trees import FlatTree

PlanDirection = Literal["to_github", "from_github"]
ChangeStatus = Literal["added", "modified", "deleted"]


@dataclass(frozen=True, slots=True)
class PlannedChange:
    direction: PlanDirection
    status: ChangeStatus
    path: str


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """The answer of `GET .../sync/plan`: the decision and why, per-file changes per direction, the
    transport, and the GitHub requests it expects to make (total and content-creating)."""

    action: str
    reason: str
    local_head: str | None
    github_head: str | None
    base_local: str | None
    base_github: str | None
    changes: tuple[PlannedChange, ...] = ()
    transport: str | None = None
    expected_requests: Mapping[str, int] = field(default_factory=lambda: {"total": 0, "content_creating": 0})
    held: bool = False
    blockers: tuple[str, ...] = ()


def tree_changes(old: FlatTree, new: FlatTree, direction: PlanDirection) -> tuple[PlannedChange, ...]:
    """Per-path changes turning `old` into `new` (a rename shows as a delete and an add, as on GitHub)."""
    changes: list[PlannedChange] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if after is None:
            changes.append(PlannedChange(direction, "deleted", path))
        elif before is None:
            changes.append(PlannedChange(direction, "added", path))
        elif (before.sha, before.mode) != (after.sha, after.mode):
            changes.append(PlannedChange(direction, "modified", path))
    return tuple(changes)


@dataclass(frozen=True, slots=True)
class Guard:
    """The blast-radius guard's limits (GHSYNC_SYNC_GUARD_*).

    A change is held when it deletes or overwrites more than `share` of the files the receiving side has,
    counting at least `min_files` of them (so a two-file project is not held for every edit), or more than
    `max_files` files whatever the share.
    """

    share: float = 0.5
    min_files: int = 10
    max_files: int = 1000


def needs_confirmation(receiving: FlatTree, changes: tuple[PlannedChange, ...], guard: Guard) -> bool:
    """Whether applying `changes` to the side holding `receiving` must wait for a person's confirmation."""
    destructive = sum(1 for c in changes if c.status in ("deleted", "modified") and c.path in receiving)
    if destructive > guard.max_files:
        return True
    total = len(receiving)
    return destructive >= guard.min_files and total > 0 and destructive / total > guard.share
