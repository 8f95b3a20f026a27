"""Helpers shared by the round-two emulator tests (issue 8): git on the command line, API commits,
and waiting for webhooks validated against GitHub's schemas."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from github_emulator.testing import (
    EmulatorHandle,
    ReceivedWebhook,
    WebhookReceiver,
    person_git_env,
    run_emulator,
)
from support.github_schemas import validate_webhook

ZERO = "0" * 40


def git(
    cwd: Path, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run git with a fixed identity and no user/system configuration."""
    env = person_git_env(cwd)
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        input=stdin,
    )
    if check:
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done


def commit_files(
    client: httpx.Client, repo: str, parent: str | None, files: dict[str, str | None], message: str
) -> str:
    """One commit on ``parent`` through the Git Data API; a ``None`` content deletes the path."""
    base: dict[str, Any] = {}
    if parent is not None:
        base["base_tree"] = client.get(f"/repos/{repo}/git/commits/{parent}").json()["tree"]["sha"]
    entries = [
        {"path": p, "mode": "100644", "type": "blob", "content": c}
        if c is not None
        else {"path": p, "mode": "100644", "type": "blob", "sha": None}
        for p, c in files.items()
    ]
    tree = client.post(f"/repos/{repo}/git/trees", json={**base, "tree": entries})
    assert tree.status_code == 201, tree.text
    made = client.post(
        f"/repos/{repo}/git/commits",
        json={"message": message, "tree": tree.json()["sha"], "parents": [parent] if parent else []},
    )
    assert made.status_code == 201, made.text
    sha: str = made.json()["sha"]
    return sha


def head_of(client: httpx.Client, repo: str, branch: str = "main") -> str:
    sha: str = client.get(f"/repos/{repo}/git/ref/heads/{branch}").json()["object"]["sha"]
    return sha


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def pushes(rx: WebhookReceiver, **fields: Any) -> list[dict[str, Any]]:
    """Push payloads received so far whose top-level fields equal ``fields`` (each validated)."""
    found = []
    for r in list(rx.received):
        if (
            r.event == "push"
            and isinstance(r.json, dict)
            and all(r.json.get(k) == v for k, v in fields.items())
        ):
            validate_webhook("push", r.body)
            found.append(r.json)
    return found


def wait_event(
    rx: WebhookReceiver, event: str, timeout: float = 10.0, **fields: Any
) -> list[ReceivedWebhook]:
    """Wait until a delivery of ``event`` with top-level ``fields`` arrived; all matches, validated."""

    def matching(items: list[ReceivedWebhook]) -> list[ReceivedWebhook]:
        return [
            r
            for r in items
            if r.event == event
            and isinstance(r.json, dict)
            and all(r.json.get(k) == v for k, v in fields.items())
        ]

    rx.wait_for(lambda items: bool(matching(items)), timeout=timeout)
    found = matching(list(rx.received))
    for r in found:
        validate_webhook(event, r.body)
    return found


def assert_basic_error(response: httpx.Response, status: int, message: str) -> None:
    """``response`` is GitHub's generic error body with ``message``.

    For answers whose documented schema no body can satisfy: the Contents API's 409 is
    ``oneOf [basic-error, repository-rule-violation-error]``, two schemas without required
    fields or ``additionalProperties: false``, so every error body matches both and ``oneOf``
    fails. GitHub sends the generic error there, which is what this checks.
    """
    import jsonschema

    from support.github_schemas import GENERIC_ERROR_POINTER, openapi_document

    doc = openapi_document()
    schema = doc
    for token in GENERIC_ERROR_POINTER.strip("/").split("/"):
        schema = schema[token]
    body = response.json()
    jsonschema.validate(body, schema)
    assert (response.status_code, body["message"]) == (status, message), body
    assert isinstance(body.get("documentation_url"), str), body


# ---- one emulator per module ------------------------------------------------------------------
#
# Starting and stopping an emulator costs about a second; the round-two modules import these
# fixtures to share one per module and reset it before each test (``POST /_emulator/reset``
# forgets every app, repository and delivery), so tests stay independent and the suite fast.
# They override conftest's function-scoped ``emu`` and ``receiver`` (and so feed ``installed``):
# a module imports ``module_emulator, module_receiver, shared_emu, shared_receiver``.


@pytest.fixture(scope="module")
def module_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with run_emulator(tmp_path_factory.mktemp("round2") / "emulator", tree_entry_limit=50) as handle:
        yield handle


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


@pytest.fixture(name="emu")
def shared_emu(module_emulator: EmulatorHandle, module_receiver: WebhookReceiver) -> EmulatorHandle:
    # Let the previous test's deliveries finish so none lands after the receiver is cleared.
    module_emulator.wait_for_deliveries(timeout=30)
    module_emulator.reset()
    with module_receiver._cond:
        module_receiver.received.clear()
    return module_emulator


@pytest.fixture(name="receiver")
def shared_receiver(emu: EmulatorHandle, module_receiver: WebhookReceiver) -> WebhookReceiver:
    return module_receiver
