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
            app, owner_token = _github_setup(github_url)
            hook_secret = secrets.token_hex(20)
            with running_service(
                data_dir / "ghsync",
                token,
                github_app_id=str(app["id"]),
                github_app_private_key=app["private_key"],
                github_api_url=github_url,
                github_webhook_secret=hook_secret,
                # GitHub asks for a second between content-creating requests; the emulator needs none.
                github_write_interval=0,
            ) as url:
                # The App's webhook points at the service: GitHub's pushes come back as signed deliveries.
                with httpx.Client(base_url=f"{github_url}/_emulator", timeout=30, trust_env=False) as control:
                    _check(
                        control.patch(
                            f"/apps/{app['id']}",
                            json={"webhook_url": f"{url}/v1/webhooks/github", "webhook_secret": hook_secret},
                        )
                    )
                say(f"  service:  {url} (API + embedded worker; OpenAPI at {url}/docs)\n", highlight=False)
                headers = {"Authorization": f"Bearer {token}"}
                with (
                    httpx.Client(base_url=url, headers=headers, timeout=30) as api,
                    httpx.Client(
                        base_url=github_url,
                        headers={"Authorization": f"token {owner_token}"},
                        timeout=30,
                        trust_env=False,
                    ) as github,
                ):
                    demo = _Demo(api, github, say)
                    demo.direct_mode(data_dir / "ghsync")
                    demo.protected_mode()
                    demo.admin_views()
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


