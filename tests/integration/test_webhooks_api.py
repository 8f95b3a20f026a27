"""The webhook receiver through the API, fed by the GitHub emulator's real signed deliveries.

ghsync is served over real HTTP (uvicorn in a thread) and the emulator's App hook points at
`POST /v1/webhooks/github`, so every delivery here was signed and sent by the emulator as GitHub sends
it: a person's `git push` becomes a delivery, the delivery a reconcile request, and the worker a local
version with GitHub's tree. The emulator records each delivery with the status we answered, so the
tests read GitHub's side of the story too (and redeliver through `POST /app/hook/deliveries/{id}/attempts`).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.models import ReconcileRequestRow, WebhookDeliveryRow
from ghsync.adapters.secrets import SecretBox
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.errors import GhsyncError
from ghsync.domain.operations import ReconcileRequest
from ghsync.domain.webhooks import sign
from ghsync.entrypoints.api.app import create_app
from ghsync.entrypoints.api.webhooks import HookAllowlist
from ghsync.ports.uow import UnitOfWork, UnitOfWorkFactory
from ghsync.services.linking import webhook_secret_context
from ghsync.services.reconcile import relay_pending_requests
from ghsync.services.webhooks import WebhookService
from github_emulator.testing import AppInfo, EmulatorHandle, run_emulator

TOKEN = "webhook-test-token"
APP_SECRET = "the App's webhook secret"
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
TIMEOUT = 20.0
GIT_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


class FailingOnce:
    """A unit-of-work factory whose next reconcile request fails (the database went away mid-delivery)."""

    def __init__(self, inner: UnitOfWorkFactory) -> None:
        self.inner = inner
        self.armed = False

    def __call__(self) -> UnitOfWork:
        uow = self.inner()
        original = uow.request_reconciles

        def request_reconciles(requests: Sequence[tuple[str, str]]) -> list[ReconcileRequest]:
            if self.armed and requests:
                self.armed = False
                raise RuntimeError("the database went away")
            return original(requests)

        uow.request_reconciles = request_reconciles  # type: ignore[method-assign]
        return uow


@dataclass
class World:
    emu: EmulatorHandle
    app: AppInfo
    container: Container
    url: str  # ghsync's base URL
    installation_id: int
    owner_token: str
    tmp_path: Path
    failing: FailingOnce

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)

    def project(self) -> str:
        with self.api() as api:
            created = api.post("/v1/projects", json={"name": "site"})
            assert created.status_code == 201, created.text
            pid = str(created.json()["id"])
            linked = api.post(f"/v1/projects/{pid}/github/link", json={"owner": "octo", "repo": "site"})
            assert linked.status_code == 201, linked.text
        self.run_worker()  # the link's first reconcile (the import of GitHub's head)
        return pid

    def run_worker(self) -> int:
        return self.container.queue.run_until_idle()

    def versions(self, pid: str) -> list[dict[str, Any]]:
        with self.api() as api:
            response = api.get(f"/v1/projects/{pid}/versions", params={"limit": 100})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def deliveries(self, event: str | None = None) -> list[dict[str, Any]]:
        return [d for d in self.emu.deliveries() if event is None or d["event"] == event]

    def wait_answered(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1
    ) -> list[dict[str, Any]]:
        """Wait until `count` deliveries matching `predicate` were sent and answered by ghsync."""

        def answered(ds: list[dict[str, Any]]) -> bool:
            return len([d for d in ds if predicate(d) and d.get("status_code")]) >= count

        return [d for d in self.emu.wait_for_deliveries(answered, timeout=TIMEOUT) if predicate(d)]

    def person_pushes(self, files: dict[str, str], branch: str = "trunk", tag: str | None = None) -> str:
        """A person clones, commits and pushes over git smart HTTP; returns the new commit SHA."""
        clone = self.tmp_path / f"person-{uuid.uuid4().hex[:8]}"
        git(
            self.tmp_path,
            "clone",
            "--quiet",
            self.emu.git_url("octo", "site", self.owner_token, user="octo"),
            str(clone),
        )
        git(clone, "checkout", "--quiet", "-B", branch)
        for path, text in files.items():
            (clone / path).parent.mkdir(parents=True, exist_ok=True)
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
            "a person's change",
        )
        git(clone, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        if tag is not None:
            git(clone, "tag", tag)
            git(clone, "push", "--quiet", "origin", f"refs/tags/{tag}")
        return git(clone, "rev-parse", "HEAD")

    def github_tree(self, commit_sha: str, repo: str = "site") -> str:
        with httpx.Client(base_url=self.emu.url, trust_env=False) as gh:
            response = gh.get(
                f"/repos/octo/{repo}/git/commits/{commit_sha}",
                headers={"Authorization": f"token {self.owner_token}"},
            )
        assert response.status_code == 200, response.text
        return str(response.json()["tree"]["sha"])

    def redeliver(self, delivery: dict[str, Any]) -> None:
        """GitHub's redelivery (`POST /app/hook/deliveries/{id}/attempts`): the same GUID again."""
        with httpx.Client(base_url=self.emu.url, trust_env=False) as gh:
            response = gh.post(
                f"/app/hook/deliveries/{delivery['id']}/attempts",
                headers={
                    "Authorization": f"Bearer {self.emu.app_jwt(self.app)}",
                    "Accept": "application/vnd.github+json",
                },
            )
        assert response.status_code == 202, response.text

    def counts(self) -> tuple[int, int]:
        """(webhook deliveries recorded, reconcile requests) in ghsync's database."""
        with Session(self.container.engine) as session:
            deliveries = session.scalar(select(func.count()).select_from(WebhookDeliveryRow)) or 0
            requests = session.scalar(select(func.count()).select_from(ReconcileRequestRow)) or 0
        return deliveries, requests


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@contextmanager
def _serve(container: Container, port: int = 0) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ghsync-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "ghsync did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """On SQLite; `@pytest.mark.parametrize("world", ["postgresql"], indirect=True)` for PostgreSQL."""
    database = getattr(request, "param", "sqlite")
    database_url = (
        f"sqlite:///{tmp_path / 'ghsync.db'}"
        if database == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    with run_emulator(tmp_path / "emulator") as emu:
        app = emu.create_app("ghsync-test", permissions=PERMISSIONS)
        owner = emu.create_user("octo")
        emu.create_repo("octo", "site", default_branch="trunk", files={"index.html": "<h1>hello</h1>\n"})
        installation_id = emu.create_installation(app.id, "octo", ["octo/site"])
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
            github_webhook_secret=APP_SECRET,
            github_write_interval=0,
        )
        container = build_container(settings)
        failing = FailingOnce(container.uow)
        container.webhooks = WebhookService(
            failing, delivery_ttl=container.webhooks._ttl, secrets=SecretBox.from_setting([KEY])
        )
        try:
            with _serve(container) as url:
                emu.update_app(app.id, webhook_url=f"{url}/v1/webhooks/github", webhook_secret=APP_SECRET)
                world = World(emu, app, container, url, installation_id, owner.token, tmp_path, failing)
                world.wait_answered(lambda d: d["event"] == "ping")  # the new URL's ping, before any test
                yield world
        finally:
            container.close()


def _is_push(d: dict[str, Any]) -> bool:
    return bool(d["event"] == "push" and d["payload"]["ref"] == "refs/heads/trunk")


# --- the round trip ------------------------------------------------------------------------------------


# On PostgreSQL too: it enforces column lengths (migration 0005 widened `direction` for 'from_github').
ON_EACH_DATABASE = pytest.mark.parametrize(
    "world", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@ON_EACH_DATABASE
def test_a_persons_push_becomes_a_local_version_with_the_identical_tree(world: World) -> None:
    pid = world.project()
    before = world.versions(pid)

    sha = world.person_pushes({"index.html": "<h1>edited on GitHub</h1>\n", "docs/new.md": "# new\n"})

    [delivery] = world.wait_answered(_is_push)
    assert delivery["status_code"] == 202  # verified, recorded, requested: accepted
    with world.container.uow() as uow:
        recorded = uow.deliveries.get(delivery["guid"])
        pending = [r.reason for r in uow.requests.pending(pid)]
    assert recorded is not None and recorded.status == "queued" and recorded.project_id == pid
    assert pending == ["webhook:push"]

    world.run_worker()

    after = world.versions(pid)
    assert len(after) == len(before) + 1
    newest = after[0]
    assert newest["source"] == "github"
    assert newest["tree_sha"] == world.github_tree(sha)  # identical trees: every path, mode and byte


def test_a_duplicate_delivery_makes_one_version(world: World) -> None:
    pid = world.project()
    before = len(world.versions(pid))
    world.emu.set_webhook_mode("duplicate")  # every delivery sent twice with the same GUID

    world.person_pushes({"index.html": "<h1>once</h1>\n"})

    deliveries = world.wait_answered(_is_push, count=2)
    assert len({d["guid"] for d in deliveries}) == 1
    assert sorted(d["status_code"] for d in deliveries) == [202, 202]  # both acknowledged
    with world.container.uow() as uow:
        assert [r.reason for r in uow.requests.pending(pid)] == ["webhook:push"]  # one request
    world.run_worker()
    assert len(world.versions(pid)) == before + 1


def test_a_redelivery_after_a_failed_processing_is_processed(world: World) -> None:
    pid = world.project()
    before = len(world.versions(pid))
    world.failing.armed = True

    sha = world.person_pushes({"index.html": "<h1>after a failure</h1>\n"})

    [failed] = world.wait_answered(_is_push)
    assert failed["status_code"] == 500  # GitHub records the delivery as failed
    with world.container.uow() as uow:
        recorded = uow.deliveries.get(failed["guid"])
        assert recorded is not None and recorded.status == "failed"
        assert uow.requests.pending(pid) == []
    with world.api() as api:
        health = api.get(f"/v1/webhooks/github/{pid}/health").json()
    assert health["healthy"] is False
    assert [f["delivery_id"] for f in health["recent_failures"]] == [failed["guid"]]

    world.redeliver(failed)

    answered = world.wait_answered(_is_push, count=2)
    assert [(d["guid"], d["redelivery"], d["status_code"]) for d in answered] == [
        (failed["guid"], False, 500),
        (failed["guid"], True, 202),
    ]
    world.run_worker()
    versions = world.versions(pid)
    assert len(versions) == before + 1 and versions[0]["tree_sha"] == world.github_tree(sha)


def test_pushes_to_other_branches_and_tags_are_recorded_and_ignored(world: World) -> None:
    pid = world.project()
    before = len(world.versions(pid))
    deliveries_before, requests_before = world.counts()

    world.person_pushes({"feature.txt": "wip\n"}, branch="feature", tag="v1")

    answered = world.wait_answered(lambda d: d["event"] == "push", count=2)
    assert {d["payload"]["ref"] for d in answered} == {"refs/heads/feature", "refs/tags/v1"}
    created = world.wait_answered(lambda d: d["event"] == "create", count=2)  # GitHub's `create` events too
    new = answered + created
    assert {d["status_code"] for d in new} == {202}
    with world.container.uow() as uow:
        assert {uow.deliveries.get(d["guid"]).status for d in new} == {"ignored"}  # type: ignore[union-attr]
    deliveries_after, requests_after = world.counts()
    assert (deliveries_after - deliveries_before, requests_after - requests_before) == (4, 0)
    world.run_worker()
    assert len(world.versions(pid)) == before


# --- refusals ------------------------------------------------------------------------------------------


def _real_delivery(world: World) -> dict[str, Any]:
    world.project()
    world.person_pushes({"index.html": "<h1>x</h1>\n"})
    [delivery] = world.wait_answered(_is_push)
    return delivery


def test_a_bad_signature_is_refused_with_401_and_nothing_is_recorded(world: World) -> None:
    delivery = _real_delivery(world)
    headers = {k: v for k, v in delivery["headers"].items() if k.lower() != "content-length"}
    headers["X-GitHub-Delivery"] = str(uuid.uuid4())  # else it would be a duplicate anyway
    tampered = json.dumps(delivery["payload"] | {"ref": "refs/heads/evil"}).encode()
    recorded = world.counts()

    with httpx.Client(base_url=world.url, trust_env=False) as client:
        bad = client.post("/v1/webhooks/github", content=tampered, headers=headers)
        sha1_only = client.post(
            "/v1/webhooks/github",
            content=tampered,
            headers={k: v for k, v in headers.items() if k.lower() != "x-hub-signature-256"},
        )
        resigned = client.post(
            "/v1/webhooks/github",
            content=tampered,
            headers=headers | {"X-Hub-Signature-256": sign("guess", tampered)},
        )

    for response in (bad, sha1_only, resigned):
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_signature"
    assert "SHA-1" in sha1_only.json()["error"]["message"]
    assert world.counts() == recorded


def test_a_26_mb_payload_is_refused_with_413_without_reading_it_all(world: World) -> None:
    recorded = world.counts()
    body = b'{"zen": "' + b"x" * (26 * 1024 * 1024) + b'"}'
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(APP_SECRET, body),  # even a correctly signed one
        "Content-Type": "application/json",
    }
    with httpx.Client(base_url=world.url, trust_env=False, timeout=60) as client:
        declared = client.post("/v1/webhooks/github", content=body, headers=headers)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the cap is enforced while streaming
            for start in range(0, len(body), 1024 * 1024):
                yield body[start : start + 1024 * 1024]

        streamed = client.post("/v1/webhooks/github", content=chunks(), headers=headers)

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
    assert world.counts() == recorded


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"X-GitHub-Event": None}, 400, "missing_webhook_header"),
        ({"X-GitHub-Delivery": None}, 400, "missing_webhook_header"),
        ({"body": b"{not json"}, 400, "malformed_delivery"),
    ],
    ids=["no-event", "no-delivery-id", "malformed-json"],
)
def test_malformed_deliveries_get_a_clear_4xx_and_nothing_is_recorded(
    world: World, change: dict[str, Any], status: int, code: str
) -> None:
    body: bytes = change.pop("body", b'{"zen": "z", "hook_id": 1}')
    headers = {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    headers |= {k: v for k, v in change.items() if v is not None}
    headers = {k: v for k, v in headers.items() if change.get(k, "") is not None}
    headers["X-Hub-Signature-256"] = sign(APP_SECRET, body)
    recorded = world.counts()
    with httpx.Client(base_url=world.url, trust_env=False) as client:
        response = client.post("/v1/webhooks/github", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert world.counts() == recorded


def test_an_unknown_project_gets_404_and_nothing_is_recorded(world: World) -> None:
    body = b'{"zen": "z", "hook_id": 1}'
    headers = {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(APP_SECRET, body),
    }
    recorded = world.counts()
    with httpx.Client(base_url=world.url, trust_env=False) as client:
        for pid in (str(uuid.uuid4()), "not-a-project"):
            response = client.post(f"/v1/webhooks/github/{pid}", content=body, headers=headers)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] in ("project_not_found", "not_found")
    assert world.counts() == recorded


# --- ping and the repository hook ----------------------------------------------------------------------


def test_ping_answers_200_and_marks_the_hook_healthy(world: World) -> None:
    # The App's hook: the emulator pinged it when its URL was set.
    [app_ping] = world.wait_answered(lambda d: d["event"] == "ping")
    assert app_ping["status_code"] == 200

    # A project's repository hook, with the project's own secret.
    pid = world.project()
    with world.container.uow() as uow:
        project = uow.projects.get(pid)
    assert project is not None and project.webhook_secret is not None
    secret = SecretBox.from_setting([KEY]).decrypt(
        project.webhook_secret, context=webhook_secret_context(pid)
    )
    with world.api() as api:
        assert api.get(f"/v1/webhooks/github/{pid}/health").json()["healthy"] is False  # never heard from
    with httpx.Client(
        base_url=world.emu.url, headers={"Authorization": f"token {world.owner_token}"}, trust_env=False
    ) as gh:
        created = gh.post(
            "/repos/octo/site/hooks",
            json={
                "config": {
                    "url": f"{world.url}/v1/webhooks/github/{pid}",
                    "secret": secret,
                    "content_type": "json",
                },
                "events": ["push"],
            },
        )
    assert created.status_code == 201, created.text

    pings = world.wait_answered(lambda d: d["event"] == "ping", count=2)
    repo_ping = pings[-1]
    assert repo_ping["status_code"] == 200
    with world.api() as api:
        health = api.get(f"/v1/webhooks/github/{pid}/health")
        unauthenticated = httpx.get(f"{world.url}/v1/webhooks/github/{pid}/health", trust_env=False)
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["healthy"] is True and body["sync_enabled"] is True and body["recent_failures"] == []
    assert body["last_ping"]["delivery_id"] == repo_ping["guid"]
    assert unauthenticated.status_code == 401  # the health view is the platform's, behind its token

    # The repository hook's push, signed with the project's secret, reaches the project too.
    world.person_pushes({"index.html": "<h1>via both hooks</h1>\n"})
    hooked = world.wait_answered(_is_push, count=2)
    assert sorted(d["status_code"] for d in hooked) == [202, 202]
    with world.container.uow() as uow:
        reasons = [r.reason for r in uow.requests.pending(pid)]
    assert reasons == ["webhook:push", "webhook:push"]  # one per delivery; one reconcile serves both


def test_an_installation_removed_disables_sync_with_a_clear_status(world: World) -> None:
    pid = world.project()

    world.emu.change_installation(world.installation_id, remove=["octo/site"])

    [removed] = world.wait_answered(lambda d: d["event"] == "installation_repositories")
    assert removed["status_code"] == 202
    with world.api() as api:
        status = api.get(f"/v1/projects/{pid}/github/status").json()
        health = api.get(f"/v1/webhooks/github/{pid}/health").json()
    assert status["enabled"] is False and status["state"] == "disabled"
    assert health["sync_enabled"] is False and health["sync_disabled_by"] == "repository_removed"

    world.emu.change_installation(world.installation_id, add=["octo/site"])

    world.wait_answered(lambda d: d["event"] == "installation_repositories", count=2)
    with world.api() as api:
        assert api.get(f"/v1/projects/{pid}/github/status").json()["enabled"] is True


# --- hardening: GitHub's addresses only, and a rate per source -----------------------------------------


@dataclass
class Guarded:
    emu: EmulatorHandle
    container: Container
    url: str


@contextmanager
def _guarded(tmp_path: Path, meta_hooks: tuple[str, ...], **settings: Any) -> Iterator[Guarded]:
    with run_emulator(tmp_path / "emulator", meta_hooks=meta_hooks) as emu:
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
                github_api_url=emu.url,
                github_webhook_secret=APP_SECRET,
                **settings,
            )
        )
        try:
            with _serve(container) as url:
                yield Guarded(emu, container, url)
        finally:
            container.close()


def _ping(client: httpx.Client) -> httpx.Response:
    body = b'{"zen": "Practicality beats purity.", "hook_id": 1}'
    return client.post(
        "/v1/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(APP_SECRET, body),
        },
    )


def _allowlist_loaded(guarded: Guarded) -> None:
    """Wait for the first GET /meta: until then deliveries are refused with 503 (fail closed)."""
    deadline = time.monotonic() + TIMEOUT
    with httpx.Client(base_url=guarded.url, trust_env=False) as client:
        while _ping(client).json().get("error", {}).get("code") == "webhook_allowlist_unavailable":
            assert time.monotonic() < deadline, "GET /meta was never fetched"
            time.sleep(0.05)


def test_with_ip_allowlisting_githubs_hook_ranges_are_accepted(tmp_path: Path) -> None:
    with _guarded(tmp_path, ("127.0.0.1/32", "::1/128"), github_sync_ip_allowlisting_enabled=True) as guarded:
        _allowlist_loaded(guarded)
        metas = [r for r in guarded.emu.requests() if r["path"] == "/meta"]
        assert metas and metas[-1]["status"] == 200
        with httpx.Client(base_url=guarded.url, trust_env=False) as client:
            assert [_ping(client).status_code for _ in range(3)] == [200, 200, 200]
        # The ranges are cached: deliveries do not read /meta again.
        assert [r for r in guarded.emu.requests() if r["path"] == "/meta"] == metas


def test_with_ip_allowlisting_other_sources_are_refused_and_nothing_is_recorded(tmp_path: Path) -> None:
    with _guarded(tmp_path, ("192.30.252.0/22",), github_sync_ip_allowlisting_enabled=True) as guarded:
        _allowlist_loaded(guarded)
        with httpx.Client(base_url=guarded.url, trust_env=False) as client:
            refused = _ping(client)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "webhook_source_refused"
        with Session(guarded.container.engine) as session:  # neither the refusals nor the 503s before
            assert session.scalar(select(func.count()).select_from(WebhookDeliveryRow)) == 0


def test_a_source_over_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    limits = {"ghsync_webhook_rate_limit": 0.5, "ghsync_webhook_rate_burst": 2}
    with _guarded(tmp_path, ("127.0.0.1/32",), **limits) as guarded:
        with httpx.Client(base_url=guarded.url, trust_env=False) as client:
            answers = [_ping(client) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json()["error"]["code"] == "webhook_rate_limited"
        assert answers[2].headers["Retry-After"] == "2"  # one token at 0.5 per second
        with Session(guarded.container.engine) as session:
            assert session.scalar(select(func.count()).select_from(WebhookDeliveryRow)) == 2


def test_the_allowlist_fails_closed_and_keeps_its_ranges_when_a_refresh_fails() -> None:
    answers: list[Any] = [
        RuntimeError("GitHub is down"),
        {"hooks": ["192.30.252.0/22"]},
        RuntimeError("down"),
    ]
    first_fetch = threading.Event()

    def fetch() -> dict[str, Any]:
        answer = answers.pop(0)
        first_fetch.set()
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    allowlist = HookAllowlist(fetch)
    with pytest.raises(GhsyncError) as refused:
        allowlist.check("192.30.252.1")  # nothing loaded yet: refused, and a background fetch started
    assert refused.value.code == "webhook_allowlist_unavailable"
    assert first_fetch.wait(10)  # ... which failed: still nothing loaded
    assert not allowlist.loaded

    allowlist.refresh()
    assert allowlist.loaded
    allowlist.check("192.30.252.1")
    with pytest.raises(GhsyncError, match="not among GitHub's webhook address ranges"):
        allowlist.check("10.0.0.1")

    allowlist.refresh()  # fails: the ranges it had are kept
    allowlist.check("192.30.252.1")
    assert answers == []


def test_a_rename_and_a_new_default_branch_are_followed_from_their_deliveries(world: World) -> None:
    pid = world.project()
    headers = {"Authorization": f"token {world.owner_token}", "Accept": "application/vnd.github+json"}
    world.person_pushes({"index.html": "<h1>on main</h1>\n"}, branch="main")  # a branch to make default
    world.wait_answered(lambda d: d["event"] == "push" and d["payload"]["ref"] == "refs/heads/main")

    with httpx.Client(base_url=world.emu.url, headers=headers, trust_env=False) as gh:
        assert gh.patch("/repos/octo/site", json={"default_branch": "main"}).status_code == 200
        edited = world.wait_answered(lambda d: d["event"] == "repository" and d["action"] == "edited")
        assert gh.patch("/repos/octo/site", json={"name": "web"}).status_code == 200
        renamed = world.wait_answered(lambda d: d["event"] == "repository" and d["action"] == "renamed")

    assert [d["status_code"] for d in edited + renamed] == [202, 202]
    with world.container.uow() as uow:
        project = uow.projects.get(pid)
        audit = [(e.actor, e.action, e.details.get("delivery_id")) for e in uow.audit.for_project(pid)]
    assert project is not None and project.link is not None
    assert (project.link.owner, project.link.repo, project.link.default_branch) == ("octo", "web", "main")
    assert audit[:2] == [
        ("github", "github.link_followed", renamed[0]["guid"]),
        ("github", "github.default_branch_changed", edited[0]["guid"]),
    ]
    # ... and the reconcile they requested brings in the new default branch's head.
    world.run_worker()
    newest = world.versions(pid)[0]
    with httpx.Client(base_url=world.emu.url, headers=headers, trust_env=False) as gh:
        head = gh.get("/repos/octo/web/branches/main").json()["commit"]["sha"]
    assert newest["source"] == "github" and newest["tree_sha"] == world.github_tree(head, "web")


# --- a crash between recording a delivery and answering it -----------------------------------------------

# ghsync's API in a process of its own, which SIGKILLs itself right after a push delivery's unit of work
# committed, before the answer is written: the worst moment for a receiver to die.
_DIES_AFTER_COMMIT = """
import json, os, signal, sys
import uvicorn
from ghsync.bootstrap import build_container
from ghsync.config import load_settings
from ghsync.entrypoints.api.app import create_app

