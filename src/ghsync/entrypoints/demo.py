"""`ghsync demo`: start the real service on a temporary data dir and narrate a session with it."""

from __future__ import annotations

import base64
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.bootstrap import build_container
from ghsync.config import load_settings
from ghsync.entrypoints.api.app import create_app
from ghsync.observability.logging import configure_logging


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_emulator(data_dir: Path) -> Iterator[str]:
    """The built-in GitHub emulator as its own process (ghsync never imports it); yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "github_emulator", "--port", "0", "--data", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the GitHub emulator did not start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def running_service(data_dir: Path, token: str, **github: Any) -> Iterator[str]:
    """The service (API + embedded worker) on a free loopback port; yields its base URL."""
    settings = load_settings(
        {},
        ghsync_data_dir=data_dir,
        ghsync_api_tokens=[token],
        ghsync_encryption_keys=["demo:" + base64.b64encode(secrets.token_bytes(32)).decode()],
        github_sync_polling_enabled=False,
        **github,
    )
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    engine.dispose()
    container = build_container(settings)
    container.queue.start(threads=1)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        container.queue.stop()
        container.close()


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _check(response: httpx.Response) -> Any:
    if response.is_error:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    return response.json()


def run_demo(console: Console, *, keep: bool = False) -> int:
    configure_logging("warning")  # the narration is the output; warnings and errors still show
    data_dir = Path(tempfile.mkdtemp(prefix="ghsync-demo-"))
    token = secrets.token_urlsafe(16)
    say = console.print
    try:
        say("[bold]ghsync demo[/]: the service on embedded SQLite, in a temporary data dir", highlight=False)
        say(f"  data dir: {data_dir}", highlight=False)
        with running_emulator(data_dir / "emulator") as github_url:
            say(f"  GitHub:   {github_url} (the built-in emulator, a separate process)", highlight=False)
            app = _github_setup(github_url)
            with running_service(
                data_dir / "ghsync",
                token,
                github_app_id=str(app["id"]),
                github_app_private_key=app["private_key"],
                github_api_url=github_url,
            ) as url:
                say(f"  service:  {url} (API + embedded worker; OpenAPI at {url}/docs)\n", highlight=False)
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
                    pid = _narrate_local_versions(api, say, data_dir / "ghsync")
                    _narrate_link(api, say, pid)
        say("\n[bold green]done[/]: every step above was a real HTTP call to the running service.")
        return 0
    except Exception as exc:  # the demo reports any failure plainly and exits non-zero
        console.print(f"[bold red]demo failed:[/] {exc}", highlight=False)
        return 1
    finally:
        if keep:
            say(f"data kept in {data_dir}", highlight=False)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _github_setup(github_url: str) -> dict[str, Any]:
    """On the emulator: a user, a repository whose default branch is not `main`, an App installed on it."""
    with httpx.Client(base_url=f"{github_url}/_emulator", timeout=30, trust_env=False) as control:
        _check(control.post("/users", json={"login": "octo"}))
        _check(
            control.post(
                "/repos",
                json={
                    "owner": "octo",
                    "name": "demo-site",
                    "default_branch": "trunk",
                    "files": {"README.md": "# demo-site on GitHub\n"},
                },
            )
        )
        permissions = {"contents": "write", "pull_requests": "write", "metadata": "read"}
        app: dict[str, Any] = _check(
            control.post("/apps", json={"slug": "ghsync-demo", "permissions": permissions})
        )
        _check(
            control.post(
                "/installations",
                json={"app_id": app["id"], "account": "octo", "repositories": ["octo/demo-site"]},
            )
        )
    return app


def _narrate_link(api: httpx.Client, say: Any, pid: str) -> None:
    status = _check(api.post(f"/v1/projects/{pid}/github/link", json={"owner": "octo", "repo": "demo-site"}))
    say(
        f"7. linked to GitHub repository {status['owner']}/{status['repo']}: default branch "
        f"[cyan]{status['default_branch']}[/] (read from the API), mode {status['sync_mode']}, "
        f"GitHub head {status['last_remote_main_sha'][:12]}",
        highlight=False,
    )
    deadline = time.monotonic() + 10
    while status["state"] != "in_sync" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = _check(api.get(f"/v1/projects/{pid}/github/status"))
    operation = status["last_operation"]
    say(
        f"8. status: state [cyan]{status['state']}[/], last operation {operation['operation_type']} "
        f"({operation['status']}), API quota left {status['rate_limit']['remaining']}",
        highlight=False,
    )
    say(
        "   (moving commits between the two sides comes with the sync issues; so far the link records "
        "both heads and the worker runs a no-op reconcile)",
        highlight=False,
    )


def _narrate_local_versions(api: httpx.Client, say: Any, data_dir: Path) -> str:
    project = _check(api.post("/v1/projects", json={"name": "demo-site"}))
    say(f"1. created project [cyan]{project['name']}[/] ({project['id']})", highlight=False)
    pid = project["id"]

    logo = bytes(range(256)) * 4  # binary content, byte-exact round trip
    v1 = _check(
        api.post(
            f"/v1/projects/{pid}/versions",
            json={
                "message": "First version from the platform",
                "files": [
                    {"path": "README.md", "content_base64": _b64("# Demo site\n\nHello.\n")},
                    {"path": "src/app.py", "content_base64": _b64("print('hello')\n")},
                    {
                        "path": "bin/build.sh",
                        "content_base64": _b64("#!/bin/sh\necho build\n"),
                        "mode": "100755",
                    },
                    {"path": "assets/logo.bin", "content_base64": _b64(logo)},
                ],
                "author": {"name": "Platform Bot", "email": "bot@example.com"},
            },
        )
    )
    say(f"2. version {v1['number']}: 4 files, commit {v1['commit_sha'][:12]}", highlight=False)

    v2 = _check(
        api.post(
            f"/v1/projects/{pid}/versions",
            json={
                "message": "Edit the app, drop the logo, rename the script",
                "files": [
                    {"path": "src/app.py", "content_base64": _b64("print('hello, world')\nprint('v2')\n")},
                    {
                        "path": "scripts/build.sh",
                        "content_base64": _b64("#!/bin/sh\necho build\n"),
                        "mode": "100755",
                    },
                ],
                "delete": ["assets/logo.bin", "bin/build.sh"],
            },
        )
    )
    say(f"3. version {v2['number']}: commit {v2['commit_sha'][:12]}", highlight=False)

    diff = _check(api.get(f"/v1/projects/{pid}/diff", params={"from": v1["id"], "to": v2["id"]}))
    table = Table("status", "path", "+", "-", "binary", title=f"diff v{v1['number']} -> v{v2['number']}")
    for change in diff["files"]:
        shown = change["path"] if not change["old_path"] else f"{change['old_path']} -> {change['path']}"
        table.add_row(
            change["status"],
            shown,
            str(change["insertions"]),
            str(change["deletions"]),
            str(change["binary"]),
        )
    say(table)

    work_file = data_dir / "projects" / pid / "README.md"
    work_file.write_text("# Demo site\n\nEdited by hand in the working directory.\n")
    snap = _check(api.post(f"/v1/projects/{pid}/versions/snapshot", json={"message": "Hand edit"}))
    say(
        f"4. edited README.md in the working directory by hand; snapshot -> version "
        f"{snap['version']['number']}",
        highlight=False,
    )

    versions = _check(api.get(f"/v1/projects/{pid}/versions"))["items"]
    say("5. versions, newest first:", highlight=False)
    for version in versions:
        say(f"   v{version['number']}  {version['commit_sha'][:12]}  {version['message']}", highlight=False)

    readme = api.get(f"/v1/projects/{pid}/versions/latest/files/README.md")
    say(f"6. README.md at latest: {readme.content.decode().splitlines()[-1]!r}", highlight=False)
    return str(pid)
