"""Fixtures for the emulator's behaviour tests: a running emulator, an installed App, clients.

Every REST response seen through :func:`api` is validated against GitHub's published schema
(``tests/support/github_schemas.py``), so behaviour tests double as fidelity checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from github_emulator.testing import AppInfo, EmulatorHandle, WebhookReceiver, run_emulator
from support.github_schemas import validate_httpx_response


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorHandle]:
    """A fresh emulator on a free loopback port, state in ``tmp_path / "emulator"``."""
    with run_emulator(tmp_path / "emulator", tree_entry_limit=50) as handle:
        yield handle


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


def _validate(response: httpx.Response) -> None:
    response.read()
    if response.request.url.path.startswith("/_emulator") or response.status_code == 304:
        return
    validate_httpx_response(response)


def api(emu: EmulatorHandle, token: str | None = None, *, validate: bool = True) -> httpx.Client:
    """An httpx client for the REST API; responses are schema-checked unless ``validate=False``."""
    headers = {"Accept": "application/vnd.github+json"}
    if token:
        headers["Authorization"] = f"token {token}"
    hooks = {"response": [_validate]} if validate else {}
    return httpx.Client(base_url=emu.url, headers=headers, event_hooks=hooks, trust_env=False, timeout=30)


@dataclass
class Installed:
    """An App installed on ``octo`` for ``octo/hello`` (files README.md and src/app.py)."""

    emu: EmulatorHandle
    app: AppInfo
    installation_id: int
    token: str
    client: httpx.Client
    receiver: WebhookReceiver


@pytest.fixture
def installed(emu: EmulatorHandle, receiver: WebhookReceiver) -> Iterator[Installed]:
    app = emu.create_app("hello-app", webhook_url=receiver.url, webhook_secret="s3cret")
    emu.create_repo("octo", "hello", files={"README.md": "# hello\n", "src/app.py": "print('hi')\n"})
    inst = emu.create_installation(app.id, "octo", ["octo/hello"])
    token = emu.installation_token(app, inst)
    with api(emu, token) as client:
        yield Installed(emu, app, inst, token, client, receiver)
