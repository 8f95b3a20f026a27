"""Issue 8, item 1: push webhooks for a push that updates several refs are computed from the refs
as they were before the push, and follow GitHub's limits (2,048 commits, no events past three
tags or 5,000 branches) and its ``username`` rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from round2_support import (  # noqa: F401
    ZERO,
    git,
    module_emulator,
    module_receiver,
    shared_emu,
    shared_receiver,
    wait_event,
)
from round2_support import pushes as received_pushes

from conftest import Installed
from github_emulator import pushes

ZERO_CHANGE = (ZERO, "1" * 40)


def _clone(installed: Installed, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", installed.emu.git_url("octo", "hello", installed.token), str(work))
    return work


def _commit(work: Path, name: str, author: str = "Mona <mona@example.com>") -> str:
    (work / name).write_text(f"{name}\n")
    git(work, "add", name)
    git(work, "commit", "-q", "--author", author, "-m", f"add {name}")
    return git(work, "rev-parse", "HEAD").stdout.strip()


def _settle(installed: Installed) -> None:
    installed.emu.wait_for_deliveries(lambda ds: all(d["status"] != "pending" for d in ds))


def test_two_new_branches_in_one_push_list_every_new_commit(installed: Installed, tmp_path: Path) -> None:
    work = _clone(installed, tmp_path)
    git(work, "checkout", "-q", "-b", "one")
    c1 = _commit(work, "c1.txt")
    git(work, "checkout", "-q", "-b", "two")
    c2 = _commit(work, "c2.txt")
    git(work, "push", "-q", "origin", "one", "two")
    wait_event(installed.receiver, "push", ref="refs/heads/one")
    wait_event(installed.receiver, "push", ref="refs/heads/two")
    (one,) = received_pushes(installed.receiver, ref="refs/heads/one")
    (two,) = received_pushes(installed.receiver, ref="refs/heads/two")
    # Before the fix "one" listed nothing: c1 was reachable from "two" after the push.
    assert [(c["id"], c["distinct"]) for c in one["commits"]] == [(c1, True)]
    assert [(c["id"], c["distinct"]) for c in two["commits"]] == [(c1, False), (c2, True)]
    assert one["head_commit"]["id"] == c1 and two["head_commit"]["id"] == c2
    # A branch created at a commit the repository already had lists none.
    git(work, "push", "-q", "origin", f"{c1}:refs/heads/three")
    (three,) = [p.json for p in wait_event(installed.receiver, "push", ref="refs/heads/three")]
    assert three["commits"] == [] and three["head_commit"]["distinct"] is False


def test_a_fast_forward_and_a_new_branch_in_one_push(installed: Installed, tmp_path: Path) -> None:
    work = _clone(installed, tmp_path)
    base = git(work, "rev-parse", "HEAD").stdout.strip()
    ahead = _commit(work, "ahead.txt")
    git(work, "branch", "side")
    git(work, "push", "-q", "origin", "main", "side")
    # Deliveries go out from several threads: wait for both before reading them.
    wait_event(installed.receiver, "push", ref="refs/heads/side")
    wait_event(installed.receiver, "push", ref="refs/heads/main", after=ahead)
    (main,) = received_pushes(installed.receiver, ref="refs/heads/main", after=ahead)
    (side,) = received_pushes(installed.receiver, ref="refs/heads/side")
    assert main["before"] == base and [c["id"] for c in main["commits"]] == [ahead]
    assert main["commits"][0]["distinct"] is True
    # "side" points at the commit main brought in this same push: not new to the repository
    # before the push, so GitHub would list it; it is not distinct any more.
    assert [(c["id"], c["distinct"]) for c in side["commits"]] == [(ahead, False)]


def test_no_events_for_more_than_three_tags_pushed_at_once(installed: Installed, tmp_path: Path) -> None:
    work = _clone(installed, tmp_path)
    for n in range(4):
        git(work, "tag", f"many-{n}")
    for n in range(3):
        git(work, "tag", f"few-{n}")
    _commit(work, "with-tags.txt")
    git(work, "push", "-q", "origin", "main", *[f"many-{n}" for n in range(4)])
    git(work, "push", "-q", "origin", *[f"few-{n}" for n in range(3)])
    for n in range(3):
        wait_event(installed.receiver, "create", ref=f"few-{n}")
        wait_event(installed.receiver, "push", ref=f"refs/tags/few-{n}")
    _settle(installed)
    events = [(r.event, (r.json or {}).get("ref")) for r in installed.receiver.received]
    assert not [e for e in events if str(e[1]).endswith(tuple(f"many-{n}" for n in range(4)))]
    assert ("push", "refs/heads/main") in events  # the branch of the same push still fires
    # The tags exist all the same.
    assert len(installed.client.get("/repos/octo/hello/git/matching-refs/tags/many-").json()) == 4


def test_silenced_refs_follow_githubs_limits() -> None:
    def tags(n: int) -> dict[str, tuple[str, str]]:
        return {f"refs/tags/t{i}": ZERO_CHANGE for i in range(n)}

    def branches(n: int) -> dict[str, tuple[str, str]]:
        return {f"refs/heads/b{i}": ZERO_CHANGE for i in range(n)}

    assert pushes.silenced_refs(tags(3)) == set()
    assert pushes.silenced_refs(tags(4)) == set(tags(4))
    assert pushes.silenced_refs(branches(5000)) == set()
    assert pushes.silenced_refs(branches(5001)) == set(branches(5001))
    mixed: dict[str, tuple[str, str]] = {**tags(4), **branches(2)}
    assert pushes.silenced_refs(mixed) == set(tags(4))


def test_refs_before_undoes_the_push() -> None:
    after = {"refs/heads/main": "b" * 40, "refs/heads/new": "c" * 40}
    changes = {
        "refs/heads/main": ("a" * 40, "b" * 40),
        "refs/heads/new": (ZERO, "c" * 40),
        "refs/heads/gone": ("d" * 40, ZERO),
    }
    assert pushes.refs_before(after, changes) == {"refs/heads/main": "a" * 40, "refs/heads/gone": "d" * 40}


def test_commits_hold_at_most_2048_and_authors_carry_usernames(installed: Installed, tmp_path: Path) -> None:
    installed.emu.create_user("mona", email="mona@example.com")
    work = _clone(installed, tmp_path)
    count = 2050
    lines: list[str] = ["reset refs/heads/big", "from refs/heads/main"]
    for n in range(count):
        author = "Mona <mona@example.com>" if n % 2 == 0 else "Stranger <stranger@example.com>"
        message = f"big {n}"
        lines += ["commit refs/heads/big", f"author {author} {1700000000 + n} +0000"]
        lines += [
            f"committer Mona <mona@example.com> {1700000000 + n} +0000",
            f"data {len(message)}",
            message,
        ]
        lines += ["M 100644 inline big.txt", f"data {len(str(n))}", str(n)]
    git(work, "fast-import", "--quiet", stdin="\n".join(lines) + "\n")
    shas = git(work, "rev-list", "--reverse", "main..big").stdout.split()
    git(work, "push", "-q", "origin", "big")
    (push,) = [p.json for p in wait_event(installed.receiver, "push", timeout=30, ref="refs/heads/big")]
    commits: list[dict[str, Any]] = push["commits"]
    assert len(commits) == 2048
    assert [c["id"] for c in commits] == shas[-2048:]
    assert push["head_commit"]["id"] == shas[-1]
    by_email = {c["author"]["email"]: c["author"].get("username") for c in commits}
    assert by_email == {"mona@example.com": "mona", "stranger@example.com": None}
    assert all(c["committer"]["username"] == "mona" for c in commits)
