"""Acceptance: clone, push and force-push over git smart HTTP; push webhooks arrive signed."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from pathlib import Path

import pytest

from conftest import Installed
from github_emulator.testing import person_git_env
from support.github_schemas import validate_webhook

ZERO = "0" * 40


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = person_git_env(cwd)
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=60
    )


def head(cwd: Path) -> str:
    return git(cwd, "rev-parse", "HEAD").stdout.strip()


def _verify(secret: str, body: bytes, signature: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def test_clone_push_and_force_push_fire_signed_push_webhooks(installed: Installed, tmp_path: Path) -> None:
    emu, rx = installed.emu, installed.receiver
    url = emu.git_url("octo", "hello", installed.token)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", url, str(work))
    assert (work / "README.md").read_text() == "# hello\n"
    base = head(work)

    (work / "new.txt").write_text("new\n")
    git(work, "add", "new.txt")
    git(work, "commit", "-q", "-m", "Add new.txt")
    first = head(work)
    git(work, "push", "-q", "origin", "main")

    # The REST API sees the push at once.
    ref = installed.client.get("/repos/octo/hello/git/ref/heads/main").json()
    assert ref["object"]["sha"] == first

    # Rewrite history: amend and force-push.
    (work / "new.txt").write_text("rewritten\n")
    git(work, "commit", "-q", "-a", "--amend", "-m", "Rewrite new.txt")
    second = head(work)
    git(work, "push", "-q", "--force", "origin", "main")

    pushes = rx.wait_for(lambda rs: len([r for r in rs if r.event == "push"]) >= 2)
    pushes = [r for r in pushes if r.event == "push"]
    normal, forced = pushes[0], pushes[1]
    for delivery in (normal, forced):
        assert _verify("s3cret", delivery.body, delivery.headers["x-hub-signature-256"])
        assert delivery.headers["user-agent"].startswith("GitHub-Hookshot/")
        assert delivery.headers["x-github-hook-installation-target-type"] == "integration"
        assert delivery.headers["x-github-hook-installation-target-id"] == str(installed.app.id)
        assert delivery.headers["x-github-delivery"]
        validate_webhook("push", delivery.json)
    assert normal.json["before"] == base and normal.json["after"] == first
    assert normal.json["forced"] is False
    assert [c["id"] for c in normal.json["commits"]] == [first]
    assert normal.json["commits"][0]["added"] == ["new.txt"]
    assert normal.json["head_commit"]["id"] == first
    assert normal.json["installation"]["id"] == installed.installation_id
    assert forced.json["before"] == first and forced.json["after"] == second
    assert forced.json["forced"] is True
    assert forced.json["ref"] == "refs/heads/main"


def test_new_branch_and_deletion_over_git(installed: Installed, tmp_path: Path) -> None:
    emu, rx = installed.emu, installed.receiver
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", emu.git_url("octo", "hello", installed.token), str(work))
    git(work, "checkout", "-q", "-b", "feature/x")
    (work / "f.txt").write_text("f\n")
    git(work, "add", "f.txt")
    git(work, "commit", "-q", "-m", "f")
    git(work, "push", "-q", "origin", "feature/x")
    # %2F-encoded and raw slashes name the same ref.
    raw = installed.client.get("/repos/octo/hello/git/ref/heads/feature/x").json()
    enc = installed.client.get("/repos/octo/hello/git/ref/heads%2Ffeature%2Fx").json()
    assert raw["object"]["sha"] == enc["object"]["sha"] == head(work)
    git(work, "push", "-q", "origin", "--delete", "feature/x")
    received = rx.wait_for(lambda rs: len([r for r in rs if r.event == "push"]) >= 2)
    created, deleted = [r.json for r in received if r.event == "push"]
    assert created["created"] is True and created["before"] == ZERO
    assert deleted["deleted"] is True and deleted["after"] == ZERO
    assert deleted["head_commit"] is None
    events = {r.event for r in rx.wait_for(lambda rs: {"create", "delete"} <= {r.event for r in rs})}
    assert {"create", "delete"} <= events
    for r in rx.received:
        if r.event in ("create", "delete", "push"):
            validate_webhook(r.event, r.json)


def test_git_auth_rules(installed: Installed, tmp_path: Path) -> None:
    emu = installed.emu
    # git sends credentials only when challenged: a private repository challenges, and a bad
    # token is then refused.
    emu.create_repo("octo", "secret", private=True, files={"a": "a"})
    bad = git(
        tmp_path, "clone", "-q", emu.git_url("octo", "secret", "ghs_nope"), str(tmp_path / "a"), check=False
    )
    assert bad.returncode != 0
    # The installation does not cover octo/secret: GitHub hides it ("not found").
    hidden = git(
        tmp_path,
        "clone",
        "-q",
        emu.git_url("octo", "secret", installed.token),
        str(tmp_path / "b"),
        check=False,
    )
    assert hidden.returncode != 0 and "not found" in hidden.stderr.lower()
    # Anonymous clone of a public repository works, anonymous push does not.
    work = tmp_path / "anon"
    git(tmp_path, "clone", "-q", emu.git_url("octo", "hello"), str(work))
    (work / "x").write_text("x")
    git(work, "add", "x")
    git(work, "commit", "-q", "-m", "x")
    assert git(work, "push", "-q", "origin", "main", check=False).returncode != 0
    # A user token pushes as that person.
    user = emu.create_user("mona")
    git(work, "remote", "set-url", "origin", emu.git_url("octo", "hello", user.token, user="mona"))
    git(work, "push", "-q", "origin", "main")
    pushes = installed.receiver.wait_for(lambda rs: any(r.event == "push" for r in rs))
    push = next(r.json for r in pushes if r.event == "push")
    assert push["pusher"]["name"] == "mona"
    assert push["sender"]["login"] == "mona"


def test_expired_token_cannot_push(installed: Installed, tmp_path: Path) -> None:
    emu = installed.emu
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", emu.git_url("octo", "hello", installed.token), str(work))
    assert emu.expire_tokens(token=installed.token) == 1
    (work / "x").write_text("x")
    git(work, "add", "x")
    git(work, "commit", "-q", "-m", "x")
    assert git(work, "push", "-q", "origin", "main", check=False).returncode != 0


@pytest.mark.parametrize(
    ("rules", "force", "message"),
    [
        (
            {"required_pull_request_reviews": {"required_approving_review_count": 1}},
            False,
            "Changes must be made through a pull request.",
        ),
        ({}, True, "Cannot force-push to this branch"),
    ],
)
def test_protected_branch_refuses_pushes(
    installed: Installed, tmp_path: Path, rules: dict[str, object], force: bool, message: str
) -> None:
    body = {
        "required_status_checks": None,
        "enforce_admins": None,
        "required_pull_request_reviews": None,
        "restrictions": None,
        **rules,
    }
    assert installed.client.put("/repos/octo/hello/branches/main/protection", json=body).status_code == 200
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", installed.emu.git_url("octo", "hello", installed.token), str(work))
    before = head(work)
    (work / "x").write_text("x")
    git(work, "add", "x")
    if force:
        git(work, "commit", "-q", "--amend", "-m", "rewrite")
    else:
        git(work, "commit", "-q", "-m", "x")
    result = git(work, "push", *(["--force"] if force else []), "origin", "main", check=False)
    assert result.returncode != 0, result.stderr
    assert "GH006: Protected branch update failed for refs/heads/main." in result.stderr, result.stderr
    assert message in result.stderr
    ref = installed.client.get("/repos/octo/hello/git/ref/heads/main").json()
    assert ref["object"]["sha"] == before
