"""Issue 8, item 8: archived repositories are read-only, transfer, and installation suspension.

Bodies are validated against GitHub's OpenAPI description (the ``api`` client) and every webhook
against GitHub's webhook schemas.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx

from conftest import Installed, api
from github_emulator.testing import WebhookReceiver, person_git_env
from support.github_schemas import validate_webhook


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = person_git_env(cwd)
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _event(receiver: WebhookReceiver, name: str, action: str) -> dict[str, Any]:
    def found(rs: list[Any]) -> bool:
        return any(r.event == name and r.json.get("action") == action for r in rs)

    received = receiver.wait_for(found)
    payload: dict[str, Any] = next(
        r.json for r in received if r.event == name and r.json.get("action") == action
    )
    validate_webhook(name, payload)
    return payload


def _clone_and_commit(installed: Installed, tmp_path: Path) -> Path:
    work = tmp_path / "w"
    _git(tmp_path, "clone", "-q", installed.emu.git_url("octo", "hello", installed.token), str(work))
    (work / "x.txt").write_text("x\n")
    _git(work, "add", "x.txt")
    _git(work, "commit", "-q", "-m", "x")
    return work


def test_archived_repository_is_read_only_until_unarchived(installed: Installed, tmp_path: Path) -> None:
    c, rx = installed.client, installed.receiver
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    work = _clone_and_commit(installed, tmp_path)
    archived = c.patch("/repos/octo/hello", json={"archived": True})
    assert archived.status_code == 200 and archived.json()["archived"] is True
    payload = _event(rx, "repository", "archived")
    assert payload["repository"]["archived"] is True

    writes = [
        c.post("/repos/octo/hello/git/blobs", json={"content": "x"}),
        c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/new", "sha": head}),
        c.patch("/repos/octo/hello", json={"description": "still?"}),
        c.delete("/repos/octo/hello/git/refs/heads/main"),
    ]
    for refused in writes:
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == "Repository was archived so is read-only."
    assert c.get("/repos/octo/hello/git/ref/heads/main").status_code == 200  # reads still work
    push = _git(work, "push", "origin", "main", check=False)
    assert push.returncode != 0
    assert "This repository was archived so it is read-only." in push.stderr

    unarchived = c.patch("/repos/octo/hello", json={"archived": False})
    assert unarchived.status_code == 200 and unarchived.json()["archived"] is False
    assert _event(rx, "repository", "unarchived")["repository"]["archived"] is False
    assert c.post("/repos/octo/hello/git/blobs", json={"content": "x"}).status_code == 201
    _git(work, "push", "-q", "origin", "main")


def test_transfer_moves_the_repository_redirects_and_fires_transferred(installed: Installed) -> None:
    c, rx = installed.client, installed.receiver
    moved = c.post("/repos/octo/hello/transfer", json={"new_owner": "octo-org", "new_name": "hi"})
    assert moved.status_code == 202
    assert moved.json()["full_name"] == "octo-org/hi"
    assert c.get("/repos/octo-org/hi").json()["owner"]["login"] == "octo-org"
    with httpx.Client(base_url=installed.emu.url, trust_env=False) as raw:
        old = raw.get("/repos/octo/hello", headers={"Authorization": f"token {installed.token}"})
    assert old.status_code == 301 and old.headers["location"].endswith(f"/repositories/{moved.json()['id']}")
    payload = _event(rx, "repository", "transferred")
    assert payload["changes"]["owner"]["from"]["user"]["login"] == "octo"
    assert payload["repository"]["full_name"] == "octo-org/hi"
    assert "installation" in payload  # the App still covers it
    missing = c.post("/repos/octo-org/hi/transfer", json={})
    assert missing.status_code == 422


def test_suspended_installation_refuses_tokens_and_gets_no_events(
    installed: Installed, tmp_path: Path
) -> None:
    emu, rx, inst = installed.emu, installed.receiver, installed.installation_id
    work = _clone_and_commit(installed, tmp_path)
    with api(emu, None) as app_client:
        jwt_headers = {"Authorization": f"Bearer {emu.app_jwt(installed.app)}"}
        assert app_client.put(f"/app/installations/{inst}/suspended", headers=jwt_headers).status_code == 204
        suspended = _event(rx, "installation", "suspend")
        assert suspended["installation"]["suspended_by"]["login"] == "emulator"  # the App's owner
        assert suspended["installation"]["suspended_at"]
        shown = app_client.get(f"/app/installations/{inst}", headers=jwt_headers).json()
        assert shown["suspended_at"] == suspended["installation"]["suspended_at"]
        refused = app_client.post(f"/app/installations/{inst}/access_tokens", headers=jwt_headers)
        assert refused.status_code == 403
        assert refused.json()["message"] == "This installation has been suspended"
    old_token = installed.client.get("/repos/octo/hello")
    assert (
        old_token.status_code == 403 and old_token.json()["message"] == "This installation has been suspended"
    )
    failed = _git(work, "push", "origin", "main", check=False)
    assert failed.returncode != 0 and "suspended" in failed.stderr

    # A person's push reaches nobody's App while the installation is suspended.
    user = emu.create_user("octo")
    before = len(rx.events("push"))
    _git(work, "push", "-q", emu.git_url("octo", "hello", user.token), "main")
    emu.wait_for_deliveries()
    assert len(rx.events("push")) == before

    emu.unsuspend_installation(inst, by="octo")
    resumed = _event(rx, "installation", "unsuspend")
    assert resumed["installation"]["suspended_at"] is None and resumed["sender"]["login"] == "octo"
    fresh = emu.installation_token(installed.app, inst)
    with api(emu, fresh) as c:
        assert c.get("/repos/octo/hello").status_code == 200
