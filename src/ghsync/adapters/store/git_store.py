"""The local version store: one non-bare pygit2 repository per project, whose branch holds its versions.

Layout: `<root>/<project_id>/` is the project's working directory and `<root>/<project_id>/.git` its
repository. Branch `refs/heads/main` holds the versions (one commit each, first-parent history), and each
version also gets a tag `refs/tags/v<number>`. Commit messages end with trailers
(`Ghsync-Version`, `Ghsync-Source`, `Ghsync-Number`) so versions can be rebuilt from git alone.

Rules (see also docs in `create_version` and `snapshot`):

- Every write to a project holds a per-project lock (`flock` on `.git/ghsync.lock`), which serializes
  writers across threads *and* processes; under it the branch is moved with compare-and-swap (re-read,
  compare with the expected old value, write). Blobs are hashed before taking the lock, so big uploads
  for one project still proceed in parallel; only tree building, commit and checkout are serialized.
- Nothing is lost: before a version from the API lands, uncommitted edits in the working directory are
  committed as their own version ("Snapshot of uncommitted changes"), and the working directory is only
  updated with a checkout that refuses to overwrite anything not recorded in the old version.
- Nothing escapes the working directory: every path is validated (`ghsync.domain.paths`), symlinks are
  stored as symlinks with targets that resolve inside the project, and a checkout refuses to write
  below a symlink that is in the working directory but not in the store.
- An empty change (the tree would equal the head's) is refused with `InvalidInput(code="no_changes")`,
  except for a project's first version, which may be empty: a version should always mean a change.

The sync engine works on objects, not on the disk (the `VersionStore` port): blobs and trees by SHA,
`tree_delta`, `build_tree`, `merge_trees` (libgit2's three-way merge; each conflict classified by
`changes.classify_conflict`), imports of GitHub's trees and commits with their exact SHAs, backup refs
under `refs/ghsync/backup/`, and `commit_tree`, a version from a tree without a checkout. The branch only
ever moves in `publish` (a seam an S3-canonical adapter overrides). The working directory is a separate
component (`workdir.Workdir`): HEAD names the commit the disk holds, pinned while `commit_tree` moves the
branch without it, so uncommitted edits stay distinguishable until `checkout` (or the next
`create_version` / `snapshot`) records them on top of the head, merged with what the head changed.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import Final, cast

import pygit2
from pygit2.enums import (
    DeltaStatus,
    DiffFind,
    DiffOption,
    MergeFlag,
    RepositoryOpenFlag,
)

from ghsync.adapters.store.changes import (
    TRAILER_NUMBER,
    TRAILER_SOURCE,
    TRAILER_VERSION,
    ConflictSide,
    FlatTree,
    TreeItem,
    apply_changes,
    check_extra_trailers,
    check_no_file_directory_clash,
    classify_conflict,
    format_message,
    parse_message,
    tree_changes,
)
from ghsync.adapters.store.workdir import Workdir, WorkdirChanged
from ghsync.domain.errors import (
    ConcurrentUpdate,
    Conflict,
    FileTooLarge,
    InvalidInput,
    InvalidPath,
    NotFound,
)
from ghsync.domain.models import (
    Author,
    DiffStats,
    DiffStatus,
    FileDiff,
    FileEntry,
    FileMode,
    FileWrite,
    VersionInfo,
    VersionSource,
)
from ghsync.domain.paths import case_collision, validate_path, validate_symlink_target
from ghsync.domain.trees import GitIdentity, MergeResult, TreeChange, TreeEdit, TreeEntry

BRANCH: Final = "refs/heads/main"
LOCK_FILE: Final = "ghsync.lock"
SNAPSHOT_MESSAGE: Final = "Snapshot of uncommitted changes"
SYSTEM_AUTHOR: Final = Author(name="ghsync", email="ghsync@localhost")
BACKUP_PREFIX: Final = "refs/ghsync/backup/"

# How often create_version re-snapshots and retries when the working directory changes under it.
_MAX_ATTEMPTS: Final = 5
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_BACKUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
# libgit2's own lock files, which a killed process can leave behind; older than this they are stale.
_STALE_GIT_LOCK_SECONDS: Final = 10.0
_SOURCES: Final = ("local", "github")
# libgit2's numeric mode -> the store's file mode, for the three modes a project file may have.
_FILE_MODES: Final = {mode.git_mode: mode for mode in FileMode}
# How many trees built by `write_tree` are remembered as checked (see `GitStore.__init__`).
_CHECKED_TREES_KEPT: Final = 1024


# One in-process mutex per lock file as well as the flock: flock alone (per open file description) is
# correct across threads too, but the mutex keeps waiting threads off the file system.
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def tag_name(number: int) -> str:
    """The tag that marks version `number`."""
    return f"refs/tags/v{number}"


class _HeadMoved(ConcurrentUpdate):
    """The branch was not at the expected commit when we came to move it."""


class GitStore:
    """Versions of every project, kept as git commits in per-project repositories under `root`."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_file_size: int,
        new_version_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        fold_case: bool | None = None,
    ) -> None:
        """`max_file_size` is the block limit in bytes; `new_version_id` names automatic snapshots.

        `fold_case`: whether the working directories' file system takes names differing only in case
        for one (macOS and Windows by default); then a version holding two such paths is refused, since
        one would overwrite the other on disk. None finds out by trying, under `root`.
        """
        self.root = Path(root)
        self.max_file_size = max_file_size
        self._new_version_id = new_version_id
        self.fold_case = filesystem_folds_case(self.root) if fold_case is None else fold_case
        # Trees `write_tree` built, every entry checked on the way in, so `commit_tree` need not check
        # them again (a first import would validate its 10,000 paths twice). A tree SHA names its content,
        # so an entry never goes stale; the set is capped since it only saves work.
        self._checked_trees: set[str] = set()

    # --- projects ----------------------------------------------------------------------------------------

    def project_dir(self, project_id: str) -> Path:
        """The project's working directory (its repository is the `.git` inside)."""
        if not _PROJECT_ID.match(project_id) or project_id in (".", ".."):
            raise InvalidInput(f"invalid project id {project_id!r}", code="invalid_project_id")
        return self.root / project_id

    def init_project(self, project_id: str) -> None:
        """Create the project's repository and working directory; does nothing if they exist."""
        workdir = self.project_dir(project_id)
        if (workdir / ".git").is_dir():
            return
        workdir.mkdir(parents=True, exist_ok=True)
        repo = pygit2.init_repository(str(workdir), bare=False, initial_head="main")
        config = repo.config
        # Explicit so behaviour does not depend on the host's git defaults: exec bits and symlinks are
        # content, line endings are never rewritten, and reflogs get a stable identity.
        config["core.filemode"] = True
        config["core.symlinks"] = True
        config["core.autocrlf"] = "false"
        config["user.name"] = SYSTEM_AUTHOR.name
        config["user.email"] = SYSTEM_AUTHOR.email

    def exists(self, project_id: str) -> bool:
        """Whether the project's repository exists."""
        return (self.project_dir(project_id) / ".git").is_dir()

    # --- reading -----------------------------------------------------------------------------------------

    def head(self, project_id: str) -> str | None:
        """The commit SHA of the newest version, or None before the first version."""
        return _head_sha(self._open(project_id))

    def list_versions(self, project_id: str) -> list[VersionInfo]:
        """Every version, newest first (the branch's first-parent history)."""
        repo = self._open(project_id)
        head = _head_sha(repo)
        if head is None:
            return []
        walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL)
        walker.simplify_first_parent()
        commits = list(walker)
        total = len(commits)
        return [_version_info(c, fallback_number=total - i) for i, c in enumerate(commits)]

    def iter_versions(self, project_id: str) -> Iterator[VersionInfo]:
        """`list_versions`, read one commit at a time as the caller asks: finding a recent version (the
        common case) costs a few commits, not a walk of the whole history (30,000 versions take about half
        a second: bench/store_history.py)."""
        repo = self._open(project_id)
        head = _head_sha(repo)
        if head is None:
            return
        # Unsorted: a topological sort reads the whole graph before the first commit comes out, and the
        # first-parent line is one chain, which an unsorted walk gives in the same order.
        walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.NONE)
        walker.simplify_first_parent()
        for position, commit in enumerate(walker):
            info = _version_info(commit, fallback_number=0)
            if info.number == 0:  # no number trailer (a foreign history): numbered as the whole branch is
                yield from self.list_versions(project_id)[position:]
                return
            yield info

    def versions_after(self, project_id: str, number: int) -> list[VersionInfo]:
        """Versions numbered above `number`, newest first, reading only those commits.

        Indexing the newest versions after each change must not cost a walk of the whole history.
        """
        repo = self._open(project_id)
        head = _head_sha(repo)
        if head is None:
            return []
        walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL)
        walker.simplify_first_parent()
        found: list[VersionInfo] = []
        for commit in walker:
            info = _version_info(commit, fallback_number=0)
            if info.number == 0:  # no number trailer (a foreign history): count the whole branch
                return [version for version in self.list_versions(project_id) if version.number > number]
            if info.number <= number:
                break
            found.append(info)
        return found

    def get_version(self, project_id: str, commit_sha: str) -> VersionInfo:
        """The version whose commit is `commit_sha` (a full SHA); `NotFound` unless it is on the branch."""
        repo = self._open(project_id)
        commit = self._commit(repo, commit_sha)
        info = _version_info(commit, fallback_number=0)
        if info.number > 0 and _ref_target(repo, tag_name(info.number)) == str(commit.id):
            return info
        # No matching tag (a foreign or damaged history): fall back to walking the branch.
        for version in self.list_versions(project_id):
            if version.commit_sha == str(commit.id):
                return version
        raise NotFound(f"commit {commit_sha} is not a version of project {project_id}")

    def get_version_by_number(self, project_id: str, number: int) -> VersionInfo:
        """The version numbered `number` (from its tag)."""
        repo = self._open(project_id)
        sha = _ref_target(repo, tag_name(number))
        if sha is None:
            raise NotFound(f"project {project_id} has no version {number}")
        return self.get_version(project_id, sha)

    def tree_sha(self, project_id: str, commit_sha: str) -> str:
        """The SHA of the version's root tree (identical trees mean identical content)."""
        return str(self._commit(self._open(project_id), commit_sha).tree_id)

    def list_files(self, project_id: str, commit_sha: str) -> list[FileEntry]:
        """Every file of the version, recursively, sorted by path."""
        repo = self._open(project_id)
        flat = _flatten(self._commit(repo, commit_sha).tree)
        odb = repo.odb
        entries = [
            FileEntry(path=path, mode=item.mode, size=odb.read_header(item.sha)[1], sha=item.sha)
            for path, item in flat.items()
        ]
        return sorted(entries, key=lambda e: e.path)

    def read_file(self, project_id: str, commit_sha: str, path: str) -> bytes:
        """The bytes of one file of the version (a symlink's target for a symlink)."""
        path = validate_path(path)
        repo = self._open(project_id)
        tree = self._commit(repo, commit_sha).tree
        try:
            obj = tree[path]
        except KeyError:
            raise NotFound(f"version {commit_sha} has no file {path!r}") from None
        if not isinstance(obj, pygit2.Blob):
            raise NotFound(f"{path!r} is a directory in version {commit_sha}, not a file")
        return obj.data

    def diff(self, project_id: str, from_sha: str | None, to_sha: str) -> list[FileDiff]:
        """What changed from version `from_sha` (None: from nothing) to `to_sha`, with renames found.

        Each file's attributes (`binary`, a diff driver) come from the project's `.gitattributes` as
        checked out (the index), not from the disk: see `_open_objects`.
        """
        diff = self._version_diff(project_id, from_sha, to_sha)
        return sorted((_file_diff(patch) for patch in diff if patch is not None), key=lambda d: d.path)

    def diff_stats(self, project_id: str, from_sha: str | None, to_sha: str) -> DiffStats:
        """`diff`'s totals, counted by libgit2 (a first import's 10,000 files need no Python object each)."""
        stats = self._version_diff(project_id, from_sha, to_sha).stats
        return DiffStats(stats.files_changed, stats.insertions, stats.deletions)

    def _version_diff(self, project_id: str, from_sha: str | None, to_sha: str) -> pygit2.Diff:
        repo = self._open_objects(project_id)
        new_tree = self._commit(repo, to_sha).tree
        old_tree = self._commit(repo, from_sha).tree if from_sha is not None else _empty_tree(repo)
        diff = old_tree.diff_to_tree(new_tree)
        diff.find_similar(flags=DiffFind.FIND_RENAMES)
        return diff

    def is_dirty(self, project_id: str) -> bool:
        """Whether the working directory differs from the newest version (`.gitignore`d files aside)."""
        return bool(self._open(project_id).status(untracked_files="all", ignored=False))

    # --- writing -----------------------------------------------------------------------------------------

    def create_version(
        self,
        project_id: str,
        *,
        version_id: str,
        message: str,
        writes: Sequence[FileWrite],
        deletes: Sequence[str] = (),
        replace_all: bool = False,
        author: Author | None = None,
        source: VersionSource = "local",
        expected_head: str | EllipsisType | None = ...,
    ) -> VersionInfo:
        """Store a new version made of the head's files plus `writes` minus `deletes`, and check it out.

        With `replace_all` the version holds exactly `writes`. The tree is built in the object database,
        the branch moves by compare-and-swap, then the working directory is updated.

        Concurrency: if another writer moved the branch since we read it, the same writes and deletes are
        applied again on the new head (files not listed stay as they are there too), unless the caller
        gave `expected_head` (None meaning "no version yet"), in which case `ConcurrentUpdate` is raised.

        Uncommitted edits: if the working directory differs from the head, it is first committed as its
        own version ("Snapshot of uncommitted changes", source local), and the new version is built on
        top of that snapshot. With an explicit `expected_head` the snapshot is still taken (so nothing
        is lost) but `ConcurrentUpdate` is raised, since the head the caller decided on has moved.
        If `commit_tree` moved the branch since the disk was checked out, the disk is first brought to
        the head as `checkout` does (`Conflict(code="workdir_conflict")` if its edits clash with the head).
        """
        self._check_version_fields(version_id, message, source)
        prepared_writes = [self._prepare_write(w) for w in writes]
        prepared_deletes = [validate_path(p) for p in deletes]
        repo = self._open(project_id)
        # Hash blobs before taking the lock: the expensive part runs in parallel, and an unused blob
        # (if the version is refused later) is harmless garbage in a content-addressed store.
        blob_writes = [
            (path, TreeItem(mode, str(repo.create_blob(content)))) for path, mode, content in prepared_writes
        ]
        with self._locked(project_id):
            for _attempt in range(_MAX_ATTEMPTS):
                head = _head_sha(repo)
                if expected_head is not ... and head != expected_head:
                    raise ConcurrentUpdate(
                        f"project {project_id} head is {head}, not the expected {expected_head}"
                    )
                workdir = Workdir(repo, BRANCH)
                if workdir.is_pinned() and head is not None:
                    # A version was committed without a checkout: bring the disk to the head first,
                    # recording any edits on top of it (what a checkout does).
                    snap = self._checkout_locked(
                        project_id,
                        repo,
                        head,
                        version_id=self._new_version_id(),
                        message=SNAPSHOT_MESSAGE,
                        author=SYSTEM_AUTHOR,
                    )
                    if snap is not None and expected_head is not ...:
                        raise ConcurrentUpdate(
                            f"project {project_id} had uncommitted changes, saved as version {snap.number}"
                        )
                    head = _head_sha(repo)
                if workdir.has_edits():
                    snap = self._snapshot_locked(
                        project_id,
                        repo,
                        version_id=self._new_version_id(),
                        message=SNAPSHOT_MESSAGE,
                        author=SYSTEM_AUTHOR,
                    )
                    if snap is not None and expected_head is not ...:
                        raise ConcurrentUpdate(
                            f"project {project_id} had uncommitted changes, saved as version {snap.number}"
                        )
                    head = _head_sha(repo)
                base = _flatten(repo[head].peel(pygit2.Tree)) if head else {}
                new = apply_changes(base, blob_writes, prepared_deletes, replace_all=replace_all)
                self._check_case(new)
                if head is not None and new == base:
                    raise InvalidInput("the version changes nothing", code="no_changes")
                try:
                    return self._commit_and_checkout(
                        project_id,
                        repo,
                        head=head,
                        base=base,
                        new=new,
                        version_id=version_id,
                        message=message,
                        author=author or SYSTEM_AUTHOR,
                        source=source,
                    )
                except _HeadMoved as exc:
                    if expected_head is not ...:
                        raise ConcurrentUpdate(str(exc)) from None
                except WorkdirChanged:
                    continue  # someone edited the working directory meanwhile: snapshot it and retry
        raise ConcurrentUpdate(f"project {project_id} kept changing; gave up after {_MAX_ATTEMPTS} attempts")

    def snapshot(
        self,
        project_id: str,
        *,
        version_id: str,
        message: str,
        author: Author | None = None,
    ) -> VersionInfo | None:
        """Commit the working directory as it is as a new version; None if it equals the head.

        Additions, modifications, deletions, the executable bit and symlinks (stored as symlinks, never
        followed) are recorded; `.git` and files matched by the project's `.gitignore` are not. A file
        that breaks the path rules (say a symlink to `/etc`) fails the snapshot with `InvalidPath`.
        """
        self._check_version_fields(version_id, message, "local")
        repo = self._open(project_id)
        with self._locked(project_id):
            head = _head_sha(repo)
            if Workdir(repo, BRANCH).is_pinned() and head is not None:
                return self._checkout_locked(
                    project_id,
                    repo,
                    head,
                    version_id=version_id,
                    message=message,
                    author=author or SYSTEM_AUTHOR,
                )
            return self._snapshot_locked(
                project_id, repo, version_id=version_id, message=message, author=author or SYSTEM_AUTHOR
            )

    def commit_tree(
        self,
        project_id: str,
        *,
        tree_sha: str,
        parents: Sequence[str],
        message: str,
        author: Author,
        version_id: str,
        expected_head: str | None,
        source: VersionSource = "local",
        trailers: Mapping[str, str] | None = None,
    ) -> VersionInfo:
        """A new version whose files are tree `tree_sha`, published by compare-and-swap; disk untouched.

        `parents[0]` must be `expected_head` (no first parent for the first version), so the versions stay
        one first-parent line; further parents are kept reachable (say the GitHub commit it merges). The
        version is numbered and tagged like every other; `trailers` follow ours in the message.
        `ConcurrentUpdate` when the head is not `expected_head`: then nothing changed, not even a tag.
        The working directory keeps what it holds (HEAD is pinned to it) until `checkout`.
        """
        self._check_version_fields(version_id, message, source)
        _check_author(author)
        extra = dict(trailers or {})
        check_extra_trailers(extra)
        repo = self._open(project_id)
        tree = self._tree(repo, tree_sha)
        self._check_tree(repo, tree)
        parent_shas = [str(self._commit(repo, sha).id) for sha in parents]
        if (parent_shas[0] if parent_shas else None) != expected_head:
            raise InvalidInput(
                "the first parent must be the expected head (and there is none for a first version), "
                "so that the versions stay one line",
                code="invalid_parents",
            )
        with self._locked(project_id):
            head = _head_sha(repo)
            if head != expected_head:
                raise ConcurrentUpdate(
                    f"project {project_id} head is {head}, not the expected {expected_head}"
                )
            if head is not None and repo[head].peel(pygit2.Tree).id == tree.id:
                raise InvalidInput("the version changes nothing", code="no_changes")
            number = _number_of(repo, head) + 1 if head else 1
            commit_id = self._write_commit(
                repo, tree.id, parent_shas, version_id=version_id, message=message, author=author,
                source=source, number=number, extra_trailers=extra,
            )  # fmt: skip
            Workdir(repo, BRANCH).pin()  # the disk keeps the old version until a checkout
            self.publish(project_id, head, str(commit_id))
            return _version_info(cast(pygit2.Commit, repo[commit_id]), fallback_number=number)

    def checkout(self, project_id: str, commit_sha: str) -> VersionInfo | None:
        """Bring the working directory to version `commit_sha` (normally the head, after `commit_tree`).

        Uncommitted edits are recorded first, never lost: as a version on top of the head, merged with
        what the head changed since the disk was checked out (that snapshot version is returned, and the
        disk then holds it). If the edits and the head's changes conflict, `Conflict` is raised, the disk
        is left as it is, and the edits are also kept under a backup ref (`refs/ghsync/backup/workdir/...`).
        """
        repo = self._open(project_id)
        target = self.get_version(project_id, commit_sha).commit_sha
        with self._locked(project_id):
            return self._checkout_locked(
                project_id,
                repo,
                target,
                version_id=self._new_version_id(),
                message=SNAPSHOT_MESSAGE,
                author=SYSTEM_AUTHOR,
            )

    def publish(self, project_id: str, expected: str | None, new: str) -> None:
        """The one place the branch moves: compare-and-swap from `expected` to `new`, tagging the version.

        Called by the store with the project lock held (never call it directly). An adapter whose
        canonical branch lives elsewhere (S3) overrides this; it must raise `ConcurrentUpdate` when the
        branch is not at `expected`, and leave the branch as it was.
        """
        repo = self._open(project_id)
        _move_branch(repo, expected=expected, new=new, number=_number_of(repo, new))

    # --- objects -----------------------------------------------------------------------------------------

    def has_objects(self, project_id: str, shas: Iterable[str]) -> set[str]:
        """Which of `shas` the object database holds (any type); malformed SHAs are simply not held."""
        odb = self._open(project_id).odb
        return {sha for sha in shas if isinstance(sha, str) and _FULL_SHA.match(sha) and sha in odb}

    def read_blob(self, project_id: str, sha: str) -> bytes:
        """The content of blob `sha`; `NotFound` if the store lacks it (or it is not a blob)."""
        return self._blob(self._open(project_id), sha).data

    def write_blobs(self, project_id: str, contents: Sequence[bytes]) -> list[str]:
        """Store blobs and return their SHAs in order; `FileTooLarge` (nothing written) over the limit."""
        for index, content in enumerate(contents):
            if len(content) > self.max_file_size:
                raise FileTooLarge(
                    f"blob {index} is {len(content)} bytes; the limit is {self.max_file_size} bytes"
                )
        repo = self._open(project_id)
        return [str(repo.create_blob(bytes(content))) for content in contents]

    def write_tree(self, project_id: str, entries: Iterable[TreeEntry]) -> str:
        """Write the tree holding exactly `entries` (files with full paths) and return its SHA.

        Git trees are canonical (entries sorted, modes normalised), so the same files give GitHub's SHA.
        """
        edits = [TreeEdit(entry.path, entry.sha, entry.mode) for entry in entries]
        tree = self._build_tree(self._open(project_id), None, edits)
        if len(self._checked_trees) >= _CHECKED_TREES_KEPT:
            self._checked_trees.clear()
        self._checked_trees.add(tree)
        return tree

    def write_commit(
        self,
        project_id: str,
        *,
        tree_sha: str,
        parents: Sequence[str],
        message: str,
        author: GitIdentity,
        committer: GitIdentity,
        gpg_signature: str | None = None,
        expected_sha: str | None = None,
    ) -> str:
        """Write a commit object exactly as given, moving no ref, and return its SHA.

        The message is kept byte for byte (git adds no newline here), times keep their UTC offsets, and a
        signature goes into the `gpgsig` header as git writes it, so GitHub's exact data gives GitHub's SHA.
        """
        repo = self._open(project_id)
        tree = self._tree(repo, tree_sha)
        parent_ids: list[str | pygit2.Oid] = [self._commit(repo, sha).id for sha in parents]
        if "\x00" in message:
            raise InvalidInput("the message contains a NUL character")
        author_sig, committer_sig = _signature(author), _signature(committer)
        if gpg_signature is None:
            oid = repo.create_commit(None, author_sig, committer_sig, message, tree.id, parent_ids)
        else:
            # pygit2's stubs say Oid, but it returns the commit's text, which the signature wraps.
            content = cast(
                str, repo.create_commit_string(author_sig, committer_sig, message, tree.id, parent_ids)
            )
            oid = repo.create_commit_with_signature(content, gpg_signature)
        if expected_sha is not None and str(oid) != expected_sha:
            raise InvalidInput(
                f"the commit came out as {oid}, not {expected_sha}: some of its data differs from the "
                "original (a date's UTC offset, the message's trailing newline, or an extra header); "
                "fetch the commit over git instead",
                code="sha_mismatch",
            )
        return str(oid)

    # --- trees -------------------------------------------------------------------------------------------

    def flat_tree(self, project_id: str, tree_sha: str | None) -> dict[str, TreeEntry]:
        """Every file of the tree by path, recursively (None: the empty tree); submodules are left out."""
        if tree_sha is None:
            return {}
        # Straight from the walk: a flat tree of 10,000 files is not built twice over.
        walk = _walk(self._tree(self._open(project_id), tree_sha))
        return {path: TreeEntry(path, mode, sha) for path, mode, sha in walk}

    def tree_delta(self, project_id: str, a_tree: str | None, b_tree: str | None) -> list[TreeChange]:
        """What turns tree `a_tree` into `b_tree` (None: empty), renames found, sorted by path; no patches."""
        repo = self._open(project_id)
        old = self._tree(repo, a_tree) if a_tree is not None else _empty_tree(repo)
        new = self._tree(repo, b_tree) if b_tree is not None else _empty_tree(repo)
        return _tree_delta(old, new)

    def build_tree(self, project_id: str, base_tree: str | None, edits: Sequence[TreeEdit]) -> str:
        """The tree `base_tree` becomes with `edits` applied (sha None deletes a file or a directory)."""
        return self._build_tree(self._open(project_id), base_tree, edits)

    def merge_trees(
        self, project_id: str, base: str | None, ours: str | None, theirs: str | None
    ) -> MergeResult:
        """Three-way merge of trees (libgit2's, renames found, text merged), or every conflict with its kind.

        Nothing is half-merged: when any path conflicts no tree is written and every conflict is listed.
        """
        repo = self._open(project_id)
        ancestor_tree, ours_tree, theirs_tree = (
            self._tree(repo, sha) if sha is not None else _empty_tree(repo) for sha in (base, ours, theirs)
        )
        return self._merge(repo, ancestor_tree, ours_tree, theirs_tree)

    def _merge(
        self,
        repo: pygit2.Repository,
        ancestor_tree: pygit2.Tree,
        ours_tree: pygit2.Tree,
        theirs_tree: pygit2.Tree,
    ) -> MergeResult:
        index = repo.merge_trees(ancestor_tree, ours_tree, theirs_tree, flags=MergeFlag.FIND_RENAMES)
        if index.conflicts is None:
            return MergeResult(tree_sha=str(index.write_tree(repo)))
        renamed: set[str] = set()
        for side_tree in (ours_tree, theirs_tree):
            for change in _tree_delta(ancestor_tree, side_tree):
                if change.status is DiffStatus.RENAMED and change.old_path is not None:
                    renamed.update((change.old_path, change.path))
        ours_files, theirs_files = set(_flatten(ours_tree)), set(_flatten(theirs_tree))

        def side(entry: pygit2.IndexEntry | None) -> ConflictSide | None:
            if entry is None:
                return None
            blob = repo.get(entry.id)
            binary = isinstance(blob, pygit2.Blob) and blob.is_binary
            return ConflictSide(str(entry.path), entry.mode, str(entry.id), binary)

        conflicts = [
            classify_conflict(
                side(a), side(o), side(t), renamed=renamed, ours_files=ours_files, theirs_files=theirs_files
            )
            for a, o, t in index.conflicts
        ]
        return MergeResult(tree_sha=None, conflicts=tuple(sorted(conflicts, key=lambda c: c.path)))

    # --- refs --------------------------------------------------------------------------------------------

    def keep_ref(self, project_id: str, name: str, sha: str) -> str:
        """Keep commit `sha` reachable under `refs/ghsync/backup/<name>` and return the full ref name.

        Backup refs are never overwritten: the same SHA reuses the ref, a different one gets `<name>-2`,
        `<name>-3`, ... (checked under the project lock, so two writers cannot take the same name).
        """
        if not _BACKUP_NAME.match(name) or any(part in ("", ".", "..") for part in name.split("/")):
            raise InvalidInput(
                f"backup ref name {name!r} must be '/'-separated words of letters, digits, '.', '_' and '-'",
                code="invalid_ref_name",
            )
        repo = self._open(project_id)
        oid = self._commit(repo, sha).id
        with self._locked(project_id):
            return self._keep_ref_locked(repo, name, str(oid))

    def _keep_ref_locked(self, repo: pygit2.Repository, name: str, sha: str) -> str:
        oid = pygit2.Oid(hex=sha)
        for attempt in range(1, 1000):
            full = BACKUP_PREFIX + name + ("" if attempt == 1 else f"-{attempt}")
            if not pygit2.reference_is_valid_name(full):
                raise InvalidInput(f"{full!r} is not a valid ref name", code="invalid_ref_name")
            if _ref_parent_taken(repo, full):
                raise InvalidInput(
                    f"cannot create {full!r}: a ref exists where it needs a directory",
                    code="invalid_ref_name",
                )
            current = _ref_target(repo, full)
            if current == str(oid):
                return full
            if current is None and not _ref_prefix_taken(repo, full):
                repo.references.create(full, oid)
                return full
        raise Conflict(f"too many backup refs named {name!r}")

    def list_refs(self, project_id: str, prefix: str) -> dict[str, str]:
        """Every ref whose full name starts with `prefix`, with the SHA it points at."""
        if not prefix.startswith("refs/"):
            raise InvalidInput(f"ref prefix {prefix!r} must start with 'refs/'", code="invalid_ref_name")
        repo = self._open(project_id)
        return {
            name: str(repo.references[name].resolve().target)
            for name in repo.references
            if name.startswith(prefix)
        }

    # --- internals ---------------------------------------------------------------------------------------

    def _open(self, project_id: str) -> pygit2.Repository:
        workdir = self.project_dir(project_id)
        if not (workdir / ".git").is_dir():
            raise NotFound(f"project {project_id} has no local store")
        # NO_SEARCH: never walk up to an enclosing repository if ours is damaged.
        return pygit2.Repository(str(workdir), RepositoryOpenFlag.NO_SEARCH)

    def _open_objects(self, project_id: str) -> pygit2.Repository:
        """The project's repository opened bare, for reads that compare versions and never the disk.

        libgit2 then reads a file's attributes from the index (the record of what is checked out)
        instead of looking up every file on disk: a stat and a realpath per file, four fifths of the
        time of a 10,000-file diff. So uncommitted edits of a `.gitattributes` cannot change what a
        diff between two versions says either.
        """
        workdir = self.project_dir(project_id)
        if not (workdir / ".git").is_dir():
            raise NotFound(f"project {project_id} has no local store")
        flags = RepositoryOpenFlag.NO_SEARCH | RepositoryOpenFlag.BARE
        return pygit2.Repository(str(workdir / ".git"), flags)

    @contextmanager
    def _locked(self, project_id: str) -> Iterator[None]:
        lock_path = str(self.project_dir(project_id) / ".git" / LOCK_FILE)
        with _THREAD_LOCKS_GUARD:
            mutex = _THREAD_LOCKS.setdefault(lock_path, threading.Lock())
        with mutex, open(lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            _remove_stale_git_locks(self.project_dir(project_id) / ".git")
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _commit(self, repo: pygit2.Repository, sha: str) -> pygit2.Commit:
        obj = repo.get(sha) if isinstance(sha, str) and _FULL_SHA.match(sha) else None
        if not isinstance(obj, pygit2.Commit):
            raise NotFound(f"no version with commit {sha!r}")
        return obj

    def _tree(self, repo: pygit2.Repository, sha: str) -> pygit2.Tree:
        obj = repo.get(sha) if isinstance(sha, str) and _FULL_SHA.match(sha) else None
        if not isinstance(obj, pygit2.Tree):
            raise NotFound(f"the store has no tree {sha!r}")
        return obj

    def _blob(self, repo: pygit2.Repository, sha: str) -> pygit2.Blob:
        obj = repo.get(sha) if isinstance(sha, str) and _FULL_SHA.match(sha) else None
        if not isinstance(obj, pygit2.Blob):
            raise NotFound(f"the store has no blob {sha!r}")
        return obj

    def _blob_size(self, odb: pygit2.Odb, sha: str) -> int:
        """The size of blob `sha` from its header alone; `NotFound` like `_blob` when it is no blob."""
        try:
            kind, size = odb.read_header(sha) if isinstance(sha, str) and _FULL_SHA.match(sha) else (0, 0)
        except KeyError:
            kind = 0
        if kind != pygit2.enums.ObjectType.BLOB:
            raise NotFound(f"the store has no blob {sha!r}")
        return int(size)

    def _check_tree(self, repo: pygit2.Repository, tree: pygit2.Tree) -> None:
        """Hold a tree from elsewhere (GitHub) to the rules of `create_version` before it becomes a version.

        A checkout writes it to disk, so a path naming `.git`, a symlink leading out of the project or a
        file over the block limit must be refused here, whatever another git host accepted. A tree
        `write_tree` built passed the same rules entry by entry (and more), so it is not checked again.
        """
        if str(tree.id) in self._checked_trees:
            return
        odb = repo.odb
        flat = _flatten(tree)
        self._check_case(flat)
        for path, item in flat.items():
            validate_path(path)
            size = odb.read_header(item.sha)[1]
            if size > self.max_file_size:
                raise FileTooLarge(f"{path!r} is {size} bytes; the limit is {self.max_file_size} bytes")
            if item.mode is FileMode.SYMLINK:
                validate_symlink_target(path, _decode_target(path, self._blob(repo, item.sha).data))

    def _build_tree(self, repo: pygit2.Repository, base: str | None, edits: Sequence[TreeEdit]) -> str:
        """Validate `edits` against the store's rules and write the tree `base` becomes with them."""
        base_tree = self._tree(repo, base) if base is not None else None
        base_flat = _flatten(base_tree) if base_tree is not None else {}
        writes: list[tuple[str, TreeItem]] = []
        deletes: list[str] = []
        odb = repo.odb
        for edit in edits:
            path = validate_path(edit.path)
            if edit.sha is None:
                deletes.append(path)
                continue
            try:
                mode = FileMode(edit.mode)
            except ValueError:
                raise InvalidInput(f"{path!r}: mode must be 100644, 100755 or 120000") from None
            # The header (type and size) is enough; only a symlink's target is read. A tree of 10,000
            # files must not read 10,000 blobs back.
            size = self._blob_size(odb, edit.sha)
            if size > self.max_file_size:
                raise FileTooLarge(f"{path!r} is {size} bytes; the limit is {self.max_file_size} bytes")
            if mode is FileMode.SYMLINK:
                validate_symlink_target(path, _decode_target(path, self._blob(repo, edit.sha).data))
            writes.append((path, TreeItem(mode, edit.sha)))
        new = apply_changes(base_flat, writes, deletes, replace_all=False)
        self._check_case(new)
        return str(_write_tree(repo, base_tree, tree_changes(base_flat, new)))

    def _check_case(self, paths: Iterable[str]) -> None:
        """On a file system that folds case, refuse two paths it would take for one (`case_collision`)."""
        if not self.fold_case:
            return
        collision = case_collision(paths)
        if collision is not None:
            first, second = collision
            raise InvalidPath(
                f"{first!r} and {second!r} differ only in case: on this file system one would overwrite "
                "the other in the working directory"
            )

    def _check_version_fields(self, version_id: str, message: str, source: str) -> None:
        if not _VERSION_ID.match(version_id):
            raise InvalidInput(
                f"version id {version_id!r} must be 1-200 printable ASCII characters without spaces"
            )
        if "\x00" in message:
            raise InvalidInput("the message contains a NUL character")
        if source not in _SOURCES:
            raise InvalidInput(f"source must be one of {_SOURCES}, not {source!r}")

    def _prepare_write(self, write: FileWrite) -> tuple[str, FileMode, bytes]:
        path = validate_path(write.path)
        try:
            mode = FileMode(write.mode)
        except ValueError:
            raise InvalidInput(f"{path!r}: mode must be 100644, 100755 or 120000") from None
        content = bytes(write.content)
        if len(content) > self.max_file_size:
            raise FileTooLarge(f"{path!r} is {len(content)} bytes; the limit is {self.max_file_size} bytes")
        if mode is FileMode.SYMLINK:
            validate_symlink_target(path, _decode_target(path, content))
        return path, mode, content

    def _commit_and_checkout(
        self,
        project_id: str,
        repo: pygit2.Repository,
        *,
        head: str | None,
        base: FlatTree,
        new: FlatTree,
        version_id: str,
        message: str,
        author: Author,
        source: VersionSource,
    ) -> VersionInfo:
        """Write the commit, bring the working directory to it, then tag and move the branch (CAS).

        The checkout comes before the branch moves: if it fails, nothing is published and the working
        directory still matches the old head, so a later snapshot cannot mistake our files for edits.
        """
        head_tree = repo[head].peel(pygit2.Tree) if head else None
        tree_id = _write_tree(repo, head_tree, tree_changes(base, new))
        number = _number_of(repo, head) + 1 if head else 1
        commit_id = self._write_commit(
            repo, tree_id, [head] if head else [], version_id=version_id, message=message, author=author,
            source=source, number=number,
        )  # fmt: skip
        _check_head(repo, head)  # the compare of the compare-and-swap; the swap follows the checkout
        self._checkout(repo, head_tree or _empty_tree(repo), cast(pygit2.Tree, repo[tree_id]))
        self.publish(project_id, head, str(commit_id))
        return _version_info(cast(pygit2.Commit, repo[commit_id]), fallback_number=number)

    def _write_commit(
        self,
        repo: pygit2.Repository,
        tree_id: pygit2.Oid,
        parent_shas: Sequence[str],
        *,
        version_id: str,
        message: str,
        author: Author,
        source: VersionSource,
        number: int,
        extra_trailers: Mapping[str, str] | None = None,
    ) -> pygit2.Oid:
        trailers = {TRAILER_VERSION: version_id, TRAILER_SOURCE: source, TRAILER_NUMBER: str(number)}
        trailers.update(extra_trailers or {})
        _check_author(author)
        author_sig = pygit2.Signature(author.name, author.email)
        committer = pygit2.Signature(SYSTEM_AUTHOR.name, SYSTEM_AUTHOR.email)
        parents: list[str | pygit2.Oid] = [pygit2.Oid(hex=parent) for parent in parent_shas]
        # ref=None: only write the object; the branch moves later, under compare-and-swap.
        return repo.create_commit(
            None, author_sig, committer, format_message(message, trailers), tree_id, parents
        )

    def _checkout(self, repo: pygit2.Repository, base: pygit2.Tree, new: pygit2.Tree) -> None:
        Workdir(repo, BRANCH).materialise(base, new)

    def _checkout_locked(
        self,
        project_id: str,
        repo: pygit2.Repository,
        target: str,
        *,
        version_id: str,
        message: str,
        author: Author,
    ) -> VersionInfo | None:
        """Bring the disk to commit `target`, recording its edits first (see `checkout`)."""
        snapshot: VersionInfo | None = None
        # Checking out the head means the head after recording the edits: the target's files plus them.
        follow_head = target == _head_sha(repo)
        for attempt in range(_MAX_ATTEMPTS):
            workdir = Workdir(repo, BRANCH)
            if workdir.has_edits():
                made = self._snapshot_locked(
                    project_id,
                    repo,
                    version_id=version_id if attempt == 0 else self._new_version_id(),
                    message=message,
                    author=author,
                )
                snapshot = made or snapshot
            goal = (_head_sha(repo) or target) if follow_head else target
            held = workdir.checked_out()
            if held != goal:
                base = repo[held].peel(pygit2.Tree) if held else _empty_tree(repo)
                try:
                    self._checkout(repo, base, repo[goal].peel(pygit2.Tree))
                except WorkdirChanged:
                    continue  # edited meanwhile: record those edits too, then try again
            workdir.point_at(goal, branch_head=_head_sha(repo))
            return snapshot
        raise ConcurrentUpdate(f"project {project_id} kept changing; gave up after {_MAX_ATTEMPTS} attempts")

    def _snapshot_locked(
        self, project_id: str, repo: pygit2.Repository, *, version_id: str, message: str, author: Author
    ) -> VersionInfo | None:
        """Record the disk's edits as a version on the head (merged in, if the branch moved on meanwhile)."""
        workdir = Workdir(repo, BRANCH)
        index = workdir.record()
        flat = self._validated_index(repo, index)
        tree_id = index.write_tree()
        head = _head_sha(repo)
        held = workdir.checked_out()
        held_tree = repo[held].peel(pygit2.Tree) if held else _empty_tree(repo)
        if tree_id == held_tree.id or (held is None and not flat):
            index.write()  # refresh the stat cache so the next status check is cheap
            return None
        parents = [head] if head else []
        if held != head and head is not None:
            # The edits were made on `held`, and the branch has moved on (commit_tree) since: keep the
            # edits as they are in a commit of their own, then merge them into the head.
            system = pygit2.Signature(SYSTEM_AUTHOR.name, SYSTEM_AUTHOR.email)
            edits_message = f"Uncommitted changes made on {held}\n"
            parent_ids: list[str | pygit2.Oid] = [held] if held else []
            raw = str(repo.create_commit(None, system, system, edits_message, tree_id, parent_ids))
            head_tree = repo[head].peel(pygit2.Tree)
            merged = self._merge(repo, held_tree, head_tree, cast(pygit2.Tree, repo[tree_id]))
            if merged.tree_sha is None:
                ref = self._keep_workdir_edits(repo, raw)
                paths = ", ".join(c.path for c in merged.conflicts)
                raise Conflict(
                    f"the working directory's uncommitted edits conflict with the newest version ({paths}); "
                    f"they stay on disk and are kept as {ref}: settle those files on disk (or undo the "
                    "edits), then check out again",
                    code="workdir_conflict",
                )
            index.write()
            workdir.point_at(raw, branch_head=head)  # the disk holds exactly the edits' commit
            if merged.tree_sha == str(head_tree.id):
                return None  # the head already has these edits
            tree_id = pygit2.Oid(hex=merged.tree_sha)
            parents = [head, raw]
        number = _number_of(repo, head) + 1 if head else 1
        commit_id = self._write_commit(
            repo, tree_id, parents, version_id=version_id, message=message, author=author,
            source="local", number=number,
        )  # fmt: skip
        self.publish(project_id, head, str(commit_id))
        index.write()
        if held == head:
            workdir.point_at(str(commit_id), branch_head=str(commit_id))
        return _version_info(cast(pygit2.Commit, repo[commit_id]), fallback_number=number)

    def _keep_workdir_edits(self, repo: pygit2.Repository, raw: str) -> str:
        """A backup ref for the edits' commit; the same edits on the same base reuse theirs (retries)."""
        commit = cast(pygit2.Commit, repo[raw])
        prefix = BACKUP_PREFIX + "workdir/"
        for name in repo.references:
            if name.startswith(prefix):
                kept = repo.get(repo.references[name].resolve().target)
                if (
                    isinstance(kept, pygit2.Commit)
                    and kept.tree_id == commit.tree_id
                    and kept.parent_ids == commit.parent_ids
                ):
                    return str(name)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return self._keep_ref_locked(repo, f"workdir/{stamp}", raw)

    def _validated_index(self, repo: pygit2.Repository, index: pygit2.Index) -> FlatTree:
        """The index as a flat tree, after checking every entry against the store's rules."""
        flat: FlatTree = {}
        odb = repo.odb
        for entry in index:
            path = validate_path(entry.path)
            try:
                mode = FileMode.from_git_mode(entry.mode)
            except ValueError:
                raise InvalidPath(
                    f"{path!r} in the working directory is not a file or symlink (nested repository?)"
                ) from None
            size = odb.read_header(entry.id)[1]
            if size > self.max_file_size:
                raise FileTooLarge(f"{path!r} is {size} bytes; the limit is {self.max_file_size} bytes")
            if mode is FileMode.SYMLINK:
                target = cast(pygit2.Blob, repo[entry.id]).data
                validate_symlink_target(path, _decode_target(path, target))
            flat[path] = TreeItem(mode, str(entry.id))
        check_no_file_directory_clash(flat)
        return flat


# --- module helpers (pygit2 <-> domain) ------------------------------------------------------------------


def filesystem_folds_case(directory: Path) -> bool:
    """Whether names differing only in case are one file in `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(prefix=".ghsync-case-probe-", dir=directory) as probe:
        name = Path(probe.name)
        return (name.parent / name.name.upper()).exists()


def _decode_target(path: str, content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath(f"symlink {path!r} target is not valid UTF-8") from None


def _ref_target(repo: pygit2.Repository, name: str) -> str | None:
    ref = repo.references.get(name)
    if ref is None:
        return None
    return str(ref.resolve().target)


def _head_sha(repo: pygit2.Repository) -> str | None:
    return _ref_target(repo, BRANCH)


def _check_author(author: Author) -> None:
    # libgit2 accepts some of these (a newline in an email) but then cannot read the commit back, which
    # would break the branch for good, so the rules are checked here, before anything is written.
    for what, value in (("name", author.name), ("email", author.email)):
        if not value.strip():
            raise InvalidInput(f"author {what} is empty", code="invalid_author")
        if len(value) > 256:
            raise InvalidInput(f"author {what} is longer than 256 characters", code="invalid_author")
        if "<" in value or ">" in value or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
            raise InvalidInput(
                f"author {what} {value!r} may not contain '<', '>' or control characters",
                code="invalid_author",
            )


def _remove_stale_git_locks(git_dir: Path) -> None:
    """Remove lock files libgit2 left behind when a writer was killed (caller holds the project lock).

    Every writer of this repository holds the project lock, so a lock file seen under it belongs to a
    dead process; the age check leaves alone a git command someone runs by hand right now.
    """
    now = time.time()
    candidates = [
        git_dir / n for n in ("index.lock", "HEAD.lock", "packed-refs.lock", "refs/heads/main.lock")
    ]
    candidates += (git_dir / "refs" / "tags").glob("*.lock")
    for path in candidates:
        try:
            if now - path.stat().st_mtime > _STALE_GIT_LOCK_SECONDS:
                path.unlink()
        except FileNotFoundError:
            pass


def _check_head(repo: pygit2.Repository, expected: str | None) -> None:
    current = _head_sha(repo)
    if current != expected:
        raise _HeadMoved(f"branch moved from {expected} to {current} meanwhile")


def _move_branch(repo: pygit2.Repository, *, expected: str | None, new: str, number: int) -> None:
    """Compare-and-swap the branch from `expected` to `new` (caller holds the project lock)."""
    _check_head(repo, expected)
    oid = pygit2.Oid(hex=new)
    # Tag first, so a visible head always has its tag; a leftover tag from a crashed attempt that never
    # moved the branch points at an unreachable commit, so overwriting it is safe.
    repo.references.create(tag_name(number), oid, force=True)
    repo.references.create(BRANCH, oid, force=True)


def _number_of(repo: pygit2.Repository, commit_sha: str) -> int:
    commit = cast(pygit2.Commit, repo[commit_sha])
    _, trailers = parse_message(commit.message)
    number = trailers.get(TRAILER_NUMBER, "")
    if number.isdigit():
        return int(number)
    # A commit we did not write: count its first-parent history instead.
    walker = repo.walk(commit.id, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    return sum(1 for _ in walker)


def _version_info(commit: pygit2.Commit, *, fallback_number: int) -> VersionInfo:
    message, trailers = parse_message(commit.message)
    number_text = trailers.get(TRAILER_NUMBER, "")
    source = trailers.get(TRAILER_SOURCE, "local")
    author = commit.author
    return VersionInfo(
        id=trailers.get(TRAILER_VERSION, str(commit.id)),
        number=int(number_text) if number_text.isdigit() else fallback_number,
        commit_sha=str(commit.id),
        tree_sha=str(commit.tree_id),
        message=message,
        source="github" if source == "github" else "local",
        author=Author(name=author.name, email=author.email),
        created_at=datetime.fromtimestamp(commit.commit_time, tz=UTC),
    )


def _flatten(tree: pygit2.Tree) -> FlatTree:
    """The tree as `path -> TreeItem`, recursively, in git's order (which is the paths' sorted order)."""
    return {path: TreeItem(mode, sha) for path, mode, sha in _walk(tree)}


def _walk(tree: pygit2.Tree) -> Iterator[tuple[str, FileMode, str]]:
    """Every file of the tree as `(path, mode, sha)`, depth first in git's order (the paths' sorted one).

    A walk of the tree objects (each read in C), with a stack rather than recursion since a tree from
    GitHub may nest deeper than Python's recursion limit: about 3x faster than reading it into an
    in-memory index, and a first import reads its 10,000-file tree more than once. libgit2 gives the
    normalised mode, so a non-canonical mode such as 100664 reads as 100644 (and is checked like any
    file); such a tree never rebuilds to its own SHA, which is how `write_tree` catches a GitHub tree we
    cannot store. Submodules (commit entries) are left out: they cannot be created through the store.
    """
    modes = _FILE_MODES
    stack: list[tuple[str, Iterator[pygit2.Object]]] = [("", iter(tree))]
    while stack:
        prefix, entries = stack[-1]
        for entry in entries:
            kind = entry.type_str
            if kind == "tree":
                stack.append((f"{prefix}{entry.name}/", iter(cast(pygit2.Tree, entry))))
                break  # depth first, so the paths come out sorted
            mode = modes.get(entry.filemode)
            if mode is not None and kind == "blob":
                yield f"{prefix}{entry.name}", mode, str(entry.id)
        else:
            stack.pop()


def _write_tree(
    repo: pygit2.Repository, base: pygit2.Tree | None, changes: Mapping[str, TreeItem | None]
) -> pygit2.Oid:
    """Write the tree `base` becomes with `changes` applied (None deletes), touching only changed subtrees.

    Unchanged directories keep their tree objects, so the cost follows the size of the change, not of
    the project. An empty result is git's empty tree.
    """
    oid = _write_subtree(repo, base, changes)
    return oid if oid is not None else repo.TreeBuilder().write()


def _write_subtree(
    repo: pygit2.Repository, base: pygit2.Tree | None, changes: Mapping[str, TreeItem | None]
) -> pygit2.Oid | None:
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    here: dict[str, TreeItem | None] = {}
    below: dict[str, dict[str, TreeItem | None]] = {}
    for path, item in changes.items():
        name, slash, rest = path.partition("/")
        if slash:
            below.setdefault(name, {})[rest] = item
        else:
            here[name] = item
    # Order matters when a file becomes a directory or back: drop files first, then rebuild the
    # subdirectories (an emptied one disappears), then add files.
    for name, item in here.items():
        if item is None and builder.get(name) is not None:
            builder.remove(name)
    for name, sub_changes in below.items():
        existing = builder.get(name)
        subtree = existing if isinstance(existing, pygit2.Tree) else None
        sub_oid = _write_subtree(repo, subtree, sub_changes)
        if sub_oid is None:
            if existing is not None:
                builder.remove(name)
        else:
            builder.insert(name, sub_oid, pygit2.enums.FileMode.TREE)
    for name, item in here.items():
        if item is not None:
            builder.insert(name, pygit2.Oid(hex=item.sha), pygit2.enums.FileMode(item.mode.git_mode))
    if len(builder) == 0:
        return None
    return builder.write()


def _tree_delta(old: pygit2.Tree, new: pygit2.Tree) -> list[TreeChange]:
    """The file-level changes between two trees, renames found, without computing any patch."""
    # INCLUDE_TYPECHANGE: a file turning into a symlink (or back) is one modified path, not a delete + add.
    diff = old.diff_to_tree(new, flags=DiffOption.INCLUDE_TYPECHANGE)
    diff.find_similar(flags=DiffFind.FIND_RENAMES)
    changes: list[TreeChange] = []
    for delta in diff.deltas:
        status = {
            DeltaStatus.ADDED: DiffStatus.ADDED,
            DeltaStatus.DELETED: DiffStatus.DELETED,
            DeltaStatus.RENAMED: DiffStatus.RENAMED,
        }.get(delta.status, DiffStatus.MODIFIED)
        old_file, new_file = delta.old_file, delta.new_file
        has_old, has_new = status is not DiffStatus.ADDED, status is not DiffStatus.DELETED
        try:
            old_mode = FileMode.from_git_mode(old_file.mode) if has_old else None
            new_mode = FileMode.from_git_mode(new_file.mode) if has_new else None
        except ValueError:
            continue  # a submodule: not a project file
        changes.append(
            TreeChange(
                status=status,
                path=new_file.path if has_new else old_file.path,
                old_path=old_file.path if status is DiffStatus.RENAMED else None,
                old_sha=str(old_file.id) if has_old else None,
                new_sha=str(new_file.id) if has_new else None,
                old_mode=old_mode,
                new_mode=new_mode,
            )
        )
    return sorted(changes, key=lambda change: change.path)


def _signature(identity: GitIdentity) -> pygit2.Signature:
    """A pygit2 signature keeping the identity's time and UTC offset exactly (both are in the commit SHA)."""
    _check_author(Author(name=identity.name, email=identity.email))
    offset = identity.time.utcoffset()
    if offset is None:
        raise InvalidInput(f"the time of {identity.name!r} needs a UTC offset", code="invalid_author")
    return pygit2.Signature(
        identity.name, identity.email, int(identity.time.timestamp()), int(offset.total_seconds()) // 60
    )


