"""Fuzzing the webhook receivers: 10,000 generated deliveries straight into the ASGI app, in process.

The app is ghsync's own (`create_app`) on SQLite, with one project linked to the GitHub emulator's
repository, so that the project's own hook has a real sealed secret and a valid push can request a
reconcile. Each delivery is made of independently generated parts: the endpoint (the App's hook, the
project's, an unknown project's), the body (payloads of the right and the wrong shape for their event,
random and truncated bytes, empty, over the payload limit, form-encoded), the headers (missing,
duplicated, garbage) and the signature (valid, of another body, of another secret, SHA-1 only, junk).

For every one of them: never a 5xx; a refused one (4xx) changes nothing (no delivery row, no reconcile
request, no version, no audit row); and nothing in the whole run logs an unhandled exception. The ASGI
app is called directly (no HTTP client, no sockets), so the 10,000 fit in well under a minute.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import structlog
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from starlette.datastructures import Headers

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.secrets import SecretBox
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.errors import GhsyncError
from ghsync.domain.webhooks import sign, verify_delivery
from ghsync.entrypoints.api.app import create_app
from ghsync.entrypoints.api.errors import http_status
from ghsync.entrypoints.api.webhooks import PayloadTooLarge
from ghsync.services.linking import webhook_secret_context
from github_emulator.testing import run_emulator

# A failing batch is reported whole; Hypothesis warns that its repr is large, which must not hide the failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

TOKEN = "webhook-fuzz-token"
APP_SECRET = "the App's fuzzed webhook secret"
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
PAYLOAD_LIMIT = 32 * 1024  # small, so that "over the limit" stays cheap to generate
EVENTS = ["push", "ping", "pull_request", "repository", "installation", "installation_repositories"]


@dataclass
class Target:
    app: Any
    container: Container
    project_id: str
    project_secret: str
    repository_id: int
    installation_id: int
    loop: asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("webhook-fuzz")
    with run_emulator(tmp / "emulator") as emu:
        gh_app = emu.create_app(
            "ghsync-fuzz", permissions={"contents": "write", "pull_requests": "write", "metadata": "read"}
        )
        emu.create_user("octo")
        repo = emu.create_repo("octo", "site", default_branch="trunk", files={"a.txt": "a\n"})
        installation_id = emu.create_installation(gh_app.id, "octo", ["octo/site"])
        database_url = f"sqlite:///{tmp / 'ghsync.db'}"
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
        container = build_container(
            load_settings(
                {},
                ghsync_data_dir=tmp / "data",
                database_url=database_url,
                ghsync_api_tokens=[TOKEN],
                ghsync_encryption_keys=[KEY],
                github_app_id=str(gh_app.id),
                github_app_private_key=gh_app.private_key,
                github_api_url=emu.url,
                github_webhook_secret=APP_SECRET,
                github_webhook_payload_limit=PAYLOAD_LIMIT,
                ghsync_webhook_rate_limit=0,  # the source's rate limit is not the subject here
            )
        )
        app = create_app(container)
        loop = asyncio.new_event_loop()
        try:
            pid, secret = loop.run_until_complete(_link(app, container))
            repository_id = int(repo["id"])
            yield Target(app, container, pid, secret, repository_id, installation_id, loop)
        finally:
            loop.close()
            container.close()


async def _link(app: Any, container: Container) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        pid = (await client.post("/v1/projects", json={"name": "site"}, headers=auth)).json()["id"]
        linked = await client.post(
            f"/v1/projects/{pid}/github/link", json={"owner": "octo", "repo": "site"}, headers=auth
        )
        assert linked.status_code == 201, linked.text
    with container.uow() as uow:
        project = uow.projects.get(pid)
    assert project is not None and project.webhook_secret is not None
    box = SecretBox.from_setting([KEY])
    secret = box.decrypt(project.webhook_secret, context=webhook_secret_context(pid))
    return str(pid), secret


# --- one delivery -----------------------------------------------------------------------------------


async def deliver(app: Any, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> int:
    """Call the ASGI app with exactly these raw headers and body chunks; the answer's status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("140.82.115.10", 44321),
        "server": ("testserver", 80),
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if not pending:
        pending = [{"type": "http.request", "body": b"", "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


_TABLES = ("webhook_deliveries", "reconcile_requests", "versions", "audit_log")


def _counts(container: Container) -> tuple[int, ...]:
    """Rows of every table a delivery could write to, in one round trip."""
    query = "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in _TABLES)
    with container.engine.connect() as connection:
        return tuple(connection.execute(text(query)).one())


# --- what a delivery is made of ---------------------------------------------------------------------

# Values of the wrong type for any field: drawn from a fixed list, which is much cheaper to generate than
# a recursive strategy and covers the same ground for a parser that checks types.
WRONG_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    "",
    "x",
    "refs/heads/trunk",
    "a" * 40,
    [],
    [1, "a"],
    {},
    {"id": "1"},
    {"id": None},
    {"login": 5},
    [{"id": 1}],
    {"a": {"b": [None]}},
    "\u0000",
    "🙂" * 10,
]
JUNK_TEXT = ["", " ", "x", "BAD EVENT", "ping\n", "x" * 70, "pu sh", "🙂", "\u0000", "push;drop"]
JUNK_HEADERS = [
    ("X-Junk", ""),
    ("x-github-hook-id", "abc"),
    ("User-Agent", "GitHub-Hookshot/1"),
    ("\u00e9", "v"),
]
json_values = (
    st.sampled_from(WRONG_VALUES)
    | st.lists(st.sampled_from(WRONG_VALUES), max_size=3)
    | st.lists(st.sampled_from(WRONG_VALUES), max_size=4).map(
        lambda items: dict(zip(["ref", "action", "repository", "id"], items, strict=False))
    )
)


@st.composite
def payloads(draw: st.DrawFn, target: Target) -> tuple[str, bytes]:
    """(event, body): right-shaped payloads of real events, wrong-shaped ones, and plain junk."""
    event = draw(st.sampled_from([*EVENTS, *EVENTS, "star", "deployment_status", *JUNK_TEXT]))
    repository = {
        "id": target.repository_id,
        "full_name": "octo/site",
        "name": "site",
        "owner": {"login": "octo"},
    }
    installation = {"id": target.installation_id}
    shaped: dict[str, Any] = draw(
        st.sampled_from(
            [
                {"zen": "Keep it logically awesome.", "hook_id": 1},
                {"ref": "refs/heads/trunk", "after": "a" * 40, "before": "b" * 40},
                {"ref": "refs/heads/other", "after": "c" * 40},
                {"action": "closed", "pull_request": {"number": 1, "merged": True, "head": {"ref": "x"}}},
                {"action": "renamed", "changes": {"repository": {"name": {"from": "old"}}}},
                {"action": "deleted"},
                {"action": "suspend"},
                {"action": "removed", "repositories_removed": [{"id": target.repository_id}]},
            ]
        )
    )
    kind = draw(
        st.sampled_from(
            ["shaped"] * 3 + ["wrong_types"] * 2 + ["any_json"] * 2 + ["bytes", "truncated", "empty", "huge"]
        )
    )
    if kind == "shaped":
        body: Any = {**shaped, "repository": repository, "installation": installation}
        if draw(st.booleans()):
            body.pop(draw(st.sampled_from(sorted(body))))
    elif kind == "wrong_types":
        body = {key: draw(json_values) for key in ("ref", "after", "action", "repository", "installation")}
    elif kind == "any_json":
        body = draw(json_values)
    elif kind == "bytes":
        return event, draw(st.binary(max_size=300))
    elif kind == "truncated":
        raw = json.dumps({**shaped, "repository": repository}).encode()
        return event, raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif kind == "empty":
        return event, b""
    else:
        return event, b'{"zen": "' + b"x" * draw(st.integers(PAYLOAD_LIMIT, PAYLOAD_LIMIT + 2048)) + b'"}'
    return event, json.dumps(body).encode()


@st.composite
def deliveries(draw: st.DrawFn, target: Target) -> tuple[str, list[tuple[bytes, bytes]], list[bytes]]:
    endpoint = draw(st.sampled_from(["app", "app", "project", "project", "unknown_project"]))
    path = {
        "app": "/v1/webhooks/github",
        "project": f"/v1/webhooks/github/{target.project_id}",
        "unknown_project": f"/v1/webhooks/github/{draw(st.sampled_from([str(uuid.uuid4()), 'x', '%00']))}",
    }[endpoint]
    secret = APP_SECRET if endpoint == "app" else target.project_secret
    event, body = draw(payloads(target))
    if draw(st.integers(0, 9)) == 0:  # a form-encoded delivery (repository hooks may send these)
        body = urlencode(
            {draw(st.sampled_from(["payload", "other"])): body.decode("utf-8", "replace")}
        ).encode()
        content_type: str | None = "application/x-www-form-urlencoded"
    else:
        content_type = draw(
            st.sampled_from(["application/json", "application/json; charset=utf-8", None, "text/plain"])
        )
    signature = draw(
        st.sampled_from(
            # Mostly well-formed envelopes, so that most bodies reach the payload parser and the service.
            ["valid"] * 12 + ["other_body", "other_secret", "sha1_only", "junk", "missing"]
        )
    )
    signed = {
        "valid": sign(secret, body),
        "other_body": sign(secret, body + b" "),
        "other_secret": sign("not the secret", body),
        "junk": draw(st.sampled_from(["sha256=", "sha256=zz", "md5=abc", "", "sha256=" + "0" * 64])),
    }
    headers: list[tuple[str, str]] = []
    if signature in signed:
        headers.append(("X-Hub-Signature-256", signed[signature]))
    if signature == "sha1_only":
        headers.append(("X-Hub-Signature", "sha1=" + "0" * 40))
    delivery_id = draw(st.sampled_from([str(uuid.uuid4())] * 8 + ["", "not a guid!", "x" * 80]))
    for name, value in (("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery_id)):
        presence = draw(st.sampled_from(["once"] * 8 + ["missing", "twice"]))
        if presence != "missing":
            headers.extend([(name, value)] * (2 if presence == "twice" else 1))
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    headers.extend(draw(st.lists(st.sampled_from(JUNK_HEADERS), max_size=2)))
    declared = draw(st.sampled_from(["right"] * 6 + ["none", "wrong", "junk"]))
    if declared == "right":
        headers.append(("Content-Length", str(len(body))))
    elif declared == "wrong":
        headers.append(("Content-Length", str(draw(st.integers(0, 2 * PAYLOAD_LIMIT)))))
    elif declared == "junk":
        headers.append(("Content-Length", "12abc"))
    raw_headers = [(name.lower().encode("latin-1"), value.encode("utf-8")) for name, value in headers]
    cut = draw(st.integers(1, 4))
    size = max(1, len(body) // cut)
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return path, raw_headers, chunks


BATCH = 25  # deliveries per generated example: Hypothesis's per-example cost is paid once per batch
HTTP_DELIVERIES = 2_500  # through the ASGI app: every layer, the body streamed in chunks
SERVICE_DELIVERIES = 7_500  # the same generator through what the route calls, without HTTP
Delivery = tuple[str, list[tuple[bytes, bytes]], list[bytes]]


def through_the_service(
    target: Target, path: str, raw_headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """What the route does after its guard, in its order, as plain calls; the status it would answer."""
    headers = Headers(raw=raw_headers)
    project_id = None if path == "/v1/webhooks/github" else path.rsplit("/", 1)[1]
    try:
        secret = APP_SECRET if project_id is None else target.container.webhooks.hook_secret(project_id)
        if len(body) > PAYLOAD_LIMIT:
            raise PayloadTooLarge(f"the payload is over the limit of {PAYLOAD_LIMIT} bytes")
        delivery, payload = verify_delivery(secret, body, headers)
        receipt = target.container.webhooks.receive(delivery, payload, project_id=project_id)
    except GhsyncError as exc:
        return http_status(exc)
    return 200 if receipt.event == "ping" else 202


def _fuzz(target: Target, count: int, answer: Callable[[Delivery], int]) -> dict[int, int]:
    answered: dict[int, int] = {}

    # Generation only: a failing delivery is reported as found (its path and headers are in the assertion),
    # without a shrinking phase that could take minutes over batches of 25.
    @settings(
        max_examples=count // BATCH,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(deliveries(target), min_size=BATCH, max_size=BATCH))
    def run(batch: list[Delivery]) -> None:
        for delivery in batch:
            before = _counts(target.container)
            status = answer(delivery)
            answered[status] = answered.get(status, 0) + 1
            assert status < 500, delivery[:2]
            if status >= 400:
                assert _counts(target.container) == before, (status, delivery[:2])

    with structlog.testing.capture_logs() as logs:
        run()
    unhandled = [entry for entry in logs if entry.get("log_level") in ("error", "critical", "exception")]
    assert unhandled == [], unhandled[:3]
    assert sum(answered.values()) >= count, answered
    # The generator reaches every kind of answer: accepted, a ping, and each refusal.
    assert {200, 202, 400, 401, 404, 413} <= set(answered), answered
    return answered


def test_deliveries_through_the_app_never_5xx_and_refusals_change_nothing(target: Target) -> None:
    def answer(delivery: Delivery) -> int:
        path, headers, chunks = delivery
        return target.loop.run_until_complete(deliver(target.app, path, headers, chunks))

    _fuzz(target, HTTP_DELIVERIES, answer)


def test_deliveries_through_the_service_never_5xx_and_refusals_change_nothing(target: Target) -> None:
    _fuzz(target, SERVICE_DELIVERIES, lambda d: through_the_service(target, d[0], d[1], b"".join(d[2])))


def test_ten_thousand_deliveries_in_all() -> None:
    assert HTTP_DELIVERIES + SERVICE_DELIVERIES >= 10_000
