"""REST routes for repositories: repo, branches, protection, commits, compare, contents, hooks."""

from __future__ import annotations

from typing import Any

import pygit2
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from github_emulator import gitrepo, payloads
from github_emulator.auth import Principal
from github_emulator.core import Emulator, GitHubError, not_found
from github_emulator.deps import emulator, json_response, paginate, principal, repo_access, require_auth, urls
from github_emulator.payloads import JSON, Urls
from github_emulator.store import RepoRecord, now_iso

router = APIRouter()

BRANCH_DOCS = "https://docs.github.com/rest/branches/branches#get-a-branch"
PROTECTION_DOCS = "https://docs.github.com/rest/branches/branch-protection#get-branch-protection"
CONTENTS_DOCS = "https://docs.github.com/rest/repos/contents#get-repository-content"
COMMITS_DOCS = "https://docs.github.com/rest/commits/commits#get-a-commit"
COMPARE_DOCS = "https://docs.github.com/rest/commits/commits#compare-two-commits"
# GitHub's compare limits (COMPARE_DOCS): commits without paging, changed files in all.
COMPARE_COMMIT_LIMIT = 250
COMPARE_FILE_LIMIT = 300


def repo_json(emu: Emulator, repo: RepoRecord, u: Urls) -> JSON:
    return payloads.full_repository(repo, emu.account(repo.owner), u, emu.repo_size(repo))


def commit_json(emu: Emulator, repo: RepoRecord, c: pygit2.Commit, u: Urls, with_files: bool = False) -> JSON:
    author = emu.store.user(c.author.name) if c.author.name else None
    committer = emu.store.user(c.committer.name) if c.committer.name else None
    files = stats = None
    if with_files:
        git = emu.open_git(repo)
        parent_tree = c.parents[0].tree if c.parents else None
        files = diff_files(git, parent_tree, c.tree, str(c.id), repo, u)
        adds = sum(f["additions"] for f in files)
        dels = sum(f["deletions"] for f in files)
        stats = {"total": adds + dels, "additions": adds, "deletions": dels}
    return payloads.commit(c, repo, u, author, committer, files, stats)


_STATUS = {
    pygit2.enums.DeltaStatus.ADDED: "added",
    pygit2.enums.DeltaStatus.DELETED: "removed",
    pygit2.enums.DeltaStatus.MODIFIED: "modified",
    pygit2.enums.DeltaStatus.RENAMED: "renamed",
    pygit2.enums.DeltaStatus.COPIED: "copied",
    pygit2.enums.DeltaStatus.TYPECHANGE: "changed",
}


def diff_files(
    git: pygit2.Repository,
    old: pygit2.Tree | None,
    new: pygit2.Tree,
    ref: str,
    repo: RepoRecord,
    u: Urls,
) -> list[JSON]:
    """``files`` of compare/commit: status, blob SHA (the old one for removed files), line counts."""
    diff = gitrepo.tree_diff(old, new)
    diff.find_similar()
    out: list[JSON] = []
    for patch in diff:
        if patch is None:
            continue
        delta = patch.delta
        status = _STATUS.get(delta.status, "modified")
        _, adds, dels = patch.line_stats
        removed = status == "removed"
        sha = str(delta.old_file.id if removed else delta.new_file.id)
        text = None
        if not delta.is_binary:
            full = patch.text or ""
            # GitHub's "patch" is the hunks only, without the diff header lines.
            idx = full.find("\n@@")
            text = full[idx + 1 :] if idx >= 0 else None
            if text is not None and text.endswith("\n"):
                text = text[:-1]
        out.append(
            payloads.diff_entry(
                delta.old_file.path if removed else delta.new_file.path,
                status,
                sha,
                adds,
                dels,
                ref,
                repo,
                u,
                text,
                delta.old_file.path if status in ("renamed", "copied") else None,
            )
        )
    return out


