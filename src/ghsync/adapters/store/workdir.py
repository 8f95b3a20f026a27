"""A project's working directory: materialising a version on disk, and recording the edits made there.

The working directory is the checkout of exactly one commit, the one HEAD names. Normally HEAD is attached
to the branch, so it follows every version `create_version` checks out. When a version is committed
without touching the disk (`commit_tree`), HEAD is first *pinned*: detached at the commit the disk still
holds (or at an empty commit before the first version). git's status then keeps comparing the disk with
what was really checked out there, so the user's uncommitted edits are never confused with the branch's
new changes, and a checkout re-attaches HEAD once the disk holds the branch's head.

This component knows nothing of versions, numbering or the store's limits: `GitStore` decides, this
moves files. Every method is called with the project lock held.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final, cast

import pygit2
from pygit2.enums import CheckoutStrategy, DeltaStatus

from ghsync.domain.errors import Conflict, InvalidPath

# Fixed identity and time, so the pin for "nothing checked out yet" is the same object in every project.
_EMPTY_PIN_MESSAGE: Final = "ghsync: nothing checked out yet\n"


class WorkdirChanged(Exception):
    """The working directory changed between recording it and checking out over it."""


class Workdir:
    """The working directory of one repository (`repo.workdir`), and HEAD: the commit it holds."""

    def __init__(self, repo: pygit2.Repository, branch: str) -> None:
        self.repo = repo
        self.branch = branch
        self.path = Path(repo.workdir)

    def checked_out(self) -> str | None:
        """The commit the disk holds (HEAD's), or None before anything was checked out."""
        try:
            return str(self.repo.head.target)
        except pygit2.GitError:
            return None  # an unborn branch: nothing checked out

    def is_pinned(self) -> bool:
        """Whether HEAD is detached: the branch may have moved on without the disk."""
        return bool(self.repo.head_is_detached)

    def has_edits(self) -> bool:
        """Whether the disk differs from the checked-out commit (`.gitignore`d files aside)."""
        return bool(self.repo.status(untracked_files="all", ignored=False))

    def pin(self) -> None:
        """Detach HEAD at the commit the disk holds, before the branch moves without a checkout."""
        if self.is_pinned():
            return
        current = self.checked_out()
        if current is None:
            # Nothing checked out yet: pin an empty commit, so the status compares the disk with nothing.
            signature = pygit2.Signature("ghsync", "ghsync@localhost", 0, 0)
            empty = self.repo.TreeBuilder().write()
            current = str(self.repo.create_commit(None, signature, signature, _EMPTY_PIN_MESSAGE, empty, []))
        self.repo.set_head(pygit2.Oid(hex=current))

    def point_at(self, commit_sha: str, *, branch_head: str | None) -> None:
        """Record that the disk holds `commit_sha`: HEAD attached if it is the branch head, else pinned."""
        if commit_sha == branch_head:
            self.repo.set_head(self.branch)
        else:
            self.repo.set_head(pygit2.Oid(hex=commit_sha))

    def record(self) -> pygit2.Index:
        """The index with the disk's files recorded (not written yet): additions, edits and removals.

        Symlinks are recorded as links, `.gitignore`d files are not. The caller validates the entries.
        """
        index: pygit2.Index = self.repo.index
        index.read(False)
        try:
            index.add_all()  # new and modified files (honouring .gitignore); symlinks are added as links
        except pygit2.GitError as exc:
            # libgit2 refuses e.g. a nested repository ("invalid path: 'sub/'"): say so, keep the cause.
            raise InvalidPath(f"the working directory cannot be recorded: {exc}") from None
        for entry in list(index):
            # add_all does not drop files that disappeared (or turned into directories).
            try:
                is_gone = stat.S_ISDIR(os.lstat(self.path / entry.path).st_mode)
            except FileNotFoundError:
                is_gone = True
            if is_gone:
                index.remove(entry.path)
        return index

    def materialise(self, base: pygit2.Tree, new: pygit2.Tree) -> None:
        """Update the disk from the checked-out tree `base` to tree `new`.

        Refuses to overwrite anything not recorded in the checked-out commit: `WorkdirChanged` when the
        disk has edits (record them and retry), `Conflict` when something else blocks the checkout.
        """
        # The files to write are what libgit2's tree diff (in C) reports as not deleted. The symlink
        # check depends only on a file's directory, so each directory is checked once: a first import
        # of 10,000 files in 100 directories costs 100 checks, not 10,000.
        checked: set[str] = set()
        for delta in base.diff_to_tree(new).deltas:
            if delta.status == DeltaStatus.DELETED:
                continue
            path = delta.new_file.path
            directory = path.rpartition("/")[0]
            if directory not in checked:
                checked.add(directory)
                _refuse_untracked_symlink_parents(self.path, path, base)
        try:
            # SAFE (not FORCE): libgit2 refuses to overwrite anything that differs from the baseline (the
            # checked-out commit), and DONT_OVERWRITE_IGNORED keeps it off ignored files, so nothing
            # unrecorded is ever clobbered. It also updates the index, our record of what the disk holds.
            checkout = cast(Callable[..., None], self.repo.checkout_tree)  # untyped in pygit2's stubs
            checkout(new, strategy=CheckoutStrategy.SAFE | CheckoutStrategy.DONT_OVERWRITE_IGNORED)
        except pygit2.GitError as exc:
            if self.has_edits():
                raise WorkdirChanged() from exc
            raise Conflict(f"the working directory blocks the new version: {exc}") from None


def _refuse_untracked_symlink_parents(workdir: Path, path: str, base: pygit2.Tree) -> None:
    """Refuse to write `path` if one of its parent directories is a symlink the store does not know.

    A tracked symlink on the way is fine: the new tree cannot hold both it and `path`, so the checkout
    removes it first. An untracked one (made by hand, or `.gitignore`d) could lead anywhere.
    """
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        parent = "/".join(parts[:i])
        try:
            mode = os.lstat(workdir / parent).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode) and not _holds_file(base, parent):
            raise InvalidPath(
                f"cannot write {path!r}: {parent!r} in the working directory is a symlink "
                "that is not part of the project"
            )
        if not stat.S_ISDIR(mode):
            return  # a tracked file or symlink the checkout replaces with a directory; nothing below it


def _holds_file(tree: pygit2.Tree, path: str) -> bool:
    """Whether `path` is a file or symlink of `tree` (not a directory, not a submodule)."""
    try:
        return isinstance(tree[path], pygit2.Blob)
    except KeyError:
        return False
