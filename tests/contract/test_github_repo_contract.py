"""The GitHub ports' contract: every test runs against the real client over the GitHub emulator and
against the in-memory fake, so the fake the engine's unit tests stand on cannot drift from GitHub.

Each test gets a fresh repository (default branch `trunk`: nothing may assume `main`). What a person
does on GitHub (push, protect a branch, merge a pull request) goes through a `Side` helper: for the
emulator through its REST API with a person's token, for the fake through its test helpers. The
emulator is shared by the whole module, so the file stays fast.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pygit2
import pytest

from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig
from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.domain.errors import (
    AppNotInstalled,
    BranchProtected,
    GitHubNotFound,
    GitHubValidation,
    NotFastForward,
    RepositoryEmpty,
)
from ghsync.domain.models import Author, FileMode
from ghsync.domain.polling import RemoteHead
from ghsync.domain.trees import EMPTY_TREE_SHA, TreeEntry
from ghsync.ports.github import GitHubApp, GitHubRepo, TreeWrite, counting_requests
from github_emulator.testing import EmulatorHandle, run_emulator

OWNER = "octo"
TREE_LIMIT = 6  # entries per recursive tree read before GitHub answers `truncated: true` (both sides)
BOT = Author("ghsync", "ghsync@example.com")
_names = itertools.count(1)


def blob_sha(content: bytes) -> str:
    return str(pygit2.hash(content))


class Side(Protocol):
    """One adapter under test, plus what people do on that GitHub."""

    @property
    def app(self) -> GitHubApp: ...
    @property
    def installation_id(self) -> int: ...

    def new_repo(self, files: Mapping[str, str] | None = None) -> GitHubRepo: ...
    def push(self, repo: GitHubRepo, branch: str, files: Mapping[str, str | None]) -> str: ...
    def push_chain(self, repo: GitHubRepo, branch: str, n: int) -> list[str]: ...
    def protect(self, repo: GitHubRepo, branch: str) -> None: ...
    def merge_pull(self, repo: GitHubRepo, number: int, method: str) -> str: ...
    def head(self, repo: GitHubRepo, branch: str) -> str | None: ...
    def add_unselected_repo(self) -> str: ...


# ---- the emulator side ---------------------------------------------------------------------------


@dataclass
class EmulatorSide:
    emu: EmulatorHandle
    app: GitHubAppClient
    installation_id: int
    person: httpx.Client  # a person's token: what they do does not count as our requests

    def new_repo(self, files: Mapping[str, str] | None = None) -> GitHubRepo:
        name = f"repo{next(_names)}"
        self.emu.create_repo(OWNER, name, default_branch="trunk", files=dict(files) if files else None)
        self.emu.change_installation(self.installation_id, add=[f"{OWNER}/{name}"])
        return self.app.repo(self.installation_id, OWNER, name)

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def push(self, repo: GitHubRepo, branch: str, files: Mapping[str, str | None]) -> str:
        base = f"/repos/{OWNER}/{repo.name}"
        parent = self.head(repo, branch) or self.head(repo, "trunk")
        assert parent is not None
        tree = self._ok(self.person.get(f"{base}/git/commits/{parent}"))["tree"]["sha"]
        entries = [
            {
                "path": p,
                "mode": "100644",
                "type": "blob",
                **({"content": c} if c is not None else {"sha": None}),
            }
            for p, c in files.items()
        ]
        new_tree = self._ok(self.person.post(f"{base}/git/trees", json={"base_tree": tree, "tree": entries}))
        commit = self._ok(
            self.person.post(
                f"{base}/git/commits",
                json={"message": "A person's change", "tree": new_tree["sha"], "parents": [parent]},
            )
        )["sha"]
        if self.head(repo, branch) is None:
            self._ok(
                self.person.post(f"{base}/git/refs", json={"ref": f"refs/heads/{branch}", "sha": commit})
            )
        else:
            self._ok(
                self.person.patch(f"{base}/git/refs/heads/{branch}", json={"sha": commit, "force": True})
            )
        return str(commit)

    def push_chain(self, repo: GitHubRepo, branch: str, n: int) -> list[str]:
        """`n` commits on top of `branch` (one file each), pushed at once: the objects are written
        straight into the emulator's repository (fast), the branch moves through its REST API."""
        record = self.emu.emulator.store.find_repo(OWNER, repo.name)
        assert record is not None
        git = self.emu.emulator.open_git(record)
        parent = self.head(repo, branch)
        assert parent is not None
        made: list[str] = []
        sig = pygit2.Signature("A Person", "person@example.com")
        for i in range(n):
            builder = git.TreeBuilder()
            builder.insert(f"{i}.txt", git.create_blob(f"{i}\n".encode()), pygit2.GIT_FILEMODE_BLOB)
            oid = git.create_commit(None, sig, sig, f"c{i}", builder.write(), [pygit2.Oid(hex=parent)])
            parent = str(oid)
            made.append(parent)
        self._ok(
            self.person.patch(f"/repos/{OWNER}/{repo.name}/git/refs/heads/{branch}", json={"sha": parent})
        )
        return made

    def protect(self, repo: GitHubRepo, branch: str) -> None:
        rules = {
            "required_status_checks": None,
            "enforce_admins": None,
            "required_pull_request_reviews": {"required_approving_review_count": 0},
            "restrictions": None,
        }
        self._ok(self.person.put(f"/repos/{OWNER}/{repo.name}/branches/{branch}/protection", json=rules))

    def merge_pull(self, repo: GitHubRepo, number: int, method: str) -> str:
        body = self._ok(
            self.person.put(f"/repos/{OWNER}/{repo.name}/pulls/{number}/merge", json={"merge_method": method})
        )
        return str(body["sha"])

    def head(self, repo: GitHubRepo, branch: str) -> str | None:
        response = self.person.get(f"/repos/{OWNER}/{repo.name}/git/ref/heads/{branch}")
        return None if response.status_code in (404, 409) else str(self._ok(response)["object"]["sha"])

    def add_unselected_repo(self) -> str:
        name = f"hidden{next(_names)}"
        self.emu.create_repo(OWNER, name, default_branch="trunk", files={"a": "a\n"})
        return name


