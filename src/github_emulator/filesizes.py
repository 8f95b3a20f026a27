"""GitHub's file size limits: a push with a file over 100 MiB is refused (GH001), over 50 MiB warned.

"GitHub blocks files larger than 100 MiB" and "If you attempt to add or update a file that is
larger than 50 MiB, you will receive a warning from Git"
(https://docs.github.com/en/repositories/working-with-files/managing-large-files/about-large-files-on-github#file-size-limits).
The texts follow recordings of GitHub's answers (sizes in MiB, two decimals, "MB")::

    remote: error: Trace: 83e8ea79de23baec9c518a4d315dd573d674408018cc5f3819c790d19f05bdb0
    remote: error: See https://gh.io/lfs for more information.
    remote: error: File boesp-1.pdf is 122.92 MB; this exceeds GitHub's file size limit of 100.00 MB
    remote: error: GH001: Large files detected. You may want to try Git Large File Storage - https://git-lfs.github.com.
     ! [remote rejected] main -> main (pre-receive hook declined)

(https://github.com/sanskrit-lexicon/COLOGNE/issues/365, https://github.com/OpenHUTB/neuro/issues/441);
the warning's wording ("this is larger than GitHub's recommended maximum file size of 50.00 MB")
is GitHub's as commonly reported; treat it as a best guess. The Git Data API takes blobs up to the
same 100 MiB ("This endpoint supports blobs up to 100 megabytes in size",
https://docs.github.com/rest/git/blobs#get-a-blob). Git LFS is not emulated: a pointer file is
stored and served as the small text file it is.

The pre-receive hook (:mod:`github_emulator.gitrepo`) calls :func:`check_push`; the rest is pure.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable, Iterable

MIB = 1024 * 1024
LIMIT_BYTES = 100 * MIB
WARNING_BYTES = 50 * MIB
ZERO = "0" * 40
LFS_HINT = (
    "GH001: Large files detected. You may want to try Git Large File Storage - https://git-lfs.github.com."
)
SEE = "See https://gh.io/lfs for more information."


def _mb(size: int) -> str:
    return f"{size / MIB:.2f} MB"


def messages(files: Iterable[tuple[str, int]], trace_seed: str = "") -> tuple[list[str], list[str]]:
    """(errors, warnings) for the new files of a push, as (path, size in bytes); no errors: accepted."""
    too_big = [(p, s) for p, s in files if s > LIMIT_BYTES]
    large = [(p, s) for p, s in files if WARNING_BYTES < s <= LIMIT_BYTES]
    errors: list[str] = []
    warnings: list[str] = []
    if too_big:
        trace = hashlib.sha256(trace_seed.encode() or repr(too_big).encode()).hexdigest()
        errors = [f"Trace: {trace}", SEE]
        errors += [
            f"File {p} is {_mb(s)}; this exceeds GitHub's file size limit of {_mb(LIMIT_BYTES)}"
            for p, s in too_big
        ]
        errors.append(LFS_HINT)
    if large:
        warnings = [SEE]
        warnings += [
            f"File {p} is {_mb(s)}; this is larger than GitHub's recommended maximum file size of "
            f"{_mb(WARNING_BYTES)}"
            for p, s in large
        ]
        warnings.append(LFS_HINT)
    return errors, warnings


def new_files(updates: Iterable[tuple[str, str, str]]) -> list[tuple[str, int]]:
    """(path, size) of every blob a push brings that the repository did not have, largest first.

    Runs in the pre-receive hook, where the pushed objects are visible to git (quarantine).
    """
    tips = [new for _, new, _ in updates if new != ZERO]
    if not tips:
        return []
    listed = subprocess.run(
        ["git", "rev-list", "--objects", *tips, "--not", "--all"], capture_output=True, text=True, check=True
    ).stdout
    checked = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objecttype) %(objectsize) %(rest)"],
        input=listed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out: dict[str, int] = {}
    for line in checked.splitlines():
        kind, _, rest = line.partition(" ")
        size, _, path = rest.partition(" ")
        if kind == "blob" and path and int(size) > WARNING_BYTES:
            out[path] = max(out.get(path, 0), int(size))
    return sorted(out.items(), key=lambda item: -item[1])


def check_push(updates: list[tuple[str, str, str]], write: Callable[[str], object]) -> bool:
    """Print GitHub's errors/warnings through ``write`` (stderr); False when the push is refused."""
    errors, warnings = messages(new_files(updates), trace_seed=" ".join(n for _, n, _ in updates))
    for line in warnings:
        write(f"warning: {line}\n")
    for line in errors:
        write(f"error: {line}\n")
    return not errors
