"""The `ghsync` command line as a person runs it: subprocesses on a temporary data directory."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ghsync.adapters.db import migrate

GHSYNC = shutil.which("ghsync", path=str(Path(sys.executable).parent)) or "ghsync"


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "GHSYNC_", "DATABASE_"))
    }
    environ.update({"GHSYNC_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200", **env})
    return subprocess.run([GHSYNC, *args], capture_output=True, text=True, env=environ, timeout=120)


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--port", "1")
    assert result.returncode == 2
    assert "not migrated" in result.stderr and "ghsync migrate" in result.stderr


def test_bad_configuration_names_the_variable(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", GITHUB_SYNC_POLLING_INTERVAL="often")
    assert result.returncode == 2
    assert "GITHUB_SYNC_POLLING_INTERVAL" in result.stderr


def test_migrate_then_admin_commands(tmp_path: Path) -> None:
    migrated = run(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    head = migrate.head_revision()
    assert f"empty -> {head}" in migrated.stdout
    assert f"{head} -> {head}" in run(tmp_path, "migrate").stdout  # a second run changes nothing

    created = run(tmp_path, "projects", "create", "cli-project")
    assert created.returncode == 0, created.stderr
    project_id = created.stdout.strip()
    listed = run(tmp_path, "projects", "list")
    assert "cli-project" in listed.stdout and project_id in listed.stdout

    empty = run(tmp_path, "versions", "list", project_id)
    assert empty.returncode == 0 and "number" in empty.stdout
    missing = run(tmp_path, "versions", "list", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_rotate_keys_re_encrypts_under_the_primary_key(tmp_path: Path) -> None:
    old = "old:" + base64.b64encode(os.urandom(32)).decode()
    new = "new:" + base64.b64encode(os.urandom(32)).decode()
    assert run(tmp_path, "migrate").returncode == 0
    result = run(tmp_path, "admin", "rotate-keys", GHSYNC_ENCRYPTION_KEYS=f"{new},{old}")
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 0 secret(s)" in result.stdout


@pytest.mark.e2e
def test_the_demo_runs_for_real(tmp_path: Path) -> None:
    result = run(tmp_path, "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "version 2" in result.stdout and "renamed" in result.stdout
    assert "linked to GitHub repository octo/demo-site" in result.stdout and "trunk" in result.stdout
    # Versions reached GitHub: each push is checked against the emulator's branch by the demo itself.
    assert result.stdout.count("identical to version") == 5 and "DIFFERENT" not in result.stdout
    assert "pull request #1 opened" in result.stdout and "still 1 pull request (#1)" in result.stdout
    # GitHub -> local: a person's commit came back by its webhook as a version with GitHub's tree.
    assert "signed push webhook" in result.stdout and "tree identical to GitHub's" in result.stdout
    assert "done" in result.stdout


def test_ghsync_emulator_prints_its_url_and_serves(tmp_path: Path) -> None:
    import httpx

    process = subprocess.Popen(
        [GHSYNC, "emulator", "--port", "0", "--data", str(tmp_path / "emulator"), "--rate-limit", "77"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        repo = httpx.post(f"{url}/_emulator/repos", json={"owner": "octo", "name": "r"}, trust_env=False)
        assert repo.status_code in (200, 201) and repo.json()["full_name"] == "octo/r"
        user = httpx.post(f"{url}/_emulator/users", json={"login": "octo"}, trust_env=False).json()
        got = httpx.get(
            f"{url}/repos/octo/r", headers={"Authorization": f"token {user['token']}"}, trust_env=False
        )
        assert got.json()["default_branch"] == "main"
        assert got.headers["x-ratelimit-limit"] == "77"  # extra flags reach the emulator
    finally:
        process.terminate()
        assert process.wait(10) == 0
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
