"""A person steering a sync through the API, against the GitHub emulator: the open conflict with both
sides of every file, resolutions (by strategy, with merged files, stale -> 409), the dry-run plan, a held
mass deletion confirmed, a reset and its undo, and the link's settings.

The reconcile job is run in the test (`container.reconciler.reconcile`) instead of by the worker, so each
step happens exactly when the test says; people edit GitHub through its Contents API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.notify import HttpxNotificationSender
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.errors import RetryAt, RetryLater
from ghsync.domain.notifications import Backoff
from ghsync.entrypoints.api.app import create_app
from ghsync.entrypoints.api.errors import http_status
from ghsync.entrypoints.api.sync import TryLater, _as_user
from ghsync.services.notifications import NotificationService
from github_emulator.testing import EmulatorHandle, WebhookReceiver, run_emulator

TOKEN = "conflict-test-token"
NOTIFY_SECRET = "platform-secret"
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
BASE_TEXT = "one\ntwo\nthree\nfour\nfive\n"
PNG_LOCAL = b"\x89PNG\r\n\x1a\n\0\0local"
PNG_GITHUB = b"\x89PNG\r\n\x1a\n\0\0github!"


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


@dataclass
class World:
    emu: EmulatorHandle
    api: TestClient
    container: Container
    owner_token: str
    pid: str
    receiver: WebhookReceiver

    def github(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.emu.url,
            headers={"Authorization": f"token {self.owner_token}", "Accept": "application/vnd.github+json"},
            trust_env=False,
        )

    def reconcile(self) -> None:
        self.container.reconciler.reconcile(self.pid)

    def edit_locally(self, files: dict[str, bytes], delete: list[str] | None = None) -> None:
        response = self.api.post(
            f"/v1/projects/{self.pid}/versions",
            json={
                "message": "local edit",
                "files": [{"path": p, "content_base64": b64(c)} for p, c in files.items()],
                "delete": delete or [],
            },
        )
        assert response.status_code == 201, response.text

    def push_on_github(self, path: str, content: bytes) -> None:
        """A person's commit on the default branch (the Contents API: one commit per file)."""
        with self.github() as gh:
            found = gh.get(f"/repos/octo/site/contents/{path}", params={"ref": "trunk"})
            body: dict[str, Any] = {"message": f"edit {path}", "content": b64(content), "branch": "trunk"}
            if found.status_code == 200:
                body["sha"] = found.json()["sha"]
            response = gh.put(f"/repos/octo/site/contents/{path}", json=body)
            assert response.status_code in (200, 201), response.text

    def remote(self) -> dict[str, bytes]:
        with self.github() as gh:
            head = gh.get("/repos/octo/site/git/ref/heads/trunk").json()["object"]["sha"]
            tree = gh.get(f"/repos/octo/site/git/trees/{head}", params={"recursive": "1"}).json()
            return {
                entry["path"]: base64.b64decode(
                    gh.get(f"/repos/octo/site/git/blobs/{entry['sha']}").json()["content"]
                )
                for entry in tree["tree"]
                if entry["type"] == "blob"
            }

    def local(self) -> dict[str, bytes]:
        store = self.container.store
        head = store.head(self.pid)
        assert head is not None
        return {e.path: store.read_file(self.pid, head, e.path) for e in store.list_files(self.pid, head)}

    def heads(self) -> dict[str, str]:
        with self.github() as gh:
            github_head = gh.get("/repos/octo/site/git/ref/heads/trunk").json()["object"]["sha"]
        local_head = self.container.store.head(self.pid)
        assert local_head is not None
        return {"local_head": local_head, "github_head": github_head}

    def conflict(self) -> dict[str, Any]:
        response = self.api.get(f"/v1/projects/{self.pid}/github/conflict")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def status(self) -> dict[str, Any]:
        response = self.api.get(f"/v1/projects/{self.pid}/github/status")
        assert response.status_code == 200, response.text
        return dict(response.json())


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with run_emulator(tmp_path / "emulator") as emu, WebhookReceiver() as receiver:
        app = emu.create_app("ghsync-test", permissions=PERMISSIONS)
        owner = emu.create_user("octo")
        emu.create_repo("octo", "site", default_branch="trunk", files={"a.txt": BASE_TEXT, "b.txt": "b\n"})
        emu.create_installation(app.id, "octo", ["octo/site"])
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
            github_write_interval=0,
            ghsync_notify_url=receiver.url,
            ghsync_notify_secret=NOTIFY_SECRET,
        )
        container = build_container(settings)
        try:
            with TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
                pid = api.post("/v1/projects", json={"name": "site"}).json()["id"]
                linked = api.post(
                    f"/v1/projects/{pid}/github/link",
                    json={"owner": "octo", "repo": "site", "sync_mode": "direct_commit"},
                )
                assert linked.status_code == 201, linked.text
                world = World(emu, api, container, owner.token, pid, receiver)
                world.reconcile()  # the import: the base pair
                yield world
        finally:
            container.close()


