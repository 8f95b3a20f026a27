"""Outbound sync end to end: local versions become GitHub commits and pull requests in the emulator.

The engine is wired as the worker wires it (the real `GitHubAppClient` over loopback HTTP, SQLite,
`GitStore`), and the emulator plays GitHub: one per module, a repository per test. These tests prove
over HTTP what tests/unit/test_reconcile_engine.py proves on the in-memory twins, and every test ends
with a `git clone` of the repository holding exactly the expected tree, with `git fsck --strict` clean.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from outbound_support import (
    GIT,
    GIT_DATA_API,
    MIB,
    TRANSPORTS,
    Outbound,
    fast_emulator,
    git,
    outbound_world,
    run_like_the_job_runner,
)

from ghsync.domain.errors import RetryLater
from ghsync.domain.models import FileMode

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) + b"\x00\xff\r\n\x1a"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outbound]:
    tmp = tmp_path_factory.mktemp("outbound")
    with fast_emulator(tmp / "emulator") as emu, outbound_world(tmp, emu) as world:
        yield world


@pytest.fixture(autouse=True)
def _no_faults_left(world: Outbound) -> Iterator[None]:
    yield
    world.emu.clear_faults()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- one version, one commit -----------------------------------------------------------------------------


def test_a_multi_file_version_is_one_commit_holding_every_file(world: Outbound, transport: str) -> None:
    project, repo = world.linked({"index.html": "<h1>old</h1>\n", "css/site.css": "body {}\n"})
    before = world.head(repo, "main")
    assert before is not None
    files = {f"pages/{n:02}.md": f"# Page {n}\n".encode() for n in range(12)}
    files["index.html"] = b"<h1>new</h1>\n"
    version = world.write(project, files, message="Twelve pages")
    world.emu.clear_requests()
    world.engine(transport).reconcile(project)

    after = world.head(repo, "main")
    assert after is not None and world.commits_between(repo, before, after) == [after]
    commit = world.commit(repo, after)
    assert [p["sha"] for p in commit["parents"]] == [before]  # on top of GitHub's head: no force
    assert commit["message"] == f"Twelve pages\n\nGhsync-Version: {version}\n"
    assert (commit["author"]["name"], commit["author"]["email"]) == ("Ada Lovelace", "ada@example.com")
    assert commit["committer"]["name"] == f"{world.app.slug}[bot]"  # the committer is the App
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.status, operation.github_commit_sha) == (
        "push_direct",
        "success",
        after,
    )
    assert operation.metadata["transport"] == transport
    # The engine's request counter agrees with what GitHub saw: with the Git Data API the 13 text files
    # travel inline, so the content-creating requests are one tree, one commit and the ref update.
    counted = operation.metadata["requests"]
    seen = _writes_logged(world, repo)
    if transport == GIT_DATA_API:
        assert counted["content_creating"] == len(seen) == 3, seen
    else:
        assert counted["content_creating"] == 0 and seen == [f"POST /octo/{repo}.git/git-receive-pack"]
    world.assert_github_holds(project, repo, "main")
    # Our own commit coming back is a no-op.
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"
    assert world.head(repo, "main") == after


def test_deletions_and_renames_reach_github_and_known_blobs_do_not_travel_again(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked(
        {
            "a.txt": "a\n",
            "old/name.txt": "moved\n",
            "old/keep.txt": "kept\n",
            "gone/x.txt": "x\n",
        }
    )
    world.write(project, {"img.png": PNG})
    world.engine(transport).reconcile(project)
    world.emu.clear_requests()
    world.write(
        project,
        {"new/name.txt": b"moved\n", "assets/img.png": PNG},
        deletes=("a.txt", "old/name.txt", "img.png", "gone/x.txt"),
        message="Rename and delete",
    )
    world.engine(transport).reconcile(project)
    clone = world.assert_github_holds(project, repo, "main")
    assert not (clone / "gone").exists() and not (clone / "a.txt").exists()
    assert (clone / "old" / "keep.txt").read_bytes() == b"kept\n"
    if transport == GIT_DATA_API:
        # A rename is a delete plus an add of a blob GitHub already holds: nothing is uploaded.
        assert world.logged(repo, "POST", "/git/blobs") == []
        assert world.last_operation(project).metadata["blobs_uploaded"] == 0


@pytest.mark.parametrize(
    "transport",
    [
        GIT_DATA_API,
        GIT,
    ],
)
def test_a_directory_that_becomes_a_file_and_a_file_that_becomes_a_directory(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked(
        {"swap/inner.txt": "a directory, then a file\n", "flip": "a file, then a directory\n"}
    )
    world.write(
        project,
        {"swap": b"now a file\n", "flip/in.txt": b"now in a directory\n"},
        deletes=("swap/inner.txt", "flip"),
    )
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).status == "success"
    clone = world.assert_github_holds(project, repo, "main")
    assert (clone / "swap").is_file() and (clone / "flip").is_dir()


def test_binary_files_the_executable_bit_and_symlinks_are_kept_exactly(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked({"target.txt": "the target\n"})
    every_byte = bytes(range(256)) * 8
    files = {
        "img/logo.png": PNG,
        "data/every-byte.bin": every_byte,
        "data/latin1.txt": "café\n".encode("latin-1"),  # not UTF-8: must not travel as inline text
        "crlf.txt": b"one\r\ntwo\r\n",
        "no-newline.txt": b"no newline at the end",
        "empty.txt": b"",
        "bin/run.sh": b"#!/bin/sh\necho hi\n",
        "link": b"target.txt",
        "docs/naïve café.md": "# Ünïcödé, spaces\n".encode(),
        "with space.txt": b"a space in the name\n",
        "docs/up": b"../target.txt",
    }
    modes = {"bin/run.sh": FileMode.EXECUTABLE, "link": FileMode.SYMLINK, "docs/up": FileMode.SYMLINK}
    world.write(project, files, modes=modes)
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).status == "success"
    clone = world.assert_github_holds(project, repo, "main")
    assert (clone / "data" / "every-byte.bin").read_bytes() == every_byte
    assert os.readlink(clone / "docs" / "up") == "../target.txt"
    # A mode change alone (same blob) is a change GitHub must see.
    world.write(project, {"bin/run.sh": b"#!/bin/sh\necho hi\n"}, message="Not executable any more")
    world.engine(transport).reconcile(project)
    clone = world.assert_github_holds(project, repo, "main")
    assert not (clone / "bin" / "run.sh").stat().st_mode & 0o111


def test_a_large_change_is_chunked_into_several_tree_requests_and_still_one_commit(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked({"seed.txt": "0\n"})
    before = world.head(repo, "main")
    assert before is not None
    world.write(project, {f"f/{n:02}.txt": f"file {n}\n".encode() * 4 for n in range(23)})
    world.emu.clear_requests()
    world.engine(transport, tree_entry_limit=5, tree_size_bytes=256).reconcile(project)
    after = world.head(repo, "main")
    assert after is not None and world.commits_between(repo, before, after) == [after]
    if transport == GIT_DATA_API:
        trees = world.logged(repo, "POST", "/git/trees")
        assert len(trees) >= 5 and set(trees) == {201}  # 23 entries, at most 5 per request, chained
    world.assert_github_holds(project, repo, "main")


def test_a_tree_request_github_finds_too_large_is_split_and_retried(world: Outbound) -> None:
    # The Git Data API only: GitHub may answer an oversized tree request with a 422 (its text as
    # recorded in https://github.com/googleapis/code-suggester/issues/397 and
    # https://github.com/osunyorg/admin/issues/1878); the engine halves the chunk and chains the halves.
    project, repo = world.linked({"seed.txt": "0\n"})
    world.write(project, {f"g/{n:02}.txt": f"file {n}\n".encode() for n in range(8)})
    world.emu.clear_requests()
    too_large = {
        "message": "Sorry, your request timed out.  It's likely that your input was too large to process.  "
        "Consider building the tree incrementally, or building the commits you need in a local clone "
        "of the repository and then pushing them to GitHub.",
        "documentation_url": "https://docs.github.com/rest/git/trees#create-a-tree",
    }
    world.fault(rf"^/repos/octo/{repo}/git/trees$", method="POST", status=422, body=too_large)
    world.engine(GIT_DATA_API).reconcile(project)
    assert world.faults_fired() == [1]
    assert world.logged(repo, "POST", "/git/trees") == [422, 201, 201]
    assert world.last_operation(project).status == "success"
    world.assert_github_holds(project, repo, "main")


# --- modes and the default branch ------------------------------------------------------------------------


def test_protected_pr_mode_opens_one_pr_updates_it_and_its_merge_comes_back(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode="protected_pr")
    main = world.head(repo, "main")
    branch = f"ghsync/{project}"
    world.write(project, {"b.txt": b"b\n"}, message="First change")
    world.engine(transport).reconcile(project)
    assert world.head(repo, "main") == main  # nothing on the default branch
    (pull,) = world.open_pulls(repo)
    assert (pull["state"], pull["head"]["ref"], pull["base"]["ref"]) == ("open", branch, "main")
    assert "v2: First change" in pull["body"]
    first = world.head(repo, branch)
    world.assert_github_holds(project, repo, branch)

    world.engine(transport).reconcile(project)  # the PR already carries the local head
    assert world.last_operation(project).operation_type == "nothing"

    world.write(project, {"c.txt": b"c\n"}, message="Second change")
    world.engine(transport).reconcile(project)
    (again,) = world.open_pulls(repo)  # updated, not a second PR
    assert again["number"] == pull["number"] and "v3: Second change" in again["body"]
    second = world.head(repo, branch)
    assert second is not None and first is not None
    assert world.commits_between(repo, first, second) == [second]  # a new commit: never force-pushed
    assert [p["sha"] for p in world.commit(repo, second)["parents"]] == [first]
    world.assert_github_holds(project, repo, branch)

    with world.rest() as rest:
        merged = rest.put(f"/repos/octo/{repo}/pulls/{pull['number']}/merge", json={"merge_method": "squash"})
    assert merged.status_code == 200, merged.text
    world.engine(transport).reconcile(project)  # the merge comes back: identical trees, paired
    assert world.last_operation(project).operation_type == "record_pair"
    world.assert_github_holds(project, repo, "main")


def test_a_person_s_commit_on_the_pr_branch_is_built_upon_never_forced(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode="protected_pr")
    branch = f"ghsync/{project}"
    world.write(project, {"b.txt": b"b\n"})
    world.engine(transport).reconcile(project)
    theirs = world.person_push(repo, branch, {"review.txt": "a reviewer's note\n"})
    world.write(project, {"c.txt": b"c\n"}, message="Second change")
    world.engine(transport).reconcile(project)
    # Their commit stays in the branch's history; the branch's tree is the new version's (so their
    # file leaves the PR's content: the engine does not bring PR-branch edits home).
    head = world.head(repo, branch)
    assert head is not None and [p["sha"] for p in world.commit(repo, head)["parents"]] == [theirs]
    assert len(world.open_pulls(repo)) == 1
    world.assert_github_holds(project, repo, branch)


def test_a_protected_branch_sends_direct_mode_to_a_pr(world: Outbound, transport: str) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode="direct_commit")
    world.protect(repo, "main")
    main = world.head(repo, "main")
    world.write(project, {"b.txt": b"b\n"})
    world.engine(transport).reconcile(project)
    assert world.head(repo, "main") == main
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.status) == ("pull_request", "success")
    (pull,) = world.open_pulls(repo)
    assert pull["head"]["ref"] == f"ghsync/{project}"
    world.assert_github_holds(project, repo, f"ghsync/{project}")
    # A second version updates the same PR.
    world.write(project, {"c.txt": b"c\n"}, message="Second change")
    world.engine(transport).reconcile(project)
    (again,) = world.open_pulls(repo)
    assert again["number"] == pull["number"] and "Second change" in again["body"]
    assert world.head(repo, "main") == main
    world.assert_github_holds(project, repo, f"ghsync/{project}")
    with world.uow() as uow:
        stored = uow.projects.get(project)
    assert stored is not None and stored.pull_request is not None
    assert stored.pull_request.number == pull["number"]
    assert stored.tracking.last_outbound_base_sha == main


def test_hybrid_goes_direct_then_to_a_pr_while_the_branch_is_protected_then_direct_again(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode="hybrid")
    world.write(project, {"b.txt": b"b\n"})
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).operation_type == "push_direct"
    world.assert_github_holds(project, repo, "main")
    direct = world.head(repo, "main")
    assert world.open_pulls(repo) == []

    world.protect(repo, "main")
    world.write(project, {"c.txt": b"c\n"})
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).operation_type == "pull_request"
    assert world.head(repo, "main") == direct
    (pull,) = world.open_pulls(repo)
    assert pull["base"]["sha"] == direct
    world.assert_github_holds(project, repo, f"ghsync/{project}")

    with world.rest() as rest:
        assert rest.delete(f"/repos/octo/{repo}/branches/main/protection").status_code == 204
    pr_branch = world.head(repo, f"ghsync/{project}")
    world.write(project, {"d.txt": b"d\n"})
    world.engine(transport).reconcile(project)
    # Unprotected again and a fast-forward: direct once more, and the PR it supersedes is closed.
    assert world.last_operation(project).operation_type == "push_direct"
    head = world.head(repo, "main")
    assert head is not None and [p["sha"] for p in world.commit(repo, head)["parents"]] == [direct]
    world.assert_github_holds(project, repo, "main")
    assert [p["state"] for p in world.open_pulls(repo)] == ["closed"]  # (every PR, whatever its state)
    with world.rest() as rest:
        closed = rest.get(f"/repos/octo/{repo}/pulls/{pull['number']}").json()
    assert closed["state"] == "closed" and closed["merged"] is False
    assert closed["body"].startswith("Superseded: ghsync committed these changes directly to `main`")
    assert world.head(repo, f"ghsync/{project}") == pr_branch  # its branch is kept


@pytest.mark.parametrize("mode", ["direct_commit", "protected_pr"])
def test_a_default_branch_that_is_not_main(world: Outbound, transport: str, mode: str) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode=mode, default_branch="trunk")
    world.write(project, {"b.txt": b"b\n"})
    world.engine(transport).reconcile(project)
    assert world.head(repo, "main") is None  # never assumed, never created
    if mode == "direct_commit":
        world.assert_github_holds(project, repo, "trunk")
    else:
        (pull,) = world.open_pulls(repo)
        assert pull["base"]["ref"] == "trunk"
        world.assert_github_holds(project, repo, f"ghsync/{project}")


# --- GitHub moving during a sync -------------------------------------------------------------------------


def test_a_push_between_our_read_and_our_write_is_read_again_and_built_upon_never_forced(
    world: Outbound, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, repo = world.linked({"a.txt": "a\n"})
    world.write(project, {"b.txt": b"b\n"})
    # A person's commit that keeps the tree (an empty commit, e.g. to re-run CI): GitHub moved, the
    # content did not, so the engine must rebuild its commit on top of it, not force over it.
    theirs: list[str] = []
    moved = world.before_publish(
        monkeypatch, transport, lambda: theirs.append(world.person_push(repo, "main", message="Re-run CI"))
    )
    world.engine(transport).reconcile(project)
    assert moved and theirs
    head = world.head(repo, "main")
    assert head is not None and world.commits_between(repo, theirs[0], head) == [head]
    assert [p["sha"] for p in world.commit(repo, head)["parents"]] == [theirs[0]]
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.status, operation.retry_count) == (
        "push_direct",
        "success",
        1,
    )
    world.assert_github_holds(project, repo, "main")


def test_a_conflicting_push_between_our_read_and_our_write_loses_nothing(
    world: Outbound, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, repo = world.linked({"a.txt": "a\n"})
    local_before = world.local_tree(project)
    world.write(project, {"a.txt": b"ours\n"})
    ours = world.local_tree(project)
    theirs: list[str] = []
    world.before_publish(
        monkeypatch, transport, lambda: theirs.append(world.person_push(repo, "main", {"a.txt": "theirs\n"}))
    )
    world.engine(transport).reconcile(project)
    # Both sides changed a.txt: a conflict for the project's strategy (manual), and neither side lost.
    assert world.head(repo, "main") == theirs[0]
    assert world.last_operation(project).operation_type == "conflict"
    assert world.local_tree(project) == ours != local_before
    world.assert_github_holds(project, repo, "main", tree=world.commit(repo, theirs[0])["tree"]["sha"])


# --- faults injected mid-sync ----------------------------------------------------------------------------

SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
}


def _fault_plan(world: Outbound, transport: str, repo: str, fault: str) -> None:
    """Script `fault` on the requests of the write `transport` makes (REST for the Git Data API, git's
    receive-pack for git); rate limits and a cut answer hit a REST read there, since git requests
    have no rate limit and git's own framing would see a cut pack."""
    rest = rf"^/repos/octo/{repo}"
    write_path = rf"^/octo/{repo}\.git/git-receive-pack$" if transport == GIT else rest + r"/git/trees$"
    publish = (
        (rf"^/octo/{repo}\.git/git-receive-pack$", "POST")
        if transport == GIT
        else (rest + r"/git/refs/heads/main$", "PATCH")
    )
    limited = (rest + r"/branches/", "GET") if transport == GIT else (rest + r"/git/commits$", "POST")
    if fault == "server_error":
        world.fault(write_path, method="POST", status=502, count=2)
    elif fault == "server_error_on_publish":
        world.fault(publish[0], method=publish[1], status=500, count=1)
    elif fault == "secondary_rate_limit":
        world.fault(limited[0], method=limited[1], status=403, headers={"Retry-After": "1"}, body=SECONDARY)
    elif fault == "secondary_rate_limit_rescheduled":
        world.fault(limited[0], method=limited[1], status=429, headers={"Retry-After": "120"}, body=SECONDARY)
    elif fault == "connection_reset":
        world.fault(write_path, method="POST", kind="reset")
    elif fault == "reset_after_publish":
        world.fault(publish[0], method=publish[1], kind="reset_after")
    elif fault == "primary_rate_limit":
        # The installation's hourly quota spent (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
        reset = str(int(world.clock().timestamp()) + 60)  # the client's clock: earlier tests moved it
        quota = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Used": "5000"}
        quota |= {"X-RateLimit-Reset": reset, "X-RateLimit-Resource": "core"}
        body = {"message": f"API rate limit exceeded for installation ID {world.installation}."}
        world.fault(limited[0], method=limited[1], status=403, headers=quota, body=body)
    elif fault == "truncated_answer":
        world.fault(limited[0], method=limited[1], kind="truncate")
    else:  # pragma: no cover
        raise AssertionError(fault)


