"""Conformance: every REST response the emulator sends matches GitHub's published OpenAPI schema.

Drives every endpoint the emulator serves, on success and documented error paths, through one
client whose response hook validates each body against the schema of its operation and status
(``tests/support/github_schemas.py``) and records which (operation, status) pairs were seen; the
last test checks that coverage. Request bodies sent are validated against ``requestBody`` too, so
the tests use the API the way GitHub documents it.
"""

from __future__ import annotations

import base64
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from github_emulator.testing import AppInfo, EmulatorHandle, UserInfo, run_emulator
from support.github_schemas import (
    SchemaMismatch,
    find_operation,
    validate_httpx_response,
    validate_request,
)

OWNER = "octo"
REPO = "hello"
R = f"/repos/{OWNER}/{REPO}"
ZERO = "0" * 40

# (operationId -> statuses) seen and validated, filled by the response hook.
COVERAGE: dict[str, set[int]] = defaultdict(set)
# Responses missing GitHub's standard headers, checked by test_standard_headers_on_every_response.
HEADER_GAPS: set[str] = set()
RATE_LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def _check(response: httpx.Response) -> None:
    response.read()
    path = response.request.url.path
    if path.startswith("/_emulator") or ".git/" in path:
        return
    checked = validate_httpx_response(response)
    COVERAGE[checked.operation_id].add(response.status_code)
    expected = ("x-github-request-id", *RATE_LIMIT_HEADERS)
    missing = [h for h in expected if h not in response.headers]
    if missing:
        HEADER_GAPS.add(f"{checked.operation_id} {response.status_code}: {', '.join(missing)}")
    if response.status_code >= 400 and response.content:
        # GitHub's error bodies always carry a message and a documentation_url.
        body = response.json()
        assert isinstance(body.get("message"), str), body
        assert isinstance(body.get("documentation_url"), str), body


def _check_request(request: httpx.Request) -> None:
    path = request.url.path
    if path.startswith("/_emulator") or ".git/" in path or not request.content:
        return
    validate_request(request.method, request.url.raw_path.decode(), request.content)


def client(emu: EmulatorHandle, auth: str | None = None, prefix: str = "") -> httpx.Client:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if auth:
        headers["Authorization"] = auth
    return httpx.Client(
        base_url=emu.url + prefix,
        headers=headers,
        event_hooks={"request": [_check_request], "response": [_check]},
        trust_env=False,
        timeout=30,
    )


@dataclass
class Env:
    emu: EmulatorHandle
    app: AppInfo
    installation_id: int
    user: UserInfo
    gh: httpx.Client  # installation token
    person: httpx.Client  # user token

    def app_client(self) -> httpx.Client:
        return client(self.emu, f"Bearer {self.emu.app_jwt(self.app)}")

    def sha(self, ref: str = "heads/main") -> str:
        sha: str = self.gh.get(f"{R}/git/ref/{ref}").json()["object"]["sha"]
        return sha

    def commit_on(self, parent: str, files: dict[str, str | None], message: str) -> str:
        """A commit (via the Git Data API) on ``parent`` changing ``files`` (None deletes)."""
        base_tree = self.gh.get(f"{R}/git/commits/{parent}").json()["tree"]["sha"]
        entries: list[dict[str, Any]] = [
            {"path": p, "mode": "100644", "type": "blob", "content": c}
            if c is not None
            else {"path": p, "mode": "100644", "type": "blob", "sha": None}
            for p, c in files.items()
        ]
        tree = self.gh.post(f"{R}/git/trees", json={"base_tree": base_tree, "tree": entries})
        assert tree.status_code == 201, tree.text
        commit = self.gh.post(
            f"{R}/git/commits",
            json={"message": message, "tree": tree.json()["sha"], "parents": [parent]},
        )
        assert commit.status_code == 201, commit.text
        sha: str = commit.json()["sha"]
        return sha

    def branch(self, name: str, sha: str) -> None:
        created = self.gh.post(f"{R}/git/refs", json={"ref": f"refs/heads/{name}", "sha": sha})
        assert created.status_code == 201, created.text


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data = Path(tmp_path_factory.mktemp("conformance-rest"))
    with run_emulator(data / "emulator", tree_entry_limit=3) as emu:
        app = emu.create_app("conformance")
        user = emu.create_user(OWNER, name="Octo Cat", email="octo@example.com")
        emu.create_repo(
            OWNER,
            REPO,
            files={"README.md": "# hello\n", "src/app.py": "print('hi')\n", "docs/a.md": "a\n"},
            description="conformance",
        )
        emu.create_repo(OWNER, "secret", private=True, files={"a.txt": "a\n"})
        emu.create_repo(OWNER, "empty")
        installation_id = emu.create_installation(
            app.id, OWNER, [f"{OWNER}/{REPO}", f"{OWNER}/secret", f"{OWNER}/empty"]
        )
        token = emu.installation_token(app, installation_id)
        with (
            client(emu, f"token {token}") as gh,
            client(emu, f"token {user.token}") as person,
        ):
            yield Env(emu, app, installation_id, user, gh, person)


