"""Acceptance tests of the GitHub App client against the GitHub emulator (real HTTP on loopback).

Counting is done with the emulator's own request log, so "one token request" means GitHub saw one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.github import (
    AppNotInstalled,
    GitHubAppClient,
    GitHubAppConfig,
    GitHubServerError,
    RepositoryNotFound,
    RetryAt,
)
from ghsync.adapters.throttle import DatabaseThrottleState, InMemoryThrottleState
from ghsync.domain.models import Author
from ghsync.ports.github import TreeWrite, counting_requests
from ghsync.ports.throttle import ThrottleState
from github_emulator.testing import AppInfo, EmulatorHandle, run_emulator

SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
}


@dataclass
class World:
    emu: EmulatorHandle
    app: AppInfo
    inst: int
    tmp: Path
    clients: list[GitHubAppClient] = field(default_factory=list)

    def client(
        self, *, ghes: bool = False, throttle: ThrottleState | None = None, **cfg: Any
    ) -> GitHubAppClient:
        url = self.emu.url + ("/api/v3" if ghes else "")
        config = GitHubAppConfig(app_id=self.app.id, private_key=self.app.private_key, api_url=url, **cfg)
        return self.track(GitHubAppClient(config, throttle=throttle))

    def track(self, client: GitHubAppClient) -> GitHubAppClient:
        self.clients.append(client)
        return client

    def count(self, method: str, suffix: str, status: int | None = None) -> int:
        return sum(
            1
            for r in self.emu.requests()
            if r["method"] == method
            and r["path"].endswith(suffix)
            and (status is None or r["status"] == status)
        )

    def token_requests(self) -> int:
        return self.count("POST", f"/app/installations/{self.inst}/access_tokens")


def make_world(tmp_path: Path, **emulator_config: Any) -> Iterator[World]:
    with run_emulator(tmp_path / "emu", **emulator_config) as emu:
        app = emu.create_app("ghsync-test")
        emu.create_repo("octo", "demo", default_branch="trunk", files={"README.md": "hello\n"})
        emu.create_repo("octo", "empty")
        inst = emu.create_installation(app.id, "octo", ["octo/demo", "octo/empty"])
        world = World(emu, app, inst, tmp_path)
        try:
            yield world
        finally:
            for client in world.clients:
                client.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- tokens ------------------------------------------------------------------------------------


def test_one_token_request_for_50_concurrent_calls(world: World) -> None:
    client = world.client()
    barrier = threading.Barrier(50)
    results: list[str] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            results.append(client.get_repository(world.inst, "octo", "demo").default_branch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == ["trunk"] * 50
    assert world.token_requests() == 1


def test_401_drops_the_token_fetches_a_new_one_and_retries_once(world: World) -> None:
    client = world.client()
    client.get_repository(world.inst, "octo", "demo")
    world.emu.add_fault(r"^/repos/octo/demo$", status=401, count=1, body={"message": "Bad credentials"})
    assert client.get_repository(world.inst, "octo", "demo").name == "demo"
    assert world.token_requests() == 2
    assert world.count("GET", "/repos/octo/demo", 401) == 1


def test_token_expired_mid_run_is_replaced(world: World) -> None:
    client = world.client()
    assert client.get_branch_head(world.inst, "octo", "demo", "trunk")
    assert world.emu.expire_tokens(installation_id=world.inst) >= 1
    assert client.get_branch_head(world.inst, "octo", "demo", "trunk")
    assert world.token_requests() == 2


def test_tokens_are_shared_across_clients_through_the_cache(world: World) -> None:
    from ghsync.adapters.github import InMemoryTokenCache

    cache = InMemoryTokenCache()
    config = GitHubAppConfig(app_id=world.app.id, private_key=world.app.private_key, api_url=world.emu.url)
    for _ in range(3):
        world.track(GitHubAppClient(config, cache)).get_repository(world.inst, "octo", "demo")
    assert world.token_requests() == 1


# ---- errors and retries ------------------------------------------------------------------------


def test_502_twice_then_success(world: World) -> None:
    client = world.client(retry_base_delay=0.01, retry_max_delay=0.05)
    before = metric("ghsync_github_retries_total", reason="server_error")
    world.emu.add_fault(r"^/repos/octo/demo$", status=502, count=2)
    assert client.get_repository(world.inst, "octo", "demo").full_name == "octo/demo"
    assert world.count("GET", "/repos/octo/demo", 502) == 2
    assert world.count("GET", "/repos/octo/demo", 200) == 1
    assert metric("ghsync_github_retries_total", reason="server_error") - before == 2


def test_secondary_rate_limit_with_retry_after_waits_then_succeeds(world: World) -> None:
    client = world.client()
    world.emu.add_fault(
        r"^/repos/octo/demo$", status=403, count=1, headers={"Retry-After": "1"}, body=SECONDARY
    )
    started = datetime.now(UTC)
    assert client.get_repository(world.inst, "octo", "demo").name == "demo"
    assert datetime.now(UTC) - started >= timedelta(seconds=1)
    assert world.count("GET", "/repos/octo/demo") == 2


def test_secondary_rate_limit_with_a_long_retry_after_reschedules(world: World) -> None:
    client = world.client()
    world.emu.add_fault(
        r"^/repos/octo/demo$", status=429, count=1, headers={"Retry-After": "120"}, body=SECONDARY
    )
    started = datetime.now(UTC)
    with pytest.raises(RetryAt) as info:
        client.get_repository(world.inst, "octo", "demo")
    assert info.value.kind == "secondary"
    assert started + timedelta(seconds=119) <= info.value.at <= datetime.now(UTC) + timedelta(seconds=121)


def test_secondary_rate_limit_without_retry_after_backs_off(world: World) -> None:
    # The one-minute floor is asserted in tests/unit/test_github_policy.py; shrunk here to stay fast.
    client = world.client(secondary_rate_limit_min_wait=0.2)
    world.emu.add_fault(r"^/repos/octo/demo$", status=403, count=2, body=SECONDARY)
    started = datetime.now(UTC)
    assert client.get_repository(world.inst, "octo", "demo").name == "demo"
    assert datetime.now(UTC) - started >= timedelta(seconds=0.6)  # 0.2 then 0.4: exponential
    assert world.count("GET", "/repos/octo/demo") == 3


def test_secondary_rate_limit_without_retry_after_defaults_to_at_least_a_minute(world: World) -> None:
    client = world.client()
    world.emu.add_fault(r"^/repos/octo/demo$", status=403, count=1, body=SECONDARY)
    started = datetime.now(UTC)
    with pytest.raises(RetryAt) as info:
        client.get_repository(world.inst, "octo", "demo")
    assert info.value.at >= started + timedelta(seconds=60)
    assert world.count("GET", "/repos/octo/demo") == 1  # no retry storm


def test_primary_limit_exhausted_raises_retry_at(tmp_path: Path) -> None:
    for world in make_world(tmp_path, rate_limit=6):
        client = world.client(rate_limit_buffer=2)
        for i in range(4):  # 6 -> 2 remaining (distinct reads: a repeated one would be a free 304)
            client.get_branch_head(world.inst, "octo", "demo", f"b{i}")
        state = client.rate_limit(world.inst)
        assert state is not None and state.remaining == 2
        with pytest.raises(RetryAt) as reserve:  # background work keeps the reserve
            client.get_repository(world.inst, "octo", "demo")
        assert reserve.value.kind == "reserve" and reserve.value.at >= state.reset_at - timedelta(seconds=1)
        with client.priority("user"):  # user-triggered work may spend it
            client.get_repository(world.inst, "octo", "demo")
            client.get_repository(world.inst, "octo", "demo")  # a 304: free, GitHub does not charge it
            client.get_repository_by_id(world.inst, client.get_repository(world.inst, "octo", "demo").id)
            with pytest.raises(RetryAt) as primary:
                client.get_repository(world.inst, "octo", "empty")
        assert primary.value.kind == "primary"
        sent = len(world.emu.requests())
        # A fresh client (another process) learns it from GitHub's 403 and reschedules without a retry storm.
        other = world.client(rate_limit_buffer=2)
        with pytest.raises(RetryAt) as learned, other.priority("user"):
            other.get_repository(world.inst, "octo", "empty")
        assert learned.value.kind == "primary" and learned.value.status == 403
        assert learned.value.at > datetime.now(UTC) + timedelta(minutes=50)
        assert world.count("GET", "/repos/octo/empty", 403) == 1
        assert len(world.emu.requests()) == sent + 2  # a token request and the one 403


# ---- conditional requests ----------------------------------------------------------------------


def test_repeated_polling_reads_cost_304s(world: World) -> None:
    client = world.client()
    first = (
        client.get_repository(world.inst, "octo", "demo"),
        client.get_branch_head(world.inst, "octo", "demo", "trunk"),
        client.get_branch(world.inst, "octo", "demo", "trunk"),
    )
    remaining = client.rate_limit(world.inst)
    again = (
        client.get_repository(world.inst, "octo", "demo"),
        client.get_branch_head(world.inst, "octo", "demo", "trunk"),
        client.get_branch(world.inst, "octo", "demo", "trunk"),
    )
    assert again == first
    assert world.count("GET", "/repos/octo/demo", 304) == 1
    assert world.count("GET", "/repos/octo/demo/git/ref/heads/trunk", 304) == 1
    assert world.count("GET", "/repos/octo/demo/branches/trunk", 304) == 1
    after = client.rate_limit(world.inst)
    assert remaining is not None and after is not None and after.remaining == remaining.remaining


# ---- GHES and the operations the linking service uses ------------------------------------------


def test_ghes_style_base_url(world: World) -> None:
    client = world.client(ghes=True)
    assert client.find_installation("octo", "demo") == world.inst
    assert client.get_repository(world.inst, "octo", "demo").default_branch == "trunk"
    assert any(r["path"] == "/repos/octo/demo" for r in world.emu.requests())


def test_operations(world: World) -> None:
    client = world.client()
    assert client.find_installation("octo", "demo") == world.inst
    inst = client.get_installation(world.inst)
    assert inst.id == world.inst and inst.account == "octo" and inst.repository_selection == "selected"
    assert isinstance(inst.permissions, dict) and inst.permissions
    repo = client.get_repository(world.inst, "octo", "demo")
    assert (repo.owner, repo.name, repo.default_branch, repo.private) == ("octo", "demo", "trunk", False)
    assert client.get_repository_by_id(world.inst, repo.id) == repo
    head = client.get_branch_head(world.inst, "octo", "demo", "trunk")
    assert head is not None and len(head) == 40
    assert client.get_branch_head(world.inst, "octo", "demo", "nope") is None
    assert client.get_branch_head(world.inst, "octo", "empty", "main") is None
    assert client.is_branch_protected(world.inst, "octo", "demo", "trunk") is False
    assert client.is_branch_protected(world.inst, "octo", "demo", "nope") is False
    state = client.rate_limit(world.inst)
    assert state is not None and state.limit == 5000 and state.remaining < 5000
    assert client.rate_limit(999) is None


def test_branch_protection_and_rename_are_seen(world: World) -> None:
    client = world.client()
    token = world.emu.installation_token(world.app, world.inst)
    auth = {"Authorization": f"token {token}"}
    r = world.emu.http.put(
        "/repos/octo/demo/branches/trunk/protection",
        headers=auth,
        json={
            "required_status_checks": None,
            "enforce_admins": None,
            "required_pull_request_reviews": None,
            "restrictions": None,
        },
    )
    assert r.status_code == 200, r.text
    assert client.is_branch_protected(world.inst, "octo", "demo", "trunk") is True
    repo = client.get_repository(world.inst, "octo", "demo")
    assert world.emu.http.patch("/repos/octo/demo", headers=auth, json={"name": "renamed"}).status_code == 200
    moved = client.get_repository(world.inst, "octo", "demo")  # GitHub answers 301; followed
    assert (moved.id, moved.name, moved.full_name) == (repo.id, "renamed", "octo/renamed")
    assert client.get_repository_by_id(world.inst, repo.id).name == "renamed"


def test_find_installation_tells_missing_repos_from_missing_installations(world: World) -> None:
    client = world.client()
    world.emu.create_repo("octo", "other")
    world.emu.create_repo("someone", "thing")
    with pytest.raises(AppNotInstalled, match="not among the repositories selected"):
        client.find_installation("octo", "other")
    with pytest.raises(AppNotInstalled, match="not installed on the account"):
        client.find_installation("someone", "thing")
    app2 = world.emu.create_app("all-repos")
    world.emu.create_installation(app2.id, "someone", [], repository_selection="all")
    config = GitHubAppConfig(app_id=app2.id, private_key=app2.private_key, api_url=world.emu.url)
    with pytest.raises(RepositoryNotFound):
        world.track(GitHubAppClient(config)).find_installation("someone", "missing")


# ---- shared throttle state (two processes) and writes that are not safe to resend ---------------


@pytest.mark.parametrize("store", ["memory", "database"])
def test_a_second_client_honours_the_cooldown_the_first_one_hit(world: World, store: str) -> None:
    """Two clients (two processes) on one throttle state: the second refuses writes during the
    secondary-limit cool-down the first one was given, without sending anything to GitHub."""
    throttle: ThrottleState
    if store == "memory":
        throttle = InMemoryThrottleState()
    else:
        engine = make_engine(f"sqlite:///{world.tmp / 'throttle.db'}")
        migrate.upgrade(engine)
        throttle = DatabaseThrottleState(engine)
    first, second = world.client(throttle=throttle), world.client(throttle=throttle)
    world.emu.add_fault(
        r"^/repos/octo/demo/git/blobs$",
        method="POST",
        status=403,
        count=1,
        headers={"Retry-After": "120"},
        body=SECONDARY,
    )
    started = datetime.now(UTC)
    with pytest.raises(RetryAt) as hit:
        first.repo(world.inst, "octo", "demo").create_blob(b"one\n")
    assert hit.value.kind == "secondary" and hit.value.at >= started + timedelta(seconds=119)
    sent = len(world.emu.requests())
    with pytest.raises(RetryAt) as refused:
        second.repo(world.inst, "octo", "demo").create_blob(b"two\n")
    assert refused.value.kind == "secondary" and refused.value.at >= hit.value.at - timedelta(seconds=1)
    assert len(world.emu.requests()) == sent  # not even a token request
    assert world.count("POST", "/repos/octo/demo/git/blobs") == 1
    # The quota the first client saw is there for the second one too.
    seen = second.rate_limit(world.inst)
    assert seen is not None and seen.limit == 5000


def test_a_pull_request_whose_create_failed_is_reread_then_created_once(world: World) -> None:
    client = world.client(retry_base_delay=0.01, retry_max_delay=0.02)
    repo = client.repo(world.inst, "octo", "demo")
    head = repo.get_branch("trunk")
    assert head is not None
    repo.create_ref("ghsync/p1", head.sha)
    tree = repo.create_tree(repo.get_commit(head.sha).tree_sha, [TreeWrite.text("a.txt", "a\n")])
    commit = repo.create_commit(tree, [head.sha], "ghsync: v1", Author("ghsync", "ghsync@example.com"))
    repo.update_ref("ghsync/p1", commit.sha)
    world.emu.add_fault(r"^/repos/octo/demo/pulls$", method="POST", status=502, count=1)
    with counting_requests() as count:
        pr = repo.create_pull("ghsync/p1", "trunk", "Sync")
    assert pr.state == "open" and pr.head_sha == commit.sha
    assert world.count("POST", "/repos/octo/demo/pulls", 502) == 1
    assert world.count("POST", "/repos/octo/demo/pulls", 201) == 1
    assert count.total == 3  # the failed POST, the re-read, the POST that opened it
    world.emu.add_fault(r"^/repos/octo/demo/git/refs$", method="POST", status=502, count=1)
    with pytest.raises(GitHubServerError):  # creating a ref is not resent blindly
        repo.create_ref("ghsync/p2", head.sha)
    assert world.count("POST", "/repos/octo/demo/git/refs", 502) == 1
