"""The path rules: which repository paths and symlink targets are accepted; all others are refused."""

from __future__ import annotations

import pytest

from ghsync.domain.errors import InvalidInput, InvalidPath
from ghsync.domain.paths import case_collision, validate_path, validate_symlink_target

GOOD_PATHS = [
    "README.md",
    "src/app/main.py",
    ".github/workflows/ci.yml",
    ".gitignore",  # starts with .git but is not .git
    ".gitattributes",
    "a/.gitkeep",
    "git/config",  # a directory called git is fine
    "x.git",  # so is a name ending in .git
    ".git-blame-ignore-revs",
    "...",  # three dots is a legal name, not traversal
    "a/..b/c",
    "name with spaces.txt",
    "über/naïve café.md",  # unicode is kept as given
    "日本語/ファイル.txt",
    "emoji/🙂.png",
    "-leading-dash",
    "a" * 255,
    "/".join(["d"] * 100) + "/f",
]

BAD_PATHS = [
    ("", "empty"),
    ("/etc/passwd", "absolute"),
    ("/", "absolute"),
    ("../secret", "'..'"),
    ("a/../../b", "'..'"),
    ("a/..", "'..'"),
    ("..", "'..'"),
    ("./a", "'.'"),
    ("a/./b", "'.'"),
    ("a//b", "empty segment"),
    ("a/", "ends with '/'"),
    (".git", ".git"),
    (".git/config", ".git"),
    ("sub/.git/hooks/pre-commit", ".git"),
    (".GIT/config", ".git"),
    ("sub/.Git", ".git"),
    (".git./config", ".git"),  # NTFS drops trailing dots
    (".git /x", ".git"),  # ... and trailing spaces
    ("GIT~1/config", ".git"),  # NTFS 8.3 short name of .git
    (".g\u200cit/config", ".git"),  # HFS+ ignores zero-width joiners
    ("a\x00b", "control character"),
    ("a\nb", "control character"),
    ("a\tb", "control character"),
    ("a\x7fb", "control character"),
    ("a\x85b", "control character"),  # C1 control
    ("bad\udcffbytes", "control character"),  # lone surrogate from undecodable bytes
    ("a\\b", "backslash"),
    ("..\\..\\windows", "backslash"),
    ("a" * 256, "longer than 255"),
    ("/".join(["d"] * 2100), "limit"),
]


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_good_paths_are_returned_unchanged(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(("path", "reason"), BAD_PATHS)
def test_bad_paths_are_refused_with_a_reason(path: str, reason: str) -> None:
    with pytest.raises(InvalidPath) as info:
        validate_path(path)
    assert reason in info.value.message
    assert info.value.code == "invalid_path"
    assert isinstance(info.value, InvalidInput)  # so the API maps it to a 4xx


def test_non_string_path_is_refused() -> None:
    with pytest.raises(InvalidPath):
        validate_path(b"a.txt")  # type: ignore[arg-type]


GOOD_TARGETS = [
    ("link", "file.txt"),
    ("link", "dir/file.txt"),
    ("link", "."),
    ("link", "./file.txt"),
    ("a/link", ".."),  # the project root itself
    ("a/link", "../b/c"),
    ("a/b/link", "../../c"),
    ("a/b/link", "../.."),
    ("link", "dir/"),  # a directory target may end in a slash
    ("link", "does/not/exist/yet"),  # dangling links are fine, they stay inside
    ("link", "café/ü.txt"),
]

BAD_TARGETS = [
    ("link", "/etc/passwd", "absolute"),
    ("link", "/", "absolute"),
    ("link", "..", "outside"),
    ("link", "../x", "outside"),
    ("a/link", "../../x", "outside"),
    ("a/b/link", "../../../etc", "outside"),
    ("link", "a/../b", "after a directory name"),  # would resolve differently if a is a symlink
    ("link", "a/../../x", "after a directory name"),
    ("link", ".git/config", ".git"),
    ("a/link", "../.GIT", ".git"),
    ("link", "", "empty"),
    ("link", "a\x00b", "control character"),
    ("link", "a\nb", "control character"),
    ("link", "..\\..\\x", "backslash"),
    ("link", "x" * 4097, "longer"),
]


@pytest.mark.parametrize(("link", "target"), GOOD_TARGETS)
def test_good_symlink_targets(link: str, target: str) -> None:
    assert validate_symlink_target(link, target) == target


@pytest.mark.parametrize(("link", "target", "reason"), BAD_TARGETS)
def test_bad_symlink_targets(link: str, target: str, reason: str) -> None:
    with pytest.raises(InvalidPath) as info:
        validate_symlink_target(link, target)
    assert reason in info.value.message


def test_symlink_with_invalid_link_path_is_refused() -> None:
    with pytest.raises(InvalidPath, match=r"\.git"):
        validate_symlink_target(".git/link", "x")


@pytest.mark.parametrize(
    ("paths", "collision"),
    [
        (["README.md", "src/app.py", "docs/a.md"], None),
        (["README.md", "readme.md"], ("README.md", "readme.md")),
        (["Docs/a.md", "docs/b.md"], ("Docs", "docs")),  # two directories that would be one
        (["LICENSE", "license/terms.txt"], ("LICENSE", "license")),  # a file and a directory
        (["Straße.txt", "STRASSE.txt"], ("STRASSE.txt", "Straße.txt")),  # full Unicode case folding
        (["caf\u00e9.txt", "cafe\u0301.txt"], ("cafe\u0301.txt", "caf\u00e9.txt")),  # composed or not
        (["a/b.txt", "a/c.txt", "b"], None),  # one directory named twice the same way is fine
        ([], None),
    ],
)
def test_paths_a_case_insensitive_disk_takes_for_one(
    paths: list[str], collision: tuple[str, str] | None
) -> None:
    assert case_collision(paths) == collision
