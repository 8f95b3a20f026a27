"""The safety nets end to end: ghsync served over HTTP with its worker running, the emulator's App hook
pointing at it, and webhooks lost on the way.

- The emulator drops every `push` delivery: polling (a 1 s interval here) sees GitHub's head drift from
  `last_remote_main_sha` and requests a reconcile, which brings the person's push in as a local version.
- The receiver is unreachable while a person pushes: the deliveries fail on GitHub's side; the delivery
  sweep lists them, asks for each redelivery once, and the redelivered push becomes a local version.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.operations import SyncOperation
from ghsync.entrypoints.api.app import create_app
from ghsync.services.delivery_sweep import ACTION_RECOVERED, ACTION_REQUESTED, DeliverySweep
from ghsync.services.polling import POLLING_REASON
from github_emulator.testing import AppInfo, EmulatorHandle, run_emulator

pytestmark = pytest.mark.e2e

TOKEN = "safety-nets-token"
APP_SECRET = "the App's webhook secret"
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
GIT_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}
POLL_SECONDS = 1.0


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)


@dataclass
class World:
    emu: EmulatorHandle
    app: AppInfo
    container: Container
    server: Server
    owner_token: str
    tmp_path: Path

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False
        )

    def linked_project(self) -> str:
        with self.api() as api:
            created = api.post("/v1/projects", json={"name": "site"})
            assert created.status_code == 201, created.text
            pid = str(created.json()["id"])
            linked = api.post(f"/v1/projects/{pid}/github/link", json={"owner": "octo", "repo": "site"})
            assert linked.status_code == 201, linked.text
        until(lambda: self.files(pid).get("index.html"), what="the import")
        return pid

    def files(self, pid: str) -> dict[str, bytes]:
        store = self.container.store
        head = store.head(pid)
        if head is None:
            return {}
        return {e.path: store.read_file(pid, head, e.path) for e in store.list_files(pid, head)}

    def person_pushes(self, files: dict[str, str]) -> str:
        clone = self.tmp_path / f"person-{uuid.uuid4().hex[:8]}"
        git(
            self.tmp_path,
            "clone",
            "--quiet",
            self.emu.git_url("octo", "site", self.owner_token, user="octo"),
            str(clone),
        )
        for path, text in files.items():
            (clone / path).write_text(text)
        git(clone, "add", "--all")
        git(
            clone,
            "-c",
            "user.name=Grace",
            "-c",
            "user.email=grace@example.com",
            "commit",
            "--quiet",
            "-m",
            "push",
        )
        git(clone, "push", "--quiet", "origin", "HEAD:refs/heads/trunk")
        return git(clone, "rev-parse", "HEAD")

    def operation_for(self, pid: str, github_sha: str) -> SyncOperation:
        """The operation that recorded GitHub's `github_sha` (the version is on disk a moment before)."""

        def recorded() -> SyncOperation | None:
            with self.container.uow() as uow:
                latest = uow.operations.latest(pid)
            return latest if latest is not None and latest.github_commit_sha == github_sha else None

        found: SyncOperation = until(recorded, what=f"the operation of {github_sha[:12]}")
        return found

    def pushes(self) -> list[dict[str, Any]]:
        return [d for d in self.emu.deliveries() if d["event"] == "push"]


