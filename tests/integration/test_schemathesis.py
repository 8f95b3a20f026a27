"""schemathesis against the live API, from its own OpenAPI document, with every check: zero failures.

ghsync is served over real HTTP (uvicorn in a thread) with the GitHub emulator as its GitHub: an App
installed on `octo/site`, a project linked to it with a first version, so the GitHub-dependent routes
(status, plan, conflict, reset, confirm, ...) do real work. Generated path ids are mostly that linked
project and its versions (a schemathesis dictionary, probability 0.8), otherwise random ones (404).

The run is `schemathesis run ... --checks all` (the CLI, so every phase runs: examples, coverage,
fuzzing, stateful), bounded by `--max-examples` and a fixed seed so it stays well within a minute on two
cores. Checks switched off: none (EXCLUDED_CHECKS says why if one ever is). The same command against a
running service is in docs/api.md.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.bootstrap import build_container
from ghsync.config import load_settings
from ghsync.entrypoints.api.app import create_app
from github_emulator.testing import run_emulator

TOKEN = "schemathesis-token"
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
MAX_EXAMPLES = 4
SEED = 20261201
# Checks excluded from `--checks all`, each with its reason. Every other check runs on every operation.
EXCLUDED_CHECKS: dict[str, str] = {
    "positive_data_acceptance": (
        "it asks every schema-valid request to succeed, and some of ours are valid only against the "
        "server's state, which no schema knows: a cursor is opaque (a well-formed one this API never "
        "returned is 422 `invalid_cursor`), and what a version may write depends on the project's files "
        "(deleting a path that does not exist is `no_such_path`, a version that changes nothing "
        "`no_changes`, a symlink whose base64 target leaves the project `invalid_path`). Every other "
        "rule the server enforces is in the schema, and `negative_data_rejection` proves the other way."
    ),
}
# Checks switched off for one operation only, each with its reason.
EXCLUDED_PER_OPERATION: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/v1/projects/{project_id}/github/conflict"): {
        "ensure_resource_availability": "a project just created has no open conflict: 404 "
        "`no_open_conflict` is the right answer, not a resource that got lost",
    },
}


@dataclass
class Live:
    url: str
    project_id: str
    version_id: str


@contextmanager
def _serve(app: object) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))  # type: ignore[arg-type]
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
def live(tmp_path: Path) -> Iterator[Live]:
    with run_emulator(tmp_path / "emulator") as emu:
        app = emu.create_app("ghsync-fuzz", permissions=PERMISSIONS)
        emu.create_user("octo")
        emu.create_repo("octo", "site", default_branch="trunk", files={"index.html": "<h1>hello</h1>\n"})
        emu.create_installation(app.id, "octo", ["octo/site"])
        database_url = f"sqlite:///{tmp_path / 'ghsync.db'}"
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
            github_webhook_secret="fuzz-webhook-secret",
        )
        container = build_container(settings)
        try:
            with _serve(create_app(container)) as url:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                with httpx.Client(base_url=url, headers=auth, trust_env=False, timeout=30) as client:
                    pid = client.post("/v1/projects", json={"name": "site"}).json()["id"]
                    version = client.post(
                        f"/v1/projects/{pid}/versions",
                        json={"message": "first", "files": [{"path": "a.txt", "content_base64": "YQo="}]},
                    ).json()
                    linked = client.post(
                        f"/v1/projects/{pid}/github/link", json={"owner": "octo", "repo": "site"}
                    )
                    assert linked.status_code == 201, linked.text
                yield Live(url, pid, version["id"])
        finally:
            container.close()


def _config(live: Live, path: Path) -> Path:
    operations = "".join(
        f"""
[[operations]]
include-method = "{method}"
include-path = "{route}"
"""
        + "".join(f"checks.{check}.enabled = false\n" for check in checks)
        for (method, route), checks in EXCLUDED_PER_OPERATION.items()
    )
    path.write_text(
        f"""
[dictionaries]
projects = {{ values = ["{live.project_id}"] }}
versions = {{ values = ["{live.version_id}", "latest"] }}

[parameters]
"path.project_id" = {{ dictionary = "projects", probability = 0.8 }}
"path.version_id" = {{ dictionary = "versions", probability = 0.8 }}
{operations}"""
    )
    return path


def test_schemathesis_finds_no_failure(live: Live, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(_config(live, tmp_path / "schemathesis.toml")),
        "run",
        f"{live.url}/openapi.json",
        "--checks",
        "all",
        *(["--exclude-checks", ",".join(EXCLUDED_CHECKS)] if EXCLUDED_CHECKS else []),
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # One worker: with two threads, hypothesis's `ast.parse` of its own lambdas (for their repr) hits
        # CPython 3.11's thread-unsafe AST recursion counter, "SystemError: AST constructor recursion
        # depth mismatch" (https://github.com/python/cpython/issues/106905), which fails the run.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--warnings",
        "off",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    (tmp_path / "schemathesis.out").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-60000:] + result.stderr[-5000:]
