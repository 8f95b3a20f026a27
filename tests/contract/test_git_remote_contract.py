"""The GitRemote port's contract: every test runs against the smart-HTTP adapter over the GitHub
emulator's git endpoint and against the in-memory twin over `InMemoryGitHub`, so the engine's unit
tests of the git transport stand on a twin that behaves like git against GitHub.

The local side is a real `GitStore` project: commits are built there with `write_commit`, as the engine
builds them. What a person does on GitHub goes through a `Side` helper.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
import pygit2
import pytest

from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig
from ghsync.adapters.github.git_transport import SmartHttpGitRemote, git_base_url
from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.github.memory_git import InMemoryGitRemote
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.errors import (
    BranchProtected,
    GitHubNotFound,
    GitHubServerError,
    GitHubValidation,
    NotFastForward,
)
from ghsync.domain.models import FileMode
from ghsync.domain.trees import GitIdentity, TreeEdit
from ghsync.ports.git_remote import TRACKING_PREFIX, GitRemote, RemoteRepo
from ghsync.ports.github import GitHubApp, counting_requests
from github_emulator.testing import EmulatorHandle, run_emulator

OWNER = "octo"
MIB = 1024 * 1024
BOT = GitIdentity("ghsync", "ghsync@example.com", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
_names = itertools.count(1)


class Side(Protocol):
    @property
    def git(self) -> GitRemote: ...
    @property
    def app(self) -> GitHubApp: ...
    @property
    def installation_id(self) -> int: ...

    def new_repo(self, files: Mapping[str, str] | None = None, *, hidden: bool = False) -> RemoteRepo: ...
    def push(self, remote: RemoteRepo, branch: str, files: Mapping[str, str]) -> str: ...
    def protect(self, remote: RemoteRepo, branch: str) -> None: ...
    def head(self, remote: RemoteRepo, branch: str) -> str | None: ...
    def tag(self, remote: RemoteRepo, name: str, sha: str) -> None: ...
    def git_requests(self) -> int | None:
        """Git requests the emulator logged since the last call (None: the twin keeps no log)."""

    def fail_next_push(self) -> None:
        """GitHub answers the next push with a 502."""


@dataclass
class EmulatorSide:
    emu: EmulatorHandle
    app: GitHubAppClient
    installation_id: int
    person: httpx.Client
    git: SmartHttpGitRemote

    def new_repo(self, files: Mapping[str, str] | None = None, *, hidden: bool = False) -> RemoteRepo:
        name = f"repo{next(_names)}"
        self.emu.create_repo(
            OWNER, name, default_branch="trunk", files=dict(files) if files else None, private=True
        )
        if not hidden:
            self.emu.change_installation(self.installation_id, add=[f"{OWNER}/{name}"])
        self.emu.clear_requests()
        return RemoteRepo(self.installation_id, OWNER, name)

    def _ok(self, response: httpx.Response) -> dict[str, object]:
        assert response.status_code < 300, response.text
        body: dict[str, object] = response.json()
        return body

    def push(self, remote: RemoteRepo, branch: str, files: Mapping[str, str]) -> str:
        base = f"/repos/{OWNER}/{remote.name}"
        parent = self.head(remote, branch)
        assert parent is not None
        commit = self._ok(self.person.get(f"{base}/git/commits/{parent}"))
        tree = commit["tree"]["sha"]  # type: ignore[index]
        entries = [{"path": p, "mode": "100644", "type": "blob", "content": c} for p, c in files.items()]
        new_tree = self._ok(self.person.post(f"{base}/git/trees", json={"base_tree": tree, "tree": entries}))
        made = self._ok(
            self.person.post(
                f"{base}/git/commits",
                json={"message": "A person's change", "tree": new_tree["sha"], "parents": [parent]},
            )
        )
        self._ok(self.person.patch(f"{base}/git/refs/heads/{branch}", json={"sha": made["sha"]}))
        self.emu.clear_requests()
        return str(made["sha"])

    def protect(self, remote: RemoteRepo, branch: str) -> None:
        rules = {
            "required_status_checks": None,
            "enforce_admins": None,
            "required_pull_request_reviews": {"required_approving_review_count": 0},
            "restrictions": None,
        }
        self._ok(self.person.put(f"/repos/{OWNER}/{remote.name}/branches/{branch}/protection", json=rules))
        self.emu.clear_requests()

    def head(self, remote: RemoteRepo, branch: str) -> str | None:
        record = self.emu.emulator.store.find_repo(OWNER, remote.name)
        assert record is not None
        git = self.emu.emulator.open_git(record)
        ref = f"refs/heads/{branch}"
        return str(git.references[ref].target) if ref in git.references else None

    def tag(self, remote: RemoteRepo, name: str, sha: str) -> None:
        self._ok(
            self.person.post(
                f"/repos/{OWNER}/{remote.name}/git/refs", json={"ref": f"refs/tags/{name}", "sha": sha}
            )
        )
        self.emu.clear_requests()

    def git_requests(self) -> int | None:
        count = len([r for r in self.emu.requests() if ".git/" in r["path"]])
        self.emu.clear_requests()
        return count

    def fail_next_push(self) -> None:
        self.emu.add_fault(r"\.git/git-receive-pack$", status=502)


@dataclass
class FakeSide:
    hub: InMemoryGitHub
    installation_id: int
    git: InMemoryGitRemote

    @property
    def app(self) -> GitHubApp:
        return self.hub

    def new_repo(self, files: Mapping[str, str] | None = None, *, hidden: bool = False) -> RemoteRepo:
        name = f"repo{next(_names)}"
        self.hub.add_repo(
            OWNER,
            name,
            default_branch="trunk",
            files=files,
            private=True,
            installation_id=None if hidden else self.installation_id,
        )
        return RemoteRepo(self.installation_id, OWNER, name)

    def push(self, remote: RemoteRepo, branch: str, files: Mapping[str, str]) -> str:
        return self.hub.push(OWNER, remote.name, branch, dict(files))

    def protect(self, remote: RemoteRepo, branch: str) -> None:
        self.hub.protect(OWNER, remote.name, branch)

    def head(self, remote: RemoteRepo, branch: str) -> str | None:
        return self.hub.head(OWNER, remote.name, branch)

    def tag(self, remote: RemoteRepo, name: str, sha: str) -> None:
        git = self.hub._find(OWNER, remote.name).git
        git.references.create(f"refs/tags/{name}", pygit2.Oid(hex=sha))

    def git_requests(self) -> int | None:
        return None  # the twin has no request log; its counts are held to the emulator's below

    def fail_next_push(self) -> None:
        self.hub.inject_fault(operation="git_push")  # a 502, as the real adapter raises it


@pytest.fixture(scope="module")
def emulator(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EmulatorHandle, GitHubAppClient, int, httpx.Client]]:
    with run_emulator(tmp_path_factory.mktemp("emu")) as emu:
        app = emu.create_app("ghsync-git-contract")
        emu.create_repo(OWNER, "seed", default_branch="trunk", files={"README.md": "seed\n"})
        inst = emu.create_installation(app.id, OWNER, [f"{OWNER}/seed"])
        user = emu.create_user("person")
        config = GitHubAppConfig(app_id=app.id, private_key=app.private_key, api_url=emu.url)
        person = httpx.Client(
            base_url=emu.url, headers={"Authorization": f"token {user.token}"}, timeout=30, trust_env=False
        )
        with GitHubAppClient(config) as client, person:
            yield emu, client, inst, person


@dataclass
class Local:
    store: GitStore
    project: str

    def git_dir(self, _project_id: str) -> Path:
        return self.store.project_dir(self.project) / ".git"

    def commit(
        self, parent: str | None, files: Mapping[str, bytes], modes: Mapping[str, FileMode] | None = None
    ) -> str:
        """A commit of `parent`'s tree with `files` written, built in the store as the engine does."""
        shas = self.store.write_blobs(self.project, list(files.values()))
        base = self.store.tree_sha(self.project, parent) if parent else None
        edits = [
            TreeEdit(path, sha, (modes or {}).get(path, FileMode.REGULAR))
            for path, sha in zip(files, shas, strict=True)
        ]
        tree = self.store.build_tree(self.project, base, edits)
        return self.store.write_commit(
            self.project,
            tree_sha=tree,
            parents=[parent] if parent else [],
            message="A version\n",
            author=BOT,
            committer=BOT,
        )


