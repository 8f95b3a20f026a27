"""Pure helpers of the local store: applying a change set to a flat tree, and the commit trailers.

Kept free of pygit2 so they are easy to test and to reuse (a later `merge_trees` works on the same flat
`path -> TreeItem` maps).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from ghsync.domain.errors import InvalidInput
from ghsync.domain.models import FileMode


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