FAULTS = [
    "server_error",
    "server_error_on_publish",
    "secondary_rate_limit",
    "secondary_rate_limit_rescheduled",
    "primary_rate_limit",
    "connection_reset",
    "reset_after_publish",
    "truncated_answer",
    "token_expiry",
]


# git's one write is its publish (the receive-pack POST), so "on publish" is the same case there.
FAULT_CASES = [(t, f) for t in TRANSPORTS for f in FAULTS if (t, f) != (GIT, "server_error_on_publish")]


@pytest.mark.parametrize(("transport", "fault"), FAULT_CASES)
def test_a_fault_mid_sync_converges_with_one_commit(
    world: Outbound, transport: str, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, repo = world.linked({"a.txt": "a\n"})
    before = world.head(repo, "main")
    assert before is not None
    world.write(project, {"b.txt": b"b\n", "img.png": PNG, "logo.png": PNG[::-1]})
    if fault == "token_expiry":
        # The installation's tokens expire between the engine's reads and its write.
        expired: list[int] = []
        world.before_publish(
            monkeypatch,
            transport,
            lambda: expired.append(world.emu.expire_tokens(installation_id=world.installation)),
        )
    else:
        _fault_plan(world, transport, repo, fault)

    def cool_down_passes() -> None:
        world.clock.offset += timedelta(seconds=121)

    errors = run_like_the_job_runner(world.engine(transport), project, on_retry_later=cool_down_passes)
    if fault == "token_expiry":
        assert expired and expired[0] >= 1
    else:
        assert world.faults_fired() and min(world.faults_fired()) >= 1  # it hit mid-sync
    if fault in ("secondary_rate_limit_rescheduled", "primary_rate_limit"):
        assert errors and isinstance(errors[0], RetryLater)  # rescheduled, not slept in the worker
    head = world.head(repo, "main")
    assert head is not None and world.commits_between(repo, before, head) == [head]  # nothing duplicated
    assert [p["sha"] for p in world.commit(repo, head)["parents"]] == [before]
    assert world.last_operation(project).status == "success"
    world.assert_github_holds(project, repo, "main")
    # Settled: another reconcile does nothing.
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).operation_type == "nothing" and world.head(repo, "main") == head


