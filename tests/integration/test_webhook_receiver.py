"""The webhook receivers are served before the app's routing (`WebhookReceiver`): they answer as the app
would (errors, 405 with `Allow`, the API's body cap, request metrics), other paths under
/v1/webhooks/github still reach the app, and the OpenAPI document still describes both receivers.
tests/integration/test_webhooks_api.py proves the deliveries themselves end to end."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.secrets import SecretBox
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.link import Link, Tracking
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.domain.webhooks import sign
from ghsync.entrypoints.api.app import create_app
from ghsync.services.linking import webhook_secret_context

TOKEN = "receiver-test-token"
SECRET = "receiver-test-secret"
MAX_BODY = 4096  # the API's cap on every body, smaller here than the webhook payload limit


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    url = f"sqlite:///{tmp_path / 'ghsync.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = load_settings(
        {},
        ghsync_data_dir=tmp_path / "data",
        database_url=url,
        ghsync_api_tokens=[TOKEN],
        github_webhook_secret=SECRET,
        ghsync_max_request_body=MAX_BODY,
        ghsync_webhook_rate_limit=0,
    )
    container = build_container(settings)
    yield container
    container.close()


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


def _delivery(payload: dict[str, Any], event: str = "push") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
    }


def _error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def _served(api: TestClient, route: str, status: int) -> float:
    metrics = api.get("/metrics").text
    line = f'ghsync_http_requests_total{{method="POST",route="{route}",status="{status}"}} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def test_a_delivery_is_received_and_counted_under_its_route(api: TestClient) -> None:
    body, headers = _delivery({"zen": "Design for failure.", "hook_id": 1}, event="ping")
    before = _served(api, "/v1/webhooks/github", 200)

    response = api.post("/v1/webhooks/github", content=body, headers=headers)

    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    assert _served(api, "/v1/webhooks/github", 200) == before + 1


@pytest.mark.parametrize(
    "path", ["/v1/webhooks/github", "/v1/webhooks/github/5f0c8a52-6e0b-4c1f-9d1e-2f4a9b7c3d10"]
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_another_method_answers_405_with_allow_post(api: TestClient, path: str, method: str) -> None:
    response = api.request(method, path)

    _error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


def test_errors_answer_as_the_apps_handlers_do(api: TestClient) -> None:
    body, headers = _delivery({"ref": "refs/heads/main"})
    _error(
        api.post("/v1/webhooks/github", content=body, headers={**headers, "X-Hub-Signature-256": "sha256=0"}),
        401,
        "invalid_signature",
    )
    _error(
        api.post(f"/v1/webhooks/github/{uuid.uuid4()}", content=body, headers=headers),
        404,
        "project_not_found",
    )
    _error(
        api.post("/v1/webhooks/github/not-a-uuid", content=body, headers=headers), 404, "project_not_found"
    )
    missing = {k: v for k, v in headers.items() if k != "X-GitHub-Event"}
    _error(api.post("/v1/webhooks/github", content=body, headers=missing), 400, "missing_webhook_header")


def test_the_apis_body_cap_holds_for_deliveries_too(api: TestClient) -> None:
    body, headers = _delivery({"padding": "x" * MAX_BODY})

    _error(api.post("/v1/webhooks/github", content=body, headers=headers), 413, "payload_too_large")


def test_a_bug_on_the_receiving_path_answers_500_without_its_details(
    api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_request: object) -> None:
        raise RuntimeError(f"a bug holding {SECRET}")

    api.app.state.webhook_guard.admit = broken  # type: ignore[attr-defined]
    body, headers = _delivery({"ref": "refs/heads/main"})

    response = api.post("/v1/webhooks/github", content=body, headers=headers)

    _error(response, 500, "internal_error")
    assert SECRET not in response.text
    logged = capsys.readouterr()
    assert "unhandled_error" in logged.out + logged.err and SECRET not in logged.out + logged.err


def test_a_sender_that_leaves_mid_body_is_no_error_and_records_nothing(
    api: TestClient, container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = _delivery({"ref": "refs/heads/main"})
    messages = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/webhooks/github", "raw_path": b"/v1/webhooks/github",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    asyncio.run(api.app(scope, receive, send))  # type: ignore[arg-type]

    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"]["code"] == "client_disconnected"
    delivery_id = headers["X-GitHub-Delivery"]
    with container.uow() as uow:
        assert uow.deliveries.get(delivery_id) is None
    logged = capsys.readouterr()
    assert "webhook_client_disconnected" in logged.out + logged.err
    assert "unhandled_error" not in logged.out + logged.err


def test_other_paths_under_the_hook_reach_the_app(api: TestClient) -> None:
    project = str(uuid.uuid4())
    # The health view is the app's: it wants the API token.
    _error(api.get(f"/v1/webhooks/github/{project}/health"), 401, "unauthorized")
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    _error(api.get(f"/v1/webhooks/github/{project}/health", headers=authorized), 404, "project_not_found")
    _error(api.post("/v1/webhooks/github/", headers=authorized), 404, "not_found")


def test_the_openapi_document_still_describes_both_receivers(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    for path in ("/v1/webhooks/github", "/v1/webhooks/github/{project_id}"):
        operation = paths[path]["post"]
        assert {"202", "200", "401", "413"} <= set(operation["responses"])
        assert any(p["name"] == "X-Hub-Signature-256" for p in operation["parameters"])


def test_a_repository_hooks_secret_is_reused_and_opened_again_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'hooks.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    key = "k1:" + base64.b64encode(bytes(range(32))).decode()
    settings = load_settings(
        {}, ghsync_data_dir=tmp_path / "data", database_url=url, ghsync_api_tokens=[TOKEN],
        ghsync_encryption_keys=[key], ghsync_webhook_rate_limit=0,
    )  # fmt: skip
    container = build_container(settings)
    box = SecretBox.from_setting([key])
    pid = container.projects.create_project("site").id
    link = Link(
        pid, "octo", "site", 42, 7, "main", False, SyncMode.DIRECT_COMMIT, ConflictStrategy.MANUAL, True
    )

    def seal(secret: str) -> str:
        return box.encrypt(secret, context=webhook_secret_context(pid))

    with container.uow() as uow:
        uow.projects.link(pid, link, webhook_secret=seal("first"), tracking=Tracking())
        uow.commit()
    opened: list[str] = []
    hook_secret = container.webhooks.hook_secret
    monkeypatch.setattr(container.webhooks, "hook_secret", lambda p: opened.append(p) or hook_secret(p))

    def ping(secret: str) -> int:
        return answer(secret).status_code

    def answer(secret: str, event: str = "ping") -> Any:
        body = b'{"zen": "Favor focus over features.", "ref": "refs/heads/main", "repository": {"id": 42}}'
        headers = {
            "Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign(secret, body),
        }  # fmt: skip
        return api.post(f"/v1/webhooks/github/{pid}", content=body, headers=headers)

    with TestClient(create_app(container), raise_server_exceptions=False) as api:
        assert [ping("first"), ping("first"), ping("first")] == [200, 200, 200]
        assert len(opened) == 1  # read and opened once, then remembered
        with container.uow() as uow:  # relinked meanwhile: a new secret
            uow.projects.set_webhook_secret(pid, seal("second"))
            uow.commit()
        assert ping("second") == 200 and len(opened) == 2  # the remembered one failed: opened again
        assert ping("first") == 401 and len(opened) == 3  # the old one is refused after a fresh read
        assert ping("second") == 200 and len(opened) == 3
        with container.uow() as uow:
            uow.projects.unlink(pid)
            uow.commit()
        unlinked = answer("second", "push")  # within the minute: recorded, and nothing done
        assert (unlinked.status_code, unlinked.json()["outcome"], unlinked.json()["projects"]) == (
            202,
            "ignored",
            [],
        )
        assert ping("wrong") == 404  # the fresh read after a failed signature finds no hook
    container.close()


def test_a_push_is_answered_and_then_told_to_the_queue(container: Container, api: TestClient) -> None:
    pid = container.projects.create_project("site").id
    link = Link(
        pid, "octo", "site", 4242, 7, "main", False, SyncMode.DIRECT_COMMIT, ConflictStrategy.MANUAL, True
    )
    with container.uow() as uow:
        uow.projects.link(pid, link, webhook_secret="", tracking=Tracking())
        uow.commit()
    assert container.queue.counts().get("queued", 0) == 0
    body, headers = _delivery({"ref": "refs/heads/main", "repository": {"id": 4242}})

    response = api.post("/v1/webhooks/github", content=body, headers=headers)

    assert response.status_code == 202 and response.json()["outcome"] == "queued"
    deadline = time.monotonic() + 10  # told by the batch's thread once the answer is on its way
    while container.queue.counts().get("queued", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert container.queue.counts().get("queued", 0) == 1
    with container.uow() as uow:
        assert [r.reason for r in uow.requests.pending(pid)] == ["webhook:push"]
