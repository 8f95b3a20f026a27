"""Sync settings and the derived state: pure rules, table-tested."""

from __future__ import annotations

import pytest

from ghsync.domain.errors import InvalidInput
from ghsync.domain.sync import (
    ConflictStrategy,
    SyncMode,
    SyncState,
    derive_state,
    missing_permissions,
    parse_conflict_strategy,
    parse_sync_mode,
    pr_branch_name,
    validate_repository_name,
)


def test_defaults_are_the_safe_ones() -> None:
    assert parse_sync_mode(None) is SyncMode.PROTECTED_PR
    assert parse_conflict_strategy(None) is ConflictStrategy.MANUAL
    assert parse_sync_mode("hybrid") is SyncMode.HYBRID


@pytest.mark.parametrize("value", ["", "force", "DIRECT_COMMIT"])
def test_unknown_modes_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_sync_mode(value)
    assert error.value.code == "invalid_sync_mode"
    assert "direct_commit" in error.value.message


def test_unknown_strategies_are_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        parse_conflict_strategy("yolo")
    assert error.value.code == "invalid_conflict_strategy"


@pytest.mark.parametrize(
    ("owner", "repo"),
    [("octo-org", "site"), ("a", "b.c_d-e"), ("x" * 39, "r" * 100), ("Octo", ".github")],
)
def test_valid_repository_names(owner: str, repo: str) -> None:
    validate_repository_name(owner, repo)


@pytest.mark.parametrize(
    ("owner", "repo"),
    [
        ("-org", "r"),
        ("org-", "r"),
        ("a--b", "r"),
        ("x" * 40, "r"),
        ("o", ""),
        ("o", "a/b"),
        ("o", ".."),
        ("o", "r" * 101),
    ],
)
def test_invalid_repository_names(owner: str, repo: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_repository_name(owner, repo)
    assert error.value.code == "invalid_repository"


REQUIRED = {"contents": "write", "pull_requests": "write", "metadata": "read"}


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        ({"contents": "write", "pull_requests": "write", "metadata": "read"}, []),
        ({"contents": "admin", "pull_requests": "write", "metadata": "write"}, []),
        ({"contents": "read", "pull_requests": "write", "metadata": "read"}, [("contents", "write")]),
        ({"metadata": "read"}, [("contents", "write"), ("pull_requests", "write")]),
        ({}, [("contents", "write"), ("pull_requests", "write"), ("metadata", "read")]),
    ],
)
def test_missing_permissions(granted: dict[str, str], missing: list[tuple[str, str]]) -> None:
    assert missing_permissions(granted, REQUIRED) == missing


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        ({"enabled": False, "open_conflict": True, "job_running": True}, SyncState.DISABLED),
        ({"open_conflict": True, "job_running": True, "last_operation_failed": True}, SyncState.CONFLICT),
        ({"open_conflict": True, "plan_held": True}, SyncState.CONFLICT),
        ({"plan_held": True, "job_running": True, "last_operation_failed": True}, SyncState.HELD),
        ({"job_running": True, "job_queued": True, "last_operation_failed": True}, SyncState.SYNCING),
        ({"job_queued": True, "last_operation_failed": True}, SyncState.PENDING),
        ({"last_operation_failed": True}, SyncState.FAILED),
        ({}, SyncState.IN_SYNC),
    ],
)
def test_derive_state_most_urgent_fact_wins(facts: dict[str, bool], state: SyncState) -> None:
    base = {
        "enabled": True,
        "open_conflict": False,
        "job_running": False,
        "job_queued": False,
        "last_operation_failed": False,
    }
    assert derive_state(**{**base, **facts}) is state


def test_pr_branch_name() -> None:
    assert pr_branch_name("abc") == "ghsync/abc"
