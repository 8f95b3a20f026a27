"""Sync settings and status of a linked project: modes, conflict strategies, and the derived state."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from ghsync.domain.errors import InvalidInput


class SyncMode(StrEnum):
    """How local changes reach GitHub (the plan's three modes)."""

    DIRECT_COMMIT = "direct_commit"  # commit straight to the default branch when it fast-forwards
    PROTECTED_PR = "protected_pr"  # the default: a PR branch, created once and updated after
    HYBRID = "hybrid"  # direct when fast-forward and unprotected, PR otherwise


class ConflictStrategy(StrEnum):
    """What to do when both sides changed since the last sync."""

    MANUAL = "manual"  # stop and record a conflict for a person to resolve (the default)
    AUTO_MERGE = "auto_merge"  # three-way merge; overlapping edits fall back to manual
    LOCAL_WINS = "local_wins"  # a new commit on top of GitHub's head with the local tree
    GITHUB_WINS = "github_wins"  # a new local version with GitHub's tree; the local side stays tagged


class SyncState(StrEnum):
    IN_SYNC = "in_sync"
    PENDING = "pending"
    SYNCING = "syncing"
    CONFLICT = "conflict"
    HELD = "held"  # a sweeping change waits for a person's confirmation (the blast-radius guard)
    FAILED = "failed"
    DISABLED = "disabled"


# GitHub's naming rules: https://docs.github.com/en/repositories/creating-and-managing-repositories/
# (owners: alphanumerics and single hyphens, at most 39; repositories: [A-Za-z0-9._-], at most 100).
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def parse_sync_mode(value: str | None) -> SyncMode:
    if value is None:
        return SyncMode.PROTECTED_PR
    try:
        return SyncMode(value)
    except ValueError:
        choices = ", ".join(mode.value for mode in SyncMode)
        raise InvalidInput(f"sync_mode must be one of {choices}", code="invalid_sync_mode") from None


def parse_conflict_strategy(value: str | None) -> ConflictStrategy:
    if value is None:
        return ConflictStrategy.MANUAL
    try:
        return ConflictStrategy(value)
    except ValueError:
        choices = ", ".join(strategy.value for strategy in ConflictStrategy)
        raise InvalidInput(
            f"conflict_strategy must be one of {choices}", code="invalid_conflict_strategy"
        ) from None


def validate_repository_name(owner: str, repo: str) -> None:
    if not _OWNER.match(owner):
        raise InvalidInput(f"{owner!r} is not a valid GitHub owner name", code="invalid_repository")
    if not _REPO.match(repo) or repo in (".", ".."):
        raise InvalidInput(f"{repo!r} is not a valid GitHub repository name", code="invalid_repository")


def derive_state(
    *,
    enabled: bool,
    open_conflict: bool,
    job_running: bool,
    job_queued: bool,
    last_operation_failed: bool,
    plan_held: bool = False,
) -> SyncState:
    """The one-word state the platform shows; the most urgent fact wins."""
    if not enabled:
        return SyncState.DISABLED
    if open_conflict:
        return SyncState.CONFLICT
    if plan_held:
        return SyncState.HELD
    if job_running:
        return SyncState.SYNCING
    if job_queued:
        return SyncState.PENDING
    if last_operation_failed:
        return SyncState.FAILED
    return SyncState.IN_SYNC


# What ghsync needs of an installation to sync a repository both ways (the plan's minimal scopes):
# https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps
REQUIRED_PERMISSIONS: Mapping[str, str] = {"contents": "write", "pull_requests": "write", "metadata": "read"}

# Permission levels of a GitHub App installation, weakest first.
_LEVELS = {"read": 1, "write": 2, "admin": 3}


def missing_permissions(granted: Mapping[str, str], required: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (permission, level) pairs `required` asks for that `granted` does not reach."""
    return [
        (name, level)
        for name, level in required.items()
        if _LEVELS.get(granted.get(name, ""), 0) < _LEVELS[level]
    ]


def pr_branch_name(project_id: str) -> str:
    """The branch that carries a project's pull request (protected_pr and hybrid modes)."""
    return f"ghsync/{project_id}"
