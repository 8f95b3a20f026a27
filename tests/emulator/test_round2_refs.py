"""Issue 8, item 4: refs are read literally, a missing ref's deletion answers GitHub's JSON 422,
branches point only at commits, and tree entries must name what their mode says."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from round2_support import module_emulator, module_receiver, shared_emu, shared_receiver  # noqa: F401

from conftest import Installed

R = "/repos/octo/hello"


def _main(gh: httpx.Client) -> str:
    sha: str = gh.get(f"{R}/git/ref/heads/main").json()["object"]["sha"]
    return sha


def test_ref_paths_are_read_literally(installed: Installed) -> None:
    gh = installed.client
    main = _main(gh)
    assert gh.get(f"{R}/git/ref/refs/heads/main").status_code == 404
    patched = gh.patch(f"{R}/git/refs/refs/heads/main", json={"sha": main, "force": True})
    assert (patched.status_code, patched.json()["message"]) == (422, "Reference does not exist")
    deleted = gh.delete(f"{R}/git/refs/refs/heads/main")
    assert (deleted.status_code, deleted.json()["message"]) == (422, "Reference does not exist")
    assert _main(gh) == main
    # The documented form still works, with raw or encoded slashes.
    assert gh.get(f"{R}/git/ref/heads/main").json()["ref"] == "refs/heads/main"
    assert gh.get(f"{R}/git/ref/heads%2Fmain").status_code == 200


def test_deleting_a_missing_ref_answers_422_with_githubs_json(installed: Installed) -> None:
    gh = installed.client
    missing = gh.delete(f"{R}/git/refs/heads/never-was")
    assert missing.status_code == 422
    body = missing.json()
    assert body["message"] == "Reference does not exist"
    assert body["documentation_url"] == "https://docs.github.com/rest/git/refs#delete-a-reference"
    default = gh.delete(f"{R}/git/refs/heads/main")
    assert default.status_code == 422
    assert isinstance(default.json()["message"], str)


def test_branches_point_only_at_commits(installed: Installed) -> None:
    gh = installed.client
    main = _main(gh)
    tree = gh.get(f"{R}/git/commits/{main}").json()["tree"]["sha"]
    blob = gh.post(f"{R}/git/blobs", json={"content": "x"}).json()["sha"]
    for target in (tree, blob):
        made = gh.post(f"{R}/git/refs", json={"ref": "refs/heads/not-a-commit", "sha": target})
        assert made.status_code == 422, made.text
    assert gh.get(f"{R}/git/ref/heads/not-a-commit").status_code == 404
    assert gh.post(f"{R}/git/refs", json={"ref": "refs/heads/ok", "sha": main}).status_code == 201
    moved = gh.patch(f"{R}/git/refs/heads/ok", json={"sha": tree, "force": True})
    assert moved.status_code == 422
    assert gh.get(f"{R}/git/ref/heads/ok").json()["object"]["sha"] == main
    # Tags may name any object (git allows it, and so does GitHub).
    tag = gh.post(f"{R}/git/refs", json={"ref": "refs/tags/tree-tag", "sha": tree})
    assert tag.status_code == 201
    assert tag.json()["object"]["type"] == "tree"


def _tree_entry(gh: httpx.Client, entry: dict[str, Any]) -> httpx.Response:
    return gh.post(f"{R}/git/trees", json={"tree": [entry]})


@pytest.mark.parametrize(
    "make_entry",
    [
        pytest.param(
            lambda blob, tree: {"path": "d", "mode": "040000", "type": "tree", "content": "x"},
            id="dir-content",
        ),
        pytest.param(
            lambda blob, tree: {"path": "f", "mode": "100644", "type": "blob", "sha": tree},
            id="file-tree-sha",
        ),
        pytest.param(
            lambda blob, tree: {"path": "d", "mode": "040000", "type": "tree", "sha": blob}, id="dir-blob-sha"
        ),
        pytest.param(
            lambda blob, tree: {"path": "f", "mode": "100644", "type": "tree", "sha": blob}, id="type-vs-mode"
        ),
        pytest.param(
            lambda blob, tree: {"path": "s", "mode": "160000", "type": "commit", "content": "x"},
            id="submodule-content",
        ),
    ],
)
def test_mismatched_tree_entries_answer_422(installed: Installed, make_entry: Any) -> None:
    gh = installed.client
    main = _main(gh)
    tree = gh.get(f"{R}/git/commits/{main}").json()["tree"]["sha"]
    blob = gh.post(f"{R}/git/blobs", json={"content": "x"}).json()["sha"]
    answer = _tree_entry(gh, make_entry(blob, tree))
    assert answer.status_code == 422, answer.text
    assert isinstance(answer.json()["message"], str)


def test_well_formed_tree_entries_still_work(installed: Installed) -> None:
    gh = installed.client
    main = _main(gh)
    tree = gh.get(f"{R}/git/commits/{main}").json()["tree"]["sha"]
    made = _tree_entry(gh, {"path": "nested", "mode": "040000", "type": "tree", "sha": tree})
    assert made.status_code == 201, made.text
    assert made.json()["tree"][0]["type"] == "tree"
    link = _tree_entry(gh, {"path": "link", "mode": "120000", "type": "blob", "content": "README.md"})
    assert link.status_code == 201