def _github_setup(github_url: str) -> tuple[dict[str, Any], str]:
    """On the emulator: a user, two repositories whose default branch is not `main`, an App installed on
    both; returns the App and the user's token (to look at GitHub as a person would)."""
    with httpx.Client(base_url=f"{github_url}/_emulator", timeout=30, trust_env=False) as control:
        user = _check(control.post("/users", json={"login": "octo"}))
        for name, readme in (("demo-site", "# demo-site on GitHub\n"), ("demo-docs", "# docs\n")):
            _check(
                control.post(
                    "/repos",
                    json={
                        "owner": "octo",
                        "name": name,
                        "default_branch": "trunk",
                        "files": {"README.md": readme},
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
                json={
                    "app_id": app["id"],
                    "account": "octo",
                    "repositories": ["octo/demo-site", "octo/demo-docs"],
                },
            )
        )
    return app, str(user["token"])


class _Demo:
    """The narrated steps; each is an HTTP call to the service or a look at GitHub (the emulator)."""

    def __init__(self, api: httpx.Client, github: httpx.Client, say: Any) -> None:
        self.api = api
        self.github = github
        self.say = say
        self.step = 0

    def tell(self, text: str) -> None:
        self.step += 1
        self.say(f"{self.step}. {text}", highlight=False)

    # --- the service ---------------------------------------------------------------------------------

    def version(self, pid: str, message: str, files: dict[str, str | bytes], **extra: Any) -> Any:
        modes = extra.pop("modes", {})
        body = {
            "message": message,
            "files": [
                {"path": path, "content_base64": _b64(content), "mode": modes.get(path, "100644")}
                for path, content in files.items()
            ],
            "author": {"name": "Platform Bot", "email": "bot@example.com"},
            **extra,
        }
        return _check(self.api.post(f"/v1/projects/{pid}/versions", json=body))

    def operation_for(self, pid: str, version_id: str) -> dict[str, Any]:
        """The operation that synced `version_id` (the worker runs it after the version's request)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            page = _check(self.api.get("/v1/admin/github/sync-operations", params={"project_id": pid}))
            for operation in page["items"]:
                if operation["local_version_id"] == version_id and operation["status"] != "pending":
                    if operation["status"] != "success":
                        raise RuntimeError(
                            f"sync failed: {operation['error_code']}: {operation['error_message']}"
                        )
                    return dict(operation)
            time.sleep(0.05)
        raise RuntimeError(f"no operation synced version {version_id} within 20 s")

    def link(self, pid: str, repo: str, mode: str | None = None) -> dict[str, Any]:
        body = {"owner": "octo", "repo": repo, **({"sync_mode": mode} if mode else {})}
        status: dict[str, Any] = _check(self.api.post(f"/v1/projects/{pid}/github/link", json=body))
        self.tell(
            f"linked to GitHub repository {status['owner']}/{status['repo']}: default branch "
            f"[cyan]{status['default_branch']}[/] (read from the API, never assumed), mode "
            f"[cyan]{status['sync_mode']}[/]"
        )
        return status

    def imported(self, pid: str) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = _check(self.api.get(f"/v1/projects/{pid}/versions"))["items"]
            if items:
                version: dict[str, Any] = items[0]
                operation = self.operation_for(pid, version["id"])
                self.tell(
                    f"the worker's first reconcile imported the repository into the empty project as "
                    f"version {version['number']} (source {version['source']}, operation "
                    f"{operation['operation_type']})"
                )
                return version
            time.sleep(0.05)
        raise RuntimeError("the first reconcile did not import the repository within 20 s")

    # --- GitHub, as a person sees it ----------------------------------------------------------------

    def branch_tree(self, repo: str, branch: str) -> tuple[str, str]:
        """(commit, tree) of a branch on GitHub."""
        head = _check(self.github.get(f"/repos/octo/{repo}/branches/{branch}"))["commit"]
        return str(head["sha"]), str(head["commit"]["tree"]["sha"])

    def pushed(self, operation: dict[str, Any], version: dict[str, Any], repo: str, branch: str) -> None:
        commit, tree = self.branch_tree(repo, branch)
        same = "[green]identical[/]" if tree == version["tree_sha"] else "[red]DIFFERENT[/]"
        requests = operation["metadata"].get("requests", {})
        self.say(
            f"   -> GitHub {branch} is now commit {commit[:12]}: tree {tree[:12]}, {same} to version "
            f"{version['number']}'s; {operation['files_changed']} files, +{operation['insertions']} "
            f"-{operation['deletions']}, {requests.get('total', '?')} API requests "
            f"({requests.get('content_creating', '?')} content-creating)",
            highlight=False,
        )
        if tree != version["tree_sha"]:
            raise RuntimeError(f"GitHub's {branch} does not hold version {version['number']}'s tree")

    # --- the story ----------------------------------------------------------------------------------

    def direct_mode(self, data_dir: Path) -> None:
        self.say("[bold]Direct mode[/]: versions become commits on the default branch", highlight=False)
        pid = _check(self.api.post("/v1/projects", json={"name": "demo-site"}))["id"]
        self.tell(f"created an empty project [cyan]demo-site[/] ({pid})")
        self.link(pid, "demo-site", "direct_commit")
        self.imported(pid)

        logo = bytes(range(256)) * 4  # binary content, byte-exact round trip
        v2 = self.version(
            pid,
            "Build the site",
            {
                "index.html": "<h1>Demo site</h1>\n",
                "src/app.py": "print('hello')\n",
                "bin/build.sh": "#!/bin/sh\necho build\n",
                "assets/logo.bin": logo,
            },
            modes={"bin/build.sh": "100755"},
        )
        self.tell(
            f"version {v2['number']}: 4 files (one binary, one executable), commit {v2['commit_sha'][:12]}"
        )
        self.pushed(self.operation_for(pid, v2["id"]), v2, "demo-site", "trunk")

        v3 = self.version(
            pid,
            "Edit the app, drop the logo, rename the script",
            {"src/app.py": "print('hello, world')\n", "scripts/build.sh": "#!/bin/sh\necho build\n"},
            modes={"scripts/build.sh": "100755"},
            delete=["assets/logo.bin", "bin/build.sh"],
        )
        self.tell(f"version {v3['number']}: commit {v3['commit_sha'][:12]}")
        diff = _check(self.api.get(f"/v1/projects/{pid}/diff", params={"from": v2["id"], "to": v3["id"]}))
        table = Table("status", "path", "+", "-", title=f"diff v{v2['number']} -> v{v3['number']}")
        for change in diff["files"]:
            shown = change["path"] if not change["old_path"] else f"{change['old_path']} -> {change['path']}"
            table.add_row(change["status"], shown, str(change["insertions"]), str(change["deletions"]))
        self.say(table)
        self.pushed(self.operation_for(pid, v3["id"]), v3, "demo-site", "trunk")

        work_file = data_dir / "projects" / pid / "README.md"
        work_file.write_text("# Demo site\n\nEdited by hand in the working directory.\n")
        snap = _check(self.api.post(f"/v1/projects/{pid}/versions/snapshot", json={"message": "Hand edit"}))
        v4 = snap["version"]
        self.tell(f"edited README.md in the working directory by hand; snapshot -> version {v4['number']}")
        self.pushed(self.operation_for(pid, v4["id"]), v4, "demo-site", "trunk")

        commits = _check(self.github.get("/repos/octo/demo-site/commits", params={"sha": "trunk"}))
        self.tell("GitHub's trunk history, newest first (one commit per version, nothing force-pushed):")
        for commit in commits:
            lines = commit["commit"]["message"].splitlines()
            trailer = next((line for line in lines if line.startswith("Ghsync-Version:")), None)
            shown = f"  (Ghsync-Version: {trailer.split(': ', 1)[1][:8]}…)" if trailer else ""
            self.say(f"   {commit['sha'][:12]}  {lines[0]}{shown}", highlight=False)

        request = _check(self.api.post(f"/v1/projects/{pid}/github/sync/trigger"))
        self.tell(f"POST .../github/sync/trigger -> 202, request {request['request_id']}")
        deadline = time.monotonic() + 20
        while True:
            found = _check(self.api.get(f"/v1/projects/{pid}/github/sync/requests/{request['request_id']}"))
            if found["status"] == "served" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        operation = found["operation"]
        if operation is None:
            raise RuntimeError("the triggered reconcile did not run within 20 s")
        self.say(
            f"   -> served by operation {operation['id']}: {operation['operation_type']} (both sides already "
            "hold the same tree, so nothing moved)",
            highlight=False,
        )
        self.person_pushes(pid)

    def person_pushes(self, pid: str) -> None:
        """GitHub -> local: a person's commit on GitHub comes back, by its push webhook, as a version."""
        readme = _check(self.github.get("/repos/octo/demo-site/contents/README.md", params={"ref": "trunk"}))
        edited = "# Demo site\n\nEdited on GitHub by a person.\n"
        put = _check(
            self.github.put(
                "/repos/octo/demo-site/contents/README.md",
                json={
                    "message": "Edit the README on GitHub",
                    "content": _b64(edited),
                    "sha": readme["sha"],
                    "branch": "trunk",
                },
            )
        )
        commit = put["commit"]["sha"]
        self.tell(f"a person commits on GitHub: README.md edited on trunk, commit {commit[:12]}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            newest = _check(self.api.get(f"/v1/projects/{pid}/versions"))["items"][0]
            if newest["source"] == "github" and newest["message"].startswith("Edit the README on GitHub"):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the person's push did not come back as a version within 20 s")
        content = self.api.get(f"/v1/projects/{pid}/versions/latest/files/README.md")
        _, tree = self.branch_tree("demo-site", "trunk")
        same = "[green]identical[/]" if tree == newest["tree_sha"] else "[red]DIFFERENT[/]"
        self.say(
            f"   -> GitHub sent a signed push webhook; the service verified it, recorded the delivery and "
            f"requested a reconcile (202), and the worker made version {newest['number']} (source "
            f"{newest['source']}), tree {same} to GitHub's; README.md now ends "
            f"{content.text.splitlines()[-1]!r}",
            highlight=False,
        )
        if tree != newest["tree_sha"]:
            raise RuntimeError("the inbound version's tree is not GitHub's")
        operation = self.operation_for(pid, newest["id"])
        versions = _check(self.api.get(f"/v1/projects/{pid}/versions"))["items"]
        self.say(
            f"   -> operation {operation['operation_type']} ({operation['direction']}); the project has "
            f"{len(versions)} versions: the push webhooks of ghsync's own commits made none (no echo)",
            highlight=False,
        )

    def protected_mode(self) -> None:
        self.say("\n[bold]Protected mode[/] (the default): versions go to one pull request", highlight=False)
        pid = _check(self.api.post("/v1/projects", json={"name": "demo-docs"}))["id"]
        self.tell(f"created an empty project [cyan]demo-docs[/] ({pid})")
        self.link(pid, "demo-docs")
        self.imported(pid)
        branch = f"ghsync/{pid}"
        trunk_before = self.branch_tree("demo-docs", "trunk")

        v2 = self.version(pid, "Write the guide", {"guide.md": "# Guide\n\nStep one.\n"})
        self.tell(f"version {v2['number']}: guide.md")
        self.pushed(self.operation_for(pid, v2["id"]), v2, "demo-docs", branch)
        pulls = _check(self.github.get("/repos/octo/demo-docs/pulls"))
        pull = pulls[0]
        self.say(
            f"   -> pull request #{pull['number']} opened: {pull['head']['ref']} -> {pull['base']['ref']}, "
            f'"{pull["title"]}"',
            highlight=False,
        )

        v3 = self.version(pid, "Extend the guide", {"guide.md": "# Guide\n\nStep one.\nStep two.\n"})
        self.tell(f"version {v3['number']}: guide.md edited")
        self.pushed(self.operation_for(pid, v3["id"]), v3, "demo-docs", branch)
        pulls = _check(self.github.get("/repos/octo/demo-docs/pulls", params={"state": "all"}))
        commits = _check(self.github.get(f"/repos/octo/demo-docs/pulls/{pull['number']}/commits"))
        self.say(
            f"   -> still {len(pulls)} pull request (#{pulls[0]['number']}), now {len(commits)} commits; "
            f"trunk untouched: {self.branch_tree('demo-docs', 'trunk') == trunk_before}",
            highlight=False,
        )

    def admin_views(self) -> None:
        self.say("\n[bold]Admin views[/]", highlight=False)
        status = _check(self.api.get("/v1/admin/github/sync-status"))
        states = ", ".join(f"{state} {n}" for state, n in status["projects"]["by_state"].items() if n)
        self.tell(
            f"GET /v1/admin/github/sync-status: {status['projects']['linked']} linked projects ({states})"
        )
        page = _check(self.api.get("/v1/admin/github/sync-operations", params={"limit": 8}))
        table = Table(
            "operation", "status", "direction", "files", "requests", title="sync-operations, newest first"
        )
        for operation in page["items"]:
            requests = operation["metadata"].get("requests", {})
            table.add_row(
                operation["operation_type"],
                operation["status"],
                operation["direction"],
                str(operation["files_changed"]),
                str(requests.get("total", "")),
            )
        self.tell("GET /v1/admin/github/sync-operations:")
        self.say(table)
