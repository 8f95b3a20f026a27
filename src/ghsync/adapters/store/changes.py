"""Pure helpers of the local store: applying a change set to a flat tree, commit trailers, and the kind
of each conflict a three-way merge reports.

Kept free of pygit2 so they are easy to test and to reuse.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from ghsync.domain.errors import InvalidInput
from ghsync.domain.models import FileMode
from ghsync.domain.trees import MergeConflict, MergeConflictKind


class TreeItem(NamedTuple):
    """One file of a flat tree: its mode and its git blob SHA."""

    mode: FileMode
    sha: str


FlatTree = dict[str, TreeItem]

TRAILER_VERSION = "Ghsync-Version"
TRAILER_SOURCE = "Ghsync-Source"
TRAILER_NUMBER = "Ghsync-Number"

_TRAILER_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*): (.*)$")


def apply_changes(
    base: Mapping[str, TreeItem],
    writes: Sequence[tuple[str, TreeItem]],
    deletes: Sequence[str],
    *,
    replace_all: bool,
) -> FlatTree:
    """Return the flat tree `base` becomes after `writes` and `deletes` (paths already validated).

    Without `replace_all` files not named stay as they are; with it the result holds exactly `writes`.
    A delete must name a file or a directory of `base` (a directory removes everything under it, and
    may be replaced by a file of the same name in the same change set).
    A path that would be both a file and a directory (`a` and `a/b`, including a symlink `a`) is refused:
    such a tree cannot exist in git, and writing `a/b` through a symlink `a` would escape the project.
    """
    written: set[str] = set()
    for path, _ in writes:
        if path in written:
            raise InvalidInput(f"path {path!r} is written twice in one version", code="duplicate_path")
        written.add(path)

    result: FlatTree = {} if replace_all else dict(base)
    for path in deletes:
        if path in base:
            if path in written:
                raise InvalidInput(f"path {path!r} is both written and deleted", code="duplicate_path")
            result.pop(path, None)
            continue
        # A directory: deleting it while writing a file of the same name turns it into that file.
        prefix = path + "/"
        under = [p for p in base if p.startswith(prefix)]
        if not under:
            raise InvalidInput(f"cannot delete {path!r}: no such file or directory", code="no_such_path")
        for p in under:
            result.pop(p, None)

    for path, item in writes:
        result[path] = item
    check_no_file_directory_clash(result)
    return result


def tree_changes(old: Mapping[str, TreeItem], new: Mapping[str, TreeItem]) -> dict[str, TreeItem | None]:
    """What turns `old` into `new`: changed or added paths with their item, removed paths with None."""
    changes: dict[str, TreeItem | None] = {p: item for p, item in new.items() if old.get(p) != item}
    changes.update((p, None) for p in old if p not in new)
    return changes


def check_no_file_directory_clash(tree: Mapping[str, TreeItem]) -> None:
    """Raise `InvalidInput` if some path of `tree` is also a parent directory of another path."""
    for path in tree:
        cut = path.rfind("/")
        while cut > 0:
            parent = path[:cut]
            if parent in tree:
                kind = "a symlink" if tree[parent].mode is FileMode.SYMLINK else "a file"
                raise InvalidInput(
                    f"{parent!r} is {kind}, so {path!r} cannot be stored under it "
                    f"(delete {parent!r} in the same version to turn it into a directory)",
                    code="path_conflict",
                )
            cut = path.rfind("/", 0, cut)


def format_message(message: str, trailers: Mapping[str, str]) -> str:
    """The full commit message: the user's message, a blank line, then one `Key: value` line per trailer."""
    body = message.rstrip()
    block = "\n".join(f"{key}: {value}" for key, value in trailers.items())
    return f"{body}\n\n{block}\n" if body else f"{block}\n"


def parse_message(raw: str) -> tuple[str, dict[str, str]]:
    """Split a commit message into the user's message and our trailers (the last paragraph).

    The last paragraph counts as trailers only if every line is `Key: value` and one key is ours, so a
    message that merely ends in `Signed-off-by: ...` keeps it, and foreign commits parse to no trailers.
    """
    text = raw.rstrip()
    cut = text.rfind("\n\n")
    body, last = (text[:cut], text[cut + 2 :]) if cut >= 0 else ("", text)
    trailers: dict[str, str] = {}
    for line in last.split("\n"):
        match = _TRAILER_LINE.match(line)
        if match is None:
            return text, {}
        trailers[match.group(1)] = match.group(2)
    if not any(key.startswith("Ghsync-") for key in trailers):
        return text, {}
    return body.rstrip(), trailers


class ConflictSide(NamedTuple):
    """One side of a path the three-way merge could not resolve: its path, git mode, blob and kind."""

    path: str
    mode: int
    sha: str
    binary: bool


def classify_conflict(
    ancestor: ConflictSide | None,
    ours: ConflictSide | None,
    theirs: ConflictSide | None,
    *,
    renamed: Collection[str],
    ours_files: Collection[str],
    theirs_files: Collection[str],
) -> MergeConflict:
    """The kind of one conflict the merge reported (the entries of one path, as libgit2 lists them).

    `renamed` holds every path (old and new) that either side renamed; `ours_files` and `theirs_files`
    are every file path of each side, to tell a file/directory clash from a plain deletion.
    """
    present = [side for side in (ancestor, ours, theirs) if side is not None]
    path = (ours or theirs or present[0]).path
    kind: MergeConflictKind
    if any(side.path in renamed for side in present):
        kind = MergeConflictKind.RENAME
    elif ours is None or theirs is None:
        kept, other_files = (ours, theirs_files) if ours is not None else (theirs, ours_files)
        if kept is not None and _clashes_with_directory(kept.path, other_files):
            kind = MergeConflictKind.FILE_DIRECTORY
        elif ancestor is not None and kept is not None:
            kind = MergeConflictKind.MODIFY_DELETE
        else:
            kind = MergeConflictKind.ADD_ADD
    elif ancestor is None:
        kind = MergeConflictKind.ADD_ADD
    elif ours.mode != theirs.mode and ancestor.mode not in (ours.mode, theirs.mode):
        kind = MergeConflictKind.MODE
    elif ours.binary or theirs.binary or ancestor.binary:
        kind = MergeConflictKind.BINARY
    else:
        kind = MergeConflictKind.CONTENT
    return MergeConflict(
        path=path,
        kind=kind,
        base_sha=ancestor.sha if ancestor else None,
        ours_sha=ours.sha if ours else None,
        theirs_sha=theirs.sha if theirs else None,
    )


def _clashes_with_directory(path: str, other_files: Collection[str]) -> bool:
    """Whether the other side has a directory at `path`, or a file where `path` needs a directory."""
    prefix = path + "/"
    if any(other.startswith(prefix) for other in other_files):
        return True
    cut = path.rfind("/")
    while cut > 0:
        if path[:cut] in other_files:
            return True
        cut = path.rfind("/", 0, cut)
    return False


_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


def check_extra_trailers(trailers: Mapping[str, str]) -> None:
    """Refuse trailers that would break the message's trailer block or replace one of ours."""
    for key, value in trailers.items():
        if not _TRAILER_KEY.match(key):
            raise InvalidInput(f"trailer key {key!r} must be letters, digits and '-'", code="invalid_trailer")
        if key in (TRAILER_VERSION, TRAILER_SOURCE, TRAILER_NUMBER):
            raise InvalidInput(f"trailer {key!r} is set by the store", code="invalid_trailer")
        if not value or value != value.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise InvalidInput(
                f"trailer {key!r} needs a one-line value without control characters", code="invalid_trailer"
            )