@pytest.mark.parametrize("lost", ["pr_creation", "pr_branch_creation", "pr_update"])
def test_a_lost_answer_in_pr_mode_still_makes_one_pr_and_one_commit_per_version(
    world: Outbound, transport: str, lost: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n"}, mode="protected_pr")
    branch = f"ghsync/{project}"
    main = world.head(repo, "main")
    world.write(project, {"b.txt": b"b\n"}, message="First change")
    if lost == "pr_update":
        world.engine(transport).reconcile(project)
        world.write(project, {"c.txt": b"c\n"}, message="Second change")
    before = world.head(repo, branch)
    # GitHub does the work but its answer never arrives: the PR's creation (the client re-reads
    # before trying again), the PR branch's creation (a ref, or a push), or the PR's update.
    if lost == "pr_creation":
        world.fault(rf"^/repos/octo/{repo}/pulls$", method="POST", kind="reset_after")
    elif lost == "pr_update":
        world.fault(rf"^/repos/octo/{repo}/pulls/\d+$", method="PATCH", kind="reset_after")
    elif transport == GIT:
        world.fault(rf"^/octo/{repo}\.git/git-receive-pack$", method="POST", kind="reset_after")
    else:
        world.fault(rf"^/repos/octo/{repo}/git/refs$", method="POST", kind="reset_after")
    run_like_the_job_runner(world.engine(transport), project)
    assert world.faults_fired() == [1]
    (pull,) = world.open_pulls(repo)
    assert pull["head"]["ref"] == branch
    assert ("Second change" if lost == "pr_update" else "First change") in pull["body"]
    head = world.head(repo, branch)
    assert head is not None
    # One commit for the new version, on the branch's head (or on the default branch's, when new).
    assert world.commits_between(repo, before or main or "", head) == [head]
    world.assert_github_holds(project, repo, branch)
    world.engine(transport).reconcile(project)
    assert len(world.open_pulls(repo)) == 1 and world.head(repo, branch) == head


# --- what GitHub cannot take ---------------------------------------------------------------------------


def _writes_logged(world: Outbound, repo: str) -> list[str]:
    """Every request since the log was cleared that could have changed the repository."""
    return [
        f"{r['method']} {r['path']}"
        for r in world.emu.requests()
        if (
            r["method"] in ("POST", "PATCH", "PUT", "DELETE") and r["path"].startswith(f"/repos/octo/{repo}/")
        )
        or r["path"] == f"/octo/{repo}.git/git-receive-pack"
    ]


def test_a_file_over_the_size_limit_blocks_the_version_and_nothing_is_sent(
    world: Outbound, transport: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n"})
    synced_tree = world.local_tree(project)
    before = world.head(repo, "main")
    world.write(project, {"big.bin": os.urandom(8192), "ok.txt": b"fine\n"})
    world.emu.clear_requests()
    # The limit is GitHub's 100 MiB; shrunk here to keep the test fast, the rule is the same.
    engine = world.engine(transport, max_file_size=4096, warn_file_size=2048)
    engine.reconcile(project)
    operation = world.last_operation(project)
    assert (operation.status, operation.error_code) == ("failed", "file_too_large")
    assert "big.bin" in (operation.error_message or "") and "MiB" in (operation.error_message or "")
    assert world.head(repo, "main") == before and _writes_logged(world, repo) == []
    world.assert_github_holds(project, repo, "main", tree=synced_tree)  # nothing partial

    # Over the warning size (GitHub's 50 MiB, shrunk too) and under the limit: synced, with a warning.
    world.write(project, {"mid.bin": os.urandom(3000)}, deletes=("big.bin",), message="Drop the big file")
    engine.reconcile(project)
    operation = world.last_operation(project)
    assert operation.status == "success" and "mid.bin" in " ".join(operation.metadata["warnings"])
    world.assert_github_holds(project, repo, "main")


def test_the_emulator_refuses_a_real_file_over_100_mib_like_github(world: Outbound) -> None:
    # GitHub's own limit, for real: a person's push of a 100 MiB + 1 byte file is refused with GH001
    # (https://docs.github.com/en/repositories/working-with-files/managing-large-files/about-large-files-on-github#file-size-limits).
    # Zeros compress to almost nothing, so the pack is small and the test stays cheap.
    repo = world.new_repo({"a.txt": "a\n"})
    before = world.head(repo, "main")
    work = world.tmp / f"big-{repo}"
    git(world.tmp, "clone", "-q", world.git_url(repo), str(work))
    with (work / "huge.bin").open("wb") as out:
        out.truncate(100 * MIB + 1)
    fast = ("-c", "core.compression=1", "-c", "pack.compression=1")  # zeros: level 1 is plenty
    git(work, *fast, "add", "huge.bin")
    git(work, "commit", "-q", "-m", "Too big")
    pushed = git(work, *fast, "push", "origin", "main", check=False)
    assert pushed.returncode != 0
    assert "GH001: Large files detected" in pushed.stderr and "huge.bin" in pushed.stderr
    assert world.head(repo, "main") == before
    _, tree = world.checked_clone(repo, "main")
    assert before is not None and tree == world.commit(repo, before)["tree"]["sha"]


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (
            {
                "model.bin": b"version https://git-lfs.github.com/spec/v1\noid sha256:"
                + b"a" * 64
                + b"\nsize 12\n"
            },
            "lfs_pointer",
        ),
        ({".gitattributes": b"*.psd filter=lfs diff=lfs merge=lfs -text\n"}, "lfs_filter"),
    ],
)
def test_lfs_gets_an_actionable_error_and_github_is_left_as_it_was(
    world: Outbound, transport: str, files: dict[str, bytes], code: str
) -> None:
    project, repo = world.linked({"a.txt": "a\n"})
    synced_tree = world.local_tree(project)
    before = world.head(repo, "main")
    world.write(project, files)
    world.emu.clear_requests()
    world.engine(transport).reconcile(project)
    operation = world.last_operation(project)
    assert (operation.status, operation.error_code) == ("failed", code)
    assert "LFS" in (operation.error_message or "")
    assert world.head(repo, "main") == before and _writes_logged(world, repo) == []
    world.assert_github_holds(project, repo, "main", tree=synced_tree)


