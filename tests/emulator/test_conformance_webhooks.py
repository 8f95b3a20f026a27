"""Conformance: every webhook the emulator emits matches @octokit/webhooks-schemas, signed as GitHub does.

Drives everything that fires webhooks (App and repository hook pings, installation
created/deleted, installation_repositories added/removed, pushes through git smart HTTP and
through the REST API, ref creation and deletion, pull_request opened/edited/synchronize/closed/
reopened/merged, repository renamed/edited), validates every received payload against the schema
of its event and action, checks GitHub's delivery headers and the ``X-Hub-Signature-256`` of
each delivery, and checks the signature against GitHub's published test vector.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from github_emulator.testing import (
    AppInfo,
    EmulatorHandle,
    ReceivedWebhook,
    UserInfo,
    WebhookReceiver,
    run_emulator,
)
from github_emulator.webhooks import sign_sha256
from support.github_schemas import validate_httpx_response, validate_webhook

OWNER = "octo"
REPO = "hooks"
R = f"/repos/{OWNER}/{REPO}"
ZERO = "0" * 40
APP_SECRET = "app-secret-for-conformance"
REPO_HOOK_SECRET = "repo-hook-secret"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Every (event, action) the emulator must emit; action None for events without one.
REQUIRED_EVENTS: set[tuple[str, str | None]] = {
    ("ping", None),
    ("installation", "created"),
    ("installation", "deleted"),
    ("installation_repositories", "added"),
    ("installation_repositories", "removed"),
    ("push", None),
    ("create", None),
    ("delete", None),
    ("pull_request", "opened"),
    ("pull_request", "edited"),
    ("pull_request", "synchronize"),
    ("pull_request", "closed"),
    ("pull_request", "reopened"),
    ("repository", "renamed"),
    ("repository", "edited"),
}


def test_signature_matches_githubs_published_test_vector() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign_sha256("It's a Secret to Everybody", b"Hello, World!") == expected
    mac = hmac.new(b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha256)
    assert "sha256=" + mac.hexdigest() == expected


def _check(response: httpx.Response) -> None:
    response.read()
    if not response.request.url.path.startswith("/_emulator"):
        validate_httpx_response(response)


@dataclass
class Env:
    emu: EmulatorHandle
    rx: WebhookReceiver
    app: AppInfo
    user: UserInfo
    installation_id: int
    gh: httpx.Client
    tmp: Path
    secrets: dict[str, str] = field(default_factory=dict)  # hook id -> secret

    def sha(self, ref: str = "heads/main") -> str:
        sha: str = self.gh.get(f"{R}/git/ref/{ref}").json()["object"]["sha"]
        return sha

    def commit_on(self, parent: str, files: dict[str, str], message: str) -> str:
        tree = self.gh.get(f"{R}/git/commits/{parent}").json()["tree"]["sha"]
        entries = [{"path": p, "mode": "100644", "type": "blob", "content": c} for p, c in files.items()]
        new_tree = self.gh.post(f"{R}/git/trees", json={"base_tree": tree, "tree": entries})
        commit = self.gh.post(
            f"{R}/git/commits",
            json={"message": message, "tree": new_tree.json()["sha"], "parents": [parent]},
        )
        assert commit.status_code == 201, commit.text
        sha: str = commit.json()["sha"]
        return sha

    def wait(
        self, event: str, action: str | None = None, count: int = 1, any_hook: bool = False
    ) -> list[ReceivedWebhook]:
        """Wait for ``count`` deliveries of ``event``/``action`` (to the App's hook by default)."""

        def matching(items: list[ReceivedWebhook]) -> list[ReceivedWebhook]:
            return [
                r
                for r in items
                if r.event == event
                and (action is None or (r.json or {}).get("action") == action)
                and (any_hook or r.headers.get("x-github-hook-id") == str(self.app.hook_id))
            ]

        self.rx.wait_for(lambda items: len(matching(items)) >= count)
        return matching(self.rx.received)


def where(env: Env, event: str, **fields: Any) -> list[dict[str, Any]]:
    """Wait for ``event`` deliveries to the App's hook whose payload has ``fields``."""

    def matching(items: list[ReceivedWebhook]) -> list[dict[str, Any]]:
        return [
            r.json
            for r in items
            if r.event == event
            and r.headers.get("x-github-hook-id") == str(env.app.hook_id)
            and isinstance(r.json, dict)
            and all(r.json.get(k) == v for k, v in fields.items())
        ]

    env.rx.wait_for(lambda items: bool(matching(items)))
    return matching(env.rx.received)


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Octo Cat",
        "GIT_AUTHOR_EMAIL": "octo@example.com",
        "GIT_COMMITTER_NAME": "Octo Cat",
        "GIT_COMMITTER_EMAIL": "octo@example.com",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd),
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = Path(tmp_path_factory.mktemp("conformance-webhooks"))
    with (
        WebhookReceiver() as rx,
        run_emulator(tmp / "emulator") as emu,
    ):
        app = emu.create_app("hooks-app", webhook_url=rx.url, webhook_secret=APP_SECRET)
        user = emu.create_user(OWNER, name="Octo Cat", email="octo@example.com")
        emu.create_repo(OWNER, REPO, files={"README.md": "# hooks\n"}, description="hooks")
        emu.create_repo(OWNER, "second", files={"README.md": "# second\n"})
        installation_id = emu.create_installation(app.id, OWNER, [f"{OWNER}/{REPO}"])
        token = emu.installation_token(app, installation_id)
        headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
        with httpx.Client(
            base_url=emu.url,
            headers=headers,
            event_hooks={"response": [_check]},
            trust_env=False,
            timeout=30,
        ) as gh:
            yield Env(emu, rx, app, user, installation_id, gh, tmp, {str(app.hook_id): APP_SECRET})