def _ref_parent_taken(repo: pygit2.Repository, full: str) -> bool:
    """Whether a ref exists at one of the directories `full` needs (`a` blocks `a/b`)."""
    parts = full.split("/")
    return any(("/".join(parts[:i])) in repo.references for i in range(3, len(parts)))


def _ref_prefix_taken(repo: pygit2.Repository, full: str) -> bool:
    """Whether a ref named `full` cannot be created because refs below it exist (`full/x`)."""
    below = full + "/"
    return any(name.startswith(below) for name in repo.references)


def _empty_tree(repo: pygit2.Repository) -> pygit2.Tree:
    return cast(pygit2.Tree, repo[repo.TreeBuilder().write()])


def _file_diff(patch: pygit2.Patch) -> FileDiff:
    delta = patch.delta
    status = {
        DeltaStatus.ADDED: DiffStatus.ADDED,
        DeltaStatus.DELETED: DiffStatus.DELETED,
        DeltaStatus.RENAMED: DiffStatus.RENAMED,
    }.get(delta.status, DiffStatus.MODIFIED)  # MODIFIED and TYPECHANGE
    old, new = delta.old_file, delta.new_file
    binary = bool(delta.is_binary)
    _, insertions, deletions = (0, 0, 0) if binary else patch.line_stats
    has_old = status is not DiffStatus.ADDED
    has_new = status is not DiffStatus.DELETED
    return FileDiff(
        status=status,
        path=new.path if has_new else old.path,
        old_path=old.path if status is DiffStatus.RENAMED else None,
        old_sha=str(old.id) if has_old else None,
        new_sha=str(new.id) if has_new else None,
        old_mode=FileMode.from_git_mode(old.mode) if has_old else None,
        new_mode=FileMode.from_git_mode(new.mode) if has_new else None,
        binary=binary,
        insertions=insertions,
        deletions=deletions,
    )