# ---- the fake side -------------------------------------------------------------------------------


@dataclass
class FakeSide:
    hub: InMemoryGitHub
    installation_id: int

    @property
    def app(self) -> GitHubApp:
        return self.hub

    def new_repo(self, files: Mapping[str, str] | None = None) -> GitHubRepo:
        name = f"repo{next(_names)}"
        self.hub.add_repo(
            OWNER, name, default_branch="trunk", files=files, installation_id=self.installation_id
        )
        return self.hub.repo(self.installation_id, OWNER, name)

    def push(self, repo: GitHubRepo, branch: str, files: Mapping[str, str | None]) -> str:
        parent = self.head(repo, branch) or self.head(repo, "trunk")
        return self.hub.push(OWNER, repo.name, branch, files, parent=parent)

    def push_chain(self, repo: GitHubRepo, branch: str, n: int) -> list[str]:
        return [self.hub.push(OWNER, repo.name, branch, {f"{i}.txt": f"{i}\n"}) for i in range(n)]

    def protect(self, repo: GitHubRepo, branch: str) -> None:
        self.hub.protect(OWNER, repo.name, branch)

    def merge_pull(self, repo: GitHubRepo, number: int, method: str) -> str:
        assert method in ("merge", "squash", "rebase")
        return self.hub.merge_pull(OWNER, repo.name, number, method)  # type: ignore[arg-type]

    def head(self, repo: GitHubRepo, branch: str) -> str | None:
        return self.hub.head(OWNER, repo.name, branch)

    def add_unselected_repo(self) -> str:
        name = f"hidden{next(_names)}"
        self.hub.add_repo(OWNER, name, default_branch="trunk", files={"a": "a\n"})
        return name


