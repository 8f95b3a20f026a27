"""Repository archives: ``GET /repos/{o}/{r}/tarball/{ref}`` and ``zipball`` answer 302 to a download.

GitHub answers both with ``302 Found`` and a ``Location`` on its download host (``codeload``),
where the archive is served; for a private repository the URL carries a short-lived ``token``
(https://docs.github.com/en/rest/repos/contents#download-a-repository-archive-tar and
#download-a-repository-archive-zip: "the Location header to make a second GET request"; "if
you omit ``ref``, the repository's default branch (usually main) will be used"). The archive
holds the tree under one top-level directory ``<owner>-<repo>-<short sha>/``, as GitHub's
legacy archives do, and is made by ``git archive`` from the bare repository.

The download is served at ``/_emulator/codeload/...`` (GitHub's codeload is another host, outside
the REST API's rate limit and request log).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import subprocess
import time

import pygit2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from github_emulator import gitrepo
from github_emulator.auth import Principal
from github_emulator.core import Emulator, GitHubError, not_found
from github_emulator.deps import emulator, principal, repo_access, urls
from github_emulator.store import RepoRecord

router = APIRouter()

DOCS = "https://docs.github.com/rest/repos/contents#download-a-repository-archive-tar"
FORMATS = {
    "tarball": ("legacy.tar.gz", "tar.gz", "application/x-gzip"),
    "zipball": ("legacy.zip", "zip", "application/zip"),
}
TOKEN_TTL_SECONDS = 300  # GitHub's archive links expire after five minutes
_SECRET = secrets.token_bytes(32)  # signs download tokens; a restart invalidates them, as an expiry would
_GIT = shutil.which("git") or "git"


def resolve_commit(git: pygit2.Repository, repo: RepoRecord, ref: str) -> str | None:
    """The commit ``ref`` names: a branch, a tag, a (short) SHA, or empty for the default branch."""
    candidates = (
        [f"refs/heads/{repo.default_branch}"] if not ref else [ref, f"refs/heads/{ref}", f"refs/tags/{ref}"]
    )
    for name in candidates:
        if name.startswith("refs/"):
            sha = gitrepo.ref_target(git, name)
            if sha is None:
                continue
            obj = git.get(sha)
            if obj is not None:
                return str(obj.peel(pygit2.Commit).id)
    if ref and all(c in "0123456789abcdef" for c in ref.lower()) and 4 <= len(ref) <= 40:
        try:
            return str(git.revparse_single(ref).peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError):
            return None
    return None


def sign(repo_id: int, sha: str, fmt: str, expires: int) -> str:
    message = f"{repo_id}:{sha}:{fmt}:{expires}".encode()
    return f"{expires}.{hmac.new(_SECRET, message, hashlib.sha256).hexdigest()[:32]}"


def token_ok(token: str, repo_id: int, sha: str, fmt: str, now: float) -> bool:
    expires_text, _, _ = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) < now:
        return False
    return hmac.compare_digest(token, sign(repo_id, sha, fmt, int(expires_text)))


@router.get("/repos/{owner}/{repo}/tarball")
@router.get("/repos/{owner}/{repo}/zipball")
@router.get("/repos/{owner}/{repo}/tarball/{ref:path}")
@router.get("/repos/{owner}/{repo}/zipball/{ref:path}")
def download_redirect(
    owner: str,
    repo: str,
    request: Request,
    ref: str = "",
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    fmt = "tarball" if "/tarball" in request.url.path else "zipball"
    r = repo_access(emu, who, owner, repo)
    sha = resolve_commit(emu.open_git(r), r, ref)
    if sha is None:
        raise not_found(DOCS)
    legacy = FORMATS[fmt][0]
    location = f"{urls(request).web}/_emulator/codeload/{r.full_name}/{legacy}/{sha}"
    if r.private:
        location += f"?token={sign(r.id, sha, fmt, int(time.time()) + TOKEN_TTL_SECONDS)}"
    return Response(status_code=302, headers={"Location": location})


@router.get("/_emulator/codeload/{owner}/{repo}/{legacy}/{sha}")
def download(
    owner: str, repo: str, legacy: str, sha: str, request: Request, emu: Emulator = Depends(emulator)
) -> Response:
    fmt = next((f for f, (name, _, _) in FORMATS.items() if name == legacy), None)
    r = emu.store.find_repo(owner, repo)
    if fmt is None or r is None:
        raise GitHubError(404, "Not Found", DOCS)
    if r.private and not token_ok(request.query_params.get("token", ""), r.id, sha, fmt, time.time()):
        raise GitHubError(404, "Not Found", DOCS)
    _, extension, media_type = FORMATS[fmt]
    prefix = f"{r.owner}-{r.name}-{sha[:7]}"
    done = subprocess.run(
        [_GIT, "archive", f"--format={extension}", f"--prefix={prefix}/", sha],
        cwd=emu.store.git_dir(r.id),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise GitHubError(404, "Not Found", DOCS)
    return Response(
        content=done.stdout,
        media_type=media_type,
        headers={"Content-Disposition": f"attachment; filename={prefix}.{extension}"},
    )
