"""Linking as a use case, on the in-memory twins (unit of work, fake GitHub, queue): every branch at unit
speed. tests/integration/test_linking.py proves the same through the API against the emulator."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.errors import AppNotInstalled, Conflict, NotFound, RepositoryNotFound
from ghsync.domain.models import FileWrite
from ghsync.ports.jobs import RECONCILE_TASK
from ghsync.services.linking import (
    AlreadyLinked,
    GitHubNotConfigured,
    LinkService,
    MissingPermission,
    webhook_secret_context,
)
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import ReconcileService, relay_pending_requests

MAX_FILE = 100 * 1024 * 1024
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class World:
    github: InMemoryGitHub
    uow: MemoryUnitOfWorkFactory
    store: GitStore
    queue: InMemoryQueue
    projects: ProjectService
    versions: VersionService
    links: LinkService
    secrets: SecretBox
    installation: int
    reconciled: list[str]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with InMemoryGitHub(tmp_path / "github") as github:
        installation = github.add_installation("octo", selection="all")
        github.add_repo(
            "octo",
            "site",
            default_branch="trunk",
            files={"index.html": "<h1>hi</h1>\n"},
            installation_id=installation,
        )
        queue = InMemoryQueue()
        reconciled: list[str] = []
        queue.register(RECONCILE_TASK, lambda args: reconciled.append(str(args["project_id"])))
        uow = MemoryUnitOfWorkFactory(notify=queue.request_reconcile)
        store = GitStore(tmp_path / "projects", max_file_size=MAX_FILE)
        projects = ProjectService(uow, store)
        secrets = SecretBox.from_setting([KEY])
        links = LinkService(uow, store, projects, github, secrets, queue)
        yield World(
            github,
            uow,
            store,
            queue,
            projects,
            VersionService(uow, store, projects),
            links,
            secrets,
            installation,
            reconciled,
        )


def test_link_records_the_link_both_heads_an_operation_an_audit_row_and_a_request(world: World) -> None:
    project = world.projects.create_project("site")
    status = world.links.link(project.id, owner="octo", repo="site", sync_mode="direct_commit")

    remote_head = world.github.head("octo", "site", "trunk")
    assert (status.linked, status.owner, status.repo, status.default_branch) == (
        True,
        "octo",
        "site",
        "trunk",
    )
    assert status.sync_mode == "direct_commit" and status.conflict_strategy == "manual"
    assert status.last_remote_main_sha == remote_head
    assert status.state == "pending"  # the first reconcile is queued
    with world.uow() as uow:
        stored = uow.projects.get(project.id)
        assert stored is not None and stored.link is not None
        assert stored.link.installation_id == world.installation
        operation = uow.operations.latest(project.id)
        assert operation is not None and operation.operation_type == "link"
        assert operation.github_commit_sha == remote_head
        assert [e.action for e in uow.audit.for_project(project.id)] == ["github.link"]
        assert [r.reason for r in uow.requests.pending(project.id)] == ["linked"]
    # The queue was told after the commit, and the job runs the reconcile.
    assert world.queue.run_until_idle() == 1
    assert world.reconciled == [project.id]


def test_the_webhook_secret_is_sealed_and_bound_to_the_project(world: World) -> None:
    project = world.projects.create_project("site")
    world.links.link(project.id, owner="octo", repo="site")
    stored = world.projects.get_project(project.id)
    assert stored.webhook_secret is not None
    secret = world.secrets.decrypt(stored.webhook_secret, context=webhook_secret_context(project.id))
    assert len(secret) == 64 and secret not in stored.webhook_secret


@pytest.mark.parametrize(
    ("owner", "repo", "error", "code"),
    [
        ("octo", "missing", RepositoryNotFound, "repository_not_found"),
        ("nobody", "site", AppNotInstalled, "app_not_installed"),
        ("-bad-", "site", None, "invalid_repository"),
        ("octo", "..", None, "invalid_repository"),
    ],
)
def test_link_errors_change_nothing(
    world: World, owner: str, repo: str, error: type[Exception] | None, code: str
) -> None:
    project = world.projects.create_project("site")
    with pytest.raises(error or Exception) as raised:
        world.links.link(project.id, owner=owner, repo=repo)
    assert getattr(raised.value, "code", None) == code
    with world.uow() as uow:
        assert uow.projects.get(project.id) == project
        assert uow.operations.latest(project.id) is None
        assert uow.requests.pending(project.id) == []


def test_a_missing_permission_is_named(world: World) -> None:
    world.github.add_installation(
        "acme", selection="all", permissions={"contents": "read", "metadata": "read"}
    )
    world.github.add_repo("acme", "docs", files={"a.md": "a"})
    project = world.projects.create_project("docs")
    with pytest.raises(MissingPermission, match="contents: write, pull_requests: write"):
        world.links.link(project.id, owner="acme", repo="docs")


def test_linking_twice_and_unknown_projects(world: World) -> None:
    project = world.projects.create_project("site")
    world.links.link(project.id, owner="octo", repo="site")
    with pytest.raises(AlreadyLinked):
        world.links.link(project.id, owner="octo", repo="site")
    with pytest.raises(NotFound):
        world.links.link("not-a-project", owner="octo", repo="site")


def test_of_concurrent_links_one_wins(world: World) -> None:
    project = world.projects.create_project("site")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            world.links.link(project.id, owner="octo", repo="site")
            outcomes.append("linked")
        except AlreadyLinked:
            outcomes.append("already_linked")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["already_linked"] * 3 + ["linked"]
    with world.uow() as uow:
        assert [e.action for e in uow.audit.for_project(project.id)] == ["github.link"]


def test_unlink_keeps_versions_and_history(world: World) -> None:
    project = world.projects.create_project("site")
    world.versions.create_version(project.id, message="first", writes=[FileWrite("a.txt", b"a")])
    world.links.link(project.id, owner="octo", repo="site")
    status = world.links.unlink(project.id)
    assert (status.linked, status.owner, status.state) == (False, None, "disabled")
    with pytest.raises(Conflict, match="not linked"):
        world.links.unlink(project.id)
    with world.uow() as uow:
        assert uow.versions.max_number(project.id) == 1
        assert [e.action for e in uow.audit.for_project(project.id)] == ["github.unlink", "github.link"]
        assert uow.projects.sealed_secrets() == []


def test_versions_request_a_reconcile_only_while_linked(world: World) -> None:
    project = world.projects.create_project("site")
    world.versions.create_version(project.id, message="before", writes=[FileWrite("a.txt", b"a")])
    with world.uow() as uow:
        assert uow.requests.pending(project.id) == []
    world.links.link(project.id, owner="octo", repo="site")
    world.versions.create_version(project.id, message="after", writes=[FileWrite("a.txt", b"b")])
    with world.uow() as uow:
        assert [r.reason for r in uow.requests.pending(project.id)] == ["linked", "local_version"]
    assert world.queue.run_until_idle() == 1  # the two requests coalesce into one queued reconcile


def test_the_reconcile_serves_pending_requests_and_the_relay_re_tells_the_queue(world: World) -> None:
    project = world.projects.create_project("site")
    # A request whose queue notification was lost (the process died right after the commit).
    with world.uow() as uow:
        request = uow.request_reconcile(project.id, "webhook")
        uow.rollback()
        request = uow.request_reconcile(project.id, "webhook")
        uow.commit()
    world.queue.run_until_idle()
    world.reconciled.clear()
    assert relay_pending_requests(world.uow, world.queue.request_reconcile) == 1
    assert world.queue.run_until_idle() == 1 and world.reconciled == [project.id]

    operation_id = ReconcileService(world.uow).reconcile(project.id)
    assert operation_id is not None
    with world.uow() as uow:
        served = uow.requests.get(request.id)
        assert served is not None and served.operation_id == operation_id
    assert relay_pending_requests(world.uow, world.queue.request_reconcile) == 0
    assert ReconcileService(world.uow).reconcile("not-a-project") is None


def test_linking_needs_an_app_and_a_key(tmp_path: Path, world: World) -> None:
    store = GitStore(tmp_path / "other", max_file_size=MAX_FILE)
    projects = ProjectService(world.uow, store)
    project = projects.create_project("x")
    without_app = LinkService(world.uow, store, projects, None, world.secrets, world.queue)
    with pytest.raises(GitHubNotConfigured, match="GITHUB_APP_ID"):
        without_app.link(project.id, owner="octo", repo="site")
    without_key = LinkService(
        world.uow, store, projects, world.github, SecretBox.from_setting([]), world.queue
    )
    with pytest.raises(GitHubNotConfigured, match="GHSYNC_ENCRYPTION_KEYS"):
        without_key.link(project.id, owner="octo", repo="site")


def test_rotating_keys_re_seals_every_secret(world: World) -> None:
    project = world.projects.create_project("site")
    world.links.link(project.id, owner="octo", repo="site")
    before = world.projects.get_project(project.id).webhook_secret
    assert before is not None
    plain = world.secrets.decrypt(before, context=webhook_secret_context(project.id))
    new_key = "k2:" + base64.b64encode(os.urandom(32)).decode()
    rotating = SecretBox.from_setting([new_key, KEY])
    service = LinkService(world.uow, world.store, world.projects, world.github, rotating, world.queue)
    assert service.rotate_secrets() == 1
    assert service.rotate_secrets() == 0
    after = world.projects.get_project(project.id).webhook_secret
    assert after is not None and after != before
    assert (
        SecretBox.from_setting([new_key]).decrypt(after, context=webhook_secret_context(project.id)) == plain
    )
