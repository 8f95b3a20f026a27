"""In-process helpers for tests: run the emulator on a loopback port and drive its control API.

Typical use::

    from github_emulator.testing import run_emulator

    with run_emulator(tmp_path, token_ttl_seconds=60) as emu:
        app = emu.create_app("my-app", webhook_url=receiver.url)
        emu.create_repo("octo", "demo", files={"README.md": "hi\\n"})
        inst = emu.create_installation(app.id, "octo", ["octo/demo"])
        token = emu.installation_token(app, inst)           # a real token from the REST API
        httpx.get(f"{emu.url}/repos/octo/demo", headers={"Authorization": f"token {token}"})

``emu.url`` is the REST base URL (also the git base: ``{emu.url}/octo/demo.git``);
``emu.url + "/api/v3"`` is the GitHub Enterprise Server form. :class:`WebhookReceiver` is a
tiny loopback HTTP server that records what the emulator delivers.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn

from github_emulator.app import create_app
from github_emulator.config import EmulatorConfig
from github_emulator.core import Emulator

__all__ = [
    "AppInfo",
    "EmulatorHandle",
    "ReceivedWebhook",
    "UserInfo",
    "WebhookReceiver",
    "run_emulator",
]


@dataclass(frozen=True, slots=True)
class AppInfo:
    """A GitHub App created through the control API (``private_key`` is PEM, PKCS#1)."""

    id: int
    slug: str
    client_id: str
    private_key: str
    webhook_secret: str
    hook_id: int


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A person; ``token`` works for REST (``Authorization: token ...``) and git basic auth."""

    login: str
    id: int
    token: str
    email: str


class EmulatorHandle:
    """A running emulator: its ``url`` plus a typed client for the ``/_emulator`` control API."""

    def __init__(self, url: str, emulator: Emulator) -> None:
        self.url = url
        self.emulator = emulator
        self.http = httpx.Client(base_url=url, timeout=30, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/_emulator{path}", json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} /_emulator{path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    # ---- setup ---------------------------------------------------------------------------

    def create_app(
        self,
        slug: str,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        **extra: Any,
    ) -> AppInfo:
        """Create an App (extra: ``name``, ``owner``, ``events``, ``permissions``)."""
        body = {"slug": slug, "webhook_url": webhook_url, "webhook_secret": webhook_secret, **extra}
        data = self._call("POST", "/apps", {k: v for k, v in body.items() if v is not None})
        return AppInfo(
            id=data["id"],
            slug=data["slug"],
            client_id=data["client_id"],
            private_key=data["private_key"],
            webhook_secret=data["webhook_secret"],
            hook_id=data["hook_id"],
        )

    def update_app(self, app_id: int, **changes: Any) -> dict[str, Any]:
        """Change ``webhook_url``, ``webhook_secret`` or ``webhook_active``."""
        result: dict[str, Any] = self._call("PATCH", f"/apps/{app_id}", changes)
        return result

    def create_user(self, login: str, name: str | None = None, email: str | None = None) -> UserInfo:
        data = self._call("POST", "/users", {"login": login, "name": name, "email": email})
        return UserInfo(login=data["login"], id=data["id"], token=data["token"], email=data["email"])

    def create_org(self, login: str, name: str | None = None) -> dict[str, Any]:
        """An organisation account (``{login, id}``); create its repositories with ``create_repo``."""
        result: dict[str, Any] = self._call("POST", "/orgs", {"login": login, "name": name})
        return result

    def create_repo(
        self,
        owner: str,
        name: str,
        *,
        default_branch: str = "main",
        private: bool = False,
        files: dict[str, str] | None = None,
        description: str | None = None,
        auto_init: bool = False,
    ) -> dict[str, Any]:
        """Create a repository; returns it as ``GET /repos/{owner}/{repo}`` does.

        With ``files`` (or ``auto_init``) the default branch gets one commit, else it is empty.
        """
        body = {
            "owner": owner,
            "name": name,
            "default_branch": default_branch,
            "private": private,
            "files": files,
            "description": description,
            "auto_init": auto_init,
        }
        result: dict[str, Any] = self._call("POST", "/repos", body)
        return result

    def create_installation(
        self, app_id: int, account: str, repositories: list[str], repository_selection: str = "selected"
    ) -> int:
        """Install an App on ``account`` for ``["owner/name", ...]``; returns the installation id."""
        data = self._call(
            "POST",
            "/installations",
            {
                "app_id": app_id,
                "account": account,
                "repositories": repositories,
                "repository_selection": repository_selection,
            },
        )
        return int(data["id"])

    def change_installation(self, installation_id: int, add: list[str] = (), remove: list[str] = ()) -> None:  # type: ignore[assignment]
        self._call("PATCH", f"/installations/{installation_id}", {"add": list(add), "remove": list(remove)})

    def delete_installation(self, installation_id: int) -> None:
        self._call("DELETE", f"/installations/{installation_id}")

    def suspend_installation(self, installation_id: int, by: str | None = None) -> None:
        """Suspend as the account owner would (``installation.suspend``; tokens refused)."""
        self._call("PUT", f"/installations/{installation_id}/suspended", {"by": by})

    def unsuspend_installation(self, installation_id: int, by: str | None = None) -> None:
        self._call("DELETE", f"/installations/{installation_id}/suspended", {"by": by})

    def expire_tokens(self, token: str | None = None, installation_id: int | None = None) -> int:
        """Expire a token (or all of an installation's) now; returns how many."""
        data = self._call("POST", "/tokens/expire", {"token": token, "installation_id": installation_id})
        return int(data["expired"])

    # ---- faults, webhooks, logs ----------------------------------------------------------

    def add_fault(
        self,
        path_regex: str,
        *,
        status: int | None = None,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay_ms: int = 0,
        count: int = 1,
        kind: str = "status",
        every: int = 1,
        probability: float = 1.0,
        seed: int | None = None,
        installation_id: int | None = None,
    ) -> int:
        """Make the next ``count`` matching requests fail (or only slow down without ``status``).

        ``kind``: ``status`` (default), ``reset`` (connection reset, request not served),
        ``reset_after`` (served, then reset), ``truncate`` (half the body, then closed). The fault
        fires on every ``every``-th match, or with ``probability`` from a ``seed``-ed generator,
        optionally only for ``installation_id``'s requests (see ``github_emulator.faults``).
        """
        data = self._call(
            "POST",
            "/faults",
            {
                "path_regex": path_regex,
                "status": status,
                "method": method,
                "headers": headers or {},
                "body": body,
                "delay_ms": delay_ms,
                "count": count,
                "kind": kind,
                "every": every,
                "probability": probability,
                "seed": seed,
                "installation_id": installation_id,
            },
        )
        return int(data["id"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def set_webhook_mode(
        self,
        mode: str,
        delay_ms: int = 0,
        *,
        events: list[str] | None = None,
        hook_ids: list[int] | None = None,
    ) -> None:
        """``deliver`` | ``drop`` | ``duplicate`` | ``delay`` | ``reorder``, for the deliveries of
        ``events`` to ``hook_ids`` only when given (the others are delivered normally)."""
        self._call(
            "PUT", "/webhooks", {"mode": mode, "delay_ms": delay_ms, "events": events, "hook_ids": hook_ids}
        )

    def requests(self) -> list[dict[str, Any]]:
        """REST requests received so far: ``{method, path, status, installation_id, at, user}``."""
        result: list[dict[str, Any]] = self._call("GET", "/requests")
        return result

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def requests_summary(self) -> dict[str, Any]:
        """``GET /_emulator/requests/summary``: counts per installation and route, content creation."""
        result: dict[str, Any] = self._call("GET", "/requests/summary")
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        """Webhook deliveries, oldest first: ``event``, ``action``, ``guid``, ``status_code``,
        ``status``, ``redelivery``, ``headers``, ``payload`` (parsed)..."""
        result: list[dict[str, Any]] = self._call("GET", "/deliveries")
        return result

    def wait_for_deliveries(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool] = lambda ds: True,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Poll until every delivery is sent and ``predicate(deliveries)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            items = self.deliveries()
            settled = all(d["status"] != "pending" for d in items)
            if settled and predicate(items):
                return items
            if time.monotonic() > deadline:
                raise TimeoutError(f"deliveries did not settle: {[(d['event'], d['status']) for d in items]}")
            time.sleep(0.02)

    def reset(self) -> None:
        self._call("POST", "/reset")

    # ---- auth helpers --------------------------------------------------------------------

    def app_jwt(self, app: AppInfo, lifetime: int = 540) -> str:
        """A valid App JWT (RS256, ``iat`` 60 s in the past as GitHub recommends)."""
        now = int(time.time())
        return jwt.encode(
            {"iat": now - 60, "exp": now + lifetime, "iss": str(app.id)}, app.private_key, algorithm="RS256"
        )

    def installation_token(self, app: AppInfo, installation_id: int) -> str:
        """An installation access token obtained the real way (``POST .../access_tokens``)."""
        response = self.http.post(
            f"/app/installations/{installation_id}/access_tokens",
            headers={"Authorization": f"Bearer {self.app_jwt(app)}"},
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def git_url(self, owner: str, repo: str, token: str | None = None, user: str = "x-access-token") -> str:
        """The smart-HTTP clone URL, with basic-auth credentials when ``token`` is given."""
        if token is None:
            return f"{self.url}/{owner}/{repo}.git"
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}:{token}@{rest}/{owner}/{repo}.git"


def person_git_env(home: Path | str, name: str = "Mona", email: str = "mona@example.com") -> dict[str, str]:
    """The environment for the git command line as a person pushing to the emulator runs it: a fixed
    identity, no prompt for credentials, and neither the system's nor the user's configuration (`home`
    stands in for HOME)."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(home),
    }


def _free_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def run_emulator(data_dir: Path | str, host: str = "127.0.0.1", **config: Any) -> Iterator[EmulatorHandle]:
    """Run an emulator on a free loopback port in a background thread.

    ``config`` takes :class:`~github_emulator.config.EmulatorConfig` fields:
    ``token_ttl_seconds``, ``rate_limit``, ``graphql_rate_limit``, ``anonymous_rate_limit``,
    ``tree_entry_limit``, ``max_jwt_lifetime_seconds``, ``webhook_timeout_seconds``,
    ``webhook_workers``, ``secondary_rate_limits`` (and its limits), ``meta_hooks``. State lives
    in ``data_dir`` (a second run on the same directory sees it again).
    """
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    cfg = EmulatorConfig(data_dir=path, **config)
    emu = Emulator(cfg)
    app = create_app(cfg, emu)
    sock = _free_socket(host)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="github-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the GitHub emulator did not start")
        time.sleep(0.01)
    port = sock.getsockname()[1]
    handle = EmulatorHandle(f"http://{host}:{port}", emu)
    try:
        yield handle
    finally:
        handle.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class ReceivedWebhook:
    """One POST the receiver got: lower-cased ``headers``, raw ``body`` and parsed ``json``."""

    headers: dict[str, str]
    body: bytes
    json: Any = field(default=None)

    @property
    def event(self) -> str:
        return self.headers.get("x-github-event", "")


class WebhookReceiver:
    """A loopback HTTP server recording webhook POSTs; answers ``status`` (default 200).

    Use as a context manager; ``url`` is where to point the App's webhook.
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[ReceivedWebhook] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                with receiver._cond:
                    receiver.received.append(ReceivedWebhook(headers, body, parsed))
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(
        self, predicate: Callable[[list[ReceivedWebhook]], bool], timeout: float = 10.0
    ) -> list[ReceivedWebhook]:
        """Block until ``predicate(received)`` holds; returns a snapshot of what arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"webhooks not received; got {[r.event for r in self.received]}")
                self._cond.wait(remaining)
            return list(self.received)

    def events(self, name: str) -> list[ReceivedWebhook]:
        with self._cond:
            return [r for r in self.received if r.event == name]