@pytest.fixture
def local(tmp_path: Path) -> Local:
    store = GitStore(tmp_path / "projects", max_file_size=100 * MIB)
    store.init_project("p1")
    return Local(store, "p1")


@pytest.fixture(params=["smart_http", "memory"])
def side(request: pytest.FixtureRequest, tmp_path: Path, local: Local) -> Iterator[Side]:
    if request.param == "smart_http":
        emu, client, inst, person = request.getfixturevalue("emulator")
        git = SmartHttpGitRemote(
            git_base_url(emu.url),
            local.git_dir,
            client.installation_token,
            client.invalidate_installation_token,
        )
        yield EmulatorSide(emu, client, inst, person, git)
        return
    with InMemoryGitHub(tmp_path / "fake") as hub:
        inst = hub.add_installation(OWNER, [])
        yield FakeSide(hub, inst, InMemoryGitRemote(hub, local.git_dir))


def remote_files(side: Side, remote: RemoteRepo, branch: str) -> dict[str, tuple[str, bytes]]:
    repo = side.app.repo(remote.installation_id, remote.owner, remote.name)
    head = side.head(remote, branch)
    assert head is not None
    return {e.path: (e.mode.value, repo.get_blob(e.sha)) for e in repo.get_tree(head)}


# ---- fetch ---------------------------------------------------------------------------------------


