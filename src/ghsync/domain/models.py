"""Domain value types shared by every layer: files, authors, versions and diffs (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

# --- files -----------------------------------------------------------------------------------------------


class FileMode(StrEnum):
    """The three git file modes a project may hold; the value is the mode as git (and GitHub) spell it."""

    REGULAR = "100644"
    EXECUTABLE = "100755"
    SYMLINK = "120000"

    @property
    def git_mode(self) -> int:
        """The numeric mode libgit2 uses (e.g. 0o100644)."""
        return int(self.value, 8)

    @classmethod
    def from_git_mode(cls, mode: int) -> FileMode:
        """Map a numeric git mode back; anything else (submodules, trees) is not a project file."""
        try:
            return cls(f"{mode:o}")
        except ValueError:
            raise ValueError(f"unsupported git file mode {mode:o}") from None


@dataclass(frozen=True, slots=True)
class FileWrite:
    """One file to store in a new version; for a symlink `content` is the link target."""

    path: str
    content: bytes
    mode: FileMode = FileMode.REGULAR


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a stored version; `sha` is the git blob SHA (identical on GitHub)."""

    path: str
    mode: FileMode
    size: int
    sha: str


# --- versions --------------------------------------------------------------------------------------------

VersionSource = Literal["local", "github"]


@dataclass(frozen=True, slots=True)
class Author:
    """Who made a change, as recorded in the commit."""

    name: str
    email: str


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A version of a project: one commit on the local store's branch, numbered from 1 without gaps."""

    id: str
    number: int
    commit_sha: str
    tree_sha: str
    message: str
    source: VersionSource
    author: Author
    created_at: datetime


# --- diffs -----------------------------------------------------------------------------------------------


class DiffStatus(StrEnum):
    """How a path changed between two versions (a mode or type change counts as `modified`)."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"


@dataclass(frozen=True, slots=True)
class DiffStats:
    """The totals of a diff between two versions: files changed, lines added, lines removed."""

    files: int
    insertions: int
    deletions: int


@dataclass(frozen=True, slots=True)
class FileDiff:
    """One changed path between two versions; SHAs and modes are None on the side where it is absent."""

    status: DiffStatus
    path: str
    old_path: str | None
    old_sha: str | None
    new_sha: str | None
    old_mode: FileMode | None
    new_mode: FileMode | None
    binary: bool
    insertions: int
    deletions: int
