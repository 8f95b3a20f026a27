"""The conflict view's pure parts: git's binary rule, the unified diff (absent sides, a last line without a
newline), and each file's sides (text inlined, binary and oversized files as SHAs and sizes)."""

from __future__ import annotations

import hashlib

from ghsync.domain.models import FileMode
from ghsync.domain.trees import TreeEntry
from ghsync.services.conflicts import MAX_INLINE_TEXT, FileSide, describe_file, is_binary, unified_diff


def test_binary_is_a_nul_byte_early_on_or_not_utf8() -> None:
    assert not is_binary(b"plain text\n") and not is_binary("héllo ✓\n".encode())
    assert is_binary(b"\x89PNG\r\n\x1a\n\0\0")
    assert is_binary(b"caf\xe9\n")  # Latin-1: not text we can answer as a UTF-8 string
    assert not is_binary(b"x" * 8000 + b"\0")  # git only looks at the first 8000 bytes


def test_the_diff_goes_from_local_to_github() -> None:
    assert unified_diff("a.txt", "one\ntwo\n", "one\nTWO\n").splitlines() == [
        "--- local/a.txt",
        "+++ github/a.txt",
        "@@ -1,2 +1,2 @@",
        " one",
        "-two",
        "+TWO",
    ]
    assert unified_diff("a.txt", "same\n", "same\n") == ""


def test_a_side_without_the_file_diffs_against_dev_null() -> None:
    deleted_on_github = unified_diff("a.txt", "kept\n", None).splitlines()
    assert deleted_on_github[:2] == ["--- local/a.txt", "+++ /dev/null"]
    assert deleted_on_github[-1] == "-kept"


def test_a_last_line_without_newline_is_marked_as_git_does() -> None:
    diff = unified_diff("a.txt", "one\ntwo", "one\nthree")
    assert "-two\n\\ No newline at end of file\n+three\n\\ No newline at end of file\n" in diff


def entry(path: str, content: bytes) -> tuple[TreeEntry, dict[str, bytes]]:
    sha = hashlib.sha1(content).hexdigest()
    return TreeEntry(path, FileMode.REGULAR, sha), {sha: content}


def test_text_sides_are_inlined_with_a_diff_and_an_absent_base_is_empty() -> None:
    local, blobs = entry("a.txt", b"local\n")
    github, more = entry("a.txt", b"github\n")
    blobs.update(more)
    file = describe_file(
        "a.txt", "add_add", {"base": None, "local": local, "github": github}, blobs.__getitem__
    )
    assert file.base == FileSide()
    assert file.local == FileSide(local.sha, "100644", 6, "local\n")
    assert file.github.content == "github\n" and not file.binary
    assert file.diff is not None and "-local\n+github\n" in file.diff


def test_binary_or_oversized_files_come_as_shas_and_sizes_only() -> None:
    local, blobs = entry("logo.png", b"\x89PNG\0local")
    github, more = entry("logo.png", b"github text")  # one binary side makes the file binary
    blobs.update(more)
    file = describe_file(
        "logo.png", "binary", {"base": None, "local": local, "github": github}, blobs.__getitem__
    )
    assert file.binary and file.diff is None
    assert (file.local.sha, file.local.size, file.local.content) == (local.sha, 10, None)
    assert (file.github.sha, file.github.content) == (github.sha, None)

    big, blobs = entry("big.txt", b"x" * (MAX_INLINE_TEXT + 1))
    small, more = entry("big.txt", b"small\n")
    blobs.update(more)
    file = describe_file(
        "big.txt", "content", {"base": small, "local": big, "github": small}, blobs.__getitem__
    )
    assert not file.binary and file.diff is None  # text, but too large to inline any side of it
    assert (file.local.size, file.local.content, file.base.content) == (MAX_INLINE_TEXT + 1, None, None)