def test_fetch_brings_the_branch_into_the_store_and_a_second_fetch_only_reads_the_refs(
    side: Side, local: Local
) -> None:
    remote = side.new_repo({"README.md": "hi\n", "src/app.py": "print(1)\n"})
    head = side.head(remote, "trunk")
    with counting_requests() as first:
        assert side.git.fetch(local.project, remote, "trunk") == head
    assert head is not None and local.store.has_objects(local.project, [head]) == {head}
    tree = local.store.tree_sha(local.project, head)
    assert {p: e.sha for p, e in local.store.flat_tree(local.project, tree).items()} == {
        "README.md": str(pygit2.hash(b"hi\n")),
        "src/app.py": str(pygit2.hash(b"print(1)\n")),
    }
    assert local.store.list_refs(local.project, TRACKING_PREFIX) == {TRACKING_PREFIX + "trunk": head}
    # The advertisement and one upload-pack POST; nothing is content-creating.
    assert (first.total, first.content_creating) == (2, 0)
    assert side.git_requests() in (None, 2)
    with counting_requests() as again:
        assert side.git.fetch(local.project, remote, "trunk") == head
    assert (again.total, again.content_creating) == (1, 0)


def test_fetch_after_github_moved_brings_only_the_new_commit(side: Side, local: Local) -> None:
    remote = side.new_repo({"README.md": "hi\n"})
    side.git.fetch(local.project, remote, "trunk")
    moved = side.push(remote, "trunk", {"new.txt": "new\n"})
    assert side.git.fetch(local.project, remote, "trunk") == moved
    assert local.store.has_objects(local.project, [moved, str(pygit2.hash(b"new\n"))]) == {
        moved,
        str(pygit2.hash(b"new\n")),
    }


def test_fetch_of_an_empty_repository_or_a_missing_branch_is_none(side: Side, local: Local) -> None:
    empty = side.new_repo()
    assert side.git.fetch(local.project, empty, "trunk") is None
    full = side.new_repo({"a": "a\n"})
    assert side.git.fetch(local.project, full, "no-such-branch") is None
    assert local.store.list_refs(local.project, TRACKING_PREFIX) == {}