@router.get("/repos/{owner}/{repo}")
def get_repo(
    owner: str,
    repo: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    return json_response(repo_json(emu, r, urls(request)))


_EDITABLE = (
    "description",
    "homepage",
    "private",
    "has_issues",
    "has_projects",
    "has_wiki",
    "has_discussions",
    "archived",
    "allow_merge_commit",
    "allow_squash_merge",
    "allow_rebase_merge",
    "delete_branch_on_merge",
)


@router.patch("/repos/{owner}/{repo}")
def patch_repo(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """https://docs.github.com/rest/repos/repos#update-a-repository"""
    from github_emulator.lifecycle import archive_action

    # An archived repository takes one change, being unarchived (lifecycle.py).
    unarchiving = body.get("archived") is False and set(body) <= {"archived"}
    r = repo_access(emu, who, owner, repo, write=not unarchiving)
    was_archived = r.archived
    u = urls(request)
    changes: JSON = {}
    if "default_branch" in body and body["default_branch"] != r.default_branch:
        git = emu.open_git(r)
        if gitrepo.ref_target(git, f"refs/heads/{body['default_branch']}") is None:
            raise GitHubError(
                422,
                "Validation Failed",
                "https://docs.github.com/rest/repos/repos#update-a-repository",
                [
                    {
                        "resource": "Repository",
                        "code": "invalid",
                        "field": "default_branch",
                        "message": "Cannot update default branch for this repository to "
                        f"{body['default_branch']}",
                    }
                ],
            )
        changes["default_branch"] = {"from": r.default_branch}
        with emu.store.lock:
            r.default_branch = str(body["default_branch"])
            git.references.create("HEAD", f"refs/heads/{r.default_branch}", force=True)
    with emu.store.lock:
        for key in _EDITABLE:
            if key in body and getattr(r, key) != body[key]:
                if key in ("description", "homepage"):
                    changes[key] = {"from": getattr(r, key)}
                setattr(r, key, body[key])
        r.updated_at = now_iso()
        emu.store.save()
    if changes:
        emu.fire_repo_event(r, "edited", changes, who, u)
    archived = archive_action(was_archived, r.archived)
    if archived is not None:
        emu.fire_repo_event(r, archived, None, who, u)
    if "name" in body and body["name"] != r.name:
        emu.rename_repo(r, str(body["name"]), who, u)
    return json_response(repo_json(emu, r, u))


# ---- branches --------------------------------------------------------------------------------


@router.get("/repos/{owner}/{repo}/branches")
def list_branches(
    owner: str,
    repo: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    git = emu.open_git(r)
    u = urls(request)
    items = []
    want = request.query_params.get("protected")
    for name, sha in sorted(gitrepo.list_refs(git).items()):
        if not name.startswith("refs/heads/"):
            continue
        branch = name[len("refs/heads/") :]
        protected = branch in r.protections
        if want is not None and (want.lower() == "true") != protected:
            continue
        items.append(payloads.short_branch(branch, sha, protected, r, u))
    chunk, headers = paginate(request, items)
    return json_response(chunk, headers=headers)


@router.get("/repos/{owner}/{repo}/branches/{branch:path}/protection")
def get_protection(
    owner: str,
    repo: str,
    branch: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    _branch_sha(emu, r, branch)
    rules = r.protections.get(branch)
    if rules is None:
        raise GitHubError(404, "Branch not protected", PROTECTION_DOCS)
    return json_response(protection_json(emu, r, branch, rules, urls(request)))


@router.put("/repos/{owner}/{repo}/branches/{branch:path}/protection")
def put_protection(
    owner: str,
    repo: str,
    branch: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """https://docs.github.com/rest/branches/branch-protection#update-branch-protection"""
    r = repo_access(emu, who, owner, repo, write=True)
    _branch_sha(emu, r, branch)
    for required in (
        "required_status_checks",
        "enforce_admins",
        "required_pull_request_reviews",
        "restrictions",
    ):
        if required not in body:
            raise GitHubError(
                422,
                f'Invalid request.\n\n"{required}" wasn\'t supplied.',
                "https://docs.github.com/rest/branches/branch-protection#update-branch-protection",
            )
    rules = {k: v for k, v in body.items()}
    emu.set_protection(r, branch, rules)
    return json_response(protection_json(emu, r, branch, rules, urls(request)))


@router.delete("/repos/{owner}/{repo}/branches/{branch:path}/protection")
def delete_protection(
    owner: str,
    repo: str,
    branch: str,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo, write=True)
    _branch_sha(emu, r, branch)
    if branch not in r.protections:
        raise GitHubError(404, "Branch not protected", PROTECTION_DOCS)
    emu.set_protection(r, branch, None)
    return Response(status_code=204)


def protection_json(emu: Emulator, r: RepoRecord, branch: str, rules: JSON, u: Urls) -> JSON:
    """The ``branch-protection`` object with every field GitHub's example carries: besides
    :func:`payloads.protection`, ``restrictions`` (users, teams, apps with their URLs),
    ``enforcement_level`` of the status checks and the reviews' ``dismissal_restrictions`` and
    ``bypass_pull_request_allowances`` when set
    (https://docs.github.com/rest/branches/branch-protection#get-branch-protection)."""
    body = payloads.protection(branch, rules, r, u)
    url = body["url"]

    def people(spec: JSON, path: str, with_apps: bool = True) -> JSON:
        apps = {a.slug.lower(): a for a in emu.store.data.apps.values()}
        out: JSON = {
            "url": f"{url}/{path}",
            "users_url": f"{url}/{path}/users",
            "teams_url": f"{url}/{path}/teams",
            "users": [payloads.simple_user(emu.account(str(login)), u) for login in spec.get("users") or []],
            # Teams are not emulated: a team named in a rule matches nobody.
            "teams": [],
        }
        if with_apps:
            out["apps_url"] = f"{url}/{path}/apps"
            out["apps"] = [
                payloads.integration(apps[s.lower()], emu.account(apps[s.lower()].owner), u)
                for s in spec.get("apps") or []
                if s.lower() in apps
            ]
        return out

    restrictions = rules.get("restrictions")
    if restrictions is not None:
        body["restrictions"] = people(restrictions, "restrictions")
    if "required_status_checks" in body:
        admins = bool(rules.get("enforce_admins"))
        body["required_status_checks"]["enforcement_level"] = "everyone" if admins else "non_admins"
    reviews = rules.get("required_pull_request_reviews") or {}
    if "required_pull_request_reviews" in body:
        if reviews.get("dismissal_restrictions") is not None:
            dismissal = people(reviews["dismissal_restrictions"], "dismissal_restrictions")
            body["required_pull_request_reviews"]["dismissal_restrictions"] = dismissal
        if reviews.get("bypass_pull_request_allowances") is not None:
            bypass = people(reviews["bypass_pull_request_allowances"], "bypass_pull_request_allowances")
            for key in ("url", "users_url", "teams_url", "apps_url"):
                bypass.pop(key, None)
            body["required_pull_request_reviews"]["bypass_pull_request_allowances"] = bypass
    return body


def _branch_sha(emu: Emulator, r: RepoRecord, branch: str) -> str:
    sha = gitrepo.ref_target(emu.open_git(r), f"refs/heads/{branch}")
    if sha is None:
        raise GitHubError(404, "Branch not found", BRANCH_DOCS)
    return sha


@router.get("/repos/{owner}/{repo}/branches/{branch:path}")
def get_branch(
    owner: str,
    repo: str,
    branch: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    sha = _branch_sha(emu, r, branch)
    u = urls(request)
    c = emu.open_git(r).get(sha)
    assert isinstance(c, pygit2.Commit)
    body = payloads.branch_with_protection(branch, commit_json(emu, r, c, u), r.protections.get(branch), r, u)
    return json_response(body)


# ---- commits, compare, contents --------------------------------------------------------------


@router.get("/repos/{owner}/{repo}/commits")
def list_commits(
    owner: str,
    repo: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    git = emu.open_git(r)
    start = request.query_params.get("sha") or r.default_branch
    c = gitrepo.resolve_commit(git, start)
    if c is None:
        if gitrepo.has_no_refs(git):
            raise GitHubError(
                409, "Git Repository is empty.", "https://docs.github.com/rest/commits/commits#list-commits"
            )
        raise not_found("https://docs.github.com/rest/commits/commits#list-commits")
    path = request.query_params.get("path")
    u = urls(request)
    items: list[JSON] = []
    for commit in git.walk(c.id, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME):
        if path:
            parent_tree = commit.parents[0].tree if commit.parents else None
            if _entry_sha(commit.tree, path) == (_entry_sha(parent_tree, path) if parent_tree else None):
                continue
        items.append(commit_json(emu, r, commit, u))
        if len(items) >= 1000:
            break
    chunk, headers = paginate(request, items)
    return json_response(chunk, headers=headers)


def _entry_sha(tree: pygit2.Tree | None, path: str) -> str | None:
    if tree is None:
        return None
    try:
        return str(tree[path].id)
    except KeyError:
        return None


@router.get("/repos/{owner}/{repo}/commits/{ref:path}")
def get_commit(
    owner: str,
    repo: str,
    ref: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    c = gitrepo.resolve_commit(emu.open_git(r), ref)
    if c is None:
        raise GitHubError(422, f"No commit found for SHA: {ref}", COMMITS_DOCS)
    return json_response(commit_json(emu, r, c, urls(request), with_files=True))


@router.get("/repos/{owner}/{repo}/compare/{basehead:path}")
def compare(
    owner: str,
    repo: str,
    basehead: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    """https://docs.github.com/rest/commits/commits#compare-two-commits

    GitHub: "When calling this endpoint without any paging parameter (``per_page`` or ``page``),
    the returned list is limited to 250 commits, and the last commit in the list is the most
    recent of the entire comparison." With paging, pages run in chronological order and "The
    list of changed files is only shown on the first page of results, and it includes up to 300
    changed files for the entire comparison." ``total_commits`` counts the whole comparison.
    Later pages carry ``files: []`` (absent or empty is a best guess). Histories without a
    common ancestor answer 404 "No common ancestor between BASE and HEAD." (GitHub's text, as
    recorded in https://github.com/caarlos0/fork-cleaner/issues/31).
    """
    r = repo_access(emu, who, owner, repo)
    if "..." not in basehead:
        raise not_found(COMPARE_DOCS)
    base_name, head_name = basehead.split("...", 1)
    git = emu.open_git(r)
    base = gitrepo.resolve_commit(git, base_name)
    head = gitrepo.resolve_commit(git, head_name)
    if base is None or head is None:
        raise not_found(COMPARE_DOCS)
    u = urls(request)
    mb_oid = git.merge_base(base.id, head.id)
    if mb_oid is None:
        raise GitHubError(404, f"No common ancestor between {base_name} and {head_name}.", COMPARE_DOCS)
    mb = git.get(mb_oid)
    assert isinstance(mb, pygit2.Commit)
    ahead, behind = git.ahead_behind(head.id, base.id)
    if ahead == 0 and behind == 0:
        status = "identical"
    elif behind == 0:
        status = "ahead"
    elif ahead == 0:
        status = "behind"
    else:
        status = "diverged"
    every = gitrepo.commits_between(git, str(head.id), [str(mb.id)])
    paged = "page" in request.query_params or "per_page" in request.query_params
    headers: dict[str, str] = {}
    if paged:
        chunk, headers = paginate(request, every)
        try:
            first_page = int(request.query_params.get("page", 1)) <= 1
        except ValueError:
            first_page = True
    else:
        chunk, first_page = every[-COMPARE_COMMIT_LIMIT:], True
    commits = [commit_json(emu, r, c, u) for c in chunk]
    files = diff_files(git, mb.tree, head.tree, str(head.id), r, u)[:COMPARE_FILE_LIMIT] if first_page else []
    body = payloads.comparison(
        base_name,
        head_name,
        commit_json(emu, r, base, u),
        commit_json(emu, r, mb, u),
        status,
        ahead,
        behind,
        commits,
        files,
        r,
        u,
    )
    body["total_commits"] = len(every)
    return json_response(body, headers=headers)


@router.get("/repos/{owner}/{repo}/contents")
@router.get("/repos/{owner}/{repo}/contents/{path:path}")
def get_contents(
    owner: str,
    repo: str,
    request: Request,
    path: str = "",
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    git = emu.open_git(r)
    ref = request.query_params.get("ref") or r.default_branch
    c = gitrepo.resolve_commit(git, ref)
    if c is None:
        if gitrepo.has_no_refs(git):
            raise GitHubError(404, "This repository is empty.", CONTENTS_DOCS)
        raise GitHubError(404, f"No commit found for the ref {ref}", CONTENTS_DOCS)
    path = path.strip("/")
    u = urls(request)
    if path:
        try:
            entry = c.tree[path]
        except KeyError:
            raise not_found(CONTENTS_DOCS) from None
        obj = git.get(entry.id)
    else:
        obj = c.tree
    if isinstance(obj, pygit2.Blob):
        return json_response(payloads.content_file(path, obj, ref, r, u))
    assert isinstance(obj, pygit2.Tree)
    items = []
    for e in obj:
        child = f"{path}/{e.name}" if path else str(e.name)
        if e.type_str == "tree":
            items.append(payloads.content_entry(child, str(e.id), "dir", 0, ref, r, u))
        elif e.type_str == "commit":
            items.append(payloads.content_entry(child, str(e.id), "submodule", 0, ref, r, u))
        else:
            blob = git.get(e.id)
            assert isinstance(blob, pygit2.Blob)
            kind = "symlink" if e.filemode == pygit2.GIT_FILEMODE_LINK else "file"
            items.append(payloads.content_entry(child, str(e.id), kind, blob.size, ref, r, u))
    return json_response(items)


# ---- repository hooks ------------------------------------------------------------------------


@router.post("/repos/{owner}/{repo}/hooks")
def create_hook(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    """https://docs.github.com/rest/repos/webhooks#create-a-repository-webhook (sends ``ping``)."""
    r = repo_access(emu, who, owner, repo, write=True)
    config = body.get("config") or {}
    if not isinstance(config, dict) or not config.get("url"):
        raise GitHubError(
            422,
            "Validation Failed",
            "https://docs.github.com/rest/repos/webhooks#create-a-repository-webhook",
            [{"resource": "Hook", "code": "custom", "message": "Config must contain URL for webhooks"}],
        )
    u = urls(request)
    hook = emu.create_repo_hook(
        r, config, list(body.get("events") or ["push"]), bool(body.get("active", True)), u, actor=who
    )
    return json_response(payloads.repo_hook(hook, r, u), status=201)


@router.get("/repos/{owner}/{repo}/hooks")
def list_hooks(
    owner: str,
    repo: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    u = urls(request)
    items = [
        payloads.repo_hook(emu.store.data.hooks[h], r, u) for h in r.hook_ids if h in emu.store.data.hooks
    ]
    chunk, headers = paginate(request, items)
    return json_response(chunk, headers=headers)


@router.delete("/repos/{owner}/{repo}/hooks/{hook_id}")
def delete_hook(
    owner: str,
    repo: str,
    hook_id: int,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo, write=True)
    with emu.store.lock:
        if hook_id not in r.hook_ids:
            raise not_found()
        r.hook_ids.remove(hook_id)
        emu.store.data.hooks.pop(hook_id, None)
        emu.store.save()
    return Response(status_code=204)


# ---- the caller ------------------------------------------------------------------------------


@router.get("/user")
def get_user(
    request: Request, emu: Emulator = Depends(emulator), who: Principal = Depends(require_auth)
) -> Response:
    if who.kind != "user" or who.user_login is None:
        raise GitHubError(403, "Resource not accessible by integration")
    user = emu.store.user(who.user_login)
    assert user is not None
    return json_response(payloads.private_user(user, urls(request)))


@router.get("/rate_limit")
def rate_limit(
    request: Request, emu: Emulator = Depends(emulator), who: Principal = Depends(principal)
) -> Response:
    """Not charged, as on GitHub (https://docs.github.com/rest/rate-limit/rate-limit)."""
    from github_emulator import traffic

    core = traffic.rate_status(emu, who)
    graphql = traffic.rate_status(emu, who, "graphql") if who.kind != "anonymous" else None
    return json_response(payloads.rate_limit_overview(*core, graphql=graphql))