def test_app_ping_and_installation_created(env: Env) -> None:
    (ping,) = env.wait("ping")
    assert ping.json["hook_id"] == env.app.hook_id
    assert ping.json["hook"]["app_id"] == env.app.id
    (created,) = env.wait("installation", "created")
    assert created.json["installation"]["id"] == env.installation_id
    assert [r["full_name"] for r in created.json["repositories"]] == [f"{OWNER}/{REPO}"]


def test_installation_repositories_added_and_removed(env: Env) -> None:
    env.emu.change_installation(env.installation_id, add=[f"{OWNER}/second"])
    (added,) = env.wait("installation_repositories", "added")
    assert [r["full_name"] for r in added.json["repositories_added"]] == [f"{OWNER}/second"]
    env.emu.change_installation(env.installation_id, remove=[f"{OWNER}/second"])
    (removed,) = env.wait("installation_repositories", "removed")
    assert [r["full_name"] for r in removed.json["repositories_removed"]] == [f"{OWNER}/second"]


def test_repository_hook_ping(env: Env) -> None:
    created = env.gh.post(
        f"{R}/hooks",
        json={
            "name": "web",
            "active": True,
            "events": ["*"],
            "config": {"url": env.rx.url, "content_type": "json", "secret": REPO_HOOK_SECRET},
        },
    )
    assert created.status_code == 201, created.text
    hook_id = created.json()["id"]
    env.secrets[str(hook_id)] = REPO_HOOK_SECRET
    pings = [p for p in env.wait("ping", count=2, any_hook=True) if p.json["hook_id"] == hook_id]
    assert len(pings) == 1
    assert pings[0].json["repository"]["full_name"] == f"{OWNER}/{REPO}"
    assert pings[0].headers["x-github-hook-installation-target-type"] == "repository"


def test_api_ref_updates_fire_create_push_and_delete(env: Env) -> None:
    main = env.sha()
    one = env.commit_on(main, {"api.txt": "1\n"}, "api one\n")
    created = env.gh.post(f"{R}/git/refs", json={"ref": "refs/heads/api/branch", "sha": one})
    assert created.status_code == 201
    (create,) = where(env, "create", ref="api/branch")
    assert create["ref_type"] == "branch"
    (push,) = where(env, "push", ref="refs/heads/api/branch", after=one)
    assert push["created"] is True and push["before"] == ZERO

    two = env.commit_on(one, {"api.txt": "2\n"}, "api two\n")
    assert env.gh.patch(f"{R}/git/refs/heads/api/branch", json={"sha": two}).status_code == 200
    (moved,) = where(env, "push", ref="refs/heads/api/branch", after=two)
    assert moved["before"] == one and moved["forced"] is False

    assert env.gh.delete(f"{R}/git/refs/heads/api/branch").status_code == 204
    where(env, "delete", ref="api/branch")
    (gone,) = where(env, "push", ref="refs/heads/api/branch", deleted=True)
    assert gone["after"] == ZERO and gone["head_commit"] is None and gone["before"] == two