def make_conflict(world: World) -> None:
    """Both sides edit a.txt's third line and add a different logo.png; each also changes one more file."""
    world.edit_locally(
        {"a.txt": BASE_TEXT.replace("three", "local").encode(), "logo.png": PNG_LOCAL, "c.txt": b"local c\n"}
    )
    world.push_on_github("a.txt", BASE_TEXT.replace("three", "github").encode())
    world.push_on_github("logo.png", PNG_GITHUB)
    world.push_on_github("b.txt", b"github b\n")
    world.reconcile()  # strategy manual: the conflict is recorded, nothing is applied


def test_the_conflict_shows_every_side_of_every_file_and_the_heads_to_quote(world: World) -> None:
    error_of(world.api.get(f"/v1/projects/{world.pid}/github/conflict"), 404, "no_open_conflict")
    make_conflict(world)

    conflict = world.conflict()
    assert {k: conflict[k] for k in ("local_head", "github_head")} == world.heads()
    assert conflict["strategy"] == "manual" and conflict["base_local"] and conflict["base_github"]
    files = {f["path"]: f for f in conflict["files"]}
    assert set(files) == {"a.txt", "logo.png"}  # b.txt and c.txt changed on one side only

    text = files["a.txt"]
    assert (text["kind"], text["binary"]) == ("content", False)
    assert text["base"]["content"] == BASE_TEXT
    assert text["local"]["content"] == BASE_TEXT.replace("three", "local")
    assert text["github"]["content"] == BASE_TEXT.replace("three", "github")
    assert text["local"]["size"] == len(BASE_TEXT.replace("three", "local"))
    assert text["diff"].splitlines() == [
        "--- local/a.txt",
        "+++ github/a.txt",
        "@@ -1,5 +1,5 @@",
        " one",
        " two",
        "-local",
        "+github",
        " four",
        " five",
    ]

    binary = files["logo.png"]
    assert (binary["kind"], binary["binary"], binary["diff"]) == ("add_add", True, None)
    assert binary["base"] == {"sha": None, "mode": None, "size": None, "content": None}
    assert binary["local"]["content"] is None and binary["local"]["size"] == len(PNG_LOCAL)
    assert binary["github"]["size"] == len(PNG_GITHUB)
    assert binary["local"]["sha"] != binary["github"]["sha"]
    assert binary["github"]["mode"] == "100644"

    status = world.status()
    assert status["state"] == "conflict" and status["open_conflict"]["id"] == conflict["id"]