config = json.loads(os.environ["WEBHOOK_TEST_CONFIG"])
port = config.pop("port")
container = build_container(load_settings({}, **config))
receive_many = container.webhooks.receive_many

def receive_then_die(deliveries):
    results = receive_many(deliveries)  # committed: the delivery and its reconcile request
    if any(getattr(r, "event", None) == "push" for r in results):
        os.kill(os.getpid(), signal.SIGKILL)
    return results

container.webhooks.receive_many = receive_then_die
uvicorn.run(create_app(container), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_kill_9_between_recording_a_delivery_and_answering_loses_no_reconcile(world: World) -> None:
    pid = world.project()
    before = len(world.versions(pid))
    port = _free_port()
    config = {
        "port": port,
        "ghsync_data_dir": str(world.tmp_path / "data"),
        "database_url": f"sqlite:///{world.tmp_path / 'ghsync.db'}",
        "ghsync_encryption_keys": [KEY],
        "github_webhook_secret": APP_SECRET,
    }
    doomed = subprocess.Popen(
        [sys.executable, "-c", _DIES_AFTER_COMMIT],
        env={**os.environ, "WEBHOOK_TEST_CONFIG": json.dumps(config)},
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert doomed.poll() is None and time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.05)
        world.emu.update_app(world.app.id, webhook_url=f"http://127.0.0.1:{port}/v1/webhooks/github")
        world.wait_answered(lambda d: d["event"] == "ping" and str(port) in d["url"])

        sha = world.person_pushes({"index.html": "<h1>survives a kill -9</h1>\n"})

        assert doomed.wait(TIMEOUT) == -signal.SIGKILL
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()

    def unanswered(d: dict[str, Any]) -> bool:  # GitHub got no answer: to GitHub the delivery failed
        return _is_push(d) and d["status_code"] == 0

    [killed] = [
        d for d in world.emu.wait_for_deliveries(lambda ds: any(map(unanswered, ds))) if unanswered(d)
    ]

    # The delivery and its request were committed together before the kill.
    with world.container.uow() as uow:
        recorded = uow.deliveries.get(killed["guid"])
        assert recorded is not None and recorded.status == "queued"
        assert [r.reason for r in uow.requests.pending(pid)] == ["webhook:push"]
    # The outbox relay (a periodic task of every worker) tells the queue again of pending requests.
    relay_pending_requests(world.container.uow, world.container.queue.request_reconcile)
    world.run_worker()
    versions = world.versions(pid)
    assert len(versions) == before + 1 and versions[0]["tree_sha"] == world.github_tree(sha)

    # GitHub's redelivery of the "failed" delivery, to a receiver restarted at the same address, is
    # acknowledged as a duplicate: it succeeded, so it changes nothing.
    recorded_before = world.counts()
    with _serve(world.container, port):
        world.redeliver(killed)
        [again] = world.wait_answered(lambda d: _is_push(d) and d["redelivery"])
    assert again["status_code"] == 202 and again["guid"] == killed["guid"]
    assert world.counts() == recorded_before  # no second delivery row, no second request
    world.run_worker()
    assert len(world.versions(pid)) == before + 1