# --- an empty repository ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["direct_commit", "protected_pr"])
def test_the_first_commit_into_an_empty_repository_goes_by_git(world: Outbound, mode: str) -> None:
    # Not parametrized: the Git Data API answers 409 in an empty repository, so git is the only way in
    # (https://docs.github.com/en/rest/guides/using-the-rest-api-to-interact-with-your-git-database);
    # the engine that prefers the Git Data API still takes git here. In PR mode too: a pull request
    # needs a base branch, and an empty repository has none.
    repo = world.new_repo(None)
    assert world.head(repo, "main") is None
    project = world.projects.create_project(repo).id
    version = world.write(project, {"index.html": b"<h1>hi</h1>\n", "img.png": PNG})
    world.links.link(project, owner="octo", repo=repo, sync_mode=mode)
    world.engine(GIT_DATA_API).reconcile(project)
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.status, operation.metadata["transport"]) == (
        "first_commit",
        "success",
        GIT,
    )
    head = world.head(repo, "main")
    assert head is not None
    commit = world.commit(repo, head)
    assert commit["parents"] == [] and f"Ghsync-Version: {version}" in commit["message"]
    world.assert_github_holds(project, repo, "main")
    world.engine(GIT_DATA_API).reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"


def test_a_default_branch_changed_on_github_is_followed(world: Outbound, transport: str) -> None:
    project, repo = world.linked({"a.txt": "a\n"})
    main = world.head(repo, "main")
    assert main is not None
    work = world.tmp / f"rename-{repo}"
    git(world.tmp, "clone", "-q", world.git_url(repo), str(work))
    git(work, "push", "-q", "origin", "main:release")
    with world.rest() as rest:
        changed = rest.patch(f"/repos/octo/{repo}", json={"default_branch": "release"})
    assert changed.status_code == 200, changed.text
    world.write(project, {"b.txt": b"b\n"})
    world.engine(transport).reconcile(project)
    assert world.head(repo, "main") == main  # the old default branch is left alone
    world.assert_github_holds(project, repo, "release")
    with world.uow() as uow:
        stored = uow.projects.get(project)
    assert stored is not None and stored.link is not None and stored.link.default_branch == "release"


def test_protection_switched_on_between_our_read_and_our_write_routes_to_a_pr(
    world: Outbound, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine read the branch as unprotected; GitHub's refusal of the write is what tells it now
    # (a 422 on the ref update, GH006 "protected branch hook declined" on a push).
    project, repo = world.linked({"a.txt": "a\n"})
    main = world.head(repo, "main")
    world.write(project, {"b.txt": b"b\n"})
    protected = world.before_publish(monkeypatch, transport, lambda: world.protect(repo, "main"))
    world.engine(transport).reconcile(project)
    assert protected
    assert world.head(repo, "main") == main
    (pull,) = world.open_pulls(repo)
    assert pull["head"]["ref"] == f"ghsync/{project}"
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.status) == ("pull_request", "success")
    assert operation.metadata["pull_request"]["number"] == pull["number"]
    world.assert_github_holds(project, repo, f"ghsync/{project}")
