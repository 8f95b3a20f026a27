"""``python -m github_emulator``: prints one base-URL line when ready, persists state, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx


def _start(data: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "github_emulator", "--port", "0", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    return proc, line


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert out == ""  # exactly one line overall


def test_cli_serves_and_persists(tmp_path: Path) -> None:
    proc, url = _start(tmp_path / "data")
    try:
        assert url.startswith("http://127.0.0.1:")
        created = httpx.post(f"{url}/_emulator/repos", json={"owner": "o", "name": "r", "files": {"a": "a"}})
        assert created.status_code == 201
    finally:
        _stop(proc)
    proc, url = _start(tmp_path / "data")
    try:
        assert httpx.get(f"{url}/repos/o/r").json()["full_name"] == "o/r"
    finally:
        _stop(proc)
