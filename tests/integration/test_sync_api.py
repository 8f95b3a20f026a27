"""Sync through the API with the embedded worker against the GitHub emulator: versions become commits
(direct mode) or one pull request (protected mode), triggers name the operation that served them, and the
admin views of the operations log.

After each sync a clone of the emulator's repository over git must pass `git fsck --strict` and hold
exactly the local version's tree (blob and tree SHAs are the same on both sides, so a tree SHA compares
every path, mode and byte at once).
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.operations import SyncOperation
from ghsync.entrypoints.api.app import create_app
from github_emulator.testing import EmulatorHandle, run_emulator

TOKEN = "sync-test-token"
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
TIMEOUT = 20.0
GIT_ENV = {
    **os.environ,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


@dataclass
class World:
    emu: EmulatorHandle
    api: TestClient
    container: Container
    owner_token: str
    tmp_path: Path

    def start_worker(self) -> None:
        self.container.queue.start(threads=1)

    def project(self, name: str = "site") -> str:
        response = self.api.post("/v1/projects", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def link(self, pid: str, repo: str = "site", **body: Any) -> None:
        response = self.api.post(
            f"/v1/projects/{pid}/github/link", json={"owner": "octo", "repo": repo, **body}
        )
        assert response.status_code == 201, response.text

    def version(self, pid: str, message: str, files: dict[str, str], delete: list[str] | None = None) -> Any:
        response = self.api.post(
            f"/v1/projects/{pid}/versions",
            json={
                "message": message,
                "files": [
                    {"path": path, "content_base64": base64.b64encode(text.encode()).decode()}
                    for path, text in files.items()
                ],
                "delete": delete or [],
                "author": {"name": "Ada", "email": "ada@example.com"},
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    def trigger(self, pid: str) -> str:
        response = self.api.post(f"/v1/projects/{pid}/github/sync/trigger")
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "pending" and body["project_id"] == pid
        return str(body["request_id"])

    def served(self, pid: str, request_id: str) -> dict[str, Any]:
        """Wait until the request is served; returns its operation."""

        def answer() -> dict[str, Any] | None:
            response = self.api.get(f"/v1/projects/{pid}/github/sync/requests/{request_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["request_id"] == request_id and body["project_id"] == pid
            return body["operation"] if body["status"] == "served" else None

        operation = wait_for(answer, f"request {request_id} served")
        assert operation["project_id"] == pid
        return operation

    def operation_for(self, pid: str, version_id: str, operation_type: str) -> dict[str, Any]:
        """Wait for the operation of `operation_type` that synced the version."""

        def find() -> dict[str, Any] | None:
            response = self.api.get(
                "/v1/admin/github/sync-operations", params={"project_id": pid, "type": operation_type}
            )
            assert response.status_code == 200, response.text
            for operation in response.json()["items"]:
                if operation["local_version_id"] == version_id:
                    return dict(operation)
            return None

        return wait_for(find, f"a {operation_type} operation of version {version_id}")

    def idle(self) -> None:
        def quiet() -> bool:
            counts = self.container.queue.counts()
            return counts["queued"] + counts["running"] == 0

        wait_for(quiet, "an idle queue")

    def github(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.emu.url,
            headers={"Authorization": f"token {self.owner_token}", "Accept": "application/vnd.github+json"},
            trust_env=False,
        )

    def clone(self, branch: str, repo: str = "site") -> Path:
        """A fresh clone of one branch over git smart HTTP, checked with `git fsck --strict`."""
        target = self.tmp_path / f"clone-{uuid.uuid4().hex[:8]}"
        git(
            self.tmp_path,
            "clone",
            "--quiet",
            "--branch",
            branch,
            self.emu.git_url("octo", repo, token=self.owner_token, user="octo"),
            str(target),
        )
        git(target, "fsck", "--strict", "--no-progress")
        return target


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def wait_for(probe: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {TIMEOUT}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with run_emulator(tmp_path / "emulator") as emu:
        app = emu.create_app("ghsync-test", permissions=PERMISSIONS)
        owner = emu.create_user("octo")
        # The default branch is not `main`: nothing may assume it.
        emu.create_repo("octo", "site", default_branch="trunk", files={"index.html": "<h1>hello</h1>\n"})
        emu.create_repo("octo", "blog", default_branch="trunk", files={"post.md": "# post\n"})
        emu.create_repo("octo", "empty", default_branch="trunk")  # no commits, no branches
        emu.create_installation(app.id, "octo", ["octo/site", "octo/blog", "octo/empty"])
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
        )
        container = build_container(settings)
        try:
            with TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
                yield World(emu, api, container, owner.token, tmp_path)
        finally:
            container.queue.stop()
            container.close()


def imported(world: World, pid: str) -> dict[str, Any]:
    """The version the first reconcile after linking (an empty project) imported from the repository."""
    versions = wait_for(
        lambda: world.api.get(f"/v1/projects/{pid}/versions").json()["items"] or None, "the import's version"
    )
    assert [v["source"] for v in versions] == ["github"]
    return dict(versions[0])


def test_versions_in_direct_mode_become_exactly_their_trees_on_the_default_branch(world: World) -> None:
    pid = world.project()
    world.start_worker()
    world.link(pid, sync_mode="direct_commit")
    first = imported(world, pid)
    trunk_before = world.clone("trunk")
    assert git(trunk_before, "rev-parse", "HEAD^{tree}") == first["tree_sha"]

    version = world.version(
        pid,
        "Add a page and a script",
        {"about.html": "<p>about</p>\n", "src/app.py": "print('hi')\n", "index.html": "<h1>v2</h1>\n"},
    )
    operation = world.operation_for(pid, version["id"], "push_direct")
    assert operation["status"] == "success" and operation["direction"] == "to_github"
    assert operation["files_changed"] == 3
    assert operation["metadata"]["requests"]["content_creating"] >= 1

    clone = world.clone("trunk")
    assert git(clone, "rev-parse", "HEAD^{tree}") == version["tree_sha"]
    assert git(clone, "rev-parse", "HEAD") == operation["github_commit_sha"]
    # One commit on top of what GitHub had, carrying the version's trailer: nothing rewritten.
    assert git(clone, "rev-parse", "HEAD^") == git(trunk_before, "rev-parse", "HEAD")
    assert f"Ghsync-Version: {version['id']}" in git(clone, "log", "-1", "--format=%B")
    assert git(clone, "log", "-1", "--format=%an <%ae>") == "Ada <ada@example.com>"
    assert git(clone, "ls-remote", "origin", "refs/heads/main") == ""  # nothing wrote a `main`

    second = world.version(pid, "Remove the page", {"src/app.py": "print('bye')\n"}, delete=["about.html"])
    world.operation_for(pid, second["id"], "push_direct")
    clone = world.clone("trunk")
    assert git(clone, "rev-parse", "HEAD^{tree}") == second["tree_sha"]
    assert git(clone, "rev-list", "--count", "HEAD") == "3"  # the repository's first commit + two

    status = world.api.get(f"/v1/projects/{pid}/github/status").json()
    assert status["last_synced_main_sha"] == git(clone, "rev-parse", "HEAD")


def test_a_trigger_names_the_operation_that_served_it_and_requests_coalesce(world: World) -> None:
    pid = world.project()
    world.link(pid, sync_mode="direct_commit")
    # No worker yet: the link's request and both triggers wait, and one reconcile serves all three.
    first, second = world.trigger(pid), world.trigger(pid)
    assert first != second
    pending = world.api.get(f"/v1/projects/{pid}/github/sync/requests/{first}").json()
    assert pending["status"] == "pending" and pending["operation"] is None
    assert pending["reason"] == "api_trigger"

    world.start_worker()
    operation = world.served(pid, first)
    assert world.served(pid, second)["id"] == operation["id"]
    assert operation["operation_type"] == "import" and operation["status"] == "success"
    version = imported(world, pid)
    assert operation["local_version_id"] == version["id"]

    # Nothing changed since: a later trigger is served by a new operation that moves nothing.
    world.idle()
    later = world.served(pid, world.trigger(pid))
    assert later["id"] != operation["id"]
    assert later["operation_type"] == "nothing" and later["direction"] == "none"
    clone = world.clone("trunk")
    assert git(clone, "rev-parse", "HEAD^{tree}") == version["tree_sha"]


def test_trigger_errors(world: World) -> None:
    pid = world.project()
    response = world.api.post(f"/v1/projects/{pid}/github/sync/trigger")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_linked"
    unknown = str(uuid.uuid4())
    response = world.api.post(f"/v1/projects/{unknown}/github/sync/trigger")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = world.api.post("/v1/projects/not-a-uuid/github/sync/trigger")
    assert response.status_code == 404

    world.link(pid, sync_mode="direct_commit")
    request_id = world.trigger(pid)
    for path in (
        f"/v1/projects/{pid}/github/sync/requests/{uuid.uuid4()}",
        f"/v1/projects/{pid}/github/sync/requests/nonsense",
        f"/v1/projects/{world.project('other')}/github/sync/requests/{request_id}",  # another project's
        f"/v1/projects/{unknown}/github/sync/requests/{request_id}",
    ):
        response = world.api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    anonymous = world.api.post(
        f"/v1/projects/{pid}/github/sync/trigger", headers={"Authorization": "Bearer x"}
    )
    assert anonymous.status_code == 401


def test_protected_mode_opens_one_pull_request_and_a_second_version_updates_it(world: World) -> None:
    pid = world.project()
    world.start_worker()
    world.link(pid)  # protected_pr is the default
    first = imported(world, pid)
    branch = f"ghsync/{pid}"

    v1 = world.version(pid, "Add a page", {"about.html": "<p>about</p>\n"})
    opened = world.operation_for(pid, v1["id"], "pull_request")
    assert opened["status"] == "success"
    with world.github() as gh:
        pulls = gh.get("/repos/octo/site/pulls", params={"state": "all"}).json()
    assert len(pulls) == 1
    pull = pulls[0]
    assert pull["state"] == "open"
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (branch, "trunk")
    pr_clone = world.clone(branch)
    assert git(pr_clone, "rev-parse", "HEAD^{tree}") == v1["tree_sha"]
    trunk = world.clone("trunk")
    assert git(trunk, "rev-parse", "HEAD^{tree}") == first["tree_sha"]  # the default branch is untouched
    v1_commit = git(pr_clone, "rev-parse", "HEAD")

    v2 = world.version(pid, "Edit the page", {"about.html": "<p>about us</p>\n", "x.txt": "x\n"})
    world.operation_for(pid, v2["id"], "pull_request")
    with world.github() as gh:
        pulls = gh.get("/repos/octo/site/pulls", params={"state": "all"}).json()
    assert [p["number"] for p in pulls] == [pull["number"]]  # the same PR, updated
    pr_clone = world.clone(branch)
    assert git(pr_clone, "rev-parse", "HEAD^{tree}") == v2["tree_sha"]
    assert pulls[0]["head"]["sha"] == git(pr_clone, "rev-parse", "HEAD")
    # A new commit on top of the first: the PR branch was not force-pushed.
    assert git(pr_clone, "rev-parse", "HEAD^") == v1_commit
    assert git(world.clone("trunk"), "rev-parse", "HEAD^{tree}") == first["tree_sha"]

    status = world.api.get(f"/v1/projects/{pid}/github/status").json()
    assert status["open_pr"]["number"] == pull["number"]
    assert status["last_outbound_base_sha"] == pull["base"]["sha"]


def test_admin_views_page_filter_count_and_retry_failed(world: World) -> None:
    synced, failing, unlinked = world.project("a"), world.project("b"), world.project("c")
    world.link(synced, sync_mode="direct_commit")
    world.start_worker()
    world.served(synced, world.trigger(synced))
    world.idle()
    world.container.queue.stop()
    world.link(failing, repo="blog", sync_mode="direct_commit")
    # The failing project's last operation failed (recorded as a failed reconcile records it).
    with world.container.uow() as uow:
        uow.operations.add(
            SyncOperation(failing, "reconcile", "failed", "none", error_code="github_unavailable")
        )
        uow.commit()

    everything = world.api.get("/v1/admin/github/sync-operations", params={"limit": 200}).json()
    assert everything["next_cursor"] is None
    rows = everything["items"]
    assert {row["project_id"] for row in rows} == {synced, failing}
    created = [row["created_at"] for row in rows]
    assert created == sorted(created, reverse=True)  # newest first
    paged: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = world.api.get("/v1/admin/github/sync-operations", params=params).json()
        paged += [row["id"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == [row["id"] for row in rows]
    failed = world.api.get("/v1/admin/github/sync-operations", params={"status": "failed"}).json()["items"]
    assert [(row["project_id"], row["error_code"]) for row in failed] == [(failing, "github_unavailable")]
    links = world.api.get("/v1/admin/github/sync-operations", params={"type": "link", "project_id": synced})
    assert [row["operation_type"] for row in links.json()["items"]] == ["link"]
    bad = world.api.get("/v1/admin/github/sync-operations", params={"status": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_status"
    bad = world.api.get("/v1/admin/github/sync-operations", params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"

    status = world.api.get("/v1/admin/github/sync-status").json()
    assert status["projects"]["total"] == 3 and status["projects"]["linked"] == 2
    by_state = status["projects"]["by_state"]
    # The failing project's link request is still queued (no worker): pending outranks failed.
    assert (by_state["in_sync"], by_state["pending"], by_state["disabled"]) == (1, 1, 1)
    assert status["operations"]["by_status"]["failed"] == 1
    assert status["pending_requests"] == 1

    retried = world.api.post("/v1/admin/github/retry-failed-syncs")
    assert retried.status_code == 202, retried.text
    body = retried.json()
    assert body["count"] == 1 and [r["project_id"] for r in body["requests"]] == [failing]
    world.start_worker()
    operation = world.served(failing, body["requests"][0]["request_id"])
    assert operation["status"] == "success" and operation["operation_type"] == "import"
    assert unlinked not in {r["project_id"] for r in body["requests"]}
    world.idle()
    again = world.api.post("/v1/admin/github/retry-failed-syncs").json()
    assert again["count"] == 0  # its last operation succeeded now


def test_the_first_reconcile_commits_a_project_into_an_empty_repository(world: World) -> None:
    pid = world.project()
    version = world.version(pid, "The site", {"index.html": "<h1>local</h1>\n", "src/app.py": "print(1)\n"})
    world.start_worker()
    world.link(pid, repo="empty", sync_mode="direct_commit")
    operation = world.operation_for(pid, version["id"], "first_commit")
    assert operation["status"] == "success" and operation["direction"] == "to_github"
    clone = world.clone("trunk", repo="empty")
    assert git(clone, "rev-parse", "HEAD^{tree}") == version["tree_sha"]
    assert git(clone, "rev-list", "--count", "HEAD") == "1"
    assert f"Ghsync-Version: {version['id']}" in git(clone, "log", "-1", "--format=%B")


def test_the_first_reconcile_reports_a_conflict_when_both_sides_have_content_and_loses_nothing(
    world: World,
) -> None:
    pid = world.project()
    version = world.version(pid, "Local work", {"index.html": "<h1>local</h1>\n"})
    trunk_before = git(world.clone("trunk"), "rev-parse", "HEAD")
    world.link(pid, sync_mode="direct_commit")
    request_id = world.trigger(pid)  # served with the link's request, by the first reconcile
    world.start_worker()
    operation = world.served(pid, request_id)
    assert operation["operation_type"] == "conflict" and operation["conflicts_detected"] == 1
    status = world.api.get(f"/v1/projects/{pid}/github/status").json()
    assert status["state"] == "conflict" and status["open_conflict"] is not None
    # Neither side moved: GitHub's branch is as it was, the local version is still the head.
    assert git(world.clone("trunk"), "rev-parse", "HEAD") == trunk_before
    latest = world.api.get(f"/v1/projects/{pid}/versions/latest").json()
    assert latest["id"] == version["id"]
