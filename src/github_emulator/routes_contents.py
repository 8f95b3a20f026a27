"""The Contents API's write: ``PUT /repos/{o}/{r}/contents/{path}`` (create or update one file).

It is what a client must use on an empty repository, where the Git Data API answers 409
("For an empty repository, you can use the "Create or update file contents" endpoint to create
content and initialize the repository",
https://docs.github.com/en/rest/guides/using-the-rest-api-to-interact-with-your-git-database).
The rules (https://docs.github.com/rest/repos/contents#create-or-update-file-contents):

* ``message`` and base64 ``content`` are required; ``branch`` defaults to the default branch.
* Replacing an existing file needs its blob ``sha``: without one GitHub answers 422
  ``Invalid request.\\n\\n"sha" wasn't supplied.``, with a different one 409
  ``<path> does not match <sha>``; for a new path the ``sha`` is ignored. These texts and the
  order (branch checked first) follow a public recording of GitHub's answers
  (https://github.com/pome-sh/digital-twins/pull/400).
* A missing branch answers 404 ``Branch <name> not found`` (GitHub's exact text: a best guess).
* The branch's protection applies; a refused write answers 409 with protection's message
  (the operation documents 409 with ``repository-rule-violation-error``; the status for classic
  protection is a best guess).

The check of ``sha`` and the ref update happen under the repository lock, so two writers racing
on one file cannot both succeed (GitHub: "the concurrent requests will conflict").
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import pygit2
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from github_emulator import filesizes, gitrepo, payloads
from github_emulator.auth import Principal
from github_emulator.core import Emulator, GitHubError
from github_emulator.deps import emulator, json_response, repo_access, require_auth, urls
from github_emulator.payloads import JSON

router = APIRouter()

DOCS = "https://docs.github.com/rest/repos/contents#create-or-update-file-contents"


def _invalid(field: str) -> GitHubError:
    return GitHubError(422, f'Invalid request.\n\n"{field}" wasn\'t supplied.', DOCS)


def _person(data: Any, fallback: pygit2.Signature, role: str) -> pygit2.Signature:
    """``committer``/``author`` of the request; ``name`` and ``email`` are required when given."""
    if data is None:
        return fallback
    if not isinstance(data, dict) or not data.get("name") or not data.get("email"):
        missing = "name" if not isinstance(data, dict) or not data.get("name") else "email"
        raise GitHubError(422, f'Invalid request.\n\n"{missing}" wasn\'t supplied.', DOCS)
    when, offset = fallback.time, 0
    if data.get("date"):
        try:
            dt = datetime.fromisoformat(str(data["date"]).replace("Z", "+00:00"))
        except ValueError:
            raise GitHubError(422, f"Invalid {role} date: {data['date']}", DOCS) from None
        when = int(dt.timestamp())
        off = dt.utcoffset()
        offset = int(off.total_seconds() // 60) if off is not None else 0
    return gitrepo.signature(str(data["name"]), str(data["email"]), when, offset)


def _blob_at(git: pygit2.Repository, tree: pygit2.Tree | None, path: str) -> pygit2.Object | None:
    if tree is None:
        return None
    try:
        entry = tree[path]
    except KeyError:
        return None
    return git.get(entry.id)


@router.put("/repos/{owner}/{repo}/contents/{path:path}")
def put_contents(
    owner: str,
    repo: str,
    path: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """Create (201) or replace (200) ``path`` with one new commit on ``branch``."""
    r = repo_access(emu, who, owner, repo, write=True)
    u = urls(request)
    path = path.strip("/")
    message = body.get("message")
    if not isinstance(message, str):
        raise _invalid("message")
    content = body.get("content")
    if not isinstance(content, str):
        raise _invalid("content")
    try:
        data = base64.b64decode(content.replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise GitHubError(422, "content is not valid Base64", DOCS) from None
    if len(data) > filesizes.LIMIT_BYTES:
        # GitHub's 100 MiB file limit (filesizes.py); the answer's text is a best guess.
        raise GitHubError(422, "File is too large: the limit is 100 MB", DOCS)
    branch = str(body.get("branch") or r.default_branch)
    ref = f"refs/heads/{branch}"
    actor = emu.actor_user(who)
    default = gitrepo.signature(
        actor.login, actor.email or f"{actor.id}+{actor.login}@users.noreply.github.com"
    )
    committer = _person(body.get("committer"), default, "committer")
    author = _person(body.get("author"), committer, "author")
    with emu.store.repo_lock(r.id):
        git = emu.open_git(r)
        old = gitrepo.ref_target(git, ref)
        parent: pygit2.Commit | None = None
        if old is None and not gitrepo.has_no_refs(git):
            raise GitHubError(404, f"Branch {branch} not found", DOCS)
        if old is not None:
            found = git.get(old)
            assert isinstance(found, pygit2.Commit)
            parent = found
        existing = _blob_at(git, parent.tree if parent else None, path)
        if isinstance(existing, pygit2.Tree):
            # GitHub's text for writing over a directory is a best guess.
            raise GitHubError(422, f"{path} is a directory", DOCS)
        if existing is not None:
            sha = body.get("sha")
            if not isinstance(sha, str):
                raise _invalid("sha")
            if sha != str(existing.id):
                raise GitHubError(409, f"{path} does not match {sha}", DOCS)
        blob = git.create_blob(data)
        # A replaced file keeps its mode (an executable stays executable).
        mode = pygit2.GIT_FILEMODE_BLOB
        if parent is not None and existing is not None:
            mode = parent.tree[path].filemode
        change = gitrepo.TreeChange(path, mode, str(blob))
        tree = gitrepo.build_tree(git, parent.tree if parent else None, [change])
        new = git.create_commit(
            None, author, committer, message, pygit2.Oid(hex=tree), [parent.id] if parent else []
        )
        try:
            emu.check_protection(git, r, ref, old, str(new), who)
        except GitHubError as exc:
            raise GitHubError(409, exc.message, exc.documentation_url) from None
        git.references.create(ref, new, force=True)
    emu.on_refs_changed(r, {ref: (old or gitrepo.ZERO_SHA, str(new))}, who, u)
    created = git.get(new)
    assert isinstance(created, pygit2.Commit)
    size = len(data)
    entry = payloads.content_entry(path, str(blob), "file", size, branch, r, u)
    result: JSON = {"content": entry, "commit": payloads.git_commit(created, r, u)}
    return json_response(result, status=200 if existing is not None else 201)
