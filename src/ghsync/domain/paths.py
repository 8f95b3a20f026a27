"""Path rules for project files: what a repository path and a symlink target may be (pure, no I/O).

Every path that reaches the local store or a working directory goes through `validate_path`, and every
symlink target through `validate_symlink_target`, so nothing can name or reach anything outside the
project's working directory, or its `.git` directory. The rules are deliberately stricter than git's own:
a path has exactly one accepted spelling (no `./`, no `//`, no trailing `/`), so the same file can never
appear under two names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from ghsync.domain.errors import InvalidPath

# Linux limits (PATH_MAX, NAME_MAX), in UTF-8 bytes; GitHub accepts at least as much.
MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
MAX_SYMLINK_TARGET_BYTES = 4096
# Directories a path may nest (segments, the file included). Ours, not git's: it bounds the recursion of
# tree building and the nesting of a working directory; real projects stay far below it.
MAX_PATH_DEPTH = 256

# Code points HFS+ ignores when comparing names, so `.g\u200cit` is `.git` on a Mac (git's protectHFS).
_HFS_IGNORABLE = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)


def _is_git_dir_name(segment: str) -> bool:
    """True for every spelling an OS may treat as `.git` (case, NTFS trailing dots/spaces, 8.3, HFS+)."""
    if segment.isascii():  # the common case, quickly: the HFS+-ignorable code points are not ASCII
        return segment.rstrip(". ").lower() in (".git", "git~1")
    folded = "".join(ch for ch in segment if ch not in _HFS_IGNORABLE).rstrip(". ").casefold()
    return folded in (".git", "git~1")


def _check_characters(value: str, what: str) -> None:
    if value.isascii() and value.isprintable() and "\\" not in value:
        return  # the common case, quickly: printable ASCII has no control character (Cc) at all
    for ch in value:
        # Category Cc covers NUL, C0 and C1 controls and DEL; Cs catches lone surrogates (undecodable bytes).
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs"):
            raise InvalidPath(f"{what} {value!r} contains a control character (U+{ord(ch):04X})")
    if "\\" in value:
        raise InvalidPath(f"{what} {value!r} contains a backslash; use '/' to separate directories")


def validate_path(path: str) -> str:
    """Return `path` as a repository path (`dir/sub/file.txt`), or raise `InvalidPath` saying why not.

    Refused: empty, absolute (`/x`), `.` or `..` segments, empty segments (`a//b`, trailing `/`), a `.git`
    segment in any spelling, control characters (NUL included), backslashes, over-long names. Any other
    Unicode is fine and kept as given (git stores names as bytes; we never re-normalise them).
    """
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, not {type(path).__name__}")
    if path == "":
        raise InvalidPath("path is empty")
    _check_characters(path, "path")
    encoded_length = len(path.encode("utf-8"))
    if encoded_length > MAX_PATH_BYTES:
        raise InvalidPath(f"path is {encoded_length} bytes long; the limit is {MAX_PATH_BYTES}")
    if path.startswith("/"):
        raise InvalidPath(f"path {path!r} is absolute; paths are relative to the project root")
    if path.endswith("/"):
        raise InvalidPath(f"path {path!r} ends with '/'; name a file, not a directory")
    segments = path.split("/")
    if len(segments) > MAX_PATH_DEPTH:
        raise InvalidPath(f"path is {len(segments)} segments deep; the limit is {MAX_PATH_DEPTH}")
    for segment in segments:
        if segment == "":
            raise InvalidPath(f"path {path!r} has an empty segment ('//')")
        if segment in (".", ".."):
            raise InvalidPath(f"path {path!r} has a {segment!r} segment; paths may not traverse directories")
        if _is_git_dir_name(segment):
            raise InvalidPath(f"path {path!r} names a .git directory, which is reserved")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"path {path!r} has a segment longer than {MAX_SEGMENT_BYTES} bytes")
    return path


def fold(name: str) -> str:
    """A name as a case-insensitive file system compares it: Unicode-composed, case-folded (macOS's
    APFS and HFS+ and Windows' NTFS are case-insensitive by default; HFS+ also decomposes names)."""
    return unicodedata.normalize("NFC", name).casefold()


def case_collision(paths: Iterable[str]) -> tuple[str, str] | None:
    """Two of `paths` (or their directories) that a case-insensitive file system would take for one,
    such as `README.md` and `readme.md`, or `Docs/a` and `docs/b`; None when there are none.

    On such a file system one would overwrite the other in a working directory (git refuses to check
    them out faithfully there too), so a store there refuses them (`GitStore(fold_case=...)`).
    """
    seen: dict[str, str] = {}
    for path in paths:
        segments = path.split("/")
        for depth in range(1, len(segments) + 1):
            name = "/".join(segments[:depth])
            other = seen.setdefault(fold(name), name)
            if other != name:
                return (other, name) if other < name else (name, other)
    return None


def validate_symlink_target(link_path: str, target: str) -> str:
    """Return `target` if a symlink at `link_path` pointing to it stays inside the project, else raise.

    The target must be relative and must resolve inside the project root when read from the link's own
    directory. `..` is allowed only as leading segments (`../../lib/x`): a `..` after a named segment
    (`a/../b`) is refused, because if `a` were itself a symlink the operating system would resolve it
    differently from a textual check. With that rule every link in a tree resolves inside the root even
    when links point at links. A target may not reach into a `.git` directory.
    """
    link_path = validate_path(link_path)
    if not isinstance(target, str):
        raise InvalidPath(f"symlink target must be a string, not {type(target).__name__}")
    if target == "":
        raise InvalidPath(f"symlink {link_path!r} has an empty target")
    _check_characters(target, f"symlink {link_path!r} target")
    if len(target.encode("utf-8")) > MAX_SYMLINK_TARGET_BYTES:
        raise InvalidPath(f"symlink {link_path!r} target is longer than {MAX_SYMLINK_TARGET_BYTES} bytes")
    if target.startswith("/"):
        raise InvalidPath(f"symlink {link_path!r} has an absolute target {target!r}; only relative targets")
    depth = link_path.count("/")  # directories between the root and the link
    seen_name = False
    for segment in target.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if seen_name:
                raise InvalidPath(
                    f"symlink {link_path!r} target {target!r} uses '..' after a directory name; "
                    "'..' is only allowed at the start"
                )
            depth -= 1
            if depth < 0:
                raise InvalidPath(f"symlink {link_path!r} target {target!r} points outside the project")
            continue
        if _is_git_dir_name(segment):
            raise InvalidPath(f"symlink {link_path!r} target {target!r} points into a .git directory")
        seen_name = True
    return target