# ---------------------------------------------------------------------------- Apps and auth


def test_app_endpoints(env: Env) -> None:
    with env.app_client() as app:
        assert app.get("/app").status_code == 200
        listed = app.get("/app/installations")
        assert listed.status_code == 200
        assert [i["id"] for i in listed.json()] == [env.installation_id]
        assert app.get(f"/app/installations/{env.installation_id}").status_code == 200
        assert app.get("/app/installations/987654").status_code == 404
        assert app.get(f"{R}/installation").status_code == 200
        assert app.get(f"/repos/{OWNER}/missing/installation").status_code == 404
        scoped = app.post(
            f"/app/installations/{env.installation_id}/access_tokens",
            json={"repositories": [REPO], "permissions": {"contents": "write"}},
        )
        assert scoped.status_code == 201
        assert app.post("/app/installations/987654/access_tokens").status_code == 404
        assert app.get("/app/hook/config").status_code == 200
    repos = env.gh.get("/installation/repositories")
    assert repos.status_code == 200
    assert {r["full_name"] for r in repos.json()["repositories"]} == {
        f"{OWNER}/{REPO}",
        f"{OWNER}/secret",
        f"{OWNER}/empty",
    }
    assert env.gh.get("/rate_limit").status_code == 200
    assert env.person.get("/user").status_code == 200
    assert env.gh.get(f"/users/{OWNER}").json()["login"] == OWNER
    bot = env.gh.get(f"/users/{env.app.slug}[bot]").json()
    assert (bot["login"], bot["type"]) == (f"{env.app.slug}[bot]", "Bot")
    assert env.gh.get("/users/nobody-here").status_code == 404


def test_bad_expired_and_revoked_credentials_get_401(env: Env) -> None:
    with client(env.emu, "token ghs_not_a_real_token") as bad:
        assert bad.get(R).status_code == 401
    now = int(time.time())
    too_long = jwt.encode(
        {"iat": now, "exp": now + 3600, "iss": str(env.app.id)}, env.app.private_key, "RS256"
    )
    with client(env.emu, f"Bearer {too_long}") as bad_jwt:
        assert bad_jwt.get("/app").status_code == 401
        assert bad_jwt.get("/app/installations").status_code == 401
    token = env.emu.installation_token(env.app, env.installation_id)
    with client(env.emu, f"token {token}") as short:
        assert short.get(R).status_code == 200
        env.emu.expire_tokens(token=token)
        assert short.get(R).status_code == 401
        assert short.get("/installation/repositories").status_code == 401
    token = env.emu.installation_token(env.app, env.installation_id)
    with client(env.emu, f"token {token}") as revoked:
        assert revoked.delete("/installation/token").status_code == 204
        assert revoked.get(R).status_code == 401


# ---------------------------------------------------------------------------- repositories