def test_git_smart_http_push_force_push_new_and_deleted_branch(env: Env) -> None:
    work = env.tmp / "work"
    url = env.emu.git_url(OWNER, REPO, env.user.token, user=OWNER)
    git(env.tmp, "clone", "-q", url, str(work))
    base = git(work, "rev-parse", "HEAD")
    (work / "pushed.txt").write_text("pushed\n")
    git(work, "add", "pushed.txt")
    git(work, "commit", "-q", "-m", "Push over git\n\nWith a body.")
    first = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "main")
    (push,) = where(env, "push", ref="refs/heads/main", after=first)
    assert push["before"] == base and push["forced"] is False
    assert push["head_commit"]["id"] == first
    assert push["commits"][0]["added"] == ["pushed.txt"]

    git(work, "reset", "-q", "--hard", base)
    (work / "forced.txt").write_text("forced\n")
    git(work, "add", "forced.txt")
    git(work, "commit", "-q", "-m", "Rewrite history")
    rewritten = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "--force", "origin", "main")
    (forced,) = where(env, "push", ref="refs/heads/main", after=rewritten)
    assert forced["before"] == first and forced["forced"] is True

    git(work, "push", "-q", "origin", "main:refs/heads/git/topic")
    where(env, "create", ref="git/topic")
    where(env, "push", ref="refs/heads/git/topic", created=True)
    git(work, "push", "-q", "origin", "--delete", "git/topic")
    where(env, "delete", ref="git/topic")
    where(env, "push", ref="refs/heads/git/topic", deleted=True)

    for n in (1, 2):  # two commits in one push
        (work / f"multi{n}.txt").write_text(f"{n}\n")
        git(work, "add", f"multi{n}.txt")
        git(work, "commit", "-q", "-m", f"multi {n}")
    multi = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "main")
    (pushed,) = where(env, "push", ref="refs/heads/main", after=multi)
    assert [c["message"].rstrip("\n") for c in pushed["commits"]] == ["multi 1", "multi 2"]


def test_pull_request_lifecycle(env: Env) -> None:
    main = env.sha()
    head = env.commit_on(main, {"pr.txt": "pr\n"}, "pr change\n")
    assert env.gh.post(f"{R}/git/refs", json={"ref": "refs/heads/pr/one", "sha": head}).status_code == 201
    pr = env.gh.post(f"{R}/pulls", json={"title": "One", "head": "pr/one", "base": "main", "body": "b"})
    assert pr.status_code == 201, pr.text
    number = pr.json()["number"]
    (opened,) = env.wait("pull_request", "opened")
    assert opened.json["number"] == number

    assert env.gh.patch(f"{R}/pulls/{number}", json={"title": "One (edited)"}).status_code == 200
    (edited,) = env.wait("pull_request", "edited")
    assert edited.json["changes"]["title"]["from"] == "One"

    newer = env.commit_on(head, {"pr.txt": "pr 2\n"}, "pr change 2\n")
    assert env.gh.patch(f"{R}/git/refs/heads/pr/one", json={"sha": newer}).status_code == 200
    (sync,) = env.wait("pull_request", "synchronize")
    assert (sync.json["before"], sync.json["after"]) == (head, newer)

    assert env.gh.patch(f"{R}/pulls/{number}", json={"state": "closed"}).status_code == 200
    (closed,) = env.wait("pull_request", "closed")
    assert closed.json["pull_request"]["merged"] is False
    assert env.gh.patch(f"{R}/pulls/{number}", json={"state": "open"}).status_code == 200
    env.wait("pull_request", "reopened")

    merged = env.gh.put(f"{R}/pulls/{number}/merge", json={"merge_method": "squash"})
    assert merged.status_code == 200, merged.text
    closes = env.wait("pull_request", "closed", count=2)
    assert closes[-1].json["pull_request"]["merged"] is True
    assert any(p.json["after"] == merged.json()["sha"] for p in env.wait("push"))


