"""The local version store on real repositories: content, safety, numbering, diff, concurrency."""

from __future__ import annotations

import multiprocessing
import os
import random
import stat
import subprocess
import threading
from pathlib import Path

import pygit2
import pytest

from ghsync.adapters.store import GitStore
from ghsync.adapters.store.changes import TreeItem, apply_changes, format_message, parse_message
from ghsync.adapters.store.git_store import SYSTEM_AUTHOR
from ghsync.domain.errors import (
    ConcurrentUpdate,
    Conflict,
    FileTooLarge,
    InvalidInput,
    InvalidPath,
    NotFound,
)
from ghsync.domain.models import Author, DiffStatus, FileMode, FileWrite
from ghsync.domain.trees import TreeEdit, TreeEntry

LIMIT = 64 * 1024
P = "proj-1"
ALL_BYTES = bytes(range(256)) * 3
SCRIPT = b"#!/bin/sh\necho hi\r\n"
LINES = b"".join(b"line %d\n" % i for i in range(10))
SNAPSHOT = "Snapshot of uncommitted changes"


@pytest.fixture
def store(tmp_path: Path) -> GitStore:
    s = GitStore(tmp_path / "projects", max_file_size=LIMIT)
    s.init_project(P)
    return s


@pytest.fixture
def workdir(store: GitStore) -> Path:
    return store.project_dir(P)


_counter = iter(range(1_000_000))


def put(store: GitStore, *writes: FileWrite, **kwargs: object) -> str:
    """Create a version and return its commit SHA."""
    info = store.create_version(
        P,
        version_id=f"v-{next(_counter)}",
        message=str(kwargs.pop("message", "change")),
        writes=list(writes),
        **kwargs,  # type: ignore[arg-type]
    )
    return info.commit_sha


def files(store: GitStore, sha: str | None = None) -> dict[str, bytes]:
    sha = sha or store.head(P)
    assert sha is not None
    return {e.path: store.read_file(P, sha, e.path) for e in store.list_files(P, sha)}


