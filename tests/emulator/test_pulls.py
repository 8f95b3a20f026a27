"""Pull requests: create/get/list/update, merge methods, 405/409 errors, events."""

from __future__ import annotations

from conftest import Installed
from support.github_schemas import validate_webhook


def _branch_with_file(c: Installed, branch: str, path: str, text: str, base: str = "main") -> str:
    cl = c.client
    head = cl.get(f"/repos/octo/hello/git/ref/heads/{base}").json()["object"]["sha"]
    tree = cl.get(f"/repos/octo/hello/git/commits/{head}").json()["tree"]["sha"]
    new_tree = cl.post(
        "/repos/octo/hello/git/trees",
        json={"base_tree": tree, "tree": [{"path": path, "mode": "100644", "type": "blob", "content": text}]},
    ).json()["sha"]
    sha: str = cl.post(
        "/repos/octo/hello/git/commits", json={"message": f"edit {path}", "tree": new_tree, "parents": [head]}
    ).json()["sha"]
    if cl.get(f"/repos/octo/hello/git/ref/heads/{branch}").status_code == 200:
        cl.patch(f"/repos/octo/hello/git/refs/heads/{branch}", json={"sha": sha, "force": True})
    else:
        cl.post("/repos/octo/hello/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha})
    return sha


def test_create_list_update_and_merge(installed: Installed) -> None:
    c = installed.client
    sha = _branch_with_file(installed, "ghsync/p1", "a.txt", "a\n")
    pr = c.post(
        "/repos/octo/hello/pulls", json={"title": "T", "head": "ghsync/p1", "base": "main", "body": "B"}
    )
    assert pr.status_code == 201
    number = pr.json()["number"]
    # mergeable is null until GitHub's background job ran (test_round2_pulls.py has the protocol).
    assert pr.json()["head"]["sha"] == sha and pr.json()["mergeable"] is None
    dup = c.post("/repos/octo/hello/pulls", json={"title": "T", "head": "ghsync/p1", "base": "main"})
    assert dup.status_code == 422
    assert dup.json()["errors"][0]["message"] == "A pull request already exists for octo:ghsync/p1."
    listed = c.get("/repos/octo/hello/pulls?head=octo:ghsync/p1&state=open").json()
    assert [p["number"] for p in listed] == [number]
    assert c.get("/repos/octo/hello/pulls?base=other").json() == []
    assert c.patch(f"/repos/octo/hello/pulls/{number}", json={"title": "T2"}).json()["title"] == "T2"
    # A new commit on the head branch updates the PR (synchronize).
    sha2 = _branch_with_file(installed, "ghsync/p1", "a.txt", "a2\n")
    assert c.get(f"/repos/octo/hello/pulls/{number}").json()["head"]["sha"] == sha2
    stale = c.put(f"/repos/octo/hello/pulls/{number}/merge", json={"sha": sha})
    assert stale.status_code == 409
    assert stale.json()["message"] == "Head branch was modified. Review and try the merge again."
    merged = c.put(f"/repos/octo/hello/pulls/{number}/merge", json={"sha": sha2, "merge_method": "squash"})
    assert merged.status_code == 200 and merged.json()["merged"] is True
    main = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    assert main == merged.json()["sha"]
    squash = c.get(f"/repos/octo/hello/git/commits/{main}").json()
    assert len(squash["parents"]) == 1 and squash["message"].startswith("T2 (#")
    again = c.put(f"/repos/octo/hello/pulls/{number}/merge", json={})
    assert again.status_code == 405 and again.json()["message"] == "Pull Request is not mergeable"
    assert c.get(f"/repos/octo/hello/pulls/{number}/merge").status_code == 204
    assert c.get(f"/repos/octo/hello/pulls/{number}").json()["merged"] is True

    got = installed.receiver.wait_for(
        lambda rs: [r.json.get("action") for r in rs if r.event == "pull_request"][-1:] == ["closed"]
    )
    actions = [r.json["action"] for r in got if r.event == "pull_request"]
    assert actions == ["opened", "edited", "synchronize", "closed"]
    closed = [r.json for r in got if r.event == "pull_request"][-1]
    assert closed["pull_request"]["merged"] is True
    for r in got:
        if r.event in ("pull_request", "push"):
            validate_webhook(r.event, r.json)


def test_merge_commit_and_rebase_methods_and_conflicts(installed: Installed) -> None:
    c = installed.client
    _branch_with_file(installed, "m", "m.txt", "m\n")
    n = c.post("/repos/octo/hello/pulls", json={"title": "M", "head": "m", "base": "main"}).json()["number"]
    sha = c.put(f"/repos/octo/hello/pulls/{n}/merge", json={"merge_method": "merge"}).json()["sha"]
    assert len(c.get(f"/repos/octo/hello/git/commits/{sha}").json()["parents"]) == 2

    _branch_with_file(installed, "r", "r.txt", "r\n")
    n2 = c.post("/repos/octo/hello/pulls", json={"title": "R", "head": "r", "base": "main"}).json()["number"]
    rebased = c.put(f"/repos/octo/hello/pulls/{n2}/merge", json={"merge_method": "rebase"}).json()["sha"]
    commit = c.get(f"/repos/octo/hello/git/commits/{rebased}").json()
    assert commit["message"] == "edit r.txt" and commit["parents"][0]["sha"] == sha

    # Two branches editing the same line conflict: not mergeable (405).
    _branch_with_file(installed, "x1", "README.md", "one\n")
    _branch_with_file(installed, "x2", "README.md", "two\n")
    n3 = c.post("/repos/octo/hello/pulls", json={"title": "X1", "head": "x1", "base": "main"}).json()[
        "number"
    ]
    n4 = c.post("/repos/octo/hello/pulls", json={"title": "X2", "head": "x2", "base": "main"}).json()[
        "number"
    ]
    assert c.put(f"/repos/octo/hello/pulls/{n3}/merge").status_code == 200
    conflict = c.put(f"/repos/octo/hello/pulls/{n4}/merge")
    assert conflict.status_code == 405
    c.get(f"/repos/octo/hello/pulls/{n4}")  # starts the mergeability job (answers null)
    assert c.get(f"/repos/octo/hello/pulls/{n4}").json()["mergeable"] is False

    # A disabled method is refused with 405.
    c.patch("/repos/octo/hello", json={"allow_squash_merge": False})
    _branch_with_file(installed, "s", "s.txt", "s\n")
    n5 = c.post("/repos/octo/hello/pulls", json={"title": "S", "head": "s", "base": "main"}).json()["number"]
    refused = c.put(f"/repos/octo/hello/pulls/{n5}/merge", json={"merge_method": "squash"})
    assert refused.status_code == 405
    assert refused.json()["message"] == "Squash merges are not allowed on this repository."


def test_pull_validation_errors(installed: Installed) -> None:
    c = installed.client
    none = c.post("/repos/octo/hello/pulls", json={"title": "T", "head": "main", "base": "main"})
    assert (
        none.status_code == 422 and none.json()["errors"][0]["message"] == "No commits between main and main"
    )
    bad = c.post("/repos/octo/hello/pulls", json={"title": "T", "head": "nope", "base": "main"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "head"
    assert c.get("/repos/octo/hello/pulls/99").status_code == 404