def test_repository_edited_and_renamed(env: Env) -> None:
    assert env.gh.patch(R, json={"description": "edited"}).status_code == 200
    (edited,) = env.wait("repository", "edited")
    assert edited.json["changes"]["description"]["from"] == "hooks"
    renamed = env.gh.patch(R, json={"name": "hooks-renamed"})
    assert renamed.status_code == 200
    (event,) = env.wait("repository", "renamed")
    assert event.json["changes"]["repository"]["name"]["from"] == REPO
    assert env.gh.patch(f"/repos/{OWNER}/hooks-renamed", json={"name": REPO}).status_code == 200
    env.wait("repository", "renamed", count=2)


def test_tags_over_git_smart_http(env: Env) -> None:
    """Lightweight and annotated tags: create (ref_type tag) and push events, then a deletion."""
    work = env.tmp / "tags"
    git(env.tmp, "clone", "-q", env.emu.git_url(OWNER, REPO, env.user.token, user=OWNER), str(work))
    git(work, "tag", "v1.0")
    git(work, "tag", "-a", "v1.1", "-m", "annotated")
    git(work, "push", "-q", "origin", "v1.0", "v1.1")
    for tag in ("v1.0", "v1.1"):
        (created,) = where(env, "create", ref=tag)
        assert created["ref_type"] == "tag"
        where(env, "push", ref=f"refs/tags/{tag}", created=True)
    git(work, "push", "-q", "origin", "--delete", "v1.0")
    (deleted,) = where(env, "delete", ref="v1.0")
    assert deleted["ref_type"] == "tag"
    # A later branch push still works with an annotated tag in the repository.
    (work / "after-tags.txt").write_text("x\n")
    git(work, "add", "after-tags.txt")
    git(work, "commit", "-q", "-m", "after tags")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/after-tags")
    where(env, "push", ref="refs/heads/after-tags", created=True)


def test_one_push_of_several_refs(env: Env) -> None:
    """Two new branches sharing new commits and four tags in one push: each branch's payload lists
    what the push brought it (computed from the refs before the push); no events for the tags."""
    work = env.tmp / "multi-ref"
    git(env.tmp, "clone", "-q", env.emu.git_url(OWNER, REPO, env.user.token, user=OWNER), str(work))
    git(work, "checkout", "-q", "-b", "multi/one")
    (work / "one.txt").write_text("1\n")
    git(work, "add", "one.txt")
    git(work, "commit", "-q", "-m", "one")
    first = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "multi/two")
    (work / "two.txt").write_text("2\n")
    git(work, "add", "two.txt")
    git(work, "commit", "-q", "-m", "two")
    tags = [f"multi-tag-{n}" for n in range(4)]
    for tag in tags:
        git(work, "tag", tag)
    git(work, "push", "-q", "origin", "multi/one", "multi/two", *tags)
    (one,) = where(env, "push", ref="refs/heads/multi/one")
    (two,) = where(env, "push", ref="refs/heads/multi/two")
    assert [c["id"] for c in one["commits"]] == [first]
    assert [(c["id"] == first, c["distinct"]) for c in two["commits"]] == [(True, False), (False, True)]
    # The author's email is the user's: GitHub adds the username.
    assert one["commits"][0]["author"]["username"] == OWNER
    env.emu.wait_for_deliveries()
    assert not [r for r in env.rx.received if str((r.json or {}).get("ref", "")).endswith(tuple(tags))]


