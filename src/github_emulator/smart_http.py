"""Git smart HTTP at ``/{owner}/{repo}.git`` through ``git http-backend`` (CGI), with basic auth.

Pushes are serialised per repository; the refs are read before and after so a push of any kind
(including a force-push or a deletion) fires the same events as on GitHub. Branch protection
is enforced by the repository's pre-receive hook (see :mod:`github_emulator.gitrepo`).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from github_emulator import gitrepo, protection
from github_emulator.auth import AuthError, Principal, principal_from_header
from github_emulator.core import Emulator
from github_emulator.deps import emulator, urls
from github_emulator.store import RepoRecord

router = APIRouter()

_GIT = shutil.which("git") or "git"


def _challenge() -> Response:
    # git retries with credentials only after a 401 carrying a Basic challenge.
    return Response(
        "Invalid username or token. Password authentication is not supported for Git operations.\n",
        status_code=401,
        media_type="text/plain",
        headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
    )


def _not_found() -> Response:
    return Response("Repository not found.\n", status_code=404, media_type="text/plain")


def _allowed(emu: Emulator, who: Principal, repo: RepoRecord) -> bool:
    if who.kind == "user":
        return True
    if who.kind == "installation":
        inst = emu.store.data.installations.get(who.installation_id or -1)
        ok = inst is not None and repo.id in inst.repository_ids
        if who.token is not None and who.token.repository_ids is not None:
            ok = ok and repo.id in who.token.repository_ids
        return ok
    return False


def _parse_cgi(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    sep = output.find(b"\r\n\r\n")
    skip = 4
    if sep < 0:
        sep, skip = output.find(b"\n\n"), 2
    head, body = (output[:sep], output[sep + skip :]) if sep >= 0 else (b"", output)
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((key.strip(), value.strip()))
    return status, headers, body


@router.api_route("/{owner}/{name}.git/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
async def git_http(
    owner: str, name: str, rest: str, request: Request, emu: Emulator = Depends(emulator)
) -> Response:
    repo = emu.store.find_repo(owner, name) or emu.store.redirected_repo(owner, name)
    service = request.query_params.get("service") or rest.rsplit("/", 1)[-1]
    is_push = service == "git-receive-pack"
    auth = request.headers.get("authorization")
    who: Principal | None = None
    if auth:
        try:
            who = principal_from_header(auth, emu.store, emu.config.max_jwt_lifetime_seconds, "git")
        except AuthError:
            return _challenge()
    if repo is None:
        return _challenge() if who is None else _not_found()
    if who is None:
        if is_push or repo.private:
            return _challenge()
    elif not _allowed(emu, who, repo):
        return _not_found()
    if is_push and repo.archived:
        # git prints a text/plain error body as "remote: ..." (the wording is GitHub's as
        # pushes to archived repositories show it; https://docs.github.com/en/repositories/archiving-a-github-repository/archiving-repositories).
        return Response(
            "This repository was archived so it is read-only.\n", status_code=403, media_type="text/plain"
        )
    body = await request.body()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(emu.store.git_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.id}.git/{rest}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": (who.user_login or "x-access-token") if who else "anonymous",
        "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        "HOME": str(emu.store.data_dir),
        # Who pushes, for the pre-receive hook's branch protection (restrictions, enforce_admins).
        "GHEMU_PUSHER": emu.pusher(who, repo).to_env(),
    }
    if request.headers.get("content-encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    if request.headers.get("git-protocol"):
        env["GIT_PROTOCOL"] = request.headers["git-protocol"]
    u = urls(request)

    def run() -> bytes:
        cmd = [_GIT, "http-backend"]
        if is_push and rest.endswith("git-receive-pack") and who is not None:
            with emu.store.repo_lock(repo.id):
                git = emu.open_git(repo)
                before = gitrepo.list_refs(git)
                proc = subprocess.run(cmd, input=body, env=env, capture_output=True, check=False)
                after = gitrepo.list_refs(emu.open_git(repo))
            changes = {
                ref: (before.get(ref, gitrepo.ZERO_SHA), after.get(ref, gitrepo.ZERO_SHA))
                for ref in set(before) | set(after)
                if before.get(ref) != after.get(ref)
            }
            # The request log (traffic.py) lists a push's ref updates on its row.
            request.state.ref_updates = changes
            emu.on_refs_changed(repo, changes, who, u)
            return proc.stdout
        return subprocess.run(cmd, input=body, env=env, capture_output=True, check=False).stdout

    output = await anyio.to_thread.run_sync(run)
    status, headers, payload = _parse_cgi(output)
    if is_push:
        # GitHub's "(protected branch hook declined)" instead of git's "(pre-receive hook declined)".
        payload = protection.declined_by_protection(payload)
        # The body may have changed length; let the response count it.
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return Response(content=payload, status_code=status, headers=dict(headers))
