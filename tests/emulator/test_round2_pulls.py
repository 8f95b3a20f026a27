"""Issue 8, item 5: pull requests as GitHub has them: the ``head`` filter needs ``owner:``,
``refs/pull/N/head`` and ``refs/pull/N/merge`` exist, ``mergeable`` is null until a GET starts
GitHub's job, ``merge_commit_sha`` is the test merge commit while open, drafts cannot be merged,
and deleting the base branch closes the PR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from round2_support import (  # noqa: F401
    commit_files,
    git,
    head_of,
    module_emulator,
    module_receiver,
    shared_emu,
    shared_receiver,
    wait_event,
)

from conftest import Installed

REPO = "octo/hello"
R = f"/repos/{REPO}"


def _open_pr(gh: httpx.Client, branch: str, files: dict[str, str | None], **extra: Any) -> dict[str, Any]:
    main = head_of(gh, REPO)
    sha = commit_files(gh, REPO, main, files, f"{branch} change\n")
    assert gh.post(f"{R}/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha}).status_code == 201
    made = gh.post(f"{R}/pulls", json={"title": branch, "head": branch, "base": "main", **extra})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def test_head_filter_without_owner_is_ignored(installed: Installed) -> None:
    gh = installed.client
    one = _open_pr(gh, "filter-one", {"one.txt": "1\n"})["number"]
    two = _open_pr(gh, "filter-two", {"two.txt": "2\n"})["number"]

    def listed(head: str) -> set[int]:
        answer = gh.get(f"{R}/pulls", params={"head": head})
        assert answer.status_code == 200
        return {p["number"] for p in answer.json()}

    assert listed("octo:filter-one") == {one}
    assert listed("filter-one") == {one, two}  # no owner: GitHub ignores the filter
    assert listed("someone-else:filter-one") == set()
    assert listed("octo:") == {one, two}


def test_mergeable_is_null_until_a_get_starts_the_job_and_merge_refs_exist(installed: Installed) -> None:
    gh = installed.client
    base = head_of(gh, REPO)
    created = _open_pr(gh, "mergeable", {"m.txt": "m\n"})
    number = created["number"]
    head = created["head"]["sha"]
    assert (created["mergeable"], created["merge_commit_sha"], created["mergeable_state"]) == (
        None,
        None,
        "unknown",
    )
    # refs/pull/N/head exists at once; the test merge ref not before the job ran.
    assert gh.get(f"{R}/git/ref/pull/{number}/head").json()["object"]["sha"] == head
    assert gh.get(f"{R}/git/ref/pull/{number}/merge").status_code == 404

    first = gh.get(f"{R}/pulls/{number}").json()
    assert (first["mergeable"], first["merge_commit_sha"]) == (None, None)  # job just started
    second = gh.get(f"{R}/pulls/{number}").json()
    assert (second["mergeable"], second["mergeable_state"]) == (True, "clean")
    test_merge = second["merge_commit_sha"]
    assert isinstance(test_merge, str)
    merge_ref = gh.get(f"{R}/git/ref/pull/{number}/merge").json()
    assert merge_ref["object"]["sha"] == test_merge
    merge_commit = gh.get(f"{R}/git/commits/{test_merge}").json()
    assert [p["sha"] for p in merge_commit["parents"]] == [base, head]
    assert merge_commit["message"] == f"Merge {head} into {base}"
    # The pull refs are hidden from branch lists.
    assert f"pull/{number}/head" not in [b["name"] for b in gh.get(f"{R}/branches").json()]

    # A new head commit: refs/pull/N/head follows, mergeability is unknown again.
    newer = commit_files(gh, REPO, head, {"m.txt": "m2\n"}, "more\n")
    assert gh.patch(f"{R}/git/refs/heads/mergeable", json={"sha": newer}).status_code == 200
    assert gh.get(f"{R}/git/ref/pull/{number}/head").json()["object"]["sha"] == newer
    assert gh.get(f"{R}/pulls/{number}").json()["mergeable"] is None
    recomputed = gh.get(f"{R}/pulls/{number}").json()
    assert recomputed["mergeable"] is True and recomputed["merge_commit_sha"] != test_merge

    merged = gh.put(f"{R}/pulls/{number}/merge", json={"merge_method": "merge"})
    assert merged.status_code == 200
    after = gh.get(f"{R}/pulls/{number}").json()
    assert after["merge_commit_sha"] == merged.json()["sha"]  # the real merge commit now
    # The test merge ref goes with the open PR; the head ref stays.
    assert gh.get(f"{R}/git/ref/pull/{number}/merge").status_code == 404
    assert gh.get(f"{R}/git/ref/pull/{number}/head").json()["object"]["sha"] == newer


def test_conflicting_pr_is_not_mergeable_and_has_no_merge_ref(installed: Installed) -> None:
    gh = installed.client
    main = head_of(gh, REPO)
    ours = commit_files(gh, REPO, main, {"README.md": "ours\n"}, "ours\n")
    pr = _open_pr(gh, "conflict", {"README.md": "theirs\n"})
    assert gh.patch(f"{R}/git/refs/heads/main", json={"sha": ours}).status_code == 200
    gh.get(f"{R}/pulls/{pr['number']}")
    body = gh.get(f"{R}/pulls/{pr['number']}").json()
    assert (body["mergeable"], body["mergeable_state"], body["merge_commit_sha"]) == (False, "dirty", None)
    assert gh.get(f"{R}/git/ref/pull/{pr['number']}/merge").status_code == 404


def test_a_draft_cannot_be_merged(installed: Installed) -> None:
    gh = installed.client
    pr = _open_pr(gh, "drafty", {"d.txt": "d\n"}, draft=True)
    assert pr["draft"] is True
    gh.get(f"{R}/pulls/{pr['number']}")
    assert gh.get(f"{R}/pulls/{pr['number']}").json()["mergeable_state"] == "draft"
    refused = gh.put(f"{R}/pulls/{pr['number']}/merge", json={"merge_method": "squash"})
    assert (refused.status_code, refused.json()["message"]) == (405, "Pull Request is still a draft")
    assert gh.get(f"{R}/pulls/{pr['number']}").json()["state"] == "open"


def test_deleting_the_base_branch_closes_the_pr(installed: Installed) -> None:
    gh = installed.client
    main = head_of(gh, REPO)
    assert gh.post(f"{R}/git/refs", json={"ref": "refs/heads/release", "sha": main}).status_code == 201
    sha = commit_files(gh, REPO, main, {"r.txt": "r\n"}, "on release\n")
    assert gh.post(f"{R}/git/refs", json={"ref": "refs/heads/topic", "sha": sha}).status_code == 201
    pr = gh.post(f"{R}/pulls", json={"title": "t", "head": "topic", "base": "release"}).json()
    assert gh.delete(f"{R}/git/refs/heads/release").status_code == 204
    closed = gh.get(f"{R}/pulls/{pr['number']}").json()
    assert (closed["state"], closed["merged"]) == ("closed", False)
    (event,) = wait_event(installed.receiver, "pull_request", action="closed", number=pr["number"])
    assert event.json["pull_request"]["merged"] is False


def test_pull_refs_can_be_fetched_but_not_pushed(installed: Installed, tmp_path: Path) -> None:
    gh = installed.client
    pr = _open_pr(gh, "fetchable", {"f.txt": "f\n"})
    url = installed.emu.git_url("octo", "hello", installed.token)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", url, str(work))
    git(work, "fetch", "-q", "origin", f"refs/pull/{pr['number']}/head:pr-head")
    assert git(work, "rev-parse", "pr-head").stdout.strip() == pr["head"]["sha"]
    pushed = git(work, "push", "origin", f"HEAD:refs/pull/{pr['number']}/head", check=False)
    assert pushed.returncode != 0
    assert "deny updating a hidden ref" in pushed.stderr
    assert gh.get(f"{R}/git/ref/pull/{pr['number']}/head").json()["object"]["sha"] == pr["head"]["sha"]