def test_repository_get_patch_etag_and_404(env: Env) -> None:
    first = env.gh.get(R)
    assert first.status_code == 200
    etag = first.headers["etag"]
    again = env.gh.get(R, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert env.gh.get(f"/repos/{OWNER}/missing").status_code == 404
    patched = env.gh.patch(R, json={"description": "edited", "homepage": "https://example.com"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "edited"
    # GitHub Enterprise Server form
    with client(env.emu, env.gh.headers["Authorization"], prefix="/api/v3") as ghes:
        assert ghes.get(R).status_code == 200
        assert ghes.get(f"{R}/git/ref/heads/main").status_code == 200


def test_private_and_empty_repositories(env: Env) -> None:
    secret = env.gh.get(f"/repos/{OWNER}/secret")
    assert secret.status_code == 200
    assert (secret.json()["private"], secret.json()["visibility"]) == (True, "private")
    with client(env.emu) as anonymous:
        assert anonymous.get(f"/repos/{OWNER}/secret").status_code == 404
        assert anonymous.get(R).status_code == 200
    empty = f"/repos/{OWNER}/empty"
    assert env.gh.get(empty).status_code == 200
    assert env.gh.get(f"{empty}/branches").json() == []
    # GitHub answers 409 "Git Repository is empty." on an empty repository's git data.
    assert env.gh.get(f"{empty}/git/ref/heads/main").status_code == 409
    assert env.gh.get(f"{empty}/git/matching-refs/heads/").status_code == 409
    assert env.gh.get(f"{empty}/contents/").status_code == 404
    blob = env.gh.post(f"{empty}/git/blobs", json={"content": "first\n"})
    assert (blob.status_code, blob.json()["message"]) == (409, "Git Repository is empty.")
    empty_commits = env.gh.get(f"{empty}/commits")
    assert (empty_commits.status_code, empty_commits.json()["message"]) == (
        409,
        "Git Repository is empty.",
    )
    # The Contents API is what fills an empty repository.
    created = env.gh.put(
        f"{empty}/contents/README.md",
        json={"message": "Initial commit", "content": base64.b64encode(b"first\n").decode()},
    )
    assert created.status_code == 201
    sha = created.json()["content"]["sha"]
    again = {"message": "Second", "content": base64.b64encode(b"second\n").decode()}
    assert env.gh.put(f"{empty}/contents/README.md", json=again).status_code == 422
    assert env.gh.put(f"{empty}/contents/README.md", json={**again, "sha": sha}).status_code == 200
    assert env.gh.get(f"{empty}/git/ref/heads/main").status_code == 200


def test_rename_answers_301_from_the_old_name(env: Env) -> None:
    renamed = env.gh.patch(R, json={"name": "hello-renamed"})
    assert renamed.status_code == 200
    try:
        moved = env.gh.get(R)
        assert moved.status_code == 301
        assert moved.headers["location"]
        target = env.gh.get(moved.headers["location"])
        assert target.status_code == 200
        assert target.json()["full_name"] == f"{OWNER}/hello-renamed"
    finally:
        back = env.gh.patch(f"/repos/{OWNER}/hello-renamed", json={"name": REPO})
        assert back.status_code == 200


def test_branches_commits_compare_and_contents(env: Env) -> None:
    main = env.sha()
    feature = env.commit_on(main, {"docs/a.md": "a2\n", "new.txt": "n\n"}, "feature work\n")
    env.branch("feature/compare", feature)

    assert env.gh.get(f"{R}/branches").status_code == 200
    assert env.gh.get(f"{R}/branches/main").status_code == 200
    assert env.gh.get(f"{R}/branches/feature/compare").status_code == 200
    assert env.gh.get(f"{R}/branches/nope").status_code == 404

    assert env.gh.get(f"{R}/commits", params={"sha": "feature/compare"}).status_code == 200
    assert env.gh.get(f"{R}/commits/{feature}").status_code == 200
    assert env.gh.get(f"{R}/commits/feature/compare").status_code == 200
    assert env.gh.get(f"{R}/commits/{'1' * 40}").status_code in (404, 422)

    compared = env.gh.get(f"{R}/compare/main...feature/compare")
    assert compared.status_code == 200
    body = compared.json()
    assert body["status"] == "ahead" and body["ahead_by"] == 1
    assert {f["filename"]: f["status"] for f in body["files"]} == {
        "docs/a.md": "modified",
        "new.txt": "added",
    }
    assert env.gh.get(f"{R}/compare/main...nope").status_code == 404
    paged = env.gh.get(f"{R}/compare/main...feature/compare", params={"per_page": 1, "page": 1})
    assert paged.status_code == 200 and paged.json()["total_commits"] == 1
    # Unrelated histories: GitHub's 404 "No common ancestor between ...".
    tree = env.gh.post(f"{R}/git/trees", json={"tree": [{"path": "o.txt", "mode": "100644", "content": "o"}]})
    orphan = env.gh.post(
        f"{R}/git/commits", json={"message": "orphan", "tree": tree.json()["sha"], "parents": []}
    )
    env.branch("orphan/compare", orphan.json()["sha"])
    unrelated = env.gh.get(f"{R}/compare/main...orphan/compare")
    assert (unrelated.status_code, unrelated.json()["message"]) == (
        404,
        "No common ancestor between main and orphan/compare.",
    )

    assert env.gh.get(f"{R}/contents/README.md").status_code == 200
    assert env.gh.get(f"{R}/contents/docs/a.md", params={"ref": "feature/compare"}).status_code == 200
    assert env.gh.get(f"{R}/contents/src").status_code == 200
    assert env.gh.get(f"{R}/contents/").status_code == 200
    assert env.gh.get(f"{R}/contents/nope.md").status_code == 404


def test_collaborator_permission(env: Env) -> None:
    assert env.person.get(f"{R}/collaborators/{OWNER}/permission").status_code == 200


def test_branch_protection(env: Env) -> None:
    main = env.sha()
    env.branch("guarded", main)
    url = f"{R}/branches/guarded/protection"
    unprotected = env.gh.get(url)
    assert unprotected.status_code == 404
    assert unprotected.json()["message"] == "Branch not protected"
    rules = {
        "required_status_checks": None,
        "enforce_admins": True,
        "required_pull_request_reviews": None,
        "restrictions": None,
        "allow_force_pushes": False,
        "allow_deletions": False,
    }
    put = env.gh.put(url, json=rules)
    assert put.status_code == 200
    assert env.gh.get(url).status_code == 200
    assert env.gh.get(f"{R}/branches/guarded").json()["protected"] is True
    # A protected branch refuses what protection forbids: a non-fast-forward and a deletion.
    side = env.commit_on(main, {"side.txt": "s\n"}, "side\n")
    ahead = env.commit_on(main, {"ahead.txt": "a\n"}, "ahead\n")
    assert env.gh.patch(f"{R}/git/refs/heads/guarded", json={"sha": ahead}).status_code == 200
    forced = env.gh.patch(f"{R}/git/refs/heads/guarded", json={"sha": side, "force": True})
    assert forced.status_code == 422
    assert env.gh.delete(f"{R}/git/refs/heads/guarded").status_code == 422
    with_checks = dict(rules, required_status_checks={"strict": True, "contexts": ["ci/test"]})
    with_checks["required_pull_request_reviews"] = {"required_approving_review_count": 1}
    with_checks["restrictions"] = {"users": [OWNER], "teams": [], "apps": [env.app.slug]}
    assert env.gh.put(url, json=with_checks).status_code == 200
    full = env.gh.get(url)
    assert full.status_code == 200
    assert [a["slug"] for a in full.json()["restrictions"]["apps"]] == [env.app.slug]
    assert env.gh.get(f"{R}/branches/guarded").status_code == 200
    assert env.gh.delete(url).status_code == 204
    assert env.gh.get(url).status_code == 404
    assert env.gh.delete(f"{R}/git/refs/heads/guarded").status_code == 204


# ---------------------------------------------------------------------------- Git Data API


def test_blobs(env: Env) -> None:
    text = env.gh.post(f"{R}/git/blobs", json={"content": "héllo\n", "encoding": "utf-8"})
    assert text.status_code == 201
    b64 = base64.b64encode("héllo\n".encode()).decode()
    binary = env.gh.post(f"{R}/git/blobs", json={"content": b64, "encoding": "base64"})
    assert binary.status_code == 201
    assert text.json()["sha"] == binary.json()["sha"]
    assert env.gh.get(f"{R}/git/blobs/{text.json()['sha']}").status_code == 200
    assert env.gh.get(f"{R}/git/blobs/{'1' * 40}").status_code == 404


def test_trees(env: Env) -> None:
    main = env.sha()
    base = env.gh.get(f"{R}/git/commits/{main}").json()["tree"]["sha"]
    made = env.gh.post(
        f"{R}/git/trees",
        json={
            "base_tree": base,
            "tree": [
                {"path": "src/app.py", "mode": "100644", "type": "blob", "sha": None},
                {"path": "x/y/z.md", "mode": "100644", "type": "blob", "content": "z\n"},
            ],
        },
    )
    assert made.status_code == 201
    sha = made.json()["sha"]
    assert env.gh.get(f"{R}/git/trees/{sha}").status_code == 200
    full = env.gh.get(f"{R}/git/trees/{sha}", params={"recursive": "1"})
    assert full.status_code == 200
    assert full.json()["truncated"] is True  # tree_entry_limit=3
    assert env.gh.get(f"{R}/git/trees/main").status_code == 200
    assert env.gh.get(f"{R}/git/trees/{'1' * 40}").status_code == 404
    delete_missing = env.gh.post(
        f"{R}/git/trees",
        json={
            "base_tree": base,
            "tree": [{"path": "nope.txt", "mode": "100644", "type": "blob", "sha": None}],
        },
    )
    assert delete_missing.status_code == 422
    blob = env.gh.post(f"{R}/git/blobs", json={"content": "x"}).json()["sha"]
    both = env.gh.post(
        f"{R}/git/trees",
        json={"tree": [{"path": "x", "mode": "100644", "type": "blob", "sha": blob, "content": "x"}]},
    )
    assert both.status_code == 422
    mismatched = env.gh.post(
        f"{R}/git/trees", json={"tree": [{"path": "d", "mode": "040000", "type": "tree", "content": "x"}]}
    )
    assert mismatched.status_code == 422
    as_file = env.gh.post(f"{R}/git/trees", json={"tree": [{"path": "f", "mode": "100644", "sha": base}]})
    assert as_file.status_code == 422


def test_commits_and_refs(env: Env) -> None:
    main = env.sha()
    assert env.gh.get(f"{R}/git/commits/{main}").status_code == 200
    assert env.gh.get(f"{R}/git/commits/{'1' * 40}").status_code == 404
    tree = env.gh.get(f"{R}/git/commits/{main}").json()["tree"]["sha"]
    authored = env.gh.post(
        f"{R}/git/commits",
        json={
            "message": "authored\n",
            "tree": tree,
            "parents": [main],
            "author": {"name": "A", "email": "a@example.com", "date": "2024-01-02T03:04:05Z"},
            "committer": {"name": "C", "email": "c@example.com", "date": "2024-01-02T03:04:05+02:00"},
        },
    )
    assert authored.status_code == 201
    bad = env.gh.post(f"{R}/git/commits", json={"message": "m", "tree": "1" * 40, "parents": []})
    assert bad.status_code == 422

    one = env.commit_on(main, {"one.txt": "1\n"}, "one\n")
    two = env.commit_on(one, {"two.txt": "2\n"}, "two\n")
    other = env.commit_on(main, {"other.txt": "o\n"}, "other\n")
    ref = "refs/heads/feature/refs"
    created = env.gh.post(f"{R}/git/refs", json={"ref": ref, "sha": one})
    assert created.status_code == 201
    assert env.gh.post(f"{R}/git/refs", json={"ref": ref, "sha": one}).status_code == 422
    assert env.gh.post(f"{R}/git/refs", json={"ref": "heads/bad", "sha": one}).status_code == 422
    assert env.gh.get(f"{R}/git/ref/heads/feature/refs").status_code == 200
    assert env.gh.get(f"{R}/git/ref/heads%2Ffeature%2Frefs").status_code == 200
    assert env.gh.get(f"{R}/git/ref/heads/nope").status_code == 404
    matching = env.gh.get(f"{R}/git/matching-refs/heads/feature/")
    assert matching.status_code == 200
    assert ref in [r["ref"] for r in matching.json()]
    assert env.gh.get(f"{R}/git/matching-refs/heads/zzz").json() == []

    assert env.gh.patch(f"{R}/git/refs/heads/feature/refs", json={"sha": two}).status_code == 200
    not_ff = env.gh.patch(f"{R}/git/refs/heads/feature/refs", json={"sha": other, "force": False})
    assert not_ff.status_code == 422
    assert not_ff.json()["message"] == "Update is not a fast forward"
    forced = env.gh.patch(f"{R}/git/refs/heads%2Ffeature%2Frefs", json={"sha": other, "force": True})
    assert forced.status_code == 200
    assert env.gh.patch(f"{R}/git/refs/heads/nope", json={"sha": one}).status_code == 422
    assert env.gh.delete(f"{R}/git/refs/heads/feature/refs").status_code == 204
    assert env.gh.delete(f"{R}/git/refs/heads/feature/refs").status_code == 422
    default = env.gh.delete(f"{R}/git/refs/heads/main")
    assert default.status_code == 422
    missing = env.gh.delete(f"{R}/git/refs/heads/feature/refs")
    assert missing.json()["message"] == "Reference does not exist"
    assert env.gh.get(f"{R}/git/ref/refs/heads/main").status_code == 404  # read literally
    tree = env.gh.get(f"{R}/git/commits/{main}").json()["tree"]["sha"]
    assert env.gh.post(f"{R}/git/refs", json={"ref": "refs/heads/to-tree", "sha": tree}).status_code == 422
    assert env.sha() == main


# ---------------------------------------------------------------------------- pull requests


def test_pull_requests(env: Env) -> None:
    main = env.sha()
    head = env.commit_on(main, {"pr.txt": "pr\n"}, "pr change\n")
    env.branch("feature/pr", head)
    assert env.gh.get(f"{R}/pulls", params={"state": "open"}).status_code == 200
    opened = env.gh.post(
        f"{R}/pulls",
        json={"title": "PR one", "head": "feature/pr", "base": "main", "body": "please"},
    )
    assert opened.status_code == 201
    number = opened.json()["number"]
    assert (
        env.gh.post(f"{R}/pulls", json={"title": "dup", "head": "feature/pr", "base": "main"}).status_code
        == 422
    )
    assert (
        env.gh.post(f"{R}/pulls", json={"title": "no head", "head": "nope", "base": "main"}).status_code
        == 422
    )
    assert env.gh.get(f"{R}/pulls/{number}").status_code == 200
    assert env.gh.get(f"{R}/pulls/999").status_code == 404
    for params in (
        {"state": "all"},
        {"head": f"{OWNER}:feature/pr"},
        {"base": "main", "sort": "updated", "direction": "desc"},
    ):
        listed = env.gh.get(f"{R}/pulls", params=params)
        assert listed.status_code == 200
        assert number in [p["number"] for p in listed.json()]
    assert env.gh.get(f"{R}/pulls/{number}/commits").status_code == 200
    updated = env.gh.patch(f"{R}/pulls/{number}", json={"title": "PR one (edited)", "body": "b"})
    assert updated.status_code == 200
    assert env.gh.get(f"{R}/pulls/{number}/merge").status_code == 404

    stale = env.gh.put(f"{R}/pulls/{number}/merge", json={"sha": main})
    assert stale.status_code == 409
    merged = env.gh.put(
        f"{R}/pulls/{number}/merge",
        json={"merge_method": "merge", "commit_title": "Merge PR one", "sha": head},
    )
    assert merged.status_code == 200
    assert merged.json()["merged"] is True
    assert env.gh.get(f"{R}/pulls/{number}/merge").status_code == 204
    assert env.gh.get(f"{R}/pulls/{number}").json()["merged"] is True
    assert env.gh.put(f"{R}/pulls/{number}/merge").status_code == 405

    for method in ("squash", "rebase"):
        base = env.sha()
        change = env.commit_on(base, {f"{method}.txt": f"{method}\n"}, f"{method} change\n")
        env.branch(f"feature/{method}", change)
        pr = env.gh.post(f"{R}/pulls", json={"title": method, "head": f"feature/{method}", "base": "main"})
        assert pr.status_code == 201
        done = env.gh.put(f"{R}/pulls/{pr.json()['number']}/merge", json={"merge_method": method})
        assert done.status_code == 200, done.text

    closing = env.commit_on(env.sha(), {"closed.txt": "c\n"}, "to close\n")
    env.branch("feature/closed", closing)
    pr = env.gh.post(f"{R}/pulls", json={"title": "close me", "head": "feature/closed", "base": "main"})
    n = pr.json()["number"]
    assert env.gh.patch(f"{R}/pulls/{n}", json={"state": "closed"}).status_code == 200
    assert env.gh.put(f"{R}/pulls/{n}/merge").status_code == 405
    assert env.gh.get(f"{R}/pulls", params={"state": "closed"}).status_code == 200
    assert env.gh.patch(f"{R}/pulls/{n}", json={"state": "open"}).status_code == 200

    # A draft cannot be merged; mergeability is null until a GET starts GitHub's job.
    drafted = env.commit_on(env.sha(), {"draft.txt": "d\n"}, "draft\n")
    env.branch("feature/draft", drafted)
    draft = env.gh.post(
        f"{R}/pulls", json={"title": "d", "head": "feature/draft", "base": "main", "draft": True}
    )
    assert draft.status_code == 201 and draft.json()["mergeable"] is None
    d = draft.json()["number"]
    env.gh.get(f"{R}/pulls/{d}")
    assert env.gh.get(f"{R}/pulls/{d}").json()["mergeable_state"] == "draft"
    assert env.gh.get(f"{R}/git/ref/pull/{d}/head").status_code == 200
    assert env.gh.put(f"{R}/pulls/{d}/merge").json()["message"] == "Pull Request is still a draft"


# ---------------------------------------------------------------------------- hooks and deliveries


def test_hooks_and_deliveries(env: Env) -> None:
    with env.app_client() as app:
        assert app.patch("/app/hook/config", json={"url": "http://127.0.0.1:9/nowhere"}).status_code == 200
        assert app.get("/app/hook/config").status_code == 200
    env.emu.wait_for_deliveries(lambda ds: len(ds) > 0)
    with env.app_client() as app:
        listed = app.get("/app/hook/deliveries", params={"per_page": 100})
        assert listed.status_code == 200
        assert listed.json(), "expected at least one delivery"
        delivery_id = listed.json()[0]["id"]
        assert app.get(f"/app/hook/deliveries/{delivery_id}").status_code == 200
        assert app.get("/app/hook/deliveries/987654321").status_code == 404
        assert app.post(f"/app/hook/deliveries/{delivery_id}/attempts").status_code == 202

    created = env.gh.post(
        f"{R}/hooks",
        json={
            "name": "web",
            "active": True,
            "events": ["push", "pull_request"],
            "config": {"url": "http://127.0.0.1:9/repo-hook", "content_type": "json"},
        },
    )
    assert created.status_code == 201
    assert env.gh.get(f"{R}/hooks").status_code == 200
    assert env.gh.delete(f"{R}/hooks/{created.json()['id']}").status_code == 204
    assert env.gh.delete(f"{R}/hooks/{created.json()['id']}").status_code == 404


# ------------------------------------------------ meta, archives, transfer, suspension (issue 8, E2)


def test_meta_archives_transfer_hook_redelivery_and_suspension(env: Env) -> None:
    assert env.gh.get("/meta").json()["hooks"] == ["127.0.0.1/32", "::1/128"]
    for kind in ("tarball", "zipball"):
        assert env.gh.get(f"{R}/{kind}/main").status_code == 302
    env.emu.create_repo(OWNER, "movable", files={"m.txt": "m\n"})
    env.emu.change_installation(env.installation_id, add=[f"{OWNER}/movable"])
    moved = env.gh.post(f"/repos/{OWNER}/movable/transfer", json={"new_owner": "elsewhere"})
    assert moved.status_code == 202 and moved.json()["full_name"] == "elsewhere/movable"
    hook = env.gh.post(
        "/repos/elsewhere/movable/hooks", json={"config": {"url": "http://127.0.0.1:9/x"}, "events": ["push"]}
    ).json()
    env.emu.wait_for_deliveries()
    base = f"/repos/elsewhere/movable/hooks/{hook['id']}/deliveries"
    (ping,) = env.gh.get(base).json()
    assert env.gh.get(f"{base}/{ping['id']}").json()["event"] == "ping"
    assert env.gh.post(f"{base}/{ping['id']}/attempts").status_code == 202
    with env.app_client() as app:
        assert app.put(f"/app/installations/{env.installation_id}/suspended").status_code == 204
        assert env.gh.get(R).status_code == 403
        assert app.delete(f"/app/installations/{env.installation_id}/suspended").status_code == 204
    assert env.gh.get(R).status_code == 200


# ---------------------------------------------------------------------------- coverage

# Statuses that must have been seen (and validated) per operation.
REQUIRED: dict[str, set[int]] = {
    "apps/get-authenticated": {200},
    "apps/list-installations": {200},
    "apps/get-installation": {200, 404},
    "apps/create-installation-access-token": {201, 404},
    "apps/get-repo-installation": {200, 404},
    "apps/list-repos-accessible-to-installation": {200, 401},
    "apps/revoke-installation-access-token": {204},
    "apps/get-webhook-config-for-app": {200},
    "apps/update-webhook-config-for-app": {200},
    "apps/list-webhook-deliveries": {200},
    "apps/get-webhook-delivery": {200},
    "apps/redeliver-webhook-delivery": {202},
    "repos/get": {200, 301, 304, 401, 404},
    "repos/update": {200},
    "repos/list-branches": {200},
    "repos/get-branch": {200, 404},
    "repos/get-branch-protection": {200, 404},
    "repos/update-branch-protection": {200},
    "repos/delete-branch-protection": {204},
    "repos/list-commits": {200},
    "repos/get-commit": {200},
    "repos/compare-commits": {200, 404},
    "repos/get-content": {200, 404},
    "repos/create-or-update-file-contents": {200, 201, 422},
    "repos/create-webhook": {201},
    "repos/list-webhooks": {200},
    "repos/delete-webhook": {204, 404},
    "git/create-blob": {201, 409},
    "git/get-blob": {200, 404},
    "git/create-tree": {201, 422},
    "git/get-tree": {200, 404},
    "git/create-commit": {201, 422},
    "git/get-commit": {200, 404},
    "git/create-ref": {201, 422},
    "git/get-ref": {200, 404, 409},
    "git/list-matching-refs": {200, 409},
    "git/update-ref": {200, 422},
    "git/delete-ref": {204, 422},
    "pulls/create": {201, 422},
    "pulls/get": {200, 404},
    "pulls/list": {200},
    "pulls/update": {200},
    "pulls/list-commits": {200},
    "pulls/check-if-merged": {204, 404},
    "pulls/merge": {200, 405, 409},
    "rate-limit/get": {200},
    "meta/get": {200},
    "repos/download-tarball-archive": {302},
    "repos/download-zipball-archive": {302},
    "repos/transfer": {202},
    "repos/list-webhook-deliveries": {200},
    "repos/get-webhook-delivery": {200},
    "repos/redeliver-webhook-delivery": {202},
    "apps/suspend-installation": {204},
    "apps/unsuspend-installation": {204},
    "users/get-authenticated": {200},
}


def test_coverage(env: Env, request: pytest.FixtureRequest) -> None:
    """Runs last: every operation above was driven and validated with the statuses listed."""
    prefix = request.node.nodeid.split("::")[0] + "::"
    selected = [i for i in request.session.items if i.nodeid.startswith(prefix)]
    if len(selected) < len([n for n in dir(request.module) if n.startswith("test_")]):
        pytest.skip("coverage is only checked when the whole module runs")
    missing = {
        op: sorted(statuses - COVERAGE.get(op, set()))
        for op, statuses in REQUIRED.items()
        if statuses - COVERAGE.get(op, set())
    }
    assert not missing, f"not driven: {missing}; seen: {dict(COVERAGE)}"
    assert len(COVERAGE) >= 25, sorted(COVERAGE)


def test_standard_headers_on_every_response(env: Env, request: pytest.FixtureRequest) -> None:
    """Every REST response above carried X-GitHub-Request-Id and the X-RateLimit-* headers."""
    if not COVERAGE:
        pytest.skip("no responses recorded (run the whole module)")
    assert not HEADER_GAPS, sorted(HEADER_GAPS)


def test_validator_rejects_what_github_would_not_send() -> None:
    """Guard: the hook above really validates (a wrong body for a real operation fails)."""
    assert find_operation("GET", f"{R}/git/ref/heads/main").operation_id == "git/get-ref"
    request = httpx.Request("GET", f"http://emulator{R}/git/ref/heads/main")
    with pytest.raises(SchemaMismatch):
        validate_httpx_response(httpx.Response(200, json={"ref": "refs/heads/main"}, request=request))
