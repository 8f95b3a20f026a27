"""Issue 8, item 12: ``GET /meta`` lists the webhook senders' CIDRs (loopback unless configured)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from conftest import Installed, api
from github_emulator.testing import run_emulator


def test_meta_lists_loopback_hooks_by_default(installed: Installed) -> None:
    with api(installed.emu) as anonymous:  # schema-checked; no token needed, as on GitHub
        meta = anonymous.get("/meta")
    assert meta.status_code == 200
    body = meta.json()
    assert body["hooks"] == ["127.0.0.1/32", "::1/128"]
    assert body["verifiable_password_authentication"] is False
    # The emulator really does deliver from an address inside "hooks".
    networks = [ipaddress.ip_network(c) for c in body["hooks"]]
    assert any(ipaddress.ip_address("127.0.0.1") in n for n in networks)
    assert "x-ratelimit-remaining" in meta.headers


def test_meta_hooks_are_configurable(tmp_path: Path) -> None:
    with run_emulator(tmp_path / "e", meta_hooks=("192.30.252.0/22", "2a0a:a440::/29")) as emu, api(emu) as c:
        assert c.get("/api/v3/meta").json()["hooks"] == ["192.30.252.0/22", "2a0a:a440::/29"]