def test_a_stale_resolution_is_refused_then_merged_files_resolve_it(world: World) -> None:
    make_conflict(world)
    seen = world.conflict()
    quoted = {"local_head": seen["local_head"], "github_head": seen["github_head"]}
    world.push_on_github("d.txt", b"later\n")  # GitHub moves on after the person read the conflict
    merged = BASE_TEXT.replace("three", "local and github").encode()
    body = {**quoted, "files": [{"path": "a.txt", "content_base64": b64(merged)}], "delete": ["logo.png"]}
    url = f"/v1/projects/{world.pid}/github/sync/resolve-conflict"
    before_local, before_remote = world.local(), world.remote()
    assert "read it again" in error_of(world.api.post(url, json=body), 409, "conflict_moved")
    assert world.local() == before_local and world.remote() == before_remote  # a refusal changes nothing
    with world.container.uow() as uow:  # but asks for the reconcile that re-detects the conflict
        assert [r.reason for r in uow.requests.pending(world.pid)] == ["conflict_moved"]

    world.reconcile()  # re-detected against GitHub's new head
    fresh = world.conflict()
    assert fresh["github_head"] != seen["github_head"]
    quoted = {"local_head": fresh["local_head"], "github_head": fresh["github_head"]}
    left_open = {**quoted, "files": [{"path": "a.txt", "content_base64": b64(merged)}]}
    error_of(world.api.post(url, json=left_open), 409, "unresolved_paths")  # logo.png is not settled

    response = world.api.post(url, json={**body, **quoted})
    assert response.status_code == 200, response.text
    operation = response.json()
    assert operation["operation_type"] == "resolve" and operation["status"] == "success"
    expected = {"a.txt": merged, "b.txt": b"github b\n", "c.txt": b"local c\n", "d.txt": b"later\n"}
    assert world.local() == expected and world.remote() == expected
    error_of(world.api.get(f"/v1/projects/{world.pid}/github/conflict"), 404, "no_open_conflict")
    error_of(world.api.post(url, json={**body, **world.heads()}), 409, "no_open_conflict")


def test_a_resolution_by_strategy_and_malformed_resolutions(world: World) -> None:
    make_conflict(world)
    heads = world.heads()
    url = f"/v1/projects/{world.pid}/github/sync/resolve-conflict"
    error_of(world.api.post(url, json={**heads}), 422, "invalid_request")  # neither strategy nor files
    error_of(world.api.post(url, json={**heads, "strategy": "yolo"}), 422, "invalid_request")
    error_of(
        world.api.post(url, json={**heads, "local_head": "abc", "strategy": "local_wins"}),
        422,
        "invalid_request",
    )
    both = {**heads, "strategy": "local_wins", "delete": ["logo.png"]}
    error_of(world.api.post(url, json=both), 422, "invalid_request")
    bad_base64 = {**heads, "files": [{"path": "a.txt", "content_base64": "%%%"}]}
    error_of(world.api.post(url, json=bad_base64), 422, "invalid_base64")

    response = world.api.post(url, json={**heads, "strategy": "local_wins"})
    assert response.status_code == 200, response.text
    assert response.json()["direction"] == "to_github"
    remote = world.remote()
    assert remote["a.txt"] == BASE_TEXT.replace("three", "local").encode() and remote["logo.png"] == PNG_LOCAL
    assert remote == world.local()  # the local tree, whole
    with world.github() as gh:
        head = gh.get("/repos/octo/site/git/ref/heads/trunk").json()["object"]["sha"]
        parents = [p["sha"] for p in gh.get(f"/repos/octo/site/git/commits/{head}").json()["parents"]]
    assert parents == [heads["github_head"]]  # on top of GitHub's head, not a force-push: its history stays
    assert world.status()["open_conflict"] is None


