"""REST routes for the Git Data API: blobs, trees, commits and refs (https://docs.github.com/rest/git)."""

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
from github_emulator.core import Emulator, GitHubError, not_found
from github_emulator.deps import emulator, json_response, principal, repo_access, require_auth, urls
from github_emulator.payloads import JSON
from github_emulator.store import RepoRecord

router = APIRouter()

BLOBS_DOCS = "https://docs.github.com/rest/git/blobs"
TREES_DOCS = "https://docs.github.com/rest/git/trees"
COMMITS_DOCS = "https://docs.github.com/rest/git/commits"
REFS_DOCS = "https://docs.github.com/rest/git/refs"


def _invalid(message: str, doc: str) -> GitHubError:
    return GitHubError(422, message, doc)


GIT_DATABASE_GUIDE = (
    "https://docs.github.com/rest/guides/using-the-rest-api-to-interact-with-your-git-database"
)


def _not_empty(git: pygit2.Repository) -> pygit2.Repository:
    """Refuse the Git Data API on a repository without commits, as GitHub does.

    "Git Database API functions will return a 409 Conflict if the Git repository is empty or
    unavailable. [...] For an empty repository, you can use the "Create or update file contents"
    endpoint to create content" (GIT_DATABASE_GUIDE); "Empty repositories are repositories
    without branches" (https://docs.github.com/rest/git/refs#create-a-reference).
    """
    if gitrepo.has_no_refs(git):
        raise GitHubError(409, "Git Repository is empty.", GIT_DATABASE_GUIDE)
    return git


# ---- blobs -----------------------------------------------------------------------------------