def test_github_tags_never_reach_the_store(side: Side, local: Local) -> None:
    # The store's refs/tags/v<n> name its versions: a GitHub tag "v1" must not land among them.
    remote = side.new_repo({"a": "a\n"})
    head = side.head(remote, "trunk")
    assert head is not None
    side.tag(remote, "v1", head)
    side.git.fetch(local.project, remote, "trunk")
    assert local.store.list_refs(local.project, "refs/tags/") == {}


def test_a_repository_the_installation_cannot_see_is_not_found(side: Side, local: Local) -> None:
    hidden = side.new_repo({"a": "a\n"}, hidden=True)
    with pytest.raises(GitHubNotFound):
        side.git.fetch(local.project, hidden, "trunk")
    with pytest.raises(GitHubNotFound):
        side.git.push(local.project, hidden, "trunk", local.commit(None, {"b": b"b"}), expected=None)


# ---- push ----------------------------------------------------------------------------------------


def test_push_fast_forwards_the_branch_with_every_kind_of_file(side: Side, local: Local) -> None:
    remote = side.new_repo({"README.md": "hi\n"})
    head = side.git.fetch(local.project, remote, "trunk")
    png = b"\x89PNG\r\n\x1a\n\x00\xff" * 50
    commit = local.commit(
        head,
        {"img/logo.png": png, "run.sh": b"#!/bin/sh\necho hi\n", "link": b"README.md"},
        {"run.sh": FileMode.EXECUTABLE, "link": FileMode.SYMLINK},
    )
    side.git_requests()
    with counting_requests() as count:
        side.git.push(local.project, remote, "trunk", commit, expected=head)
    assert side.head(remote, "trunk") == commit
    assert remote_files(side, remote, "trunk") == {
        "README.md": ("100644", b"hi\n"),
        "img/logo.png": ("100644", png),
        "run.sh": ("100755", b"#!/bin/sh\necho hi\n"),
        "link": ("120000", b"README.md"),
    }
    # The advertisement and one receive-pack POST, none of them a REST content-creating request.
    assert (count.total, count.content_creating) == (2, 0)
    assert side.git_requests() in (None, 2)
    assert local.store.list_refs(local.project, TRACKING_PREFIX) == {TRACKING_PREFIX + "trunk": commit}


def test_push_into_an_empty_repository_creates_the_branch(side: Side, local: Local) -> None:
    remote = side.new_repo()
    first = local.commit(None, {"index.html": b"<h1>hi</h1>\n"})
    side.git.push(local.project, remote, "trunk", first, expected=None)
    assert side.head(remote, "trunk") == first
    assert remote_files(side, remote, "trunk") == {"index.html": ("100644", b"<h1>hi</h1>\n")}


def test_push_when_github_moved_is_refused_and_changes_nothing(side: Side, local: Local) -> None:
    remote = side.new_repo({"README.md": "hi\n"})
    head = side.git.fetch(local.project, remote, "trunk")
    ours = local.commit(head, {"ours.txt": b"ours\n"})
    moved = side.push(remote, "trunk", {"theirs.txt": "theirs\n"})
    with pytest.raises(NotFastForward):
        side.git.push(local.project, remote, "trunk", ours, expected=head)
    assert side.head(remote, "trunk") == moved
    # The branch that already exists cannot be "created" either.
    with pytest.raises(NotFastForward):
        side.git.push(local.project, remote, "trunk", local.commit(None, {"x": b"x"}), expected=None)
    assert side.head(remote, "trunk") == moved


def test_a_commit_that_does_not_descend_from_the_head_is_never_pushed(side: Side, local: Local) -> None:
    remote = side.new_repo({"README.md": "hi\n"})
    head = side.git.fetch(local.project, remote, "trunk")
    unrelated = local.commit(None, {"other": b"other\n"})
    with counting_requests() as count, pytest.raises(NotFastForward):
        side.git.push(local.project, remote, "trunk", unrelated, expected=head)
    assert count.total == 0 and side.head(remote, "trunk") == head