def disk_files(root: Path) -> dict[str, bytes]:
    """The working directory as path -> bytes (symlinks as their target), without .git."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git" and not os.path.islink(os.path.join(dirpath, d))]
        names = filenames + [d for d in os.listdir(dirpath) if os.path.islink(os.path.join(dirpath, d))]
        for name in set(names):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            out[rel] = os.readlink(full).encode() if os.path.islink(full) else Path(full).read_bytes()
    return out


# --- projects -------------------------------------------------------------------------------------------


def test_init_is_idempotent_and_keeps_versions(store: GitStore) -> None:
    sha = put(store, FileWrite("a", b"1"))
    store.init_project(P)
    assert store.head(P) == sha
    assert store.exists(P)


def test_unknown_project_and_bad_project_id(store: GitStore) -> None:
    with pytest.raises(NotFound):
        store.head("nope")
    with pytest.raises(InvalidInput):
        store.init_project("../escape")
    with pytest.raises(InvalidInput):
        store.init_project("a/b")


def test_empty_project(store: GitStore) -> None:
    assert store.head(P) is None
    assert store.list_versions(P) == []
    assert not store.is_dirty(P)


# --- content round trips --------------------------------------------------------------------------------


def test_binary_and_executable_files_round_trip_byte_exact(store: GitStore, workdir: Path) -> None:
    sha = put(
        store,
        FileWrite("data/all.bin", ALL_BYTES),
        FileWrite("bin/run.sh", SCRIPT, FileMode.EXECUTABLE),
        FileWrite("crlf.txt", b"a\r\nb\r\n"),
        FileWrite("no-newline.txt", b"x"),
        FileWrite("empty", b""),
    )
    assert files(store, sha) == {
        "bin/run.sh": SCRIPT,
        "crlf.txt": b"a\r\nb\r\n",
        "data/all.bin": ALL_BYTES,
        "empty": b"",
        "no-newline.txt": b"x",
    }
    entries = {e.path: e for e in store.list_files(P, sha)}
    assert [e for e in entries] == sorted(entries)
    assert entries["bin/run.sh"].mode is FileMode.EXECUTABLE
    assert entries["data/all.bin"].mode is FileMode.REGULAR
    assert entries["data/all.bin"].size == len(ALL_BYTES)
    assert entries["data/all.bin"].sha == str(pygit2.hash(ALL_BYTES))  # the git blob SHA, as on GitHub
    # ... and through the working directory
    assert (workdir / "data/all.bin").read_bytes() == ALL_BYTES
    assert (workdir / "crlf.txt").read_bytes() == b"a\r\nb\r\n"
    assert os.stat(workdir / "bin/run.sh").st_mode & 0o111
    assert not os.stat(workdir / "data/all.bin").st_mode & 0o111
    assert not store.is_dirty(P)


def test_read_file_errors(store: GitStore) -> None:
    sha = put(store, FileWrite("dir/a", b"1"))
    with pytest.raises(NotFound):
        store.read_file(P, sha, "missing")
    with pytest.raises(NotFound):
        store.read_file(P, sha, "dir")  # a directory is not a file
    with pytest.raises(InvalidPath):
        store.read_file(P, sha, "../x")
    with pytest.raises(NotFound):
        store.read_file(P, "0" * 40, "dir/a")
    with pytest.raises(NotFound):
        store.get_version(P, "not-a-sha")


# --- symlinks and escapes -------------------------------------------------------------------------------


def test_symlinks_are_stored_as_links(store: GitStore, workdir: Path) -> None:
    sha = put(
        store,
        FileWrite("real/file.txt", b"content"),
        FileWrite("link", b"real/file.txt", FileMode.SYMLINK),
        FileWrite("real/up", b"..", FileMode.SYMLINK),
    )
    entries = {e.path: e for e in store.list_files(P, sha)}
    assert entries["link"].mode is FileMode.SYMLINK
    assert store.read_file(P, sha, "link") == b"real/file.txt"
    assert os.readlink(workdir / "link") == "real/file.txt"
    assert os.readlink(workdir / "real/up") == ".."
    assert (workdir / "link").read_bytes() == b"content"


@pytest.mark.parametrize(
    "target", [b"/etc/passwd", b"../outside", b"../../etc", b"a/../../x", b".git/config"]
)
def test_escaping_symlink_targets_are_refused(store: GitStore, workdir: Path, target: bytes) -> None:
    before = put(store, FileWrite("keep", b"1"))
    with pytest.raises(InvalidPath):
        put(store, FileWrite("evil", target, FileMode.SYMLINK), FileWrite("other", b"2"))
    assert store.head(P) == before
    assert not os.path.lexists(workdir / "evil")
    assert not os.path.lexists(workdir / "other")


def test_symlink_plus_file_below_it_is_refused(store: GitStore, workdir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="symlink"):
        put(store, FileWrite("a", b"sub", FileMode.SYMLINK), FileWrite("a/passwd", b"x"))
    put(store, FileWrite("a", b"sub", FileMode.SYMLINK), FileWrite("sub/keep", b"k"))
    with pytest.raises(InvalidInput, match=r"is a symlink"):
        put(store, FileWrite("a/passwd", b"x"))
    assert not (workdir / "sub/passwd").exists()
    # Deleting the link in the same version turns `a` into a real directory; the checkout must not follow
    # the old link (which would write into sub/).
    put(store, FileWrite("a/passwd", b"x"), deletes=["a"])
    assert not os.path.islink(workdir / "a")
    assert (workdir / "a/passwd").read_bytes() == b"x"
    assert not (workdir / "sub/passwd").exists()


def test_checkout_never_writes_through_an_untracked_symlink(
    store: GitStore, workdir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    put(store, FileWrite(".gitignore", b"a\n"))
    head = store.head(P)
    os.symlink(outside, workdir / "a")  # made by hand and ignored, so no snapshot records it
    assert not store.is_dirty(P)
    with pytest.raises(InvalidPath, match="symlink"):
        put(store, FileWrite("a/passwd", b"pwned"))
    assert list(outside.iterdir()) == []
    assert store.head(P) == head


def test_checkout_checks_every_directory_it_writes_into_for_an_untracked_symlink(
    store: GitStore, workdir: Path, tmp_path: Path
) -> None:
    # The check runs once per directory: many files in a plain directory must not hide the one
    # written below a symlink, whichever comes first.
    outside = tmp_path / "outside"
    outside.mkdir()
    put(store, FileWrite(".gitignore", b"b\n"))
    head = store.head(P)
    os.symlink(outside, workdir / "b")
    writes = [FileWrite(f"a/{n}.txt", b"fine") for n in range(50)] + [FileWrite("b/passwd", b"pwned")]
    writes += [FileWrite(f"c/{n}.txt", b"fine") for n in range(50)]
    with pytest.raises(InvalidPath, match="'b' in the working directory is a symlink"):
        put(store, *writes)
    assert list(outside.iterdir()) == []
    assert not (workdir / "a").exists() and not (workdir / "c").exists()  # refused before any write
    assert store.head(P) == head


def test_snapshot_refuses_a_symlink_leading_outside(store: GitStore, workdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    head = put(store, FileWrite("x", b"1"))
    os.symlink(outside, workdir / "a")
    with pytest.raises(InvalidPath, match="absolute"):
        store.snapshot(P, version_id="s", message="snap")
    # ... and so a version from the API cannot land on top of it either
    with pytest.raises(InvalidPath):
        put(store, FileWrite("a/passwd", b"pwned"))
    assert list(outside.iterdir()) == []
    assert store.head(P) == head


@pytest.mark.parametrize(
    "path", ["../x", "/abs", ".git/config", "sub/.GIT/hooks/post-checkout", "a\x00b", "a\\b", "a//b"]
)
def test_invalid_paths_change_nothing(store: GitStore, workdir: Path, path: str) -> None:
    head = put(store, FileWrite("keep", b"1"))
    with pytest.raises(InvalidPath):
        put(store, FileWrite("ok", b"2"), FileWrite(path, b"evil"))
    with pytest.raises(InvalidPath):
        put(store, deletes=[path])
    assert store.head(P) == head
    assert not (workdir / "ok").exists()
    assert not (workdir.parent / "x").exists()


# --- change sets ----------------------------------------------------------------------------------------


def test_partial_update_replace_all_and_deletes(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("a", b"1"), FileWrite("d/b", b"2"), FileWrite("d/e/c", b"3"), FileWrite("z", b"4"))
    put(store, FileWrite("a", b"1b"))  # files not listed stay as they are
    assert files(store) == {"a": b"1b", "d/b": b"2", "d/e/c": b"3", "z": b"4"}
    put(store, FileWrite("n", b"5"), deletes=["z", "d/e"])  # a directory delete removes what is below it
    assert files(store) == {"a": b"1b", "d/b": b"2", "n": b"5"}
    assert disk_files(workdir) == {"a": b"1b", "d/b": b"2", "n": b"5"}
    assert not (workdir / "d/e").exists()
    put(store, FileWrite("only", b"6"), replace_all=True)
    assert files(store) == {"only": b"6"}
    assert disk_files(workdir) == {"only": b"6"}
    assert not store.is_dirty(P)


def test_change_set_errors(store: GitStore) -> None:
    head = put(store, FileWrite("a", b"1"))
    with pytest.raises(InvalidInput) as info:
        put(store, deletes=["missing"])
    assert info.value.code == "no_such_path"
    with pytest.raises(InvalidInput) as info:
        put(store, FileWrite("a", b"2"), deletes=["a"])
    assert info.value.code == "duplicate_path"
    with pytest.raises(InvalidInput) as info:
        put(store, FileWrite("b", b"2"), FileWrite("b", b"3"))
    assert info.value.code == "duplicate_path"
    with pytest.raises(InvalidInput) as info:
        put(store, FileWrite("a", b"1"))
    assert info.value.code == "no_changes"
    with pytest.raises(InvalidInput):
        store.create_version(P, version_id="has space", message="m", writes=[FileWrite("q", b"")])
    with pytest.raises(InvalidInput):
        store.create_version(P, version_id="x", message="m", writes=[], source="elsewhere")  # type: ignore[arg-type]
    assert store.head(P) == head


def test_file_becomes_directory_and_back(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("a", b"file"))
    put(store, FileWrite("a/b", b"nested"), deletes=["a"])
    assert disk_files(workdir) == {"a/b": b"nested"}
    put(store, FileWrite("a", b"file again"), deletes=["a"])
    assert disk_files(workdir) == {"a": b"file again"}


def _tree_from_scratch(scratch: pygit2.Repository, expected: dict[str, tuple[bytes, FileMode]]) -> str:
    """The reference: the same files put through a fresh index in another repository."""
    index = pygit2.Index()
    for path, (content, mode) in expected.items():
        blob = scratch.create_blob(content)
        index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode(mode.git_mode)))
    return str(index.write_tree(scratch))


def test_incremental_trees_match_trees_built_from_scratch(
    store: GitStore, workdir: Path, tmp_path: Path
) -> None:
    scratch = pygit2.init_repository(str(tmp_path / "scratch"), bare=True)
    # Paths chosen so that files keep turning into directories and back (a, a/b, a/b/c ...).
    names = ["a", "a/b", "a/b/c", "a/d", "e", "e/f/g", "h", "h/i"]
    rng = random.Random(20240601)
    state: dict[str, tuple[bytes, FileMode]] = {}
    for step in range(40):
        target: dict[str, tuple[bytes, FileMode]] = {}
        for name in rng.sample(names, rng.randint(0, len(names))):
            if any(name.startswith(t + "/") or t.startswith(name + "/") for t in target):
                continue
            if name in state and rng.random() < 0.6:
                target[name] = state[name]
            else:
                mode = rng.choice([FileMode.REGULAR, FileMode.EXECUTABLE, FileMode.SYMLINK])
                target[name] = (b"h" if mode is FileMode.SYMLINK else b"%d" % rng.randint(0, 3), mode)
        if target == state:
            continue
        writes = [FileWrite(p, c, m) for p, (c, m) in target.items() if state.get(p) != (c, m)]
        if rng.random() < 0.3:
            put(store, *[FileWrite(p, c, m) for p, (c, m) in target.items()], replace_all=True)
        else:
            put(store, *writes, deletes=[p for p in state if p not in target])
        state = target
        head = store.head(P)
        assert head is not None
        assert store.tree_sha(P, head) == _tree_from_scratch(scratch, state), f"step {step}"
        assert set(disk_files(workdir)) == set(state)
    assert not store.is_dirty(P)


def test_first_version_may_be_empty(store: GitStore) -> None:
    sha = store.create_version(P, version_id="first", message="empty start", writes=[]).commit_sha
    assert store.list_files(P, sha) == []
    assert store.tree_sha(P, sha) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree


def test_file_too_large(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("at-limit", b"x" * LIMIT))
    with pytest.raises(FileTooLarge) as info:
        put(store, FileWrite("over", b"x" * (LIMIT + 1)))
    assert info.value.code == "file_too_large"
    assert not (workdir / "over").exists()
    (workdir / "big").write_bytes(b"y" * (LIMIT + 1))
    with pytest.raises(FileTooLarge):
        store.snapshot(P, version_id="s", message="snap")


# --- versions -------------------------------------------------------------------------------------------


def test_numbering_trailers_tags_and_listing(store: GitStore, workdir: Path) -> None:
    author = Author(name="Ada Lovelace", email="ada@example.com")
    a = store.create_version(
        P, version_id="id-1", message="one", writes=[FileWrite("f", b"1")], author=author
    )
    b = store.create_version(
        P, version_id="id-2", message="two\n\nSigned-off-by: X <x@y>", writes=[FileWrite("f", b"2")],
        source="github",
    )  # fmt: skip
    assert (a.number, b.number) == (1, 2)
    assert a.author == author
    assert b.source == "github"
    assert b.message == "two\n\nSigned-off-by: X <x@y>"
    raw = pygit2.Repository(str(workdir)).revparse_single(b.commit_sha).peel(pygit2.Commit).message
    assert raw.endswith("\n\nGhsync-Version: id-2\nGhsync-Source: github\nGhsync-Number: 2\n")
    repo = pygit2.Repository(str(workdir))
    assert str(repo.references["refs/tags/v1"].target) == a.commit_sha
    assert str(repo.references["refs/tags/v2"].target) == b.commit_sha
    assert repo.head.name == "refs/heads/main"
    versions = store.list_versions(P)
    assert [(v.id, v.number, v.source) for v in versions] == [("id-2", 2, "github"), ("id-1", 1, "local")]
    assert versions[0] == b
    assert store.get_version(P, a.commit_sha) == a
    assert store.get_version_by_number(P, 2) == b
    assert a.tree_sha == store.tree_sha(P, a.commit_sha)
    assert a.created_at.tzinfo is not None
    with pytest.raises(NotFound):
        store.get_version_by_number(P, 3)


def test_commit_not_on_the_branch_is_not_a_version(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("f", b"1"))
    repo = pygit2.Repository(str(workdir))
    sig = pygit2.Signature("x", "x@y")
    stray = repo.create_commit(None, sig, sig, "stray", repo.TreeBuilder().write(), [])
    with pytest.raises(NotFound):
        store.get_version(P, str(stray))


def test_a_history_without_numbers_is_read_lazily_as_it_is_listed(store: GitStore, workdir: Path) -> None:
    # Commits ghsync did not write (no Ghsync-Number trailer) are numbered by their place on the branch.
    put(store, FileWrite("f", b"1"))
    repo = pygit2.Repository(str(workdir))
    sig = pygit2.Signature("x", "x@y")
    by_hand = repo.create_commit(None, sig, sig, "by hand", repo.TreeBuilder().write(), [repo.head.target])
    repo.references["refs/heads/main"].set_target(by_hand)
    put(store, FileWrite("f", b"3"))  # the disk still holds the first version's file: kept as a snapshot
    listed = store.list_versions(P)
    assert [(v.number, v.message) for v in listed][1:] == [(3, SNAPSHOT), (2, "by hand"), (1, "change")]
    assert list(store.iter_versions(P)) == listed


def test_explicit_expected_head_is_compare_and_swap(store: GitStore) -> None:
    first = store.create_version(
        P, version_id="a", message="m", writes=[FileWrite("f", b"1")], expected_head=None
    )
    second = put(store, FileWrite("f", b"2"), expected_head=first.commit_sha)
    with pytest.raises(ConcurrentUpdate):
        put(store, FileWrite("f", b"3"), expected_head=first.commit_sha)  # stale
    with pytest.raises(ConcurrentUpdate):
        put(store, FileWrite("f", b"3"), expected_head=None)  # "no version yet" is stale too
    assert store.head(P) == second
    assert len(store.list_versions(P)) == 2


# --- diff -----------------------------------------------------------------------------------------------


def test_diff_follows_the_checked_out_gitattributes_not_uncommitted_edits(
    store: GitStore, workdir: Path
) -> None:
    v1 = put(store, FileWrite(".gitattributes", b"*.dat binary\n"))
    v2 = put(store, FileWrite("x.dat", b"one\ntwo\n"), FileWrite("y.txt", b"one\ntwo\n"))

    def counted() -> dict[str, tuple[bool, int]]:
        return {d.path: (d.binary, d.insertions) for d in store.diff(P, v1, v2)}

    assert counted() == {"x.dat": (True, 0), "y.txt": (False, 2)}
    (workdir / ".gitattributes").write_bytes(b"*.txt binary\n")  # not a version: the diff stays
    assert counted() == {"x.dat": (True, 0), "y.txt": (False, 2)}


def test_diff_add_modify_delete_rename_binary_and_mode(store: GitStore) -> None:
    body = b"".join(b"line %d of a file long enough to be recognised when it moves\n" % i for i in range(20))
    v1 = put(
        store,
        FileWrite("keep.txt", b"a\nb\nc\n"),
        FileWrite("gone.txt", b"x\ny\n"),
        FileWrite("old/name.txt", body),
        FileWrite("img.bin", b"\x00\x01\x02"),
        FileWrite("tool", b"#!/bin/sh\n"),
    )
    v2 = put(
        store,
        FileWrite("keep.txt", b"a\nB\nc\nd\n"),
        FileWrite("new/name.txt", body),
        FileWrite("img.bin", b"\x00\x09"),
        FileWrite("added.txt", b"1\n2\n3\n"),
        FileWrite("tool", b"#!/bin/sh\n", FileMode.EXECUTABLE),
        deletes=["gone.txt", "old/name.txt"],
    )
    diffs = {d.path: d for d in store.diff(P, v1, v2)}
    assert set(diffs) == {"keep.txt", "new/name.txt", "img.bin", "added.txt", "tool", "gone.txt"}
    keep = diffs["keep.txt"]
    assert (keep.status, keep.insertions, keep.deletions, keep.binary) == (DiffStatus.MODIFIED, 2, 1, False)
    assert keep.old_sha == str(pygit2.hash(b"a\nb\nc\n"))
    assert keep.new_sha == str(pygit2.hash(b"a\nB\nc\nd\n"))
    moved = diffs["new/name.txt"]
    assert (moved.status, moved.old_path, moved.insertions, moved.deletions) == (
        DiffStatus.RENAMED, "old/name.txt", 0, 0,
    )  # fmt: skip
    assert moved.old_sha == moved.new_sha
    img = diffs["img.bin"]
    assert (img.status, img.binary, img.insertions, img.deletions) == (DiffStatus.MODIFIED, True, 0, 0)
    added = diffs["added.txt"]
    assert (added.status, added.old_sha, added.old_mode, added.insertions) == (
        DiffStatus.ADDED,
        None,
        None,
        3,
    )
    gone = diffs["gone.txt"]
    assert (gone.status, gone.new_sha, gone.new_mode, gone.deletions) == (DiffStatus.DELETED, None, None, 2)
    # The totals alone (what an operation records) agree with the list, renames and binaries included.
    for since in (v1, None):
        listed = store.diff(P, since, v2)
        totals = (len(listed), sum(d.insertions for d in listed), sum(d.deletions for d in listed))
        stats = store.diff_stats(P, since, v2)
        assert (stats.files, stats.insertions, stats.deletions) == totals
    tool = diffs["tool"]
    assert (tool.status, tool.old_mode, tool.new_mode) == (
        DiffStatus.MODIFIED, FileMode.REGULAR, FileMode.EXECUTABLE,
    )  # fmt: skip
    from_nothing = store.diff(P, None, v1)
    assert {d.status for d in from_nothing} == {DiffStatus.ADDED}
    assert len(from_nothing) == 5
    assert store.diff(P, v2, v2) == []


# --- the working directory ------------------------------------------------------------------------------


def test_snapshot_records_working_directory_edits(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("edit.txt", b"old"), FileWrite("gone.txt", b"bye"), FileWrite("run", b"#!x\n"))
    assert store.snapshot(P, version_id="s0", message="nothing") is None
    (workdir / "edit.txt").write_bytes(b"new")
    (workdir / "gone.txt").unlink()
    os.chmod(workdir / "run", 0o755)
    (workdir / "deep/er").mkdir(parents=True)
    (workdir / "deep/er/new.bin").write_bytes(ALL_BYTES)
    os.symlink("deep", workdir / "to-deep")  # a link to a directory: stored as a link, not followed
    (workdir / ".gitignore").write_text("*.log\n")
    (workdir / "debug.log").write_text("ignored")
    assert store.is_dirty(P)
    info = store.snapshot(P, version_id="s1", message="by hand", author=Author("Bob", "bob@example.com"))
    assert info is not None
    assert (info.number, info.id, info.source, info.author.name) == (2, "s1", "local", "Bob")
    entries = {e.path: e for e in store.list_files(P, info.commit_sha)}
    assert set(entries) == {"edit.txt", "run", "deep/er/new.bin", "to-deep", ".gitignore"}
    assert entries["run"].mode is FileMode.EXECUTABLE
    assert entries["to-deep"].mode is FileMode.SYMLINK
    assert store.read_file(P, info.commit_sha, "to-deep") == b"deep"
    assert store.read_file(P, info.commit_sha, "deep/er/new.bin") == ALL_BYTES
    assert store.read_file(P, info.commit_sha, "edit.txt") == b"new"
    assert not store.is_dirty(P)
    assert store.snapshot(P, version_id="s2", message="again") is None


def test_snapshot_of_a_fresh_project(store: GitStore, workdir: Path) -> None:
    assert store.snapshot(P, version_id="s0", message="empty") is None
    (workdir / "hello.txt").write_text("hi")
    info = store.snapshot(P, version_id="s1", message="import")
    assert info is not None and info.number == 1
    assert files(store) == {"hello.txt": b"hi"}


def test_uncommitted_edits_become_their_own_version_first(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("mine.txt", b"v1"), FileWrite("theirs.txt", b"t1"))
    (workdir / "mine.txt").write_bytes(b"edited by hand")
    (workdir / "extra.txt").write_bytes(b"new by hand")
    info = store.create_version(
        P, version_id="api", message="from API", writes=[FileWrite("theirs.txt", b"t2")]
    )
    versions = store.list_versions(P)
    assert [v.number for v in versions] == [3, 2, 1]
    snap = versions[1]
    assert snap.message == "Snapshot of uncommitted changes"
    assert snap.source == "local"
    assert files(store, snap.commit_sha) == {
        "mine.txt": b"edited by hand",
        "theirs.txt": b"t1",
        "extra.txt": b"new by hand",
    }
    assert info.number == 3
    assert files(store) == {"mine.txt": b"edited by hand", "theirs.txt": b"t2", "extra.txt": b"new by hand"}
    assert disk_files(workdir) == files(store)
    assert not store.is_dirty(P)


def test_uncommitted_edits_with_explicit_expected_head(store: GitStore, workdir: Path) -> None:
    head = put(store, FileWrite("f", b"1"))
    (workdir / "f").write_bytes(b"by hand")
    with pytest.raises(ConcurrentUpdate, match="uncommitted"):
        put(store, FileWrite("g", b"2"), expected_head=head)
    # The edit is saved as a version; the caller's version did not land.
    assert files(store) == {"f": b"by hand"}
    assert len(store.list_versions(P)) == 2


def test_checkout_never_overwrites_an_ignored_file(store: GitStore, workdir: Path) -> None:
    head = put(store, FileWrite(".gitignore", b"build/\n"))
    (workdir / "build").mkdir()
    (workdir / "build/out").write_bytes(b"precious local output")
    with pytest.raises(Conflict):
        put(store, FileWrite("build/out", b"from api"))
    assert (workdir / "build/out").read_bytes() == b"precious local output"
    assert store.head(P) == head


def test_ignored_files_are_left_alone(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite(".gitignore", b"*.log\n"), FileWrite("a", b"1"))
    (workdir / "run.log").write_bytes(b"local only")
    put(store, FileWrite(".gitignore", b"*.log\n"), FileWrite("b", b"2"), replace_all=True)
    assert (workdir / "run.log").read_bytes() == b"local only"
    assert "run.log" not in files(store)


@pytest.mark.parametrize(
    ("name", "reason"), [(b"back\\slash", "backslash"), (b"bad\xffname", "control character")]
)
def test_snapshot_refuses_unstorable_names(store: GitStore, workdir: Path, name: bytes, reason: str) -> None:
    head = put(store, FileWrite("a", b"1"))
    with open(os.path.join(os.fsencode(workdir), name), "wb") as handle:
        handle.write(b"x")
    with pytest.raises(InvalidPath, match=reason):
        store.snapshot(P, version_id="s", message="m")
    assert store.head(P) == head


def test_snapshot_refuses_a_nested_repository(store: GitStore, workdir: Path) -> None:
    head = put(store, FileWrite("a", b"1"))
    pygit2.init_repository(str(workdir / "nested"))
    (workdir / "nested/f").write_bytes(b"x")
    with pytest.raises(InvalidPath, match="nested"):
        store.snapshot(P, version_id="s", message="m")
    assert store.head(P) == head


@pytest.mark.parametrize(
    "author",
    [Author("a<b", "e@x"), Author("", "e@x"), Author("n", "a\nb@x"), Author("n", " "), Author("n\x00", "e")],
)
def test_bad_authors_are_refused_before_anything_is_written(store: GitStore, author: Author) -> None:
    head = put(store, FileWrite("a", b"1"))
    with pytest.raises(InvalidInput) as info:
        store.create_version(P, version_id="x", message="m", writes=[FileWrite("b", b"2")], author=author)
    assert info.value.code == "invalid_author"
    assert store.head(P) == head
    assert put(store, FileWrite("b", b"2"))  # the branch still works


def test_stale_libgit2_locks_from_a_killed_writer_are_cleared(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("a", b"1"))
    for name in ("refs/heads/main.lock", "index.lock", "refs/tags/v2.lock"):
        lock = workdir / ".git" / name
        lock.write_bytes(b"")
        os.utime(lock, (0, 0))  # written long ago
    info = store.create_version(P, version_id="after-crash", message="m", writes=[FileWrite("b", b"2")])
    assert info.number == 2
    assert files(store) == {"a": b"1", "b": b"2"}


def test_short_or_malformed_shas_are_not_found(store: GitStore) -> None:
    sha = put(store, FileWrite("a", b"1"))
    for bad in (sha[:10], sha.upper(), "", "refs/heads/main", "HEAD"):
        with pytest.raises(NotFound):
            store.get_version(P, bad)


def test_an_edit_racing_the_checkout_is_snapshotted_and_retried(
    store: GitStore, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(store, FileWrite("shared.txt", b"v1"))
    real_checkout = GitStore._checkout
    calls = 0

    def racing_checkout(self: GitStore, *args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # someone edits the file right after the snapshot check
            (workdir / "shared.txt").write_bytes(b"edited during the write")
        real_checkout(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(GitStore, "_checkout", racing_checkout)
    info = put(store, FileWrite("shared.txt", b"from api"), message="api")
    assert calls == 2
    versions = store.list_versions(P)
    assert [v.message for v in versions] == ["api", "Snapshot of uncommitted changes", "change"]
    assert files(store, versions[1].commit_sha) == {"shared.txt": b"edited during the write"}
    assert files(store, info) == {"shared.txt": b"from api"}
    assert (workdir / "shared.txt").read_bytes() == b"from api"


# --- commit_tree and checkout: the working directory apart from the object store -------------------------


def engine_commit(store: GitStore, files: dict[str, bytes], *, message: str = "from github") -> str:
    """Commit `files` as the next version the way the sync engine does (no working directory involved)."""
    head = store.head(P)
    shas = store.write_blobs(P, list(files.values()))
    tree = store.write_tree(P, [TreeEntry(p, FileMode.REGULAR, s) for p, s in zip(files, shas, strict=True)])
    info = store.commit_tree(
        P,
        tree_sha=tree,
        parents=[head] if head else [],
        message=message,
        author=Author("Octo", "octo@example.com"),
        version_id=f"gh-{next(_counter)}",
        expected_head=head,
        source="github",
    )
    return info.commit_sha


def git_status(workdir: Path) -> str:
    result = subprocess.run(
        ["git", "status", "--porcelain"], cwd=workdir, capture_output=True, check=True, text=True
    )
    return result.stdout


def test_commit_tree_leaves_the_disk_alone_until_checkout(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("a", b"1"), FileWrite("b", b"1"))
    new = engine_commit(store, {"a": b"2", "c": b"3"})
    assert disk_files(workdir) == {"a": b"1", "b": b"1"}  # untouched
    assert not store.is_dirty(P)
    assert git_status(workdir) == ""  # git agrees: the disk is a clean checkout of what it holds
    assert store.checkout(P, new) is None
    assert disk_files(workdir) == {"a": b"2", "c": b"3"}
    assert not store.is_dirty(P)
    assert pygit2.Repository(str(workdir)).head.name == "refs/heads/main"  # HEAD follows the branch again
    assert git_status(workdir) == ""


def test_checkout_merges_uncommitted_edits_into_a_snapshot_version(store: GitStore, workdir: Path) -> None:
    v1 = put(store, FileWrite("notes.txt", LINES), FileWrite("b", b"1"))
    (workdir / "notes.txt").write_bytes(LINES.replace(b"line 1\n", b"edited on disk\n"))
    (workdir / "new.txt").write_bytes(b"created on disk")
    new = engine_commit(store, {"notes.txt": LINES.replace(b"line 8\n", b"edited on github\n"), "b": b"2"})
    snap = store.checkout(P, new)
    assert snap is not None
    assert snap.message == "Snapshot of uncommitted changes"
    assert store.head(P) == snap.commit_sha
    assert [v.commit_sha for v in store.list_versions(P)][1:] == [new, v1]
    merged = LINES.replace(b"line 1\n", b"edited on disk\n").replace(b"line 8\n", b"edited on github\n")
    expected = {"notes.txt": merged, "b": b"2", "new.txt": b"created on disk"}
    assert files(store, snap.commit_sha) == expected
    assert disk_files(workdir) == expected
    assert not store.is_dirty(P)
    # The edits exactly as they were on disk stay reachable: the snapshot's second parent.
    snapshot_commit = pygit2.Repository(str(workdir))[snap.commit_sha].peel(pygit2.Commit)
    raw = str(snapshot_commit.parent_ids[1])
    assert store.read_file(P, raw, "notes.txt") == LINES.replace(b"line 1\n", b"edited on disk\n")


def test_checkout_refuses_edits_that_conflict_and_keeps_them(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("f", b"base\n"))
    (workdir / "f").write_bytes(b"edited on disk\n")
    new = engine_commit(store, {"f": b"edited on github\n"})
    with pytest.raises(Conflict) as caught:
        store.checkout(P, new)
    assert caught.value.code == "workdir_conflict"
    assert store.head(P) == new  # no version was added
    assert (workdir / "f").read_bytes() == b"edited on disk\n"  # and nothing on disk changed
    (backup,) = store.list_refs(P, "refs/ghsync/backup/workdir/").values()
    assert store.read_file(P, backup, "f") == b"edited on disk\n"
    # Once the person settles it on disk, the next checkout records their resolution on top of the head.
    with pytest.raises(Conflict):
        store.checkout(P, new)  # a retry with the same edits keeps them under the same ref
    assert list(store.list_refs(P, "refs/ghsync/backup/workdir/").values()) == [backup]
    (workdir / "f").write_bytes(b"edited on github\nand on disk\n")
    with pytest.raises(Conflict):
        store.checkout(P, new)  # still conflicting with github's line
    assert len(store.list_refs(P, "refs/ghsync/backup/workdir/")) == 2  # these edits are kept too
    (workdir / "f").write_bytes(b"edited on github\n")
    assert store.checkout(P, new) is None  # the disk now equals the head's change: nothing to record
    assert not store.is_dirty(P)


def raw_tree(repo: pygit2.Repository, entries: list[tuple[str, str, pygit2.Oid]]) -> str:
    """A tree object written byte for byte, as another git host may hold it (no name or mode checks)."""

    def order(entry: tuple[str, str, pygit2.Oid]) -> str:
        return entry[1] + "/" if entry[0] == "40000" else entry[1]  # git sorts a tree as `name/`

    data = b"".join(
        f"{mode} {name}".encode() + b"\0" + oid.raw for mode, name, oid in sorted(entries, key=order)
    )
    return str(repo.odb.write(pygit2.enums.ObjectType.TREE, data))


def commit_raw_tree(store: GitStore, tree: str) -> None:
    store.commit_tree(
        P, tree_sha=tree, parents=[], message="from elsewhere", author=Author("Octo", "octo@example.com"),
        version_id=f"gh-{next(_counter)}", expected_head=None, source="github",
    )  # fmt: skip


def test_commit_tree_checks_every_file_of_a_tree_the_store_did_not_build(
    store: GitStore, workdir: Path
) -> None:
    # A fetched tree skips write_tree, so commit_tree's own check is all that stands between it and the
    # disk; only trees write_tree built (each entry checked on the way in) are spared a second check.
    repo = pygit2.Repository(str(workdir))
    blob = repo.create_blob(b"x")
    big = repo.create_blob(b"x" * (LIMIT + 1))
    escaping = repo.create_blob(b"../../etc/passwd")
    git_dir = raw_tree(repo, [("100644", "config", blob)])
    for entries, error in [
        ([("40000", ".git", pygit2.Oid(hex=git_dir))], InvalidPath),
        ([("40000", ".GIT", pygit2.Oid(hex=git_dir))], InvalidPath),
        ([("120000", "l", escaping)], InvalidPath),
        ([("100644", "big", big)], FileTooLarge),
    ]:
        with pytest.raises(error):
            commit_raw_tree(store, raw_tree(repo, [("100644", "ok", blob), *entries]))
    assert store.head(P) is None
    assert disk_files(workdir) == {}


def test_a_tree_with_a_mode_the_store_cannot_keep_rebuilds_to_another_sha(
    store: GitStore, workdir: Path
) -> None:
    # What the engine relies on to refuse such a GitHub tree: its files read back as the store keeps
    # them (100664 as a regular file, a submodule not at all), so writing them back gives another SHA.
    repo = pygit2.Repository(str(workdir))
    blob = repo.create_blob(b"x")
    sub = raw_tree(repo, [("100664", "loose", blob), ("100755", "run", blob)])
    for extra in [("100664", "odd", blob), ("160000", "module", blob)]:
        tree = raw_tree(repo, [("100644", "a", blob), ("40000", "d", pygit2.Oid(hex=sub)), extra])
        flat = store.flat_tree(P, tree)
        expected = {"a": FileMode.REGULAR, "d/loose": FileMode.REGULAR, "d/run": FileMode.EXECUTABLE}
        if extra[0] == "100664":
            expected["odd"] = FileMode.REGULAR
        assert {path: entry.mode for path, entry in flat.items()} == expected
        assert list(flat) == sorted(flat)
        assert store.write_tree(P, flat.values()) != tree


def test_first_version_from_github_into_a_fresh_project(store: GitStore, workdir: Path) -> None:
    (workdir / "local.txt").write_bytes(b"made before the first sync")
    new = engine_commit(store, {"README.md": b"# from github\n"})
    assert store.list_versions(P)[0].number == 1
    assert disk_files(workdir) == {"local.txt": b"made before the first sync"}
    snap = store.checkout(P, new)
    assert snap is not None and snap.number == 2
    assert files(store, snap.commit_sha) == {
        "README.md": b"# from github\n",
        "local.txt": b"made before the first sync",
    }
    assert disk_files(workdir) == files(store, snap.commit_sha)


def test_create_version_and_snapshot_catch_up_with_a_commit_tree(store: GitStore, workdir: Path) -> None:
    put(store, FileWrite("a", b"1"), FileWrite("b", b"1"))
    engine_commit(store, {"a": b"from github", "b": b"1"})
    info = put(store, FileWrite("b", b"from api"), message="api")
    assert [v.message for v in store.list_versions(P)] == ["api", "from github", "change"]
    assert disk_files(workdir) == {"a": b"from github", "b": b"from api"} == files(store, info)
    engine_commit(store, {"a": b"again", "b": b"from api"})
    (workdir / "b").write_bytes(b"edited")
    snap = store.snapshot(P, version_id="snap-1", message="snap")
    assert snap is not None and snap.id == "snap-1"
    assert files(store, snap.commit_sha) == {"a": b"again", "b": b"edited"} == disk_files(workdir)


def test_checkout_of_an_older_version_and_back(store: GitStore, workdir: Path) -> None:
    v1 = put(store, FileWrite("a", b"1"))
    v2 = put(store, FileWrite("a", b"2"))
    assert store.checkout(P, v1) is None
    assert disk_files(workdir) == {"a": b"1"}
    assert store.head(P) == v2 and not store.is_dirty(P)
    assert store.checkout(P, v2) is None
    assert disk_files(workdir) == {"a": b"2"}
    with pytest.raises(NotFound):
        store.checkout(P, "4" * 40)


@pytest.mark.parametrize("racing_path", ["mine.txt", "theirs.txt"])
def test_an_edit_racing_the_checkout_after_commit_tree_is_never_lost(
    store: GitStore, workdir: Path, monkeypatch: pytest.MonkeyPatch, racing_path: str
) -> None:
    put(store, FileWrite("mine.txt", b"v1"), FileWrite("theirs.txt", b"v1"))
    new = engine_commit(store, {"mine.txt": b"v1", "theirs.txt": b"from github"})
    real_checkout = GitStore._checkout
    calls = 0

    def racing_checkout(self: GitStore, *args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # someone edits a file right after the store looked for edits
            (workdir / racing_path).write_bytes(b"edited during the checkout")
        real_checkout(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(GitStore, "_checkout", racing_checkout)
    if racing_path == "mine.txt":
        # A file the checkout does not touch: the checkout goes on around the edit, which stays on disk.
        assert store.checkout(P, new) is None
        assert disk_files(workdir) == {
            "mine.txt": b"edited during the checkout",
            "theirs.txt": b"from github",
        }
        assert store.is_dirty(P)
        snap = store.snapshot(P, version_id="later", message="later")
        assert snap is not None and files(store, snap.commit_sha) == disk_files(workdir)
    else:
        # The file GitHub changed too: the checkout refuses it, records the edit, and finds the conflict.
        with pytest.raises(Conflict):
            store.checkout(P, new)
        assert calls == 1
        assert (workdir / "theirs.txt").read_bytes() == b"edited during the checkout"
        (backup,) = store.list_refs(P, "refs/ghsync/backup/workdir/").values()
        assert store.read_file(P, backup, "theirs.txt") == b"edited during the checkout"


def test_checkout_after_a_retry_still_ends_on_the_newest_head(
    store: GitStore, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(store, FileWrite("mine.txt", b"v1"), FileWrite("theirs.txt", LINES))
    github_side = LINES.replace(b"line 8\n", b"edited on github\n")
    new = engine_commit(store, {"mine.txt": b"v1", "theirs.txt": github_side})
    (workdir / "mine.txt").write_bytes(b"edited before the checkout")
    real_checkout = GitStore._checkout
    calls = 0

    def racing_checkout(self: GitStore, *args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # another line of a file the checkout updates: blocks it, then merges cleanly
            (workdir / "theirs.txt").write_bytes(LINES.replace(b"line 1\n", b"edited by hand\n"))
        real_checkout(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(GitStore, "_checkout", racing_checkout)
    snap = store.checkout(P, new)
    assert calls == 2
    assert snap is not None and store.head(P) == snap.commit_sha
    assert [v.message for v in store.list_versions(P)][:3] == [SNAPSHOT, SNAPSHOT, "from github"]
    both = github_side.replace(b"line 1\n", b"edited by hand\n")
    expected = {"mine.txt": b"edited before the checkout", "theirs.txt": both}
    assert files(store, snap.commit_sha) == expected == disk_files(workdir)
    assert pygit2.Repository(str(workdir)).head.name == "refs/heads/main"
    assert not store.is_dirty(P)


def test_publish_is_the_one_seam_that_moves_the_branch(store: GitStore, workdir: Path) -> None:
    moves: list[tuple[str | None, str]] = []

    class Recording(GitStore):
        def publish(self, project_id: str, expected: str | None, new: str) -> None:
            moves.append((expected, new))
            super().publish(project_id, expected, new)

    recording = Recording(store.root, max_file_size=LIMIT)
    v1 = recording.create_version(P, version_id="r1", message="m", writes=[FileWrite("a", b"1")]).commit_sha
    (workdir / "a").write_bytes(b"edited")
    v3 = recording.create_version(P, version_id="r3", message="m", writes=[FileWrite("b", b"2")]).commit_sha
    v2 = recording.list_versions(P)[1].commit_sha  # the snapshot of the edit
    shas = recording.write_blobs(P, [b"x"])
    tree = recording.build_tree(P, recording.tree_sha(P, v3), [TreeEdit("c", shas[0])])
    v4 = recording.commit_tree(
        P, tree_sha=tree, parents=[v3], message="m", author=SYSTEM_AUTHOR, version_id="r4", expected_head=v3
    ).commit_sha
    assert moves == [(None, v1), (v1, v2), (v2, v3), (v3, v4)]


# --- concurrency ----------------------------------------------------------------------------------------


def _check_all_landed(store: GitStore, expected: dict[str, bytes]) -> None:
    versions = store.list_versions(P)
    assert sorted(v.number for v in versions) == list(range(1, len(expected) + 1))
    assert len({v.id for v in versions}) == len(expected)
    assert files(store) == expected
    assert disk_files(store.project_dir(P)) == expected
    assert not store.is_dirty(P)


def test_twenty_threads_never_lose_a_version(store: GitStore) -> None:
    n = 20
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            store.create_version(
                P, version_id=f"t{i}", message=f"thread {i}", writes=[FileWrite(f"t/{i}.txt", b"%d" % i)]
            )
        except BaseException as exc:  # collected, then asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _check_all_landed(store, {f"t/{i}.txt": b"%d" % i for i in range(n)})


def _process_worker(root: str, proc: int, count: int, start: multiprocessing.synchronize.Barrier) -> None:
    store = GitStore(root, max_file_size=LIMIT)
    start.wait()
    for j in range(count):
        store.create_version(
            P, version_id=f"p{proc}-{j}", message="from a process", writes=[FileWrite(f"p{proc}/{j}", b"x")]
        )


def test_four_processes_never_lose_a_version(store: GitStore) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded test runner
    procs, per_proc = 4, 5
    start = ctx.Barrier(procs)
    workers = [
        ctx.Process(target=_process_worker, args=(str(store.root), p, per_proc, start)) for p in range(procs)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * procs
    _check_all_landed(store, {f"p{p}/{j}": b"x" for p in range(procs) for j in range(per_proc)})


# --- pure helpers ---------------------------------------------------------------------------------------


def test_trailers_round_trip() -> None:
    trailers = {"Ghsync-Version": "abc", "Ghsync-Source": "local"}
    for message in ["plain", "multi\n\nparagraph\n", "ends with\n\nSigned-off-by: A <a@b>", ""]:
        assert parse_message(format_message(message, trailers)) == (message.rstrip(), trailers)
    assert parse_message("foreign commit\n\nSigned-off-by: A <a@b>\n") == (
        "foreign commit\n\nSigned-off-by: A <a@b>",
        {},
    )


def test_apply_changes_is_pure_and_checks_clashes() -> None:
    item = TreeItem(FileMode.REGULAR, "0" * 40)
    base = {"a": item, "d/x": item}
    result = apply_changes(base, [("b", item)], ["d"], replace_all=False)
    assert result == {"a": item, "b": item}
    assert base == {"a": item, "d/x": item}
    with pytest.raises(InvalidInput, match="a file"):
        apply_changes(base, [("a/b", item)], [], replace_all=False)
    with pytest.raises(InvalidInput, match="a file"):
        apply_changes(base, [("d", item)], [], replace_all=False)
    assert apply_changes(base, [("a/b", item)], [], replace_all=True) == {"a/b": item}
    assert stat.S_ISREG(FileMode.REGULAR.git_mode)


def test_versions_after_reads_only_the_newer_versions(store: GitStore) -> None:
    for index in range(5):
        put(store, FileWrite("f", str(index).encode()), message=f"v{index + 1}")
    assert [v.number for v in store.versions_after(P, 2)] == [5, 4, 3]
    assert store.versions_after(P, 5) == []
    assert store.versions_after(P, 0) == store.list_versions(P)


# --- names a case-insensitive file system takes for one -------------------------------------------------


def test_the_store_finds_out_whether_its_disk_folds_case(tmp_path: Path) -> None:
    (tmp_path / "probe").write_text("x")
    folds = (tmp_path / "PROBE").exists()  # what this machine's file system does

    assert GitStore(tmp_path / "projects", max_file_size=LIMIT).fold_case is folds


def test_where_the_disk_folds_case_a_version_with_two_such_names_is_refused(
    store: GitStore, workdir: Path
) -> None:
    first = put(store, FileWrite("README.md", b"one\n"))
    store.fold_case = True

    with pytest.raises(InvalidPath, match=r"'README\.md' and 'readme\.md' differ only in case"):
        put(store, FileWrite("readme.md", b"two\n"))
    with pytest.raises(InvalidPath, match="'Docs' and 'docs'"):
        put(store, FileWrite("Docs/a.md", b"a\n"), FileWrite("docs/b.md", b"b\n"))
    sha = store.write_blobs(P, [b"x\n"])[0]
    with pytest.raises(InvalidPath, match="differ only in case"):
        store.write_tree(
            P, [TreeEntry("A.txt", FileMode.REGULAR, sha), TreeEntry("a.txt", FileMode.REGULAR, sha)]
        )

    assert store.head(P) == first
    assert sorted(p.name for p in workdir.iterdir()) == [".git", "README.md"]
    put(store, FileWrite("README.md", b"renamed below\n"), FileWrite("notes/readme.txt", b"fine\n"))


def test_a_tree_from_elsewhere_with_two_such_names_is_refused_before_it_becomes_a_version(
    store: GitStore,
) -> None:
    first = put(store, FileWrite("a.txt", b"a\n"))
    store.fold_case = True
    repo = pygit2.Repository(str(store.project_dir(P)))
    blob = repo.create_blob(b"x\n")
    builder = repo.TreeBuilder()
    builder.insert("LICENSE", blob, pygit2.GIT_FILEMODE_BLOB)
    builder.insert("license", blob, pygit2.GIT_FILEMODE_BLOB)
    tree = str(builder.write())  # what GitHub may send: git itself allows it

    with pytest.raises(InvalidPath, match="'LICENSE' and 'license'"):
        store.commit_tree(
            P, tree_sha=tree, parents=[first], message="from GitHub", author=SYSTEM_AUTHOR,
            version_id="v-github", expected_head=first, source="github",
        )  # fmt: skip
    assert store.head(P) == first

    store.fold_case = False  # where the disk tells them apart, the tree is a version like any other
    version = store.commit_tree(
        P, tree_sha=tree, parents=[first], message="from GitHub", author=SYSTEM_AUTHOR,
        version_id="v-github", expected_head=first, source="github",
    )  # fmt: skip
    assert store.head(P) == version.commit_sha
