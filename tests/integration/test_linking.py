"""Linking projects to repositories, against the GitHub emulator: link, unlink, status and every error."""

from __future__ import annotations

import base64
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.models import AuditLogRow, ProjectRow, SyncOperationRow
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.entrypoints.api.app import create_app
from ghsync.services.linking import webhook_secret_context
from github_emulator.testing import EmulatorHandle, run_emulator

TOKEN = "link-test-token"
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class World:
    emu: EmulatorHandle
    api: TestClient
    container: Container
    installation_id: int
    owner_token: str

    def project(self, name: str = "site") -> str:
        response = self.api.post("/v1/projects", json={"name": name})
        assert response.status_code == 201
        return str(response.json()["id"])

    def github(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.emu.url,
            headers={"Authorization": f"token {self.owner_token}", "Accept": "application/vnd.github+json"},
            trust_env=False,
        )


def build_world(tmp_path: Path, emu: EmulatorHandle, permissions: dict[str, str]) -> Iterator[World]:
    app = emu.create_app("ghsync-test", permissions=permissions)
    owner = emu.create_user("octo")
    emu.create_repo("octo", "site", default_branch="trunk", files={"index.html": "<h1>hello</h1>\n"})
    installation_id = emu.create_installation(app.id, "octo", ["octo/site"])
    database_url = f"sqlite:///{tmp_path / 'ghsync.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = load_settings(
        {},
        ghsync_data_dir=tmp_path / "data",
        database_url=database_url,
        ghsync_api_tokens=[TOKEN],
        ghsync_encryption_keys=[KEY],
        github_app_id=str(app.id),
        github_app_private_key=app.private_key,
        github_api_url=emu.url,
    )
    container = build_container(settings)
    with TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        yield World(emu, api, container, installation_id, owner.token)
    container.close()


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(tmp_path / "emulator") as handle:
        yield handle


@pytest.fixture
def world(tmp_path: Path, emu: EmulatorHandle) -> Iterator[World]:
    yield from build_world(tmp_path, emu, PERMISSIONS)


def link(world: World, pid: str, **body: Any) -> httpx.Response:
    body.setdefault("owner", "octo")
    body.setdefault("repo", "site")
    return world.api.post(f"/v1/projects/{pid}/github/link", json=body)


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


STATUS_FIELDS = {
    "linked",
    "enabled",
    "owner",
    "repo",
    "default_branch",
    "protected",
    "sync_mode",
    "conflict_strategy",
    "allow_force_push",
    "hold_force_pushes",
    "state",
    "last_remote_main_sha",
    "last_synced_main_sha",
    "last_outbound_base_sha",
    "last_github_sync_at",
    "last_operation",
    "open_pr",
    "open_conflict",
    "rate_limit",
    "held_plan",
}


def test_link_reads_the_repository_and_records_both_heads(world: World) -> None:
    pid = world.project()
    version = world.api.post(
        f"/v1/projects/{pid}/versions",
        json={"message": "local work", "files": [{"path": "app.py", "content_base64": "cHJpbnQoMSkK"}]},
    ).json()
    with world.github() as gh:
        remote_head = gh.get("/repos/octo/site/git/ref/heads/trunk").json()["object"]["sha"]

    response = link(world, pid)

    assert response.status_code == 201, response.text
    status = response.json()
    assert set(status) == STATUS_FIELDS
    assert status["linked"] is True and status["enabled"] is True
    assert (status["owner"], status["repo"]) == ("octo", "site")
    assert status["default_branch"] == "trunk"  # read from the API, never assumed to be main
    assert status["protected"] is False
    assert status["sync_mode"] == "protected_pr" and status["conflict_strategy"] == "manual"
    assert status["state"] == "pending"  # the first reconcile is requested, not yet run
    assert status["last_remote_main_sha"] == remote_head
    assert status["last_operation"]["operation_type"] == "link"
    assert status["rate_limit"]["remaining"] > 0
    assert status["open_pr"] is None and status["open_conflict"] is None

    with Session(world.container.engine) as session:
        project = session.get(ProjectRow, uuid.UUID(pid))
        assert project is not None
        assert project.github_installation_id == world.installation_id
        operation = session.scalars(
            select(SyncOperationRow).where(SyncOperationRow.operation_type == "link")
        ).one()
    # Neither side is touched: both heads are on record for the first reconcile.
    assert operation.metadata_["local_head"] == version["commit_sha"]
    assert operation.metadata_["remote_head"] == remote_head
    assert world.api.get(f"/v1/projects/{pid}/versions").json()["items"][0]["id"] == version["id"]