def test_a_protected_branch_refuses_the_push(side: Side, local: Local) -> None:
    remote = side.new_repo({"README.md": "hi\n"})
    head = side.git.fetch(local.project, remote, "trunk")
    side.protect(remote, "trunk")
    commit = local.commit(head, {"x.txt": b"x\n"})
    with pytest.raises(BranchProtected):
        side.git.push(local.project, remote, "trunk", commit, expected=head)
    assert side.head(remote, "trunk") == head
    # Another branch (the PR branch) takes the same commit.
    side.git.push(local.project, remote, "ghsync/p1", commit, expected=None)
    assert side.head(remote, "ghsync/p1") == commit


def test_an_expired_token_is_replaced_once_and_the_push_goes_through(
    emulator: tuple[EmulatorHandle, GitHubAppClient, int, httpx.Client], local: Local
) -> None:
    # Smart HTTP only (the twin has no tokens): GitHub answers 401 to an expired installation token.
    emu, client, inst, person = emulator
    side = EmulatorSide(
        emu,
        client,
        inst,
        person,
        SmartHttpGitRemote(
            git_base_url(emu.url),
            local.git_dir,
            client.installation_token,
            client.invalidate_installation_token,
        ),
    )
    remote = side.new_repo({"README.md": "hi\n"})
    head = side.git.fetch(local.project, remote, "trunk")
    stale = client.installation_token(inst)
    assert emu.expire_tokens(token=stale) == 1
    commit = local.commit(head, {"x.txt": b"x\n"})
    side.git.push(local.project, remote, "trunk", commit, expected=head)
    assert side.head(remote, "trunk") == commit
    assert client.installation_token(inst) != stale


def test_git_base_url_follows_the_api_url() -> None:
    assert git_base_url("https://api.github.com") == "https://github.com"
    assert git_base_url("https://ghe.example.com/api/v3/") == "https://ghe.example.com"
    assert git_base_url("http://127.0.0.1:8123") == "http://127.0.0.1:8123"


def test_what_the_store_pushes_clones_back_and_passes_fsck_strict(
    emulator: tuple[EmulatorHandle, GitHubAppClient, int, httpx.Client], local: Local, tmp_path: Path
) -> None:
    # Smart HTTP only: the commits and trees the store writes are objects GitHub's own checks accept.
    emu, client, inst, person = emulator
    git = SmartHttpGitRemote(
        git_base_url(emu.url), local.git_dir, client.installation_token, client.invalidate_installation_token
    )
    side = EmulatorSide(emu, client, inst, person, git)
    remote = side.new_repo()
    first = local.commit(
        None, {"a/b/c.txt": b"c\n", "run.sh": b"#!/bin/sh\n"}, {"run.sh": FileMode.EXECUTABLE}
    )
    git.push(local.project, remote, "trunk", first, expected=None)
    second = local.commit(
        first, {"a/b/d.bin": bytes(range(256)), "link": b"a/b/c.txt"}, {"link": FileMode.SYMLINK}
    )
    git.push(local.project, remote, "trunk", second, expected=first)
    clone = tmp_path / "clone"
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
        "PATH": os.environ["PATH"],
    }
    url = emu.git_url(OWNER, remote.name, client.installation_token(inst))
    subprocess.run(["git", "clone", "-q", url, str(clone)], check=True, env=env, capture_output=True)
    assert (
        subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=clone, check=True, env=env, capture_output=True, text=True
        ).stdout.strip()
        == second
    )
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=clone, env=env, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stdout == "", fsck.stdout + fsck.stderr
    assert (clone / "a/b/d.bin").read_bytes() == bytes(range(256))
    assert os.access(clone / "run.sh", os.X_OK) and os.readlink(clone / "link") == "a/b/c.txt"


