"""Trees as the sync engine sees them: files by path with mode and blob SHA, changes between trees,
edits that build a new tree, and the outcome of a three-way merge (pure, no I/O).

Blob and tree SHAs are git's, so they are identical locally and on GitHub: "changed" is always a SHA
comparison, and only blobs the other side lacks ever travel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ghsync.domain.models import DiffStatus, FileMode

# git's empty tree: the tree of a project (or repository) with no files.
EMPTY_TREE_SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file of a tree: where it is, its mode, and its git blob SHA."""

    path: str
    mode: FileMode
    sha: str


# A flat tree: every file of a tree by path (directories are implied by the paths).
FlatTree = Mapping[str, TreeEntry]


@dataclass(frozen=True, slots=True)
class TreeChange:
    """One path that differs between two trees (no patch: SHAs and modes only).

    `old_*` are None for an added file, `new_*` for a deleted one; a rename has both paths.
    A mode change alone (the executable bit) is `modified`.
    """

    status: DiffStatus
    path: str
    old_path: str | None = None
    old_sha: str | None = None
    new_sha: str | None = None
    old_mode: FileMode | None = None
    new_mode: FileMode | None = None


@dataclass(frozen=True, slots=True)
class TreeEdit:
    """One edit to apply to a tree: put blob `sha` at `path` with `mode`, or delete `path` (sha None)."""

    path: str
    sha: str | None
    mode: FileMode = FileMode.REGULAR

    @property
    def is_delete(self) -> bool:
        return self.sha is None


class MergeConflictKind(StrEnum):
    """Why a path cannot be merged on its own (the conflict issue's cases)."""

    CONTENT = "content"  # both sides changed the file differently and the text merge overlaps
    MODIFY_DELETE = "modify_delete"  # one side changed it, the other deleted it
    ADD_ADD = "add_add"  # both sides added it with different contents
    FILE_DIRECTORY = "file_directory"  # one side has a file where the other has a directory
    RENAME = "rename"  # renamed on one side while edited or renamed differently on the other
    MODE = "mode"  # both changed the mode (or type) differently
    BINARY = "binary"  # both changed a binary file differently


@dataclass(frozen=True, slots=True)
class MergeConflict:
    """One path that needs a person (or a strategy): its kind and each side's blob (None if absent)."""

    path: str
    kind: MergeConflictKind
    base_sha: str | None = None
    ours_sha: str | None = None
    theirs_sha: str | None = None


@dataclass(frozen=True, slots=True)
class MergeResult:
    """A three-way merge: the merged tree's SHA when clean, else the conflicting paths (never both)."""

    tree_sha: str | None
    conflicts: tuple[MergeConflict, ...] = ()

    @property
    def clean(self) -> bool:
        return self.tree_sha is not None and not self.conflicts


@dataclass(frozen=True, slots=True)
class GitIdentity:
    """A commit's author or committer exactly as git records it: name, email, and the time with its offset.

    The UTC offset is part of the commit object, so it must be kept to rebuild a commit with the same SHA
    (GitHub's REST API reports dates in UTC, which reproduces only commits made at offset +00:00:
    https://docs.github.com/en/rest/git/commits#get-a-commit-object).
    """

    name: str
    email: str
    time: datetime  # timezone-aware