@router.post("/repos/{owner}/{repo}/git/blobs")
def create_blob(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """Encoding is ``utf-8`` (default) or ``base64`` (https://docs.github.com/rest/git/blobs#create-a-blob)."""
    r = repo_access(emu, who, owner, repo, write=True)
    content = body.get("content")
    if not isinstance(content, str):
        raise GitHubError(
            422,
            'Invalid request.\n\n"content" wasn\'t supplied.',
            BLOBS_DOCS + "#create-a-blob",
        )
    encoding = body.get("encoding", "utf-8")
    if encoding in ("utf-8", "utf8"):
        data = content.encode()
    elif encoding == "base64":
        try:
            data = base64.b64decode(content.replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid("Invalid base64 content", BLOBS_DOCS + "#create-a-blob") from None
    else:
        raise _invalid(
            f"encoding must be one of 'utf-8' or 'base64', got {encoding!r}",
            BLOBS_DOCS + "#create-a-blob",
        )
    if len(data) > filesizes.LIMIT_BYTES:
        # "This endpoint supports blobs up to 100 megabytes in size" (filesizes.py); GitHub's
        # status and text for a larger one are a best guess.
        raise _invalid("Blob is too large: the limit is 100 MB", BLOBS_DOCS + "#create-a-blob")
    sha = str(_not_empty(emu.open_git(r)).create_blob(data))
    return json_response(payloads.short_blob(sha, r, urls(request)), status=201)


@router.get("/repos/{owner}/{repo}/git/blobs/{sha}")
def get_blob(
    owner: str,
    repo: str,
    sha: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    obj = gitrepo.get_object(_not_empty(emu.open_git(r)), sha)
    if not isinstance(obj, pygit2.Blob):
        raise not_found(BLOBS_DOCS + "#get-a-blob")
    return json_response(payloads.blob(obj, r, urls(request)))


# ---- trees -----------------------------------------------------------------------------------

_MODES = {
    "100644": pygit2.GIT_FILEMODE_BLOB,
    "100755": pygit2.GIT_FILEMODE_BLOB_EXECUTABLE,
    "040000": pygit2.GIT_FILEMODE_TREE,
    "160000": pygit2.GIT_FILEMODE_COMMIT,
    "120000": pygit2.GIT_FILEMODE_LINK,
}
# What each mode's entry must name (https://docs.github.com/rest/git/trees#create-a-tree:
# "mode: 100644 for file (blob), 100755 for executable (blob), 040000 for subdirectory (tree),
# 160000 for submodule (commit), or 120000 for a blob that specifies the path of a symlink").
# GitHub answers a mismatch with 422; the exact texts used here are best guesses.
_KIND_OF_MODE = {
    pygit2.GIT_FILEMODE_TREE: "tree",
    pygit2.GIT_FILEMODE_COMMIT: "commit",
}


@router.post("/repos/{owner}/{repo}/git/trees")
def create_tree(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """https://docs.github.com/rest/git/trees#create-a-tree

    Entries take ``sha`` or ``content`` (not both); ``sha: null`` deletes the path from
    ``base_tree``; deleting a path that is not there fails as GitHub does.
    """
    r = repo_access(emu, who, owner, repo, write=True)
    doc = TREES_DOCS + "#create-a-tree"
    git = _not_empty(emu.open_git(r))
    entries = body.get("tree")
    if not isinstance(entries, list):
        raise _invalid('Invalid request.\n\n"tree" wasn\'t supplied.', doc)
    base: pygit2.Tree | None = None
    if body.get("base_tree"):
        obj = gitrepo.get_object(git, str(body["base_tree"]))
        if isinstance(obj, pygit2.Commit):
            obj = obj.tree
        if not isinstance(obj, pygit2.Tree):
            raise _invalid("Invalid tree info", doc)
        base = obj
    changes: list[gitrepo.TreeChange] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise _invalid("Invalid tree info", doc)
        path = entry["path"]
        mode_s = str(entry.get("mode", "100644"))
        if mode_s not in _MODES:
            raise _invalid(f"Invalid tree info: mode {mode_s} is not valid", doc)
        mode = _MODES[mode_s]
        kind = _KIND_OF_MODE.get(mode, "blob")
        if entry.get("type") is not None and entry["type"] != kind:
            raise _invalid(f"Invalid tree info: mode {mode_s} is a {kind}, not a {entry['type']}", doc)
        has_sha = "sha" in entry
        has_content = "content" in entry
        if has_content and kind != "blob":
            # ``content`` makes a blob, which a tree or submodule entry cannot hold.
            raise _invalid(f"Invalid tree info: mode {mode_s} cannot take content", doc)
        if has_sha and has_content and entry["sha"] is not None:
            raise _invalid(
                "Must supply either tree.sha or tree.content. Request will be rejected if both are present.",
                doc,
            )
        if has_content:
            data = str(entry["content"]).encode()
            if len(data) > filesizes.LIMIT_BYTES:
                # Inline content is a blob too: the same 100 MiB limit (text a best guess).
                raise _invalid("Blob is too large: the limit is 100 MB", doc)
            sha = str(git.create_blob(data))
            changes.append(gitrepo.TreeChange(path, mode, sha))
        elif has_sha and entry["sha"] is None:
            changes.append(gitrepo.TreeChange(path, mode, None, delete=True))
        elif has_sha:
            obj = gitrepo.get_object(git, str(entry["sha"]))
            if mode != pygit2.GIT_FILEMODE_COMMIT and obj is None:
                raise _invalid("Invalid tree info", doc)
            if mode != pygit2.GIT_FILEMODE_COMMIT and obj is not None and obj.type_str != kind:
                # e.g. mode 100644 with a tree's SHA: the entry would corrupt the tree.
                raise _invalid("GitRPC::BadObjectState", doc)
            changes.append(gitrepo.TreeChange(path, mode, str(entry["sha"])))
        else:
            raise _invalid(
                "Must supply either tree.sha or tree.content. Request will be rejected if both are present.",
                doc,
            )
    try:
        sha = gitrepo.build_tree(git, base, changes)
    except gitrepo.MissingPathError:
        # GitHub's answer to deleting a path missing from base_tree.
        raise _invalid("GitRPC::BadObjectState", doc) from None
    tree = git.get(sha)
    assert isinstance(tree, pygit2.Tree)
    return json_response(_tree_json(emu, git, r, tree, False, request), status=201)


def _tree_json(
    emu: Emulator, git: pygit2.Repository, r: RepoRecord, tree: pygit2.Tree, recursive: bool, request: Request
) -> JSON:
    u = urls(request)
    limit = emu.config.tree_entry_limit
    entries: list[JSON] = []
    truncated = False

    def visit(t: pygit2.Tree, prefix: str) -> None:
        nonlocal truncated
        for e in t:
            if len(entries) >= limit:
                truncated = True
                return
            path = f"{prefix}{e.name}"
            kind = e.type_str
            size = None
            if kind == "blob":
                blob = git.get(e.id)
                size = blob.size if isinstance(blob, pygit2.Blob) else 0
            entries.append(payloads.tree_entry(path, e.filemode, kind, str(e.id), size, r, u))
            if recursive and kind == "tree":
                sub = git.get(e.id)
                assert isinstance(sub, pygit2.Tree)
                visit(sub, path + "/")
                if truncated:
                    return

    visit(tree, "")
    return payloads.git_tree(str(tree.id), entries, truncated, r, u)


@router.get("/repos/{owner}/{repo}/git/trees/{tree_sha:path}")
def get_tree(
    owner: str,
    repo: str,
    tree_sha: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    """``recursive`` with any value recurses; ``truncated`` is set past the entry limit."""
    r = repo_access(emu, who, owner, repo)
    git = _not_empty(emu.open_git(r))
    obj: pygit2.Object | None = gitrepo.get_object(git, tree_sha)
    if obj is None:
        commit = gitrepo.resolve_commit(git, tree_sha)
        obj = commit.tree if commit is not None else None
    if isinstance(obj, pygit2.Commit):
        obj = obj.tree
    if not isinstance(obj, pygit2.Tree):
        raise not_found(TREES_DOCS + "#get-a-tree")
    recursive = "recursive" in request.query_params
    return json_response(_tree_json(emu, git, r, obj, recursive, request))


# ---- commits ---------------------------------------------------------------------------------


def _signature(data: Any, fallback: pygit2.Signature) -> pygit2.Signature:
    if not isinstance(data, dict):
        return fallback
    name = str(data.get("name") or fallback.name)
    email = str(data.get("email") or fallback.email)
    when = fallback.time
    offset = 0
    if data.get("date"):
        try:
            dt = datetime.fromisoformat(str(data["date"]).replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(f"Invalid date: {data['date']}", COMMITS_DOCS + "#create-a-commit") from None
        when = int(dt.timestamp())
        off = dt.utcoffset()
        offset = int(off.total_seconds() // 60) if off is not None else 0
    return gitrepo.signature(name, email, when, offset)


@router.post("/repos/{owner}/{repo}/git/commits")
def create_commit(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """https://docs.github.com/rest/git/commits#create-a-commit"""
    r = repo_access(emu, who, owner, repo, write=True)
    doc = COMMITS_DOCS + "#create-a-commit"
    git = _not_empty(emu.open_git(r))
    message = body.get("message")
    if not isinstance(message, str):
        raise _invalid('Invalid request.\n\n"message" wasn\'t supplied.', doc)
    tree = gitrepo.get_object(git, str(body.get("tree", "")))
    if not isinstance(tree, pygit2.Tree):
        raise _invalid("Tree SHA does not exist", doc)
    parents = body.get("parents") or []
    if not isinstance(parents, list):
        raise _invalid("Invalid request.\n\nparents must be an array.", doc)
    for p in parents:
        if not isinstance(gitrepo.get_object(git, str(p)), pygit2.Commit):
            raise _invalid("Parent SHA does not exist or is not a commit object", doc)
    actor = emu.actor_user(who)
    default = gitrepo.signature(
        actor.login, actor.email or f"{actor.id}+{actor.login}@users.noreply.github.com"
    )
    author = _signature(body.get("author"), default)
    committer = _signature(body.get("committer"), author if body.get("author") else default)
    oid = git.create_commit(
        None, author, committer, message, tree.id, [pygit2.Oid(hex=str(p)) for p in parents]
    )
    c = git.get(oid)
    assert isinstance(c, pygit2.Commit)
    return json_response(payloads.git_commit(c, r, urls(request)), status=201)


@router.get("/repos/{owner}/{repo}/git/commits/{sha}")
def get_git_commit(
    owner: str,
    repo: str,
    sha: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    obj = gitrepo.get_object(_not_empty(emu.open_git(r)), sha)
    if not isinstance(obj, pygit2.Commit):
        raise not_found(COMMITS_DOCS + "#get-a-commit-object")
    return json_response(payloads.git_commit(obj, r, urls(request)))


# ---- refs ------------------------------------------------------------------------------------


def _ref_json(git: pygit2.Repository, r: RepoRecord, name: str, sha: str, request: Request) -> JSON:
    obj = git.get(sha)
    kind = obj.type_str if obj is not None else "commit"
    return payloads.git_ref(name, sha, kind, r, urls(request))


def _full_ref(ref: str) -> str:
    """``heads/main`` -> ``refs/heads/main``; raw and %2F-encoded slashes arrive the same.

    The path is read literally, as GitHub does: ``git/refs/refs/heads/x`` names
    ``refs/refs/heads/x``, which does not exist ("The ``:ref`` in the URL must be formatted as
    ``heads/<branch name>``", https://docs.github.com/rest/git/refs#get-a-reference; GitHub's
    "Reference does not exist" for such a path is recorded in
    https://github.com/jcabi/jcabi-github/issues/1335).
    """
    return f"refs/{ref.strip('/')}"


@router.get("/repos/{owner}/{repo}/git/ref/{ref:path}")
def get_ref(
    owner: str,
    repo: str,
    ref: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    git = _not_empty(emu.open_git(r))
    name = _full_ref(ref)
    sha = gitrepo.ref_target(git, name)
    if sha is None:
        raise not_found(REFS_DOCS + "#get-a-reference")
    return json_response(_ref_json(git, r, name, sha, request))


@router.get("/repos/{owner}/{repo}/git/matching-refs/{ref:path}")
def matching_refs(
    owner: str,
    repo: str,
    ref: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    git = _not_empty(emu.open_git(r))
    prefix = _full_ref(ref) if ref.strip("/") else "refs/"
    items = [
        _ref_json(git, r, n, s, request)
        for n, s in sorted(gitrepo.list_refs(git).items())
        if n.startswith(prefix)
    ]
    return json_response(items)


@router.get("/repos/{owner}/{repo}/git/refs")
@router.get("/repos/{owner}/{repo}/git/refs/{ref:path}")
def list_refs(
    owner: str,
    repo: str,
    request: Request,
    ref: str = "",
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    """Legacy form: an exact name returns one ref, a prefix returns a list."""
    r = repo_access(emu, who, owner, repo)
    git = emu.open_git(r)
    refs = gitrepo.list_refs(git)
    if ref.strip("/"):
        name = _full_ref(ref)
        if name in refs:
            return json_response(_ref_json(git, r, name, refs[name], request))
        items = [
            _ref_json(git, r, n, s, request) for n, s in sorted(refs.items()) if n.startswith(name + "/")
        ]
        if not items:
            raise not_found(REFS_DOCS + "#get-a-reference")
        return json_response(items)
    if not refs:
        raise GitHubError(409, "Git Repository is empty.", REFS_DOCS)
    return json_response([_ref_json(git, r, n, s, request) for n, s in sorted(refs.items())])


@router.post("/repos/{owner}/{repo}/git/refs")
def create_ref(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """https://docs.github.com/rest/git/refs#create-a-reference"""
    r = repo_access(emu, who, owner, repo, write=True)
    # "You are unable to create new references for empty repositories, even if the commit SHA-1
    # hash used exists" (https://docs.github.com/rest/git/refs#create-a-reference).
    _not_empty(emu.open_git(r))
    doc = REFS_DOCS + "#create-a-reference"
    name = body.get("ref")
    sha = body.get("sha")
    if not isinstance(name, str) or not isinstance(sha, str):
        missing = "ref" if not isinstance(name, str) else "sha"
        raise _invalid(f'Invalid request.\n\n"{missing}" wasn\'t supplied.', doc)
    if not name.startswith("refs/") or name.count("/") < 2 or not pygit2.reference_is_valid_name(name):
        raise (
            _invalid("Reference name must start with 'refs/' and have at least two slashes.", doc)
            if not name.startswith("refs/") or name.count("/") < 2
            else _invalid(f"{name} is not a valid ref name.", doc)
        )
    emu.update_ref(r, name, sha, force=True, actor=who, urls=urls(request), create=True)
    git = emu.open_git(r)
    return json_response(_ref_json(git, r, name, sha, request), status=201)


@router.patch("/repos/{owner}/{repo}/git/refs/{ref:path}")
def update_ref(
    owner: str,
    repo: str,
    ref: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """``force: false`` (default) refuses non-fast-forwards with 422 "Update is not a fast forward"."""
    r = repo_access(emu, who, owner, repo, write=True)
    _not_empty(emu.open_git(r))
    sha = body.get("sha")
    if not isinstance(sha, str):
        raise _invalid('Invalid request.\n\n"sha" wasn\'t supplied.', REFS_DOCS + "#update-a-reference")
    name = _full_ref(ref)
    emu.update_ref(r, name, sha, force=bool(body.get("force", False)), actor=who, urls=urls(request))
    return json_response(_ref_json(emu.open_git(r), r, name, sha, request))


@router.delete("/repos/{owner}/{repo}/git/refs/{ref:path}")
def delete_ref(
    owner: str,
    repo: str,
    ref: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo, write=True)
    _not_empty(emu.open_git(r))
    name = _full_ref(ref)
    doc = REFS_DOCS + "#delete-a-reference"
    # GitHub documents this 422 without a schema; its body is the usual error JSON, e.g.
    # {"message": "Reference does not exist", "documentation_url": ".../refs#delete-a-reference"}
    # (recorded in https://github.com/suzuki-shunsuke/lock-action/pull/255).
    if name == f"refs/heads/{r.default_branch}":
        # GitHub's exact text for the default branch is a best guess.
        raise GitHubError(422, "Cannot delete the default branch", doc)
    if gitrepo.ref_target(emu.open_git(r), name) is None:
        raise GitHubError(422, "Reference does not exist", doc)
    emu.update_ref(r, name, None, force=True, actor=who, urls=urls(request))
    return Response(status_code=204)