def test_a_server_error_on_push_raises_and_changes_nothing(side: Side, local: Local) -> None:
    remote = side.new_repo({"README.md": "hi\n"})
    head = side.git.fetch(local.project, remote, "trunk")
    commit = local.commit(head, {"x.txt": b"x\n"})
    side.fail_next_push()
    with pytest.raises(GitHubServerError) as raised:
        side.git.push(local.project, remote, "trunk", commit, expected=head)
    assert raised.value.status == 502
    assert side.head(remote, "trunk") == head
    side.git.push(local.project, remote, "trunk", commit, expected=head)  # the retry goes through
    assert side.head(remote, "trunk") == commit


def test_pushing_a_commit_github_already_has_to_a_new_branch_costs_the_same_two_requests(
    side: Side, local: Local
) -> None:
    remote = side.new_repo({"README.md": "hi\n"})
    head = side.git.fetch(local.project, remote, "trunk")
    assert head is not None
    side.git_requests()
    with counting_requests() as count:
        side.git.push(local.project, remote, "ghsync/p1", head, expected=None)
    assert side.head(remote, "ghsync/p1") == head
    assert (count.total, count.content_creating) == (2, 0)
    assert side.git_requests() in (None, 2)


def test_a_push_github_refuses_for_another_reason_is_not_read_again(
    emulator: tuple[EmulatorHandle, GitHubAppClient, int, httpx.Client], tmp_path: Path
) -> None:
    # Smart HTTP only: GitHub's pre-receive hook refuses a file over 100 MiB (GH001). That is no race,
    # so it must not be NotFastForward (which makes the engine read and decide again).
    emu, client, inst, person = emulator
    store = GitStore(tmp_path / "big", max_file_size=200 * MIB)
    store.init_project("p2")
    big = Local(store, "p2")
    git = SmartHttpGitRemote(
        git_base_url(emu.url), big.git_dir, client.installation_token, client.invalidate_installation_token
    )
    side = EmulatorSide(emu, client, inst, person, git)
    remote = side.new_repo({"README.md": "hi\n"})
    head = git.fetch(big.project, remote, "trunk")
    commit = big.commit(head, {"huge.bin": bytes(101 * MIB)})  # zeros: a tiny pack, a 101 MiB blob
    with pytest.raises(GitHubValidation) as raised:
        git.push(big.project, remote, "trunk", commit, expected=head)
    assert not isinstance(raised.value, NotFastForward | BranchProtected)
    assert "GH001" in raised.value.message
    assert side.head(remote, "trunk") == head


def test_github_moving_between_the_advertisement_and_the_pack_is_refused_by_compare_and_swap(
    emulator: tuple[EmulatorHandle, GitHubAppClient, int, httpx.Client], local: Local
) -> None:
    # Smart HTTP only: the emulator holds our receive-pack POST while a person pushes; receive-pack
    # then finds the branch away from the old SHA our push names, and refuses it.
    emu, client, inst, person = emulator
    git = SmartHttpGitRemote(
        git_base_url(emu.url), local.git_dir, client.installation_token, client.invalidate_installation_token
    )
    side = EmulatorSide(emu, client, inst, person, git)
    remote = side.new_repo({"README.md": "hi\n"})
    head = git.fetch(local.project, remote, "trunk")
    ours = local.commit(head, {"ours.txt": b"ours\n"})
    emu.add_fault(r"\.git/git-receive-pack$", delay_ms=1500)  # latency only: then it is served
    moved: list[str] = []
    person_push = threading.Timer(0.5, lambda: moved.append(side.push(remote, "trunk", {"p.txt": "p\n"})))
    person_push.start()
    try:
        with pytest.raises(NotFastForward) as raised:
            git.push(local.project, remote, "trunk", ours, expected=head)
    finally:
        person_push.join()
    assert "GitHub refused the push" in raised.value.message, raised.value.message
    assert side.head(remote, "trunk") == moved[0]
