"""The VersionStore port's contract, run against every adapter (today `GitStore`; an S3 one joins here).

Only the port's methods are used, so a new adapter is one more branch in the `store` fixture. Git itself
(the CLI, in a second repository) is the referee for SHAs: a tree or commit imported into the store must
come out with exactly the SHA git gives the same data, since that is the SHA GitHub has.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ghsync.adapters.store import GitStore
from ghsync.domain.errors import ConcurrentUpdate, FileTooLarge, InvalidInput, InvalidPath, NotFound
from ghsync.domain.models import Author, DiffStatus, FileMode, FileWrite
from ghsync.domain.trees import (
    EMPTY_TREE_SHA,
    GitIdentity,
    MergeConflictKind,
    TreeChange,
    TreeEdit,
    TreeEntry,
)
from ghsync.ports.store import VersionStore

P = "contract-1"
LIMIT = 1024 * 1024
AUTHOR = Author(name="Ada", email="ada@example.com")
R, X, L = FileMode.REGULAR, FileMode.EXECUTABLE, FileMode.SYMLINK

# Content is given as bytes (a regular file) or (bytes, mode).
Files = Mapping[str, bytes | tuple[bytes, FileMode]]


@pytest.fixture(params=["git"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VersionStore:
    if request.param == "git":
        adapter: VersionStore = GitStore(tmp_path / "projects", max_file_size=LIMIT)
    else:  # pragma: no cover - a new adapter must be added here
        raise AssertionError(request.param)
    adapter.init_project(P)
    return adapter


def git_blob_sha(content: bytes) -> str:
    """git's blob SHA, computed by hand: what GitHub calls the file's SHA."""
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


def tree(store: VersionStore, files: Files) -> str:
    """Write `files` (blobs and tree) and return the tree SHA."""
    items = [(path, spec if isinstance(spec, tuple) else (spec, R)) for path, spec in files.items()]
    shas = store.write_blobs(P, [content for _, (content, _) in items])
    return store.write_tree(
        P, [TreeEntry(path, mode, sha) for (path, (_, mode)), sha in zip(items, shas, strict=True)]
    )


def contents(store: VersionStore, tree_sha: str | None) -> dict[str, bytes | tuple[bytes, FileMode]]:
    """The tree back as `Files` (mode shown only when not regular)."""
    out: dict[str, bytes | tuple[bytes, FileMode]] = {}
    for path, entry in store.flat_tree(P, tree_sha).items():
        data = store.read_blob(P, entry.sha)
        out[path] = data if entry.mode is R else (data, entry.mode)
    return out


_ids = iter(range(1_000_000))


def commit(
    store: VersionStore, files: Files, *, expected: str | None, parents: list[str] | None = None
) -> str:
    info = store.commit_tree(
        P,
        tree_sha=tree(store, files),
        parents=parents if parents is not None else ([expected] if expected else []),
        message="from the engine",
        author=AUTHOR,
        version_id=f"ct-{next(_ids)}",
        expected_head=expected,
    )
    return info.commit_sha


# --- blobs and objects ----------------------------------------------------------------------------------


def test_blobs_round_trip_with_git_shas(store: VersionStore) -> None:
    contents_in = [b"hello\n", b"", bytes(range(256)), b"hello\n"]
    shas = store.write_blobs(P, contents_in)
    assert shas == [git_blob_sha(c) for c in contents_in]
    assert [store.read_blob(P, sha) for sha in shas] == contents_in
    missing = git_blob_sha(b"never written")
    assert store.has_objects(P, [*shas, missing, "not-a-sha", missing.upper()]) == set(shas)
    with pytest.raises(NotFound):
        store.read_blob(P, missing)
    tree_sha = tree(store, {"a": b"x"})
    assert store.has_objects(P, [tree_sha]) == {tree_sha}  # any object type
    with pytest.raises(NotFound):
        store.read_blob(P, tree_sha)  # a tree is not a blob


def test_blob_over_the_limit_is_refused_and_nothing_is_written(store: VersionStore) -> None:
    small, big = b"ok", b"x" * (LIMIT + 1)
    with pytest.raises(FileTooLarge):
        store.write_blobs(P, [small, big])
    assert store.has_objects(P, [git_blob_sha(small), git_blob_sha(big)]) == set()


def test_flat_tree_lists_every_file_recursively(store: VersionStore) -> None:
    files: Files = {"a.txt": b"a", "src/pkg/m.py": b"m", "bin/run": (b"#!/bin/sh\n", X), "ln": (b"a.txt", L)}
    sha = tree(store, files)
    flat = store.flat_tree(P, sha)
    assert set(flat) == set(files)
    assert flat["bin/run"] == TreeEntry("bin/run", X, git_blob_sha(b"#!/bin/sh\n"))
    assert contents(store, sha) == files
    assert store.flat_tree(P, None) == {}
    assert tree(store, {}) == EMPTY_TREE_SHA
    with pytest.raises(NotFound):
        store.flat_tree(P, git_blob_sha(b"a"))  # a blob is not a tree


# --- tree_delta -----------------------------------------------------------------------------------------

TEXT = b"".join(b"line %d of a file long enough to be recognised after a rename\n" % i for i in range(20))


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param({}, {"a": b"1"}, [("added", "a", None, None, R)], id="added"),
        pytest.param({"a": b"1"}, {}, [("deleted", "a", None, R, None)], id="deleted"),
        pytest.param({"a": b"1"}, {"a": b"2"}, [("modified", "a", None, R, R)], id="modified"),
        pytest.param({"a": b"1"}, {"a": (b"1", X)}, [("modified", "a", None, R, X)], id="mode"),
        pytest.param({"a": b"t"}, {"a": (b"t", L)}, [("modified", "a", None, R, L)], id="file-to-symlink"),
        pytest.param({"old/f": TEXT}, {"new/f": TEXT}, [("renamed", "new/f", "old/f", R, R)], id="renamed"),
        pytest.param(
            {"f": TEXT}, {"g": TEXT + b"one more line\n"}, [("renamed", "g", "f", R, R)], id="renamed-edited"
        ),
        pytest.param({"d/a": b"1", "d/b": b"2"}, {"d/a": b"1", "d/b": b"2"}, [], id="identical"),
        pytest.param(
            {"a": b"1", "b": b"2"},
            {"b": b"3", "c": b"4"},
            [("deleted", "a", None, R, None), ("modified", "b", None, R, R), ("added", "c", None, None, R)],
            id="several-sorted",
        ),
    ],
)
def test_tree_delta(
    store: VersionStore,
    before: Files,
    after: Files,
    expected: list[tuple[str, str, str | None, FileMode | None, FileMode | None]],
) -> None:
    a, b = tree(store, before), tree(store, after)
    delta = store.tree_delta(P, a, b)
    assert [(c.status.value, c.path, c.old_path, c.old_mode, c.new_mode) for c in delta] == expected
    for change in delta:  # SHAs are the blobs' on each side
        if change.old_sha is not None:
            assert store.flat_tree(P, a)[change.old_path or change.path].sha == change.old_sha
        if change.new_sha is not None:
            assert store.flat_tree(P, b)[change.path].sha == change.new_sha


def test_tree_delta_from_and_to_nothing(store: VersionStore) -> None:
    sha = tree(store, {"a": b"1", "d/b": b"2"})
    added = store.tree_delta(P, None, sha)
    assert added == [
        TreeChange(DiffStatus.ADDED, "a", new_sha=git_blob_sha(b"1"), new_mode=R),
        TreeChange(DiffStatus.ADDED, "d/b", new_sha=git_blob_sha(b"2"), new_mode=R),
    ]
    assert [c.status for c in store.tree_delta(P, sha, None)] == [DiffStatus.DELETED] * 2
    assert store.tree_delta(P, None, None) == []


# --- build_tree -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "edits", "expected"),
    [
        pytest.param({"a": b"1"}, [("b/c", b"2", R)], {"a": b"1", "b/c": b"2"}, id="add-nested"),
        pytest.param({"a": b"1"}, [("a", b"2", X)], {"a": (b"2", X)}, id="replace-with-mode"),
        pytest.param({"a": b"1", "d/e/f": b"2"}, [("d/e/f", None, R)], {"a": b"1"}, id="prune-empty-dirs"),
        pytest.param({"a": b"1", "d/x": b"2", "d/y": b"3"}, [("d", None, R)], {"a": b"1"}, id="delete-dir"),
        pytest.param({"d/x": b"2"}, [("d", None, R), ("d", b"f", R)], {"d": b"f"}, id="dir-becomes-file"),
        pytest.param({"d": b"f"}, [("d", None, R), ("d/x", b"2", R)], {"d/x": b"2"}, id="file-becomes-dir"),
        pytest.param(None, [("a", b"1", R), ("l", b"a", L)], {"a": b"1", "l": (b"a", L)}, id="from-nothing"),
        pytest.param({"a": b"1"}, [("a", None, R)], {}, id="to-nothing"),
    ],
)
def test_build_tree(
    store: VersionStore,
    base: Files | None,
    edits: list[tuple[str, bytes | None, FileMode]],
    expected: Files,
) -> None:
    base_sha = tree(store, base) if base is not None else None
    shas = store.write_blobs(P, [content for _, content, _ in edits if content is not None])
    by_content = dict(zip([c for _, c, _ in edits if c is not None], shas, strict=True))
    tree_edits = [TreeEdit(path, by_content[c] if c is not None else None, mode) for path, c, mode in edits]
    result = store.build_tree(P, base_sha, tree_edits)
    assert contents(store, result) == expected
    assert result == tree(store, expected)  # canonical: the same files always make the same tree SHA


@pytest.mark.parametrize(
    ("edit_path", "content", "mode", "error", "code"),
    [
        pytest.param("a/b", b"x", R, InvalidInput, "path_conflict", id="below-a-file"),
        pytest.param("d", b"x", R, InvalidInput, "path_conflict", id="over-a-directory"),
        pytest.param("../x", b"x", R, InvalidPath, "invalid_path", id="escaping-path"),
        pytest.param(".git/config", b"x", R, InvalidPath, "invalid_path", id="dot-git"),
        pytest.param("l", b"../../etc", L, InvalidPath, "invalid_path", id="escaping-symlink"),
        pytest.param("gone", None, R, InvalidInput, "no_such_path", id="delete-missing"),
    ],
)
def test_build_tree_refuses(
    store: VersionStore,
    edit_path: str,
    content: bytes | None,
    mode: FileMode,
    error: type[Exception],
    code: str,
) -> None:
    base = tree(store, {"a": b"1", "d/x": b"2"})
    sha = store.write_blobs(P, [content])[0] if content is not None else None
    with pytest.raises(error) as caught:
        store.build_tree(P, base, [TreeEdit(edit_path, sha, mode)])
    assert getattr(caught.value, "code", None) == code


def test_build_tree_needs_the_blobs(store: VersionStore) -> None:
    with pytest.raises(NotFound):
        store.build_tree(P, None, [TreeEdit("a", git_blob_sha(b"not in the store"))])


# --- importing trees and commits: the SHAs git (and so GitHub) gives ------------------------------------


def _git(repo: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=input,
        capture_output=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return result.stdout.decode().strip()


@pytest.fixture
def other_repo(tmp_path: Path) -> Path:
    """A second repository, written by git itself: the referee."""
    path = tmp_path / "referee"
    path.mkdir()
    _git(path, "init", "-q")
    return path


def _git_tree(repo: Path, files: Files) -> str:
    for path, spec in files.items():
        content, mode = spec if isinstance(spec, tuple) else (spec, R)
        sha = _git(repo, "hash-object", "-w", "--stdin", input=content)
        _git(repo, "update-index", "--add", "--cacheinfo", f"{mode.value},{sha},{path}")
    return _git(repo, "write-tree")


def test_imported_tree_has_gits_sha(store: VersionStore, other_repo: Path) -> None:
    files: Files = {
        "README.md": b"# hi\n",
        "src/a/b.py": b"x = 1\n",
        "run.sh": (b"echo\n", X),
        "l": (b"run.sh", L),
    }
    assert tree(store, files) == _git_tree(other_repo, files)


def test_imported_commits_have_gits_shas(store: VersionStore, other_repo: Path) -> None:
    files: Files = {"a.txt": b"one\n", "dir/b.bin": bytes(range(256))}
    git_tree = _git_tree(other_repo, files)
    # git commit-tree keeps a message verbatim; dates carry their own UTC offsets.
    env = {
        "GIT_AUTHOR_NAME": "Zoë Example",
        "GIT_AUTHOR_EMAIL": "zoe@example.com",
        "GIT_AUTHOR_DATE": "1700000000 +0530",
        "GIT_COMMITTER_NAME": "GitHub",
        "GIT_COMMITTER_EMAIL": "noreply@github.com",
        "GIT_COMMITTER_DATE": "1700000100 -0700",
    }
    first = _git(other_repo, "commit-tree", git_tree, "-m", "first", env=env)
    message = "second: no trailing newline\n\nbody"
    (other_repo / "msg").write_text(message)
    second = _git(other_repo, "commit-tree", git_tree, "-p", first, "-F", "msg", env=env)

    author = GitIdentity(
        "Zoë Example",
        "zoe@example.com",
        datetime.fromtimestamp(1700000000, timezone(timedelta(hours=5, minutes=30))),
    )
    committer = GitIdentity(
        "GitHub", "noreply@github.com", datetime.fromtimestamp(1700000100, timezone(timedelta(hours=-7)))
    )
    our_tree = tree(store, files)
    assert our_tree == git_tree
    ours_first = store.write_commit(
        P, tree_sha=our_tree, parents=[], message="first\n", author=author, committer=committer
    )
    assert ours_first == first
    ours_second = store.write_commit(
        P, tree_sha=our_tree, parents=[ours_first], message=message, author=author, committer=committer,
        expected_sha=second,
    )  # fmt: skip
    assert ours_second == second
    assert store.tree_sha(P, ours_second) == git_tree
    # A commit built from GitHub's UTC dates alone differs; expected_sha says so instead of importing it.
    utc_author = GitIdentity(author.name, author.email, author.time.astimezone(UTC))
    with pytest.raises(InvalidInput) as caught:
        store.write_commit(
            P, tree_sha=our_tree, parents=[ours_first], message=message, author=utc_author,
            committer=committer, expected_sha=second,
        )  # fmt: skip
    assert caught.value.code == "sha_mismatch"


def test_imported_signed_commit_has_gits_sha(store: VersionStore, other_repo: Path) -> None:
    git_tree = _git_tree(other_repo, {"a": b"1"})
    signature = "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----"
    raw = (
        f"tree {git_tree}\n"
        "author A <a@example.com> 1700000000 +0100\n"
        "committer GitHub <noreply@github.com> 1700000000 +0000\n"
        "gpgsig " + signature.replace("\n", "\n ") + "\n"
        "\n"
        "signed on GitHub"
    )
    expected = _git(other_repo, "hash-object", "-t", "commit", "-w", "--stdin", input=raw.encode())
    our_tree = tree(store, {"a": b"1"})
    sha = store.write_commit(
        P,
        tree_sha=our_tree,
        parents=[],
        message="signed on GitHub",
        author=GitIdentity(
            "A", "a@example.com", datetime.fromtimestamp(1700000000, timezone(timedelta(hours=1)))
        ),
        committer=GitIdentity("GitHub", "noreply@github.com", datetime.fromtimestamp(1700000000, UTC)),
        gpg_signature=signature,
    )
    assert sha == expected


def test_write_commit_needs_its_objects(store: VersionStore) -> None:
    who = GitIdentity("A", "a@example.com", datetime.now(UTC))
    with pytest.raises(NotFound):
        store.write_commit(P, tree_sha="1" * 40, parents=[], message="m", author=who, committer=who)
    with pytest.raises(NotFound):
        store.write_commit(
            P, tree_sha=tree(store, {}), parents=["2" * 40], message="m", author=who, committer=who
        )


# --- commit_tree ----------------------------------------------------------------------------------------


def test_commit_tree_makes_numbered_versions(store: VersionStore) -> None:
    first = commit(store, {"a": b"1"}, expected=None)
    second_tree = tree(store, {"a": b"2", "b": b"3"})
    info = store.commit_tree(
        P,
        tree_sha=second_tree,
        parents=[first],
        message="pulled from GitHub",
        author=AUTHOR,
        version_id="v-gh-1",
        expected_head=first,
        source="github",
        trailers={"Ghsync-GitHub-Commit": "a" * 40},
    )
    assert store.head(P) == info.commit_sha
    assert (info.number, info.id, info.source, info.tree_sha) == (2, "v-gh-1", "github", second_tree)
    assert info.message == "pulled from GitHub"  # our trailers are not part of the message
    assert info.author == AUTHOR
    assert [v.number for v in store.list_versions(P)] == [2, 1]
    assert store.get_version_by_number(P, 1).commit_sha == first
    assert store.get_version(P, info.commit_sha) == info
    assert store.versions_after(P, 1) == [info]
    assert store.list_refs(P, "refs/tags/") == {"refs/tags/v1": first, "refs/tags/v2": info.commit_sha}


def test_versions_are_read_newest_first_only_as_far_as_asked(store: VersionStore) -> None:
    assert list(store.iter_versions(P)) == []
    first = commit(store, {"a": b"1"}, expected=None)
    second = commit(store, {"a": b"2"}, expected=first)
    versions = store.iter_versions(P)
    assert next(versions).commit_sha == second  # the newest, before the rest is read
    assert [v.commit_sha for v in versions] == [first]
    # A merge's other parent is not one of the versions, whatever its date.
    who = GitIdentity("Octo", "octo@example.com", datetime(2030, 1, 1, tzinfo=UTC))
    foreign = store.write_commit(P, tree_sha=tree(store, {"a": b"gh"}), parents=[], message="gh", author=who,
                                 committer=who)  # fmt: skip
    merged = commit(store, {"a": b"merged"}, expected=second, parents=[second, foreign])
    assert [v.commit_sha for v in store.iter_versions(P)] == [merged, second, first]
    assert list(store.iter_versions(P)) == store.list_versions(P)


def test_commit_tree_is_compare_and_swap(store: VersionStore) -> None:
    first = commit(store, {"a": b"1"}, expected=None)
    second = commit(store, {"a": b"2"}, expected=first)
    refs_before = store.list_refs(P, "refs/")
    versions_before = store.list_versions(P)
    for stale in (first, None):
        with pytest.raises(ConcurrentUpdate):
            commit(store, {"a": b"3"}, expected=stale, parents=[first] if stale else [])
    assert store.head(P) == second
    assert store.list_refs(P, "refs/") == refs_before  # no tag, no branch move: nothing changed
    assert store.list_versions(P) == versions_before


def test_racing_commit_trees_on_one_head_let_exactly_one_win(store: VersionStore) -> None:
    first = commit(store, {"a": b"1"}, expected=None)
    trees = [tree(store, {"a": b"writer %d" % i}) for i in range(8)]
    barrier = threading.Barrier(len(trees))
    won: list[str] = []
    lost: list[BaseException] = []

    def race(tree_sha: str) -> None:
        barrier.wait()
        try:
            info = store.commit_tree(
                P, tree_sha=tree_sha, parents=[first], message="race", author=AUTHOR,
                version_id=f"race-{tree_sha[:8]}", expected_head=first,
            )  # fmt: skip
            won.append(info.commit_sha)
        except BaseException as exc:  # collected, then asserted below
            lost.append(exc)

    threads = [threading.Thread(target=race, args=(sha,)) for sha in trees]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert len(lost) == len(trees) - 1 and all(isinstance(e, ConcurrentUpdate) for e in lost)
    assert [v.commit_sha for v in store.list_versions(P)] == [won[0], first]


def test_commit_tree_keeps_a_merged_parent_but_stays_one_line(store: VersionStore) -> None:
    first = commit(store, {"a": b"1"}, expected=None)
    foreign_tree = tree(store, {"a": b"from github"})
    who = GitIdentity("Octo", "octo@example.com", datetime(2026, 1, 1, tzinfo=UTC))
    foreign = store.write_commit(
        P, tree_sha=foreign_tree, parents=[], message="gh", author=who, committer=who
    )
    merged = commit(store, {"a": b"merged"}, expected=first, parents=[first, foreign])
    assert [v.commit_sha for v in store.list_versions(P)] == [merged, first]  # first-parent line only
    with pytest.raises(InvalidInput) as caught:
        commit(store, {"a": b"x"}, expected=merged, parents=[foreign, merged])
    assert caught.value.code == "invalid_parents"
    with pytest.raises(InvalidInput) as caught:
        store.commit_tree(
            P, tree_sha=store.tree_sha(P, merged), parents=[merged], message="m", author=AUTHOR,
            version_id="same", expected_head=merged,
        )  # fmt: skip
    assert caught.value.code == "no_changes"


@pytest.mark.parametrize(
    "trailers", [{"Ghsync-Version": "x"}, {"Bad Key": "x"}, {"K": "two\nlines"}, {"K": ""}]
)
def test_commit_tree_refuses_bad_trailers(store: VersionStore, trailers: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        store.commit_tree(
            P, tree_sha=tree(store, {"a": b"1"}), parents=[], message="m", author=AUTHOR, version_id="v",
            expected_head=None, trailers=trailers,
        )  # fmt: skip
    assert store.head(P) is None


def test_commit_tree_refuses_a_tree_that_breaks_the_store_rules(store: VersionStore) -> None:
    # A symlink leading out of the project can come from GitHub (git allows it); it must not be checked out.
    with pytest.raises(InvalidPath):
        commit(store, {"l": (b"../../etc/passwd", L)}, expected=None)
    assert store.head(P) is None


def test_commit_tree_leaves_nothing_dirty_and_checkout_records_nothing(store: VersionStore) -> None:
    first = commit(store, {"a": b"1"}, expected=None)
    assert not store.is_dirty(P)
    assert store.checkout(P, first) is None
    second = commit(store, {"a": b"2"}, expected=first)
    assert not store.is_dirty(P)  # the disk still holds `first` exactly: no edits
    assert store.checkout(P, second) is None
    assert store.head(P) == second
    assert not store.is_dirty(P)


def test_create_version_after_commit_tree_keeps_the_committed_files(store: VersionStore) -> None:
    first = commit(store, {"a": b"1", "b": b"1"}, expected=None)
    second = commit(store, {"a": b"from github", "b": b"1"}, expected=first)
    info = store.create_version(P, version_id="api-1", message="api", writes=[FileWrite("b", b"from api")])
    assert store.list_versions(P)[1].commit_sha == second  # no snapshot reverting `second`
    assert contents(store, info.tree_sha) == {"a": b"from github", "b": b"from api"}


# --- merge_trees ----------------------------------------------------------------------------------------

LINES = b"".join(b"line %d\n" % i for i in range(10))


def _edit(text: bytes, line: int, new: bytes) -> bytes:
    lines = text.splitlines(keepends=True)
    lines[line] = new
    return b"".join(lines)


@pytest.mark.parametrize(
    ("base", "ours", "theirs", "merged"),
    [
        pytest.param(
            {"a": b"1"},
            {"a": b"1", "b": b"2"},
            {"a": b"1", "c": b"3"},
            {"a": b"1", "b": b"2", "c": b"3"},
            id="disjoint-adds",
        ),
        pytest.param(
            {"f": LINES},
            {"f": _edit(LINES, 1, b"ours\n")},
            {"f": _edit(LINES, 8, b"theirs\n")},
            {"f": _edit(_edit(LINES, 1, b"ours\n"), 8, b"theirs\n")},
            id="text-merge-different-lines",
        ),
        pytest.param({"a": b"1"}, {"a": b"2"}, {"a": b"2"}, {"a": b"2"}, id="same-change-both-sides"),
        pytest.param(
            {"a": b"1", "b": b"1"},
            {"a": b"2", "b": b"1"},
            {"a": b"1"},
            {"a": b"2"},
            id="edit-and-delete-other",
        ),
        pytest.param({"a": b"1"}, {"a": (b"1", X)}, {"a": b"2"}, {"a": (b"2", X)}, id="mode-and-content"),
        pytest.param(
            {"f": TEXT},
            {"g": TEXT},
            {"f": _edit(TEXT, 0, b"edited\n")},
            {"g": _edit(TEXT, 0, b"edited\n")},
            id="rename-and-edit",
        ),
        pytest.param({}, {}, {"a": b"1"}, {"a": b"1"}, id="from-nothing"),
    ],
)
def test_clean_merges(store: VersionStore, base: Files, ours: Files, theirs: Files, merged: Files) -> None:
    result = store.merge_trees(P, tree(store, base), tree(store, ours), tree(store, theirs))
    assert result.clean and result.conflicts == ()
    assert result.tree_sha is not None
    assert contents(store, result.tree_sha) == merged


@pytest.mark.parametrize(
    ("base", "ours", "theirs", "kinds"),
    [
        pytest.param({"a": b"1\n"}, {"a": b"ours\n"}, {"a": b"theirs\n"}, {"a": "content"}, id="content"),
        pytest.param({"a": b"1"}, {"a": b"2"}, {}, {"a": "modify_delete"}, id="modify-delete"),
        pytest.param({"a": b"1"}, {}, {"a": b"2"}, {"a": "modify_delete"}, id="delete-modify"),
        pytest.param({}, {"a": b"ours\n"}, {"a": b"theirs\n"}, {"a": "add_add"}, id="add-add"),
        pytest.param({}, {"a": b"file"}, {"a/b": b"in a dir"}, {"a": "file_directory"}, id="file-directory"),
        pytest.param(
            {"a": b"1"}, {"a": b"2"}, {"a/b": b"in a dir"}, {"a": "file_directory"}, id="edited-file-vs-dir"
        ),
        pytest.param(
            {"f": TEXT},
            {"g": TEXT},
            {"h": TEXT},
            {"f": "rename", "g": "rename", "h": "rename"},
            id="rename-rename",
        ),
        pytest.param({"f": TEXT}, {"g": TEXT}, {}, {"f": "rename", "g": "rename"}, id="rename-delete"),
        pytest.param({"a": b"1"}, {"a": (b"1", X)}, {"a": (b"1", L)}, {"a": "mode"}, id="mode"),
        pytest.param(
            {"a": b"\x00base"}, {"a": b"\x00ours"}, {"a": b"\x00theirs"}, {"a": "binary"}, id="binary"
        ),
    ],
)
def test_conflicting_merges(
    store: VersionStore, base: Files, ours: Files, theirs: Files, kinds: dict[str, str]
) -> None:
    # Every case also carries a clean change elsewhere: a conflict must still mean no tree at all.
    clean_extra: Files = {"elsewhere.txt": b"ours only"}
    result = store.merge_trees(
        P, tree(store, base), tree(store, {**ours, **clean_extra}), tree(store, theirs)
    )
    assert not result.clean
    assert result.tree_sha is None
    assert {c.path: c.kind.value for c in result.conflicts} == kinds
    assert [c.path for c in result.conflicts] == sorted(kinds)


def test_conflicts_name_each_sides_blob(store: VersionStore) -> None:
    result = store.merge_trees(P, tree(store, {"a": b"1"}), tree(store, {"a": b"2"}), tree(store, {}))
    (conflict,) = result.conflicts
    assert conflict.kind is MergeConflictKind.MODIFY_DELETE
    assert (conflict.base_sha, conflict.ours_sha, conflict.theirs_sha) == (
        git_blob_sha(b"1"),
        git_blob_sha(b"2"),
        None,
    )


# --- backup refs ----------------------------------------------------------------------------------------


def test_keep_ref_never_overwrites_a_backup(store: VersionStore) -> None:
    first = commit(store, {"a": b"1"}, expected=None)
    second = commit(store, {"a": b"2"}, expected=first)
    name = store.keep_ref(P, "github/force-push", first)
    assert name == "refs/ghsync/backup/github/force-push"
    assert store.keep_ref(P, "github/force-push", first) == name  # same SHA: the same ref
    other = store.keep_ref(P, "github/force-push", second)
    assert other == "refs/ghsync/backup/github/force-push-2"
    assert store.list_refs(P, "refs/ghsync/backup/") == {name: first, other: second}
    assert store.list_refs(P, "refs/ghsync/backup/github/force-push-") == {other: second}


@pytest.mark.parametrize("bad", ["", "../escape", "a//b", "/abs", "a b", "x.lock", "a/../b", "-dash", "a\nb"])
def test_keep_ref_validates_the_name(store: VersionStore, bad: str) -> None:
    sha = commit(store, {"a": b"1"}, expected=None)
    with pytest.raises(InvalidInput):
        store.keep_ref(P, bad, sha)
    assert store.list_refs(P, "refs/ghsync/") == {}


def test_keep_ref_needs_a_commit(store: VersionStore) -> None:
    with pytest.raises(NotFound):
        store.keep_ref(P, "nothing", "3" * 40)
    with pytest.raises(InvalidInput):
        store.list_refs(P, "heads/")