def test_the_plan_matches_what_the_next_reconcile_does(world: World) -> None:
    world.edit_locally({"a.txt": b"changed\n", "new.txt": b"new\n"})
    response = world.api.get(f"/v1/projects/{world.pid}/github/sync/plan")
    assert response.status_code == 200, response.text
    plan = response.json()
    assert (plan["action"], plan["reason"], plan["transport"], plan["held"]) == (
        "push_direct",
        "local_changed",
        "git_data_api",
        False,
    )
    assert [(c["direction"], c["status"], c["path"]) for c in plan["changes"]] == [
        ("to_github", "modified", "a.txt"),
        ("to_github", "added", "new.txt"),
    ]
    assert {k: plan[k] for k in ("local_head", "github_head")} == world.heads()
    assert world.remote() == {"a.txt": BASE_TEXT.encode(), "b.txt": b"b\n"}  # planning wrote nothing

    world.reconcile()
    with world.container.uow() as uow:
        operation = uow.operations.latest(world.pid)
    assert operation is not None and operation.operation_type == plan["action"]
    assert operation.metadata["requests"]["content_creating"] == plan["expected_requests"]["content_creating"]
    assert world.remote() == world.local()


def test_a_mass_deletion_is_held_shown_in_the_status_then_confirmed(world: World) -> None:
    world.edit_locally({f"f{n:02}.txt": f"{n}\n".encode() for n in range(12)})
    world.reconcile()  # 14 files on both sides
    world.edit_locally({}, delete=[f"f{n:02}.txt" for n in range(12)])
    before = world.remote()
    plan = world.api.get(f"/v1/projects/{world.pid}/github/sync/plan").json()
    assert plan["held"] is True and "12 of the 14 files of GitHub" in plan["blockers"][0]
    world.reconcile()
    assert world.remote() == before  # held, not applied

    status = world.status()
    assert status["state"] == "held"
    held = status["held_plan"]
    assert {"local_head": held["local_head"], "github_head": held["github_head"]} == world.heads()
    assert held["would"] == "push_direct" and "12 of the 14 files" in held["summary"]

    url = f"/v1/projects/{world.pid}/github/sync/confirm"
    stale = {"local_head": "0" * 40, "github_head": held["github_head"]}
    error_of(world.api.post(url, json=stale), 409, "plan_moved")
    response = world.api.post(url, json=world.heads())
    assert response.status_code == 200, response.text
    assert response.json()["direction"] == "to_github"
    assert world.remote() == world.local() == {"a.txt": BASE_TEXT.encode(), "b.txt": b"b\n"}
    assert world.status()["held_plan"] is None
    error_of(world.api.post(url, json=world.heads()), 409, "nothing_held")


def test_a_reset_adopts_github_and_a_later_reset_brings_the_local_side_back(world: World) -> None:
    make_conflict(world)
    local_before = world.local()
    url = f"/v1/projects/{world.pid}/github/sync/reset"
    error_of(world.api.post(url, json={}), 422, "invalid_request")
    error_of(world.api.post(url, json={"adopt": "both"}), 422, "invalid_request")
    error_of(world.api.post(url, json={"restore": "refs/ghsync/backup/nope"}), 409, "unknown_ref")

    response = world.api.post(url, json={"adopt": "github"})
    assert response.status_code == 200, response.text
    kept = response.json()["kept_ref"]
    assert kept.startswith("refs/ghsync/backup/reset/")
    assert response.json()["operation"]["operation_type"] == "reset"
    assert (
        world.local() == world.remote()
        and world.local()["a.txt"] == BASE_TEXT.replace("three", "github").encode()
    )
    assert world.status()["open_conflict"] is None

    undo = world.api.post(url, json={"restore": kept})
    assert undo.status_code == 200, undo.text
    assert undo.json()["kept_ref"]  # the state it replaced is kept in turn
    assert world.local() == local_before and world.remote() == local_before


