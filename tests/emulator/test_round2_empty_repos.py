"""Issue 8, item 3: empty repositories refuse the Git Data API (409) and are filled through the
Contents API (``PUT /contents/{path}``) or a git push, as on GitHub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from round2_support import (  # noqa: F401
    ZERO,
    assert_basic_error,
    b64,
    git,
    head_of,
    module_emulator,
    module_receiver,
    shared_emu,
    shared_receiver,
    wait_event,
)

from conftest import api
from github_emulator.testing import EmulatorHandle, WebhookReceiver

REPO = "octo/blank"
EMPTY = "Git Repository is empty."


@pytest.fixture
def token(emu: EmulatorHandle, receiver: WebhookReceiver) -> str:
    """An installation token for the empty ``octo/blank`` and the one-commit ``octo/full``."""
    app = emu.create_app("blank-app", webhook_url=receiver.url, webhook_secret="s")
    emu.create_repo("octo", "blank")
    emu.create_repo("octo", "full", files={"README.md": "# full\n"})
    inst = emu.create_installation(app.id, "octo", [REPO, "octo/full"])
    return emu.installation_token(app, inst)


@pytest.fixture
def blank(emu: EmulatorHandle, token: str) -> Iterator[httpx.Client]:
    with api(emu, token) as client:
        yield client


@pytest.fixture
def raw(emu: EmulatorHandle, token: str) -> Iterator[httpx.Client]:
    """A client for answers whose documented schema no body satisfies (see assert_basic_error)."""
    with api(emu, token, validate=False) as client:
        yield client


def test_git_data_api_answers_409_on_an_empty_repository(blank: httpx.Client) -> None:
    some_sha = "1" * 40
    answers = {
        "create blob": blank.post(f"/repos/{REPO}/git/blobs", json={"content": "x"}),
        "get blob": blank.get(f"/repos/{REPO}/git/blobs/{some_sha}"),
        "create tree": blank.post(f"/repos/{REPO}/git/trees", json={"tree": []}),
        "get tree": blank.get(f"/repos/{REPO}/git/trees/{some_sha}"),
        "create commit": blank.post(
            f"/repos/{REPO}/git/commits", json={"message": "m", "tree": some_sha, "parents": []}
        ),
        "get commit": blank.get(f"/repos/{REPO}/git/commits/{some_sha}"),
        "get ref": blank.get(f"/repos/{REPO}/git/ref/heads/main"),
        "matching refs": blank.get(f"/repos/{REPO}/git/matching-refs/heads/"),
        "create ref": blank.post(f"/repos/{REPO}/git/refs", json={"ref": "refs/heads/x", "sha": some_sha}),
    }
    got = {name: (r.status_code, r.json()["message"]) for name, r in answers.items()}
    assert got == dict.fromkeys(answers, (409, EMPTY))
    # A repository with a commit is served as usual.
    assert blank.post("/repos/octo/full/git/blobs", json={"content": "x"}).status_code == 201


def test_contents_put_creates_the_first_commit_then_the_git_data_api_works(
    blank: httpx.Client, receiver: WebhookReceiver
) -> None:
    created = blank.put(
        f"/repos/{REPO}/contents/docs/hello.md",
        json={"message": "First file", "content": b64("hello\n")},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["content"]["path"] == "docs/hello.md"
    assert body["content"]["name"] == "hello.md"
    assert body["commit"]["parents"] == []
    assert body["commit"]["message"] == "First file"
    # The default branch now exists and holds the file.
    assert head_of(blank, REPO) == body["commit"]["sha"]
    got = blank.get(f"/repos/{REPO}/contents/docs/hello.md").json()
    assert (got["sha"], got["content"]) == (body["content"]["sha"], b64("hello\n") + "\n")
    (push,) = wait_event(receiver, "push", ref="refs/heads/main")
    assert (push.json["before"], push.json["after"], push.json["created"]) == (
        ZERO,
        body["commit"]["sha"],
        True,
    )
    assert [c["added"] for c in push.json["commits"]] == [["docs/hello.md"]]
    # No longer empty: the Git Data API answers.
    assert blank.post(f"/repos/{REPO}/git/blobs", json={"content": "x"}).status_code == 201


def test_contents_put_sha_precondition(blank: httpx.Client, raw: httpx.Client) -> None:
    path = f"/repos/{REPO}/contents/a.txt"
    first = blank.put(path, json={"message": "add", "content": b64("one\n")})
    assert first.status_code == 201
    sha = first.json()["content"]["sha"]

    no_sha = blank.put(path, json={"message": "again", "content": b64("two\n")})
    assert (no_sha.status_code, no_sha.json()["message"]) == (
        422,
        'Invalid request.\n\n"sha" wasn\'t supplied.',
    )
    wrong = raw.put(path, json={"message": "again", "content": b64("two\n"), "sha": "deadbeef"})
    assert_basic_error(wrong, 409, "a.txt does not match deadbeef")

    updated = blank.put(
        path,
        json={
            "message": "update",
            "content": b64("two\n"),
            "sha": sha,
            "committer": {"name": "Mona", "email": "mona@example.com", "date": "2024-01-02T03:04:05+02:00"},
        },
    )
    assert updated.status_code == 200, updated.text
    commit = updated.json()["commit"]
    assert commit["parents"][0]["sha"] == first.json()["commit"]["sha"]
    assert (commit["committer"]["name"], commit["author"]["email"]) == ("Mona", "mona@example.com")
    assert commit["committer"]["date"] == "2024-01-02T01:04:05Z"
    # The old sha is stale now: a second writer holding it loses.
    stale = raw.put(path, json={"message": "late", "content": b64("three\n"), "sha": sha})
    assert_basic_error(stale, 409, f"a.txt does not match {sha}")
    # For a new path the sha is ignored.
    fresh = blank.put(f"/repos/{REPO}/contents/b.txt", json={"message": "b", "content": b64("b"), "sha": sha})
    assert fresh.status_code == 201


def test_contents_put_validation_branches_and_protection(blank: httpx.Client, raw: httpx.Client) -> None:
    seeded = blank.put(f"/repos/{REPO}/contents/seed.txt", json={"message": "seed", "content": b64("s")})
    assert seeded.status_code == 201
    missing = blank.put(f"/repos/{REPO}/contents/x.txt", json={"content": b64("x")})
    assert (missing.status_code, missing.json()["message"]) == (
        422,
        'Invalid request.\n\n"message" wasn\'t supplied.',
    )
    nowhere = blank.put(
        f"/repos/{REPO}/contents/x.txt", json={"message": "m", "content": b64("x"), "branch": "nope"}
    )
    assert (nowhere.status_code, nowhere.json()["message"]) == (404, "Branch nope not found")
    sha = head_of(blank, REPO)
    assert (
        blank.post(f"/repos/{REPO}/git/refs", json={"ref": "refs/heads/side", "sha": sha}).status_code == 201
    )
    side = blank.put(
        f"/repos/{REPO}/contents/x.txt", json={"message": "m", "content": b64("x"), "branch": "side"}
    )
    assert side.status_code == 201
    assert head_of(blank, REPO, "side") == side.json()["commit"]["sha"]
    assert head_of(blank, REPO) == sha

    rules = {
        "required_status_checks": None,
        "enforce_admins": None,
        "required_pull_request_reviews": {"required_approving_review_count": 1},
        "restrictions": None,
    }
    assert blank.put(f"/repos/{REPO}/branches/main/protection", json=rules).status_code == 200
    refused = raw.put(f"/repos/{REPO}/contents/y.txt", json={"message": "m", "content": b64("y")})
    assert_basic_error(
        refused, 409, "At least 1 approving review is required by reviewers with write access."
    )
    assert head_of(blank, REPO) == sha


def test_a_git_push_fills_an_empty_repository(
    emu: EmulatorHandle, blank: httpx.Client, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    user = emu.create_user("octo")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("pushed\n")
    git(work, "add", "README.md")
    git(work, "commit", "-q", "-m", "first")
    sha = git(work, "rev-parse", "HEAD").stdout.strip()
    git(work, "push", "-q", emu.git_url("octo", "blank", user.token, user="octo"), "main")
    assert head_of(blank, REPO) == sha
    (push,) = wait_event(receiver, "push", ref="refs/heads/main")
    assert (push.json["before"], push.json["after"]) == (ZERO, sha)
    assert blank.get(f"/repos/{REPO}/git/commits/{sha}").status_code == 200
