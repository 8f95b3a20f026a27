"""Issue 8, item 7: GitHub's size limits: a push with a file over 100 MiB is refused with GH001, over
50 MiB it is warned; the Git Data API refuses larger blobs; Git LFS pointers are plain files."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from round2_support import (  # noqa: F401
    assert_basic_error,
    git,
    head_of,
    module_emulator,
    module_receiver,
    shared_emu,
    shared_receiver,
)

from conftest import Installed, api
from github_emulator import filesizes

MIB = 1024 * 1024
R = "/repos/octo/hello"


def _clone(installed: Installed, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", installed.emu.git_url("octo", "hello", installed.token), str(work))
    return work


def _add_zeros(work: Path, name: str, size: int) -> None:
    """A file of ``size`` zero bytes: it compresses to almost nothing, so pushing it is cheap."""
    (work / name).parent.mkdir(parents=True, exist_ok=True)
    with (work / name).open("wb") as f:
        f.truncate(size)
    git(work, "add", name)
    git(work, "commit", "-q", "-m", f"add {name}")


def test_limits_are_githubs() -> None:
    assert (filesizes.LIMIT_BYTES, filesizes.WARNING_BYTES) == (100 * MIB, 50 * MIB)
    errors, warnings = filesizes.messages([("a.bin", 100 * MIB), ("b.bin", 50 * MIB)])
    assert errors == []  # exactly 100 MiB is allowed, exactly 50 MiB is not warned about
    assert warnings == [
        "See https://gh.io/lfs for more information.",
        "File a.bin is 100.00 MB; this is larger than GitHub's recommended maximum file size of 50.00 MB",
        filesizes.LFS_HINT,
    ]
    errors, _ = filesizes.messages([("big.iso", 128896162)])
    assert errors[0].startswith("Trace: ")
    assert errors[1:] == [
        "See https://gh.io/lfs for more information.",
        "File big.iso is 122.92 MB; this exceeds GitHub's file size limit of 100.00 MB",
        "GH001: Large files detected. You may want to try Git Large File Storage - https://git-lfs.github.com.",
    ]


def test_a_push_with_a_file_over_100_mib_is_refused_with_gh001(installed: Installed, tmp_path: Path) -> None:
    before = head_of(installed.client, "octo/hello")
    work = _clone(installed, tmp_path)
    _add_zeros(work, "data/huge.bin", 100 * MIB + 1)
    pushed = git(work, "push", "origin", "main", "HEAD:refs/heads/other", check=False)
    assert pushed.returncode != 0
    err = pushed.stderr
    assert "remote: error: Trace: " in err
    assert (
        "remote: error: File data/huge.bin is 100.00 MB; this exceeds GitHub's file size limit of 100.00 MB"
        in err
    )
    assert "remote: error: GH001: Large files detected." in err
    # Every ref of the push is refused, with git's own text (GitHub's for GH001).
    assert "main -> main (pre-receive hook declined)" in err
    assert "HEAD -> other (pre-receive hook declined)" in err
    assert head_of(installed.client, "octo/hello") == before
    assert installed.client.get(f"{R}/git/ref/heads/other").status_code == 404


def test_a_push_with_a_file_over_50_mib_is_warned_and_accepted(installed: Installed, tmp_path: Path) -> None:
    work = _clone(installed, tmp_path)
    _add_zeros(work, "mid.bin", 51 * MIB)
    pushed = git(work, "push", "origin", "main", check=False)
    assert pushed.returncode == 0, pushed.stderr
    recommended = "this is larger than GitHub's recommended maximum file size of 50.00 MB"
    assert f"remote: warning: File mid.bin is 51.00 MB; {recommended}" in pushed.stderr
    assert "remote: warning: GH001: Large files detected." in pushed.stderr
    sha = git(work, "rev-parse", "HEAD").stdout.strip()
    assert head_of(installed.client, "octo/hello") == sha


def test_blob_creation_over_the_limit_is_refused(
    installed: Installed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit is GitHub's 100 MiB (test_limits_are_githubs); a small one here keeps the test fast.
    monkeypatch.setattr(filesizes, "LIMIT_BYTES", 1024)
    assert installed.client.post(f"{R}/git/blobs", json={"content": "x" * 1024}).status_code == 201
    # create-blob's 422 is oneOf [validation-error, repository-rule-violation-error], which no
    # body can satisfy (see assert_basic_error): checked as GitHub's generic error instead.
    with api(installed.emu, installed.token, validate=False) as raw:
        too_big = base64.b64encode(b"y" * 1025).decode()
        big = raw.post(f"{R}/git/blobs", json={"content": too_big, "encoding": "base64"})
        assert_basic_error(big, 422, "Blob is too large: the limit is 100 MB")
    entry = {"path": "t", "mode": "100644", "content": "t" * 1025}
    inline = installed.client.post(f"{R}/git/trees", json={"tree": [entry]})  # validation-error schema
    assert (inline.status_code, inline.json()["message"]) == (422, "Blob is too large: the limit is 100 MB")
    put = installed.client.put(f"{R}/contents/big.txt", json={"message": "big", "content": too_big})
    assert (put.status_code, put.json()["message"]) == (422, "File is too large: the limit is 100 MB")


def test_lfs_pointers_are_stored_as_plain_files(installed: Installed, tmp_path: Path) -> None:
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n"
    )
    work = _clone(installed, tmp_path)
    (work / ".gitattributes").write_text("*.psd filter=lfs diff=lfs merge=lfs -text\n")
    (work / "art.psd").write_text(pointer)
    git(work, "add", ".gitattributes", "art.psd")
    git(work, "commit", "-q", "-m", "lfs pointer")
    git(work, "push", "-q", "origin", "main")
    got = installed.client.get(f"{R}/contents/art.psd").json()
    assert (got["size"], base64.b64decode(got["content"]).decode()) == (len(pointer), pointer)
