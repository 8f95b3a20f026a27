"""Git Data API behaviour: blobs, trees (base_tree, deletes, truncation), commits, refs and errors."""

from __future__ import annotations

import base64

from conftest import Installed


def _main(c: Installed) -> str:
    sha: str = c.client.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    return sha


def test_blobs_utf8_and_base64(installed: Installed) -> None:
    c = installed.client
    a = c.post("/repos/octo/hello/git/blobs", json={"content": "héllo\n"})
    b = c.post(
        "/repos/octo/hello/git/blobs",
        json={"content": base64.b64encode("héllo\n".encode()).decode(), "encoding": "base64"},
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["sha"] == b.json()["sha"]
    got = c.get(f"/repos/octo/hello/git/blobs/{a.json()['sha']}").json()
    assert got["encoding"] == "base64" and base64.b64decode(got["content"]) == "héllo\n".encode()
    assert got["size"] == len("héllo\n".encode())
    assert c.get("/repos/octo/hello/git/blobs/" + "1" * 40).status_code == 404


def test_trees_base_tree_content_delete_and_errors(installed: Installed) -> None:
    c = installed.client
    commit = c.get(f"/repos/octo/hello/git/commits/{_main(installed)}").json()
    base = commit["tree"]["sha"]
    t = c.post(
        "/repos/octo/hello/git/trees",
        json={
            "base_tree": base,
            "tree": [
                {"path": "src/app.py", "mode": "100644", "type": "blob", "sha": None},
                {"path": "docs/a/b.md", "mode": "100644", "type": "blob", "content": "b\n"},
            ],
        },
    )
    assert t.status_code == 201
    listing = c.get(f"/repos/octo/hello/git/trees/{t.json()['sha']}?recursive=1").json()
    paths = {e["path"] for e in listing["tree"]}
    assert paths == {"README.md", "docs", "docs/a", "docs/a/b.md"}  # empty "src" vanished
    assert listing["truncated"] is False
    missing = c.post(
        "/repos/octo/hello/git/trees",
        json={
            "base_tree": base,
            "tree": [{"path": "nope.txt", "mode": "100644", "type": "blob", "sha": None}],
        },
    )
    assert missing.status_code == 422
    assert missing.json()["message"] == "GitRPC::BadObjectState"
    both = c.post(
        "/repos/octo/hello/git/trees",
        json={"tree": [{"path": "x", "mode": "100644", "type": "blob", "sha": "1" * 40, "content": "x"}]},
    )
    assert both.status_code == 422
    assert "either tree.sha or tree.content" in both.json()["message"]
    # GET by commit-ish and non-recursive listing.
    top = c.get("/repos/octo/hello/git/trees/main").json()
    assert {e["path"] for e in top["tree"]} == {"README.md", "src"}


def test_tree_truncation_follows_entry_limit(installed: Installed) -> None:
    c = installed.client
    entries = [
        {"path": f"d/f{i}.txt", "mode": "100644", "type": "blob", "content": str(i)} for i in range(60)
    ]
    t = c.post("/repos/octo/hello/git/trees", json={"tree": entries}).json()
    listing = c.get(f"/repos/octo/hello/git/trees/{t['sha']}?recursive=1").json()
    assert listing["truncated"] is True  # the fixture configures tree_entry_limit=50
    assert len(listing["tree"]) == 50


def test_commits_and_refs(installed: Installed) -> None:
    c = installed.client
    head = _main(installed)
    tree = c.get(f"/repos/octo/hello/git/commits/{head}").json()["tree"]["sha"]
    made = c.post(
        "/repos/octo/hello/git/commits",
        json={
            "message": "m",
            "tree": tree,
            "parents": [head],
            "author": {"name": "A", "email": "a@example.com", "date": "2024-01-02T03:04:05+02:00"},
        },
    )
    assert made.status_code == 201
    body = made.json()
    assert body["author"] == {"name": "A", "email": "a@example.com", "date": "2024-01-02T01:04:05Z"}
    assert body["committer"]["name"] == "A"
    assert (
        c.post("/repos/octo/hello/git/commits", json={"message": "m", "tree": "1" * 40}).json()["message"]
        == "Tree SHA does not exist"
    )
    bad_parent = c.post(
        "/repos/octo/hello/git/commits", json={"message": "m", "tree": tree, "parents": ["2" * 40]}
    )
    assert bad_parent.status_code == 422
    assert bad_parent.json()["message"] == "Parent SHA does not exist or is not a commit object"

    created = c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/feature/a", "sha": body["sha"]})
    assert created.status_code == 201 and created.json()["ref"] == "refs/heads/feature/a"
    again = c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/feature/a", "sha": body["sha"]})
    assert again.status_code == 422 and again.json()["message"] == "Reference already exists"
    matching = c.get("/repos/octo/hello/git/matching-refs/heads/feature").json()
    assert [r["ref"] for r in matching] == ["refs/heads/feature/a"]
    # Fast-forward check: main -> sibling commit is fine (descendant), back is not without force.
    assert c.patch("/repos/octo/hello/git/refs/heads/main", json={"sha": body["sha"]}).status_code == 200
    back = c.patch("/repos/octo/hello/git/refs/heads/main", json={"sha": head, "force": False})
    assert back.status_code == 422
    assert back.json() == {
        "message": "Update is not a fast forward",
        "documentation_url": "https://docs.github.com/rest/git/refs#update-a-reference",
        "status": "422",
    }
    assert (
        c.patch("/repos/octo/hello/git/refs/heads/main", json={"sha": head, "force": True}).status_code == 200
    )
    nope = c.patch("/repos/octo/hello/git/refs/heads/nope", json={"sha": head})
    assert nope.status_code == 422 and nope.json()["message"] == "Reference does not exist"
    assert c.get("/repos/octo/hello/git/ref/heads/nope").status_code == 404
    # Deleting: %2F-encoded name; the default branch is refused.
    assert c.delete("/repos/octo/hello/git/refs/heads%2Ffeature%2Fa").status_code == 204
    assert c.get("/repos/octo/hello/git/ref/heads/feature/a").status_code == 404
    assert c.delete("/repos/octo/hello/git/refs/heads/main").status_code == 422


def test_ref_events_fire(installed: Installed) -> None:
    c = installed.client
    head = _main(installed)
    c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/topic", "sha": head})
    c.delete("/repos/octo/hello/git/refs/heads/topic")
    got = installed.receiver.wait_for(lambda rs: {"create", "delete"} <= {r.event for r in rs})
    create = next(r.json for r in got if r.event == "create")
    assert create["ref"] == "topic" and create["ref_type"] == "branch"
    pushes = [
        r.json
        for r in installed.receiver.wait_for(lambda rs: len([r for r in rs if r.event == "push"]) >= 2)
        if r.event == "push"
    ]
    assert pushes[0]["created"] and pushes[1]["deleted"]