def test_the_webhook_secret_is_encrypted_and_never_shown(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    pid = world.project()
    response = link(world, pid)
    with Session(world.container.engine) as session:
        project = session.get(ProjectRow, uuid.UUID(pid))
        assert project is not None and project.github_webhook_secret is not None
        envelope = project.github_webhook_secret
    assert envelope.startswith("v1:k1:")
    from ghsync.adapters.secrets import SecretBox

    secret = SecretBox.from_setting([KEY]).decrypt(envelope, context=webhook_secret_context(uuid.UUID(pid)))
    assert len(secret) == 64
    status_text = world.api.get(f"/v1/projects/{pid}/github/status").text
    captured = capsys.readouterr()
    for text in (response.text, status_text, captured.out, captured.err):
        assert secret not in text and envelope not in text


def test_link_with_explicit_installation_mode_and_strategy(world: World) -> None:
    pid = world.project()
    response = link(
        world, pid, installation_id=world.installation_id, sync_mode="hybrid", conflict_strategy="auto_merge"
    )
    assert response.status_code == 201, response.text
    assert response.json()["sync_mode"] == "hybrid"
    assert response.json()["conflict_strategy"] == "auto_merge"


def test_link_sees_branch_protection(world: World) -> None:
    with world.github() as gh:
        protected = gh.put(
            "/repos/octo/site/branches/trunk/protection",
            json={
                "required_status_checks": None,
                "enforce_admins": True,
                "required_pull_request_reviews": {"required_approving_review_count": 1},
                "restrictions": None,
            },
        )
        assert protected.status_code == 200, protected.text
    response = link(world, world.project())
    assert response.json()["protected"] is True


def test_link_errors(world: World, emu: EmulatorHandle) -> None:
    pid = world.project()
    # A repository that does not exist, on an account the App is installed on for every repository.
    all_app = emu.create_app("all-repos", permissions=PERMISSIONS)
    emu.create_repo("acme", "exists", files={"a": "b"})
    emu.create_installation(all_app.id, "acme", ["acme/exists"], repository_selection="all")
    # The test's App is not installed on "acme" at all, and not on octo/other.
    emu.create_repo("octo", "other", files={"a": "b"})

    assert "ghost" in error_of(link(world, pid, repo="ghost"), 403, "app_not_installed")
    error_of(link(world, pid, owner="acme", repo="exists"), 403, "app_not_installed")
    error_of(link(world, pid, repo="other"), 403, "app_not_installed")
    error_of(
        link(world, pid, repo="ghost", installation_id=world.installation_id), 404, "repository_not_found"
    )
    error_of(link(world, pid, sync_mode="sometimes"), 422, "invalid_sync_mode")
    error_of(link(world, pid, conflict_strategy="coin_flip"), 422, "invalid_conflict_strategy")
    error_of(link(world, pid, owner="-bad-", repo="site"), 422, "invalid_repository")
    error_of(link(world, pid, unknown_field=1), 422, "invalid_request")
    error_of(link(world, str(uuid.uuid4())), 404, "not_found")
    assert world.api.get(f"/v1/projects/{pid}/github/status").json()["linked"] is False

    assert link(world, pid).status_code == 201
    assert "octo/site" in error_of(link(world, pid), 409, "already_linked")


def test_repository_not_found_on_an_all_repositories_installation(
    tmp_path: Path, emu: EmulatorHandle
) -> None:
    app = emu.create_app("wide", permissions=PERMISSIONS)
    emu.create_repo("acme", "real", files={"a": "b"})
    emu.create_installation(app.id, "acme", ["acme/real"], repository_selection="all")
    worlds = build_world(tmp_path, emu, PERMISSIONS)
    world = next(worlds)
    try:
        settings = world.container.settings.model_copy(
            update={"github_app_id": str(app.id), "github_app_private_key": app.private_key}
        )
        container = build_container(settings)
        with TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            pid = api.post("/v1/projects", json={"name": "p"}).json()["id"]
            response = api.post(f"/v1/projects/{pid}/github/link", json={"owner": "acme", "repo": "ghost"})
            error_of(response, 404, "repository_not_found")
            assert (
                api.post(
                    f"/v1/projects/{pid}/github/link", json={"owner": "acme", "repo": "real"}
                ).status_code
                == 201
            )
        container.close()
    finally:
        worlds.close()


def test_missing_permission_is_named(tmp_path: Path, emu: EmulatorHandle) -> None:
    worlds = build_world(tmp_path, emu, {"contents": "read", "pull_requests": "write", "metadata": "read"})
    world = next(worlds)
    try:
        message = error_of(link(world, world.project()), 403, "missing_permission")
        assert "contents: write" in message
    finally:
        worlds.close()


def test_unlink_stops_syncing_and_keeps_history(world: World) -> None:
    pid = world.project()
    assert link(world, pid).status_code == 201

    response = world.api.delete(f"/v1/projects/{pid}/github/unlink")

    assert response.status_code == 200, response.text
    status = response.json()
    assert status["linked"] is False and status["state"] == "disabled" and status["owner"] is None
    with Session(world.container.engine) as session:
        kinds = [
            op.operation_type
            for op in session.scalars(
                select(SyncOperationRow)
                .where(SyncOperationRow.project_id == uuid.UUID(pid))
                .order_by(SyncOperationRow.created_at)
            )
        ]
        audit = [row.action for row in session.scalars(select(AuditLogRow).order_by(AuditLogRow.id))]
    assert "link" in kinds and "unlink" in kinds
    assert audit == ["github.link", "github.unlink"]
    error_of(world.api.delete(f"/v1/projects/{pid}/github/unlink"), 409, "not_linked")
    assert link(world, pid).status_code == 201  # linking again works


def test_the_link_follows_a_rename_and_a_default_branch_change(world: World) -> None:
    pid = world.project()
    assert link(world, pid).status_code == 201
    with world.github() as gh:
        gh.post(
            "/repos/octo/site/git/refs",
            json={
                "ref": "refs/heads/release",
                "sha": gh.get("/repos/octo/site/git/ref/heads/trunk").json()["object"]["sha"],
            },
        )
        renamed = gh.patch("/repos/octo/site", json={"name": "website", "default_branch": "release"})
        assert renamed.status_code == 200, renamed.text

    status = world.api.get(f"/v1/projects/{pid}/github/status").json()

    assert (status["owner"], status["repo"]) == ("octo", "website")
    assert status["default_branch"] == "release"
    with Session(world.container.engine) as session:
        actions = [row.action for row in session.scalars(select(AuditLogRow))]
    assert "github.link_followed" in actions


def test_concurrent_link_requests_link_once(world: World) -> None:
    pid = world.project()
    results: list[int] = []

    def attempt() -> None:
        results.append(link(world, pid).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 409, 409, 409]


def test_linking_needs_a_configured_app(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = load_settings(
        {}, ghsync_data_dir=tmp_path, database_url=database_url, ghsync_api_tokens=[TOKEN]
    )
    container = build_container(settings)
    with TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        pid = api.post("/v1/projects", json={"name": "p"}).json()["id"]
        response = api.post(f"/v1/projects/{pid}/github/link", json={"owner": "octo", "repo": "site"})
        error_of(response, 503, "github_not_configured")
        status = api.get(f"/v1/projects/{pid}/github/status").json()
        assert status["linked"] is False and status["state"] == "disabled"
    container.close()


def test_key_rotation_re_encrypts_link_secrets(world: World) -> None:
    from ghsync.adapters.secrets import SecretBox

    pid = world.project()
    assert link(world, pid).status_code == 201
    new_key = "k2:" + base64.b64encode(os.urandom(32)).decode()
    settings = world.container.settings.model_copy(update={"ghsync_encryption_keys": [new_key, KEY]})
    rotated_container = build_container(settings)
    try:
        assert rotated_container.links.rotate_secrets() == 1
        assert rotated_container.links.rotate_secrets() == 0
    finally:
        rotated_container.close()
    with Session(world.container.engine) as session:
        project = session.get(ProjectRow, uuid.UUID(pid))
        assert project is not None and project.github_webhook_secret is not None
        envelope = project.github_webhook_secret
    assert envelope.startswith("v1:k2:")
    assert (
        len(
            SecretBox.from_setting([new_key]).decrypt(
                envelope, context=webhook_secret_context(uuid.UUID(pid))
            )
        )
        == 64
    )
