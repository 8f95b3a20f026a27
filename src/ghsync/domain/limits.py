"""GitHub's size limits as rules: which files to warn about before they reach a repository."""

from __future__ import annotations

from collections.abc import Iterable

from ghsync.domain.models import FileWrite

MIB = 1024 * 1024


def large_file_warnings(writes: Iterable[FileWrite], warn_size: int) -> list[str]:
    """A warning per file over `warn_size` (GitHub warns on pushes of files over 50 MiB).

    Files over the block limit never get here: the store refuses them with `file_too_large`.
    https://docs.github.com/en/repositories/working-with-files/managing-large-files/about-large-files-on-github
    """
    return [
        f"{write.path} is {len(write.content) / MIB:.1f} MiB; GitHub warns about files over "
        f"{warn_size / MIB:.0f} MiB (consider Git LFS or keeping it out of the repository)"
        for write in writes
        if len(write.content) > warn_size
    ]