def test_redelivery_keeps_the_delivery_guid(env: Env) -> None:
    env.emu.wait_for_deliveries()
    jwt_headers = {"Authorization": f"Bearer {env.emu.app_jwt(env.app)}"}
    listed = env.gh.get("/app/hook/deliveries", headers=jwt_headers, params={"per_page": 100})
    assert listed.status_code == 200
    push = next(d for d in listed.json() if d["event"] == "push")
    detail = env.gh.get(f"/app/hook/deliveries/{push['id']}", headers=jwt_headers)
    assert detail.status_code == 200
    validate_webhook("push", detail.json()["request"]["payload"])
    before = [r for r in env.rx.received if r.headers.get("x-github-delivery") == push["guid"]]
    again = env.gh.post(f"/app/hook/deliveries/{push['id']}/attempts", headers=jwt_headers)
    assert again.status_code == 202
    env.rx.wait_for(
        lambda items: (
            len([r for r in items if r.headers.get("x-github-delivery") == push["guid"]]) > len(before)
        )
    )


def test_installation_deleted(env: Env) -> None:
    env.emu.delete_installation(env.installation_id)
    (deleted,) = env.wait("installation", "deleted")
    assert deleted.json["installation"]["id"] == env.installation_id


def _check_delivery(env: Env, delivery: ReceivedWebhook) -> list[str]:
    """GitHub's delivery headers and signatures; returns problems found."""
    h = delivery.headers
    problems = []
    hook_id = h.get("x-github-hook-id", "")
    secret = env.secrets.get(hook_id)
    expected = {
        "content-type": "application/json",
        "x-github-event": delivery.event,
    }
    problems += [f"{k}={h.get(k)!r}" for k, v in expected.items() if h.get(k) != v]
    if not UUID.match(h.get("x-github-delivery", "")):
        problems.append(f"x-github-delivery={h.get('x-github-delivery')!r}")
    if not h.get("user-agent", "").startswith("GitHub-Hookshot/"):
        problems.append(f"user-agent={h.get('user-agent')!r}")
    target = h.get("x-github-hook-installation-target-type")
    if target not in ("integration", "repository"):
        problems.append(f"x-github-hook-installation-target-type={target!r}")
    if not h.get("x-github-hook-installation-target-id", "").isdigit():
        problems.append("x-github-hook-installation-target-id")
    if secret is None:
        problems.append(f"unknown hook id {hook_id!r}")
    else:
        body = delivery.body
        sha256 = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        sha1 = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        if h.get("x-hub-signature-256") != sha256:
            problems.append("x-hub-signature-256 does not verify")
        if h.get("x-hub-signature") != sha1:
            problems.append("x-hub-signature does not verify")
    app_hook = hook_id == str(env.app.hook_id)
    target_id = h.get("x-github-hook-installation-target-id")
    if app_hook and (target, target_id) != ("integration", str(env.app.id)):
        problems.append(f"App hook target {target}/{target_id}, expected integration/{env.app.id}")
    if not app_hook and target != "repository":
        problems.append(f"repository hook target {target}")
    payload: Any = delivery.json
    if app_hook and delivery.event not in ("ping",) and "installation" not in payload:
        problems.append("App delivery without `installation`")
    return problems


def test_every_delivery_validates_and_is_signed(env: Env, request: pytest.FixtureRequest) -> None:
    """Runs last: every payload received matches its schema; all events listed were emitted."""
    env.emu.wait_for_deliveries()
    received = list(env.rx.received)
    assert received, "no webhooks received"
    failures: list[str] = []
    seen: set[tuple[str, str | None]] = set()
    for delivery in received:
        payload = delivery.json
        action = payload.get("action") if isinstance(payload, dict) else None
        seen.add((delivery.event, action))
        try:
            validate_webhook(delivery.event, delivery.body)
        except AssertionError as exc:
            failures.append(str(exc))
        problems = _check_delivery(env, delivery)
        if problems:
            failures.append(f"{delivery.event}/{action}: {'; '.join(problems)}")
    assert not failures, "\n\n".join(failures)
    prefix = request.node.nodeid.split("::")[0] + "::"
    selected = [i for i in request.session.items if i.nodeid.startswith(prefix)]
    if len(selected) == len([n for n in dir(request.module) if n.startswith("test_")]):
        missing = REQUIRED_EVENTS - seen
        assert not missing, f"never emitted: {sorted(missing, key=str)}; seen {sorted(seen, key=str)}"