class Server:
    """ghsync's API on a fixed loopback port, which a test can stop and start again (the receiver down)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        server = uvicorn.Server(
            uvicorn.Config(create_app(self.container), log_level="warning", access_log=False, lifespan="off")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        until(lambda: server.started, what="ghsync serving")
        self._server, self._thread, self._sock = server, thread, sock

    def stop(self) -> None:
        if self._server is not None and self._thread is not None and self._sock is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._sock.close()
        self._server = self._thread = self._sock = None


@contextmanager
def serve(container: Container) -> Iterator[Server]:
    server = Server(container)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_worker(container: Container) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=container.queue.run_worker, args=(stop,), kwargs={"threads": 2}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=20)


@contextmanager
def world_with(tmp_path: Path, **settings: Any) -> Iterator[World]:
    with run_emulator(tmp_path / "emulator") as emu:
        app = emu.create_app("ghsync-nets", permissions=PERMISSIONS)
        owner = emu.create_user("octo")
        emu.create_repo("octo", "site", default_branch="trunk", files={"index.html": "<h1>hello</h1>\n"})
        emu.create_installation(app.id, "octo", ["octo/site"])
        database_url = f"sqlite:///{tmp_path / 'ghsync.db'}"
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
        container = build_container(
            load_settings(
                {},
                ghsync_data_dir=tmp_path / "data",
                database_url=database_url,
                ghsync_api_tokens=[TOKEN],
                ghsync_encryption_keys=[KEY],
                github_app_id=str(app.id),
                github_app_private_key=app.private_key,
                github_api_url=emu.url,
                github_webhook_secret=APP_SECRET,
                github_write_interval=0,
                **settings,
            )
        )
        try:
            with serve(container) as server, running_worker(container):
                hook = f"{server.url}/v1/webhooks/github"
                emu.update_app(app.id, webhook_url=hook, webhook_secret=APP_SECRET)
                yield World(emu, app, container, server, owner.token, tmp_path)
        finally:
            container.close()


def test_webhooks_dropped_by_github_are_caught_by_polling_within_one_interval(tmp_path: Path) -> None:
    with world_with(
        tmp_path,
        github_sync_polling_enabled=True,
        github_sync_polling_interval=int(POLL_SECONDS * 1000),
        ghsync_delivery_sweep_interval=0,  # polling alone must catch it
    ) as world:
        pid = world.linked_project()
        world.emu.set_webhook_mode("drop", events=["push"])
        pushed_at = datetime.now(UTC)
        head = world.person_pushes({"index.html": "<h1>changed on GitHub</h1>\n"})

        until(
            lambda: world.files(pid).get("index.html") == b"<h1>changed on GitHub</h1>\n", what="the version"
        )
        assert [d["status"] for d in world.pushes()] == ["dropped by emulator"]  # no webhook reached us
        world.operation_for(pid, head)
        with world.container.uow() as uow:
            project = uow.projects.get(pid)
            audit = [e for e in uow.audit.for_project(pid, limit=50) if e.action == "github.drift_detected"]
        assert project is not None and project.tracking.last_remote_main_sha == head
        assert audit and audit[-1].details["github_head_sha"] == head  # the oldest: the first tick's
        # The drift was noticed by the first tick after the push: within one interval (plus the tick's
        # own reads and scheduling slack).
        noticed = audit[-1].at
        assert noticed is not None and (noticed - pushed_at).total_seconds() < POLL_SECONDS + 2.0
        with world.container.uow() as uow:
            request = uow.requests.get(str(audit[-1].details["request_id"]))
        # The polling request was served by the reconcile that brought the push in.
        assert request is not None and request.reason == POLLING_REASON
        assert request.operation_id is not None


def test_failed_deliveries_are_redelivered_by_the_sweep_once_and_processed(tmp_path: Path) -> None:
    with world_with(
        tmp_path,
        github_sync_polling_enabled=False,  # the sweep alone must recover it
        ghsync_delivery_sweep_interval=0,  # the test runs the sweep itself, once the receiver is back
    ) as world:
        assert world.container.github is not None
        sweep = DeliverySweep(world.container.uow, world.container.github)
        pid = world.linked_project()
        # The receiver is down: GitHub cannot connect, and records the failure.
        world.server.stop()
        head = world.person_pushes({"index.html": "<h1>pushed while we were down</h1>\n"})
        failed = until(
            lambda: [d for d in world.pushes() if d["status_code"] == 0 and d["status"] != "pending"],
            what="the failed delivery",
        )
        assert world.files(pid)["index.html"] == b"<h1>hello</h1>\n"

        world.server.start()  # back on the same address, as after a restart
        report = sweep.sweep()
        assert failed[0]["guid"] in report.requested
        until(
            lambda: world.files(pid).get("index.html") == b"<h1>pushed while we were down</h1>\n",
            what="the redelivered push's version",
        )
        guid = failed[0]["guid"]
        attempts = [(d["redelivery"], d["status"]) for d in world.pushes() if d["guid"] == guid]
        assert attempts == [(False, failed[0]["status"]), (True, "OK")]
        again = sweep.sweep()
        assert again.requested == [] and again.recovered == [guid]
        assert sweep.sweep().recovered == []  # recorded once
        assert len([d for d in world.pushes() if d["guid"] == guid]) == 2  # nothing was asked twice
        with world.container.uow() as uow:
            rows = [
                (e.action, e.details["guid"])
                for e in uow.audit.for_project(pid, limit=50)
                if e.actor == "delivery_sweep"
            ]
        assert sorted(rows) == [(ACTION_RECOVERED, guid), (ACTION_REQUESTED, guid)]
        world.operation_for(pid, head)


def test_a_force_push_over_git_loses_nothing_and_comes_in(tmp_path: Path) -> None:
    with world_with(tmp_path, github_sync_polling_enabled=False, ghsync_delivery_sweep_interval=0) as world:
        pid = world.linked_project()
        dropped = world.person_pushes({"index.html": "<h1>soon rewritten</h1>\n"})
        until(
            lambda: world.files(pid).get("index.html") == b"<h1>soon rewritten</h1>\n", what="the first push"
        )
        kept_head = world.container.store.head(pid)
        # A person rewrites history: trunk reset to its first commit, a new commit, pushed with --force.
        clone = world.tmp_path / "rewriter"
        url = world.emu.git_url("octo", "site", world.owner_token, user="octo")
        git(world.tmp_path, "clone", "--quiet", url, str(clone))
        git(clone, "reset", "--quiet", "--hard", "HEAD~1")
        (clone / "index.html").write_text("<h1>history rewritten</h1>\n")
        git(clone, "-c", "user.name=Grace", "-c", "user.email=grace@example.com", "commit", "-qam", "rewrite")
        git(clone, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/trunk")
        forced = git(clone, "rev-parse", "HEAD")

        latest = world.operation_for(pid, forced)
        assert world.files(pid)["index.html"] == b"<h1>history rewritten</h1>\n"
        record = latest.metadata["force_push"]
        assert record["previous_github_head"] == dropped and record["relation"] == "diverged"
        kept = world.container.store.list_refs(pid, "refs/ghsync/backup/force-push/")
        assert list(kept.values()) == [kept_head]  # the version of the commit GitHub dropped
        assert world.container.store.read_file(pid, kept_head, "index.html") == b"<h1>soon rewritten</h1>\n"  # type: ignore[arg-type]
        push = [d for d in world.pushes() if d["payload"]["after"] == forced]
        assert push and push[0]["payload"]["forced"] is True  # GitHub said so too
