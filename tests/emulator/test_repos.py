"""Repositories: get/patch, rename with redirects, default branch, branches, protection, compare, contents."""

from __future__ import annotations

import base64

from conftest import Installed, api


def test_get_and_edit_repository(installed: Installed) -> None:
    c = installed.client
    repo = c.get("/repos/octo/hello").json()
    assert repo["full_name"] == "octo/hello" and repo["owner"]["login"] == "octo"
    assert repo["clone_url"] == f"{installed.emu.url}/octo/hello.git"
    edited = c.patch("/repos/octo/hello", json={"description": "Greetings"})
    assert edited.json()["description"] == "Greetings"
    got = installed.receiver.wait_for(lambda rs: any(r.event == "repository" for r in rs))
    event = next(r.json for r in got if r.event == "repository")
    assert event["action"] == "edited" and event["changes"] == {"description": {"from": None}}


def test_rename_redirects_old_name(installed: Installed) -> None:
    c = installed.client
    assert c.patch("/repos/octo/hello", json={"name": "world"}).json()["full_name"] == "octo/world"
    with api(installed.emu, installed.token, validate=False) as raw:
        moved = raw.get("/repos/octo/hello/git/ref/heads/main")
    assert moved.status_code == 301
    repo_id = c.get("/repos/octo/world").json()["id"]
    assert moved.headers["location"].endswith(f"/repositories/{repo_id}/git/ref/heads/main")
    assert moved.json()["message"] == "Moved Permanently"
    # Following the redirect answers for the renamed repository.
    # (/repositories/{id} is not in the trimmed description, so this one is not schema-checked.)
    with api(installed.emu, installed.token, validate=False) as raw:
        followed = raw.get("/repos/octo/hello", follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["name"] == "world"
    got = installed.receiver.wait_for(lambda rs: any(r.event == "repository" for r in rs))
    renamed = next(r.json for r in got if r.event == "repository")
    assert renamed["action"] == "renamed" and renamed["changes"]["repository"]["name"]["from"] == "hello"


def test_default_branch_change(installed: Installed) -> None:
    c = installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/trunk", "sha": head})
    assert c.patch("/repos/octo/hello", json={"default_branch": "trunk"}).json()["default_branch"] == "trunk"
    bad = c.patch("/repos/octo/hello", json={"default_branch": "missing"})
    assert bad.status_code == 422
    # The old default can now be deleted; the new one cannot.
    assert c.delete("/repos/octo/hello/git/refs/heads/main").status_code == 204
    assert c.delete("/repos/octo/hello/git/refs/heads/trunk").status_code == 422


def test_branches_and_protection(installed: Installed) -> None:
    c = installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/feat/x", "sha": head})
    names = [b["name"] for b in c.get("/repos/octo/hello/branches").json()]
    assert names == ["feat/x", "main"]
    assert c.get("/repos/octo/hello/branches/feat/x").json()["commit"]["sha"] == head
    assert c.get("/repos/octo/hello/branches/nope").status_code == 404
    missing = c.get("/repos/octo/hello/branches/main/protection")
    assert missing.status_code == 404 and missing.json()["message"] == "Branch not protected"
    rules = {
        "required_status_checks": {"strict": True, "contexts": ["ci"]},
        "enforce_admins": True,
        "required_pull_request_reviews": None,
        "restrictions": None,
    }
    put = c.put("/repos/octo/hello/branches/main/protection", json=rules)
    assert put.status_code == 200 and put.json()["required_status_checks"]["contexts"] == ["ci"]
    assert c.get("/repos/octo/hello/branches/main").json()["protected"] is True
    assert [b["name"] for b in c.get("/repos/octo/hello/branches?protected=true").json()] == ["main"]
    # Enforcement on REST ref updates: a required check blocks a direct update.
    tree = c.get(f"/repos/octo/hello/git/commits/{head}").json()["tree"]["sha"]
    new = c.post(
        "/repos/octo/hello/git/commits", json={"message": "x", "tree": tree, "parents": [head]}
    ).json()["sha"]
    blocked = c.patch("/repos/octo/hello/git/refs/heads/main", json={"sha": new})
    assert (
        blocked.status_code == 422 and blocked.json()["message"] == 'Required status check "ci" is expected.'
    )
    assert c.delete("/repos/octo/hello/branches/main/protection").status_code == 204
    assert c.patch("/repos/octo/hello/git/refs/heads/main", json={"sha": new}).status_code == 200
    assert c.delete("/repos/octo/hello/branches/main/protection").status_code == 404


def test_compare_and_contents(installed: Installed) -> None:
    c = installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    base_tree = c.get(f"/repos/octo/hello/git/commits/{head}").json()["tree"]["sha"]
    tree = c.post(
        "/repos/octo/hello/git/trees",
        json={
            "base_tree": base_tree,
            "tree": [
                {"path": "README.md", "mode": "100644", "type": "blob", "content": "# hello\nmore\n"},
                {"path": "src/app.py", "mode": "100644", "type": "blob", "sha": None},
                {"path": "new.txt", "mode": "100644", "type": "blob", "content": "n\n"},
            ],
        },
    ).json()
    commit = c.post(
        "/repos/octo/hello/git/commits", json={"message": "c", "tree": tree["sha"], "parents": [head]}
    ).json()
    c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/topic", "sha": commit["sha"]})
    cmp = c.get("/repos/octo/hello/compare/main...topic").json()
    assert cmp["status"] == "ahead" and cmp["ahead_by"] == 1 and cmp["behind_by"] == 0
    files = {f["filename"]: f for f in cmp["files"]}
    assert files["README.md"]["status"] == "modified" and files["README.md"]["additions"] == 1
    assert files["new.txt"]["status"] == "added"
    assert files["src/app.py"]["status"] == "removed"
    new_blob = next(
        e["sha"]
        for e in c.get(f"/repos/octo/hello/git/trees/{tree['sha']}").json()["tree"]
        if e["path"] == "new.txt"
    )
    assert files["new.txt"]["sha"] == new_blob
    assert c.get("/repos/octo/hello/compare/topic...main").json()["status"] == "behind"
    assert c.get("/repos/octo/hello/compare/main...nope").status_code == 404

    f = c.get("/repos/octo/hello/contents/README.md?ref=topic").json()
    assert base64.b64decode(f["content"]) == b"# hello\nmore\n"
    listing = c.get("/repos/octo/hello/contents/").json()
    assert {e["name"]: e["type"] for e in listing} == {"README.md": "file", "src": "dir"}
    assert c.get("/repos/octo/hello/contents/missing.txt").status_code == 404


def test_private_repository_is_hidden(installed: Installed) -> None:
    installed.emu.create_repo("octo", "private", private=True, files={"a": "a"})
    with api(installed.emu) as anonymous:
        assert anonymous.get("/repos/octo/private").status_code == 404
        assert anonymous.get("/repos/octo/hello").status_code == 200
    # Not in the installation: 404 as on GitHub.
    assert installed.client.get("/repos/octo/private").status_code == 404
