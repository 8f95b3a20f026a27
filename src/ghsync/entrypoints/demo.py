"""`ghsync demo`: start the real service on a temporary data dir and narrate a session with it."""

from __future__ import annotations

import base64
import secrets
import shutil
import socket
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_service(data_dir: Path, token: str) -> Iterator[str]:
    """The service (API + embedded worker) on a free loopback port; yields its base URL."""
    settings = load_settings(
        {}, ghsync_data_dir=data_dir, ghsync_api_tokens=[token], github_sync_polling_enabled=False
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
    data_dir = Path(tempfile.mkdtemp(prefix="ghsync-demo-"))
    token = secrets.token_urlsafe(16)
    say = console.print
    try:
        say("[bold]ghsync demo[/]: the service on embedded SQLite, in a temporary data dir", highlight=False)
        say(f"  data dir: {data_dir}", highlight=False)
        with running_service(data_dir, token) as url:
            say(f"  service:  {url} (API + embedded worker; OpenAPI at {url}/docs)\n", highlight=False)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
                _narrate_local_versions(api, say, data_dir)
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


def _narrate_local_versions(api: httpx.Client, say: Any, data_dir: Path) -> None:
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