def test_settings_change_through_patch_and_a_new_strategy_settles_an_open_conflict(world: World) -> None:
    make_conflict(world)
    url = f"/v1/projects/{world.pid}/github"
    error_of(world.api.patch(url, json={"conflict_strategy": "yolo"}), 422, "invalid_request")
    error_of(world.api.patch(url, json={"force": True}), 422, "invalid_request")

    response = world.api.patch(url, json={"conflict_strategy": "github_wins"})
    assert response.status_code == 200, response.text
    assert response.json()["conflict_strategy"] == "github_wins"
    with world.container.uow() as uow:
        audit = uow.audit.for_project(world.pid, limit=5)
        pending = uow.requests.pending(world.pid)
    assert any(
        a.action == "github.settings"
        and a.details == {"conflict_strategy": {"from": "manual", "to": "github_wins"}}
        for a in audit
    )
    assert [r.reason for r in pending] == ["settings_changed"]
    world.reconcile()  # the new strategy gets a new try at the open conflict
    assert world.status()["open_conflict"] is None
    assert world.local() == world.remote() and world.local()["logo.png"] == PNG_GITHUB

    disabled = world.api.patch(url, json={"enabled": False, "sync_mode": "hybrid"}).json()
    assert (disabled["enabled"], disabled["state"], disabled["sync_mode"]) == (False, "disabled", "hybrid")
    again = world.api.patch(url, json={"enabled": False})  # nothing changes: no audit row
    assert again.status_code == 200
    with world.container.uow() as uow:
        settings_rows = [
            a for a in uow.audit.for_project(world.pid, limit=50) if a.action == "github.settings"
        ]
    assert len(settings_rows) == 2
    assert world.api.patch(url, json={"enabled": True}).json()["enabled"] is True

    other = world.api.post("/v1/projects", json={"name": "unlinked"}).json()["id"]
    error_of(world.api.patch(f"/v1/projects/{other}/github", json={"enabled": True}), 409, "not_linked")


def test_notifications_reach_the_platform_signed_and_a_failed_post_is_retried(world: World) -> None:
    world.receiver.status = 500  # the platform is down: the sync goes on regardless
    make_conflict(world)
    assert world.status()["state"] == "conflict"
    assert world.container.notifications.deliver_due() == 0  # the task wired from GHSYNC_NOTIFY_URL
    (first,) = world.receiver.received

    world.receiver.status = 200
    sender = HttpxNotificationSender(world.receiver.url)
    later = NotificationService(
        world.container.uow,
        sender,
        NOTIFY_SECRET,
        backoff=Backoff(),
        clock=lambda: datetime.now(UTC) + timedelta(minutes=1),  # past the first backoff
    )
    assert later.deliver_due() == 1
    assert later.deliver_due() == 0
    sender.close()
    retried = world.receiver.received[1]
    assert retried.headers["x-ghsync-delivery"] == first.headers["x-ghsync-delivery"]  # one delivery id
    assert retried.body == first.body
    expected = "sha256=" + hmac.new(NOTIFY_SECRET.encode(), retried.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(retried.headers["x-ghsync-signature-256"], expected)
    assert retried.json["event"] == "conflict.opened" and retried.json["project_id"] == world.pid
    assert retried.json["data"]["conflict"]["paths"] == ["a.txt", "logo.png"]

    response = world.api.post(
        f"/v1/projects/{world.pid}/github/sync/resolve-conflict",
        json={**world.heads(), "strategy": "github_wins"},
    )
    assert response.status_code == 200, response.text
    assert world.container.notifications.deliver_due() == 1
    resolved = world.receiver.received[-1].json
    assert resolved["event"] == "conflict.resolved"
    assert resolved["data"]["conflict"]["resolution"] == "github_wins"


def test_an_engine_that_would_retry_later_answers_503_and_github_s_rate_limit_keeps_its_code() -> None:
    no_github: Any = SimpleNamespace(github=None)
    later = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def kept_moving() -> None:
        raise RetryLater(later, "the project or GitHub kept moving")

    with pytest.raises(TryLater) as moved:
        _as_user(no_github, kept_moving)
    assert (moved.value.code, http_status(moved.value)) == ("try_later", 503)
    assert moved.value.message == f"try again after {later.isoformat()}: the project or GitHub kept moving"

    def rate_limited() -> None:
        raise RetryAt(later, "quota exhausted", kind="primary", status=403)

    with pytest.raises(RetryAt) as limited:
        _as_user(no_github, rate_limited)
    assert (limited.value.code, http_status(limited.value)) == ("github_rate_limited", 503)
