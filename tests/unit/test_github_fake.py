"""The in-memory GitHub's test helpers (what people do on GitHub, injected faults) and the behaviour
the contract suite cannot reach through the emulator's REST API alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.domain.errors import (
    GitHubNotFound,
    GitHubServerError,
    NotFastForward,
    RepositoryNotFound,
    RetryAt,
)
from ghsync.domain.models import Author
from ghsync.ports.github import GitHubApp, GitHubRepo, TreeWrite, counting_requests

BOT = Author("ghsync", "ghsync@example.com")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[InMemoryGitHub]:
    with InMemoryGitHub(tmp_path / "gh") as gh:
        yield gh


def setup(hub: InMemoryGitHub) -> tuple[int, GitHubRepo]:
    inst = hub.add_installation("octo")
    hub.add_repo("octo", "demo", default_branch="trunk", files={"README.md": "hi\n"}, installation_id=inst)
    return inst, hub.repo(inst, "octo", "demo")


def test_it_is_both_ports() -> None:
    def takes(app: GitHubApp, repo: GitHubRepo) -> None: ...

    with InMemoryGitHub() as gh:
        inst = gh.add_installation("octo")
        takes(gh, gh.repo(inst, "octo", "demo"))  # mypy checks the Protocols; nothing is created


def test_injected_faults_hit_the_next_n_matching_calls_and_are_counted(hub: InMemoryGitHub) -> None:
    _, repo = setup(hub)
    head = hub.head("octo", "demo", "trunk")
    assert head is not None
    hub.inject_fault(count=2, operation="create_commit")
    tree = repo.create_tree(None, [TreeWrite.text("a.txt", "a\n")])  # another operation: unaffected
    with counting_requests() as count:
        for _ in range(2):
            with pytest.raises(GitHubServerError) as failed:
                repo.create_commit(tree, [head], "m", BOT)
            assert failed.value.status == 502
        assert repo.create_commit(tree, [head], "m", BOT).tree_sha == tree
    assert (count.total, count.content_creating) == (3, 3)
    at = datetime.now(UTC) + timedelta(minutes=2)
    hub.inject_fault(RetryAt(at, "secondary rate limit", kind="secondary"))
    with pytest.raises(RetryAt) as limited:
        repo.get_branch("trunk")
    assert limited.value.at == at
    assert repo.get_branch("trunk") is not None


def test_a_force_push_rewrites_history_and_the_pull_request_follows(hub: InMemoryGitHub) -> None:
    _, repo = setup(hub)
    base = hub.head("octo", "demo", "trunk")
    assert base is not None
    first = hub.push("octo", "demo", "feature", {"a.txt": "a\n"}, parent=base)
    pr = repo.create_pull("feature", "trunk", "Feature")
    rewritten = hub.push("octo", "demo", "elsewhere", {"b.txt": "b\n"}, parent=base)
    hub.force_push("octo", "demo", "feature", rewritten)
    assert repo.get_pull(pr.number).head_sha == rewritten
    tree = repo.create_tree(None, [TreeWrite.text("c.txt", "c\n")])
    ours = repo.create_commit(tree, [first], "on the old head", BOT)
    with pytest.raises(NotFastForward):
        repo.update_ref("feature", ours.sha)


def test_pushing_a_pulls_head_into_its_base_marks_it_merged_and_deleting_a_head_closes(
    hub: InMemoryGitHub,
) -> None:
    _, repo = setup(hub)
    base = hub.head("octo", "demo", "trunk")
    assert base is not None
    head = hub.push("octo", "demo", "p1", {"a.txt": "a\n"}, parent=base)
    merged = repo.create_pull("p1", "trunk", "One")
    hub.force_push("octo", "demo", "trunk", head)  # a person merges by pushing (a fast-forward)
    after = repo.get_pull(merged.number)
    assert (after.state, after.merged, after.merge_commit_sha) == ("closed", True, head)
    hub.push("octo", "demo", "p2", {"b.txt": "b\n"})
    closed = repo.create_pull("p2", "trunk", "Two")
    repo.delete_ref("p2")
    assert (repo.get_pull(closed.number).state, repo.get_pull(closed.number).merged) == ("closed", False)


def test_installations_quota_and_visibility(hub: InMemoryGitHub) -> None:
    inst, repo = setup(hub)
    assert hub.rate_limit(inst) is None  # nothing seen yet, like a fresh client
    repo.get_repository()
    repo.get_branch("trunk")
    quota = hub.rate_limit(inst)
    assert quota is not None and (quota.limit, quota.remaining, quota.used) == (5000, 4998, 2)
    everyone = hub.add_installation("acme", selection="all")
    hub.add_repo("acme", "tool", files={"x": "x\n"})
    assert hub.find_installation("acme", "tool") == everyone
    with pytest.raises(RepositoryNotFound):
        hub.find_installation("acme", "missing")
    with pytest.raises(GitHubNotFound):  # another account's repository is not visible
        hub.repo(inst, "acme", "tool").get_repository()
