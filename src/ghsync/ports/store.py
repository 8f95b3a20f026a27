"""The VersionStore port: a project's local store of versions, trees and blobs, and its working directory.

Every method takes the project id first. SHAs are full 40-character hex git SHAs, identical to GitHub's
for the same content, so the sync engine compares and moves trees by SHA and only missing blobs travel.
A tree argument of None means the empty tree (a side with no files).

Adapters: `GitStore` (pygit2, `ghsync.adapters.store`). The contract suite is
`tests/contract/test_version_store_contract.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import EllipsisType
from typing import Protocol

from ghsync.domain.models import Author, DiffStats, FileDiff, FileEntry, FileWrite, VersionInfo, VersionSource
from ghsync.domain.trees import GitIdentity, MergeResult, TreeChange, TreeEdit, TreeEntry


class VersionStore(Protocol):
    # --- projects ----------------------------------------------------------------------------------------

    def init_project(self, project_id: str) -> None:
        """Create the project's store and working directory; does nothing if they exist."""

    def exists(self, project_id: str) -> bool:
        """Whether the project has a store."""

    # --- versions: reading -------------------------------------------------------------------------------

    def head(self, project_id: str) -> str | None:
        """The commit SHA of the newest version, or None before the first version."""

    def list_versions(self, project_id: str) -> list[VersionInfo]:
        """Every version, newest first."""

    def iter_versions(self, project_id: str) -> Iterator[VersionInfo]:
        """`list_versions` as an iterator that reads only as far as it is consumed."""

    def versions_after(self, project_id: str, number: int) -> list[VersionInfo]:
        """Versions numbered above `number`, newest first."""

    def get_version(self, project_id: str, commit_sha: str) -> VersionInfo:
        """The version whose commit is `commit_sha`; `NotFound` unless it is one of the project's versions."""

    def get_version_by_number(self, project_id: str, number: int) -> VersionInfo:
        """The version numbered `number`; `NotFound` if there is none."""

    def tree_sha(self, project_id: str, commit_sha: str) -> str:
        """The root tree SHA of a commit in the store (a version or an imported commit)."""

    def list_files(self, project_id: str, commit_sha: str) -> list[FileEntry]:
        """Every file of the version, recursively, sorted by path."""

    def read_file(self, project_id: str, commit_sha: str, path: str) -> bytes:
        """The bytes of one file of the version (a symlink's target for a symlink)."""

    def diff(self, project_id: str, from_sha: str | None, to_sha: str) -> list[FileDiff]:
        """What changed between two versions (None: from nothing), with line counts and renames."""

    def diff_stats(self, project_id: str, from_sha: str | None, to_sha: str) -> DiffStats:
        """`diff`'s totals alone (what an operation records), without a list of every file."""

    def is_dirty(self, project_id: str) -> bool:
        """Whether the working directory holds edits not recorded in the version it was checked out from."""

    # --- versions: writing -------------------------------------------------------------------------------

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
        """A new version: the head's files plus `writes` minus `deletes`, checked out on disk.

        Uncommitted edits are snapshotted as their own version first. `expected_head` (None: no version
        yet) makes the branch update a compare-and-swap raising `ConcurrentUpdate`; `...` re-applies the
        change on whatever the head is.
        """

    def snapshot(
        self, project_id: str, *, version_id: str, message: str, author: Author | None = None
    ) -> VersionInfo | None:
        """Record the working directory's edits as a new version; None when there are none."""

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
        """A new version whose files are tree `tree_sha`, published on the branch by compare-and-swap.

        `parents[0]` must be `expected_head` (no parents when it is None: the first version), so the
        versions stay one first-parent line; further parents (say the GitHub commit merged) are kept
        reachable. The version is numbered and tagged like any other, its message carries our trailers
        plus `trailers`. `ConcurrentUpdate` if the head is not `expected_head`, and then nothing changed.
        The working directory is not touched: `checkout` brings it to the new version.
        """

    def checkout(self, project_id: str, commit_sha: str) -> VersionInfo | None:
        """Bring the working directory to version `commit_sha` (normally the head, after `commit_tree`).

        Uncommitted edits are never lost: they are first recorded as a version on top of the head (merged
        with what the head changed since the working directory was checked out); the snapshot version is
        returned, and the working directory then holds it. `Conflict` if the edits and the head's changes
        touch the same lines: the edits stay on disk and are also kept under a backup ref.
        """

    # --- objects -----------------------------------------------------------------------------------------

    def has_objects(self, project_id: str, shas: Iterable[str]) -> set[str]:
        """Which of `shas` the object database holds (any object type)."""

    def read_blob(self, project_id: str, sha: str) -> bytes:
        """The content of blob `sha`; `NotFound` if the store lacks it."""

    def write_blobs(self, project_id: str, contents: Sequence[bytes]) -> list[str]:
        """Store blobs and return their SHAs, in order; `FileTooLarge` over the block limit."""

    def write_tree(self, project_id: str, entries: Iterable[TreeEntry]) -> str:
        """Write the tree holding exactly `entries` (every file, with full paths) and return its SHA.

        For importing a tree read from GitHub: the SHA is GitHub's when the entries are. Every blob must
        already be in the store; paths are validated like `build_tree`'s.
        """

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
        """Write a commit object exactly as given (no branch moves) and return its SHA.

        For importing a commit read from GitHub: with GitHub's exact tree, parents, message (byte for
        byte), people, times with their UTC offsets and signature, the SHA is GitHub's. With
        `expected_sha`, a different result raises `InvalidInput(code="sha_mismatch")`.
        """

    # --- trees -------------------------------------------------------------------------------------------

    def flat_tree(self, project_id: str, tree_sha: str | None) -> dict[str, TreeEntry]:
        """Every file of the tree by path, recursively (None: the empty tree)."""

    def tree_delta(self, project_id: str, a_tree: str | None, b_tree: str | None) -> list[TreeChange]:
        """What turns tree `a_tree` into `b_tree`: added, modified, deleted and renamed paths, sorted by path.

        SHAs and modes only, no patches. A mode change alone is `modified`.
        """

    def build_tree(self, project_id: str, base_tree: str | None, edits: Sequence[TreeEdit]) -> str:
        """The tree `base_tree` becomes with `edits` applied (a sha of None deletes a file or directory).

        Paths and symlink targets are validated, blobs must be in the store, a path that would be both a
        file and a directory is refused (`InvalidInput(code="path_conflict")`), emptied directories go.
        """

    def merge_trees(
        self, project_id: str, base: str | None, ours: str | None, theirs: str | None
    ) -> MergeResult:
        """Three-way merge of trees, with text merge of files both sides changed.

        Either the merged tree (clean) or every conflicting path with its kind; never a partial merge.
        """

    # --- refs --------------------------------------------------------------------------------------------

    def keep_ref(self, project_id: str, name: str, sha: str) -> str:
        """Keep commit `sha` reachable under `refs/ghsync/backup/<name>`; returns the full ref name.

        An existing ref with the same SHA is reused; one with a different SHA is never overwritten: a
        unique name (`<name>-2`, ...) is chosen instead.
        """

    def list_refs(self, project_id: str, prefix: str) -> dict[str, str]:
        """Every ref whose name starts with `prefix` (e.g. `refs/ghsync/backup/`), with its target."""