@pytest.fixture(scope="module")
def emulator_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorSide]:
    with run_emulator(tmp_path_factory.mktemp("emu"), tree_entry_limit=TREE_LIMIT) as emu:
        app = emu.create_app("ghsync-contract")
        emu.create_repo(OWNER, "seed", default_branch="trunk", files={"README.md": "seed\n"})
        inst = emu.create_installation(app.id, OWNER, [f"{OWNER}/seed"])
        user = emu.create_user("person")
        config = GitHubAppConfig(
            app_id=app.id, private_key=app.private_key, api_url=emu.url, retry_base_delay=0.01
        )
        person = httpx.Client(
            base_url=emu.url, headers={"Authorization": f"token {user.token}"}, timeout=30, trust_env=False
        )
        with GitHubAppClient(config) as client, person:
            yield EmulatorSide(emu, client, inst, person)


@pytest.fixture(params=["emulator", "fake"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "emulator":
        yield request.getfixturevalue("emulator_side")
        return
    with InMemoryGitHub(tmp_path / "fake", tree_entry_limit=TREE_LIMIT) as hub:
        hub.add_repo(OWNER, "seed", default_branch="trunk", files={"README.md": "seed\n"})
        yield FakeSide(hub, hub.add_installation(OWNER, [f"{OWNER}/seed"]))


def outbound(repo: GitHubRepo, parent: str, files: Mapping[str, str]) -> str:
    """What the engine does: a tree on the parent's with inline text, one commit, a fast-forward."""
    base_tree = repo.get_commit(parent).tree_sha
    tree = repo.create_tree(base_tree, [TreeWrite.text(p, c) for p, c in files.items()])
    commit = repo.create_commit(tree, [parent], "ghsync: local version", BOT)
    repo.update_ref("trunk", commit.sha)
    return commit.sha


# ---- the App level -------------------------------------------------------------------------------


def test_app_level_calls(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    assert side.app.find_installation(OWNER, repo.name) == side.installation_id
    inst = side.app.get_installation(side.installation_id)
    assert (inst.id, inst.account, inst.repository_selection) == (side.installation_id, OWNER, "selected")
    found = repo.get_repository()
    assert side.app.get_repository_by_id(side.installation_id, found.id) == found
    with pytest.raises(AppNotInstalled):
        side.app.find_installation(OWNER, side.add_unselected_repo())
    with side.app.priority("user"):
        repo.get_branch("trunk")
    quota = side.app.rate_limit(side.installation_id)
    assert quota is not None and 0 < quota.remaining < quota.limit


def test_the_apps_identity_is_its_bot_account(side: Side) -> None:
    # The committer of our commits and the sender of our own PR pushes (`AppLogins`): `<slug>[bot]`,
    # with the bot user's noreply address (https://docs.github.com/en/rest/users/users#get-a-user).
    identity = side.app.app_identity()
    assert identity.name.endswith("[bot]") and len(identity.name) > len("[bot]")
    bot_id, _, address = identity.email.partition("+")
    assert bot_id.isdigit() and address == f"{identity.name}@users.noreply.github.com"
    assert side.app.app_identity() == identity


# ---- reads ---------------------------------------------------------------------------------------


def test_repository_and_branch(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    with counting_requests() as count:
        info = repo.get_repository()
        branch = repo.get_branch("trunk")
        missing = repo.get_branch("nope")
    assert (info.owner, info.name, info.full_name, info.default_branch) == (
        OWNER,
        repo.name,
        f"{OWNER}/{repo.name}",
        "trunk",
    )
    assert branch is not None and (branch.name, branch.sha, branch.protected) == (
        "trunk",
        side.head(repo, "trunk"),
        False,
    )
    assert missing is None
    assert (count.total, count.content_creating) == (3, 0)
    side.protect(repo, "trunk")
    protected = repo.get_branch("trunk")
    assert protected is not None and protected.protected


def test_commit_tree_and_blob(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n", "src/app.py": "print(1)\n", "src/lib/util.py": "x = 1\n"})
    head = side.head(repo, "trunk")
    assert head is not None
    commit = repo.get_commit(head)
    assert commit.sha == head and commit.parents == () and len(commit.tree_sha) == 40
    tree = repo.get_tree(commit.tree_sha)
    assert tree == [
        TreeEntry("README.md", FileMode.REGULAR, blob_sha(b"hi\n")),
        TreeEntry("src/app.py", FileMode.REGULAR, blob_sha(b"print(1)\n")),
        TreeEntry("src/lib/util.py", FileMode.REGULAR, blob_sha(b"x = 1\n")),
    ]
    assert repo.get_blob(blob_sha(b"x = 1\n")) == b"x = 1\n"
    with pytest.raises(GitHubNotFound):
        repo.get_commit("0" * 40)
    with pytest.raises(GitHubNotFound):
        repo.get_blob("0" * 40)
    pushed = side.push(repo, "trunk", {"README.md": "changed\n"})
    child = repo.get_commit(pushed)
    assert child.parents == (head,) and child.message.startswith("A person's change")


def test_a_truncated_tree_is_walked_subtree_by_subtree(side: Side) -> None:
    files = {f"{d}/{i}.txt": f"{d}{i}\n" for d in ("a", "b") for i in range(3)} | {"c.txt": "c\n"}
    repo = side.new_repo(files)  # 9 entries listed recursively (2 trees + 7 blobs) > TREE_LIMIT
    head = side.head(repo, "trunk")
    assert head is not None
    tree_sha = repo.get_commit(head).tree_sha
    with counting_requests() as count:
        tree = repo.get_tree(tree_sha)
    assert [e.path for e in tree] == sorted(files)
    assert all(e.sha == blob_sha(files[e.path].encode()) for e in tree)
    # the truncated recursive read, the root flat, then each subtree recursively (each fits)
    assert (count.total, count.content_creating) == (4, 0)


def test_a_truncated_subtree_is_walked_further(side: Side) -> None:
    files = {f"a/{d}/{i}.txt": f"{d}{i}\n" for d in ("x", "y") for i in range(4)}
    repo = side.new_repo(files)  # a/ alone lists 10 entries recursively > TREE_LIMIT
    head = side.head(repo, "trunk")
    assert head is not None
    with counting_requests() as count:
        tree = repo.get_tree(repo.get_commit(head).tree_sha)
    assert [e.path for e in tree] == sorted(files)
    # root (truncated), root flat, a/ (truncated), a/ flat, a/x/, a/y/ (+ the commit read)
    assert count.total == 7


def test_compare(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    base = side.head(repo, "trunk")
    assert base is not None
    first = side.push(repo, "feature", {"a.txt": "a\n"})
    second = side.push(repo, "feature", {"b.txt": "b\n"})
    ahead = repo.compare("trunk", "feature")
    assert (ahead.status, ahead.ahead_by, ahead.behind_by, ahead.merge_base_sha) == ("ahead", 2, 0, base)
    assert ahead.commits == (first, second)  # oldest first
    behind = repo.compare(second, base)
    assert (behind.status, behind.ahead_by, behind.behind_by, behind.commits) == ("behind", 0, 2, ())
    assert repo.compare(base, base).status == "identical"
    other = side.push(repo, "trunk", {"c.txt": "c\n"})
    diverged = repo.compare("trunk", "feature")
    assert (diverged.status, diverged.ahead_by, diverged.behind_by) == ("diverged", 2, 1)
    assert diverged.merge_base_sha == base and other != base
    with pytest.raises(GitHubNotFound):
        repo.compare("trunk", "no-such-branch")


def test_compare_lists_every_commit_across_pages(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    base = side.head(repo, "trunk")
    assert base is not None
    repo.create_ref("long", base)
    made = side.push_chain(repo, "long", 105)
    with counting_requests() as count:
        result = repo.compare("trunk", "long")
    assert (result.status, result.ahead_by, result.commits) == ("ahead", 105, tuple(made))
    assert count.total == 2  # 100 commits a page


# ---- writes --------------------------------------------------------------------------------------


def test_blob_tree_commit_and_a_fast_forward(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n", "old.txt": "old\n", "dir/keep.txt": "k\n"})
    head = side.head(repo, "trunk")
    assert head is not None
    binary = bytes(range(256))
    with counting_requests() as count:
        sha = repo.create_blob(binary)
        base_tree = repo.get_commit(head).tree_sha
        tree = repo.create_tree(
            base_tree,
            [
                TreeWrite.blob("img/logo.bin", sha),
                TreeWrite.text("run.sh", "#!/bin/sh\n", FileMode.EXECUTABLE),
                TreeWrite.text("README.md", "new\n"),
                TreeWrite.delete("old.txt"),
            ],
        )
        commit = repo.create_commit(tree, [head], "ghsync: v2\n\nGhsync-Version: v2\n", BOT)
        repo.update_ref("trunk", commit.sha)
    assert sha == blob_sha(binary)
    assert (count.total, count.content_creating) == (5, 4)  # blob, tree, commit, ref (+ one read)
    assert commit.tree_sha == tree and commit.parents == (head,)
    assert (commit.author, commit.message) == (BOT, "ghsync: v2\n\nGhsync-Version: v2\n")
    assert side.head(repo, "trunk") == commit.sha
    assert repo.get_tree(tree) == [
        TreeEntry("README.md", FileMode.REGULAR, blob_sha(b"new\n")),
        TreeEntry("dir/keep.txt", FileMode.REGULAR, blob_sha(b"k\n")),
        TreeEntry("img/logo.bin", FileMode.REGULAR, sha),
        TreeEntry("run.sh", FileMode.EXECUTABLE, blob_sha(b"#!/bin/sh\n")),
    ]
    assert repo.get_blob(sha) == binary
    assert repo.create_blob(binary) == sha  # content-addressed: the same blob again
    fresh = repo.create_tree(None, [TreeWrite.text("only.txt", "x\n")])
    assert repo.get_tree(fresh) == [TreeEntry("only.txt", FileMode.REGULAR, blob_sha(b"x\n"))]
    with pytest.raises(GitHubValidation):
        repo.create_tree(base_tree, [TreeWrite.delete("not-there.txt")])


def test_tree_entries_apply_in_order_to_nested_trees(side: Side) -> None:
    """A file replacing a directory: the deletion inside it first works, the other order is refused (the
    file replaced the directory, so the deletion finds nothing). The engine sends deletions first."""
    repo = side.new_repo({"swap/inner.txt": "i\n", "keep.txt": "k\n"})
    head = side.head(repo, "trunk")
    assert head is not None
    base_tree = repo.get_commit(head).tree_sha
    tree = repo.create_tree(
        base_tree, [TreeWrite.delete("swap/inner.txt"), TreeWrite.text("swap", "now a file\n")]
    )
    assert [e.path for e in repo.get_tree(tree)] == ["keep.txt", "swap"]
    with pytest.raises(GitHubValidation):
        repo.create_tree(
            base_tree, [TreeWrite.text("swap", "now a file\n"), TreeWrite.delete("swap/inner.txt")]
        )


def test_update_ref_refuses_a_non_fast_forward(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    head = side.head(repo, "trunk")
    assert head is not None
    tree = repo.create_tree(repo.get_commit(head).tree_sha, [TreeWrite.text("ours.txt", "ours\n")])
    ours = repo.create_commit(tree, [head], "ours", BOT)
    theirs = side.push(repo, "trunk", {"theirs.txt": "theirs\n"})  # a person pushed meanwhile
    with pytest.raises(NotFastForward):
        repo.update_ref("trunk", ours.sha)
    assert side.head(repo, "trunk") == theirs
    with pytest.raises(NotFastForward):  # moving back is not a fast-forward either
        repo.update_ref("trunk", head)


def test_a_forced_update_rewrites_the_branch_unless_it_is_protected(side: Side) -> None:
    repo = side.new_repo({"a.txt": "a\n"})
    first = side.head(repo, "trunk")
    assert first is not None
    second = side.push(repo, "trunk", {"b.txt": "b\n"})
    elsewhere = repo.create_commit(repo.get_commit(first).tree_sha, [first], "another line", BOT)
    with pytest.raises(NotFastForward):
        repo.update_ref("trunk", elsewhere.sha)
    repo.force_update_ref("trunk", elsewhere.sha)  # the operator's opt-in: history rewritten
    assert side.head(repo, "trunk") == elsewhere.sha
    side.protect(repo, "trunk")
    with pytest.raises(BranchProtected):
        repo.force_update_ref("trunk", second)
    assert side.head(repo, "trunk") == elsewhere.sha


def test_a_protected_branch_refuses_direct_updates(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    head = side.head(repo, "trunk")
    assert head is not None
    side.protect(repo, "trunk")
    tree = repo.create_tree(repo.get_commit(head).tree_sha, [TreeWrite.text("x.txt", "x\n")])
    commit = repo.create_commit(tree, [head], "direct", BOT)
    with pytest.raises(BranchProtected):
        repo.update_ref("trunk", commit.sha)
    assert side.head(repo, "trunk") == head
    repo.create_ref("ghsync/p1", commit.sha)  # the PR path is open
    assert side.head(repo, "ghsync/p1") == commit.sha


def test_create_and_delete_refs(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    head = side.head(repo, "trunk")
    assert head is not None
    with counting_requests() as count:
        repo.create_ref("ghsync/p1", head)
    assert (count.total, count.content_creating) == (1, 1)
    branch = repo.get_branch("ghsync/p1")
    assert branch is not None and branch.sha == head
    with pytest.raises(GitHubValidation):
        repo.create_ref("ghsync/p1", head)
    repo.delete_ref("ghsync/p1")
    assert repo.get_branch("ghsync/p1") is None
    with pytest.raises(GitHubValidation):
        repo.delete_ref("ghsync/p1")
    with pytest.raises(GitHubValidation):
        repo.update_ref("ghsync/p1", head)  # a missing ref is not created by an update
    with pytest.raises(GitHubValidation):
        repo.delete_ref("trunk")  # never the default branch
    assert side.head(repo, "trunk") == head


def test_an_empty_repository(side: Side) -> None:
    repo = side.new_repo()
    info = repo.get_repository()
    assert info.default_branch == "trunk"
    assert repo.get_branch("trunk") is None
    with pytest.raises(RepositoryEmpty) as empty:
        repo.create_blob(b"first\n")
    assert empty.value.status == 409 and empty.value.code == "repository_empty"
    with pytest.raises(RepositoryEmpty):
        repo.create_tree(None, [TreeWrite.text("a.txt", "a\n")])
    with pytest.raises(RepositoryEmpty):
        repo.get_tree(EMPTY_TREE_SHA)


# ---- pull requests -------------------------------------------------------------------------------


def test_pull_request_lifecycle(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    base = side.head(repo, "trunk")
    head = side.push(repo, "ghsync/p1", {"a.txt": "a\n"})
    assert repo.find_open_pull("ghsync/p1", "trunk") is None
    with counting_requests() as count:
        pr = repo.create_pull("ghsync/p1", "trunk", "Sync from ghsync", "version 1")
    assert (count.total, count.content_creating) == (1, 1)
    assert (pr.state, pr.head_ref, pr.head_sha, pr.base_ref, pr.base_sha) == (
        "open",
        "ghsync/p1",
        head,
        "trunk",
        base,
    )
    assert (pr.title, pr.body, pr.merged, pr.draft) == ("Sync from ghsync", "version 1", False, False)
    assert pr.url.endswith(f"/{OWNER}/{repo.name}/pull/{pr.number}")
    found = repo.find_open_pull("ghsync/p1", "trunk")
    assert found is not None and (found.number, found.head_sha, found.state) == (pr.number, head, "open")
    assert found.mergeable is None  # list answers don't carry it: get_pull does
    # GitHub computes mergeability in the background: the GET that starts the job answers null.
    assert (pr.mergeable, repo.get_pull(pr.number).mergeable, repo.get_pull(pr.number).mergeable) == (
        None,
        None,
        True,
    )
    assert repo.find_open_pull("ghsync/p1", "other") is None
    with pytest.raises(GitHubValidation):
        repo.create_pull("ghsync/p1", "trunk", "again")
    newer = side.push(repo, "ghsync/p1", {"b.txt": "b\n"})
    updated = repo.update_pull(pr.number, title="Sync v2", body="version 2")
    assert (updated.title, updated.body, updated.head_sha, updated.state) == (
        "Sync v2",
        "version 2",
        newer,
        "open",
    )
    closed = repo.update_pull(pr.number, state="closed")
    assert (closed.state, closed.merged) == ("closed", False)
    assert repo.find_open_pull("ghsync/p1", "trunk") is None
    assert repo.update_pull(pr.number, state="open").state == "open"
    with pytest.raises(GitHubNotFound):
        repo.get_pull(9999)


def test_a_conflicting_pull_request_is_not_mergeable(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    side.push(repo, "ghsync/p1", {"README.md": "ours\n"})
    side.push(repo, "trunk", {"README.md": "theirs\n"})
    pr = repo.create_pull("ghsync/p1", "trunk", "Sync")
    repo.get_pull(pr.number)  # starts GitHub's mergeability job
    assert repo.get_pull(pr.number).mergeable is False


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_a_merged_pull_request(side: Side, method: str) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    side.push(repo, "ghsync/p1", {"a.txt": "a\n"})
    pr = repo.create_pull("ghsync/p1", "trunk", "Sync")
    side.push(repo, "trunk", {"other.txt": "o\n"})  # the base moved on: a real merge
    merged_head = side.merge_pull(repo, pr.number, method)
    after = repo.get_pull(pr.number)
    assert (after.state, after.merged, after.merge_commit_sha) == ("closed", True, merged_head)
    assert side.head(repo, "trunk") == merged_head
    tree = repo.get_tree(repo.get_commit(merged_head).tree_sha)
    assert [e.path for e in tree] == ["README.md", "a.txt", "other.txt"]
    parents = repo.get_commit(merged_head).parents
    assert len(parents) == (2 if method == "merge" else 1)
    assert repo.find_open_pull("ghsync/p1", "trunk") is None


def test_the_engines_outbound_path_costs_four_requests_three_of_them_writes(side: Side) -> None:
    repo = side.new_repo({"README.md": "hi\n"})
    head = side.head(repo, "trunk")
    assert head is not None
    with counting_requests() as outer:
        with counting_requests() as inner:
            new = outbound(repo, head, {f"f{i}.txt": f"{i}\n" for i in range(20)})
        repo.get_branch("trunk")
    assert (inner.total, inner.content_creating) == (4, 3)  # read parent, tree, commit, ref
    assert (outer.total, outer.content_creating) == (5, 3)  # nested blocks both count
    assert side.head(repo, "trunk") == new


# ---- batched head reads (the polling safety net) ---------------------------------------------------


def test_default_branch_heads_reads_many_repositories_in_one_request(side: Side) -> None:
    one = side.new_repo({"README.md": "one\n"})
    two = side.new_repo({"README.md": "two\n"})
    empty = side.new_repo()
    hidden = side.add_unselected_repo()
    wanted = [(OWNER, one.name), (OWNER, two.name), (OWNER, empty.name), (OWNER, hidden), (OWNER, "nope")]
    with counting_requests() as count:
        read = side.app.default_branch_heads(side.installation_id, wanted)
    assert (count.total, count.content_creating) == (1, 0)  # one query, and a query creates nothing
    assert read.heads == {
        (OWNER, one.name): RemoteHead("trunk", side.head(one, "trunk")),
        (OWNER, two.name): RemoteHead("trunk", side.head(two, "trunk")),
        (OWNER, empty.name): RemoteHead(None, None),  # an empty repository has no default branch ref
    }  # the missing and the not-installed repositories are left out
    assert read.points >= 1 and read.remaining is not None and read.limit is not None
    assert read.remaining < read.limit

    moved = side.push(one, "trunk", {"a.txt": "a\n"})
    again = side.app.default_branch_heads(side.installation_id, [(OWNER, one.name)])
    assert again.heads == {(OWNER, one.name): RemoteHead("trunk", moved)}
