"""Every JSON body the emulator sends: REST responses, error bodies and webhook payloads.

All shapes follow GitHub's REST OpenAPI description (``@octokit/openapi``,
``generated/api.github.com.json``) and ``@octokit/webhooks-schemas``; keeping every builder in
this one module means a fidelity fix lands in one place. Builders are pure: they take records
and git objects and return plain ``dict``s.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pygit2

from github_emulator.store import (
    AppRecord,
    DeliveryRecord,
    HookRecord,
    InstallationRecord,
    PullRecord,
    RepoRecord,
    UserRecord,
)

JSON = dict[str, Any]

DOCS = "https://docs.github.com/rest"


@dataclass(frozen=True, slots=True)
class Urls:
    """Where the emulator is reached: ``api`` for REST links, ``web`` for html/clone links."""

    api: str
    web: str

    @classmethod
    def for_base(cls, base: str) -> Urls:
        base = base.rstrip("/")
        return cls(api=base, web=base)


def node_id(kind: str, ident: int) -> str:
    """GitHub's legacy global node id: base64 of ``"0<len>:<Type><id>"`` (e.g. MDEwOlJlcG9zaXRvcnkx)."""
    raw = f"0{len(kind):02d}:{kind}{ident}" if len(kind) < 10 else f"{len(kind):03d}:{kind}{ident}"
    return base64.b64encode(raw.encode()).decode()


def sha_node_id(kind: str, repo_id: int, sha: str) -> str:
    return base64.b64encode(f"{kind}:{repo_id}:{sha}".encode()).decode()


# ---- errors ----------------------------------------------------------------------------------


def error_body(
    message: str, status: int, documentation_url: str = DOCS, errors: list[JSON] | None = None
) -> JSON:
    """GitHub's error body; ``status`` is a string since GitHub added it in 2023."""
    body: JSON = {"message": message, "documentation_url": documentation_url, "status": str(status)}
    if errors is not None:
        body = {
            "message": message,
            "errors": errors,
            "documentation_url": documentation_url,
            "status": str(status),
        }
    return body


def moved_permanently(url: str) -> JSON:
    # https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api (redirects)
    return {"message": "Moved Permanently", "url": url, "documentation_url": DOCS}


# ---- users and apps --------------------------------------------------------------------------


def simple_user(user: UserRecord, urls: Urls) -> JSON:
    # A bot's login has brackets, which GitHub percent-encodes in its URLs (they are not allowed
    # in an RFC 3986 path), and its html_url is the App's page, as GitHub's own recordings show:
    # "url": "https://api.github.com/users/github-actions%5Bbot%5D",
    # "html_url": "https://github.com/apps/github-actions", "node_id" "MDM6Qm90..." ("03:Bot<id>").
    bot = user.type == "Bot"
    api = f"{urls.api}/users/{quote(user.login, safe='')}"
    kind = {"Organization": "Organization", "Bot": "Bot"}.get(user.type, "User")
    return {
        "login": user.login,
        "id": user.id,
        "node_id": node_id(kind, user.id),
        "avatar_url": f"{urls.web}/avatars/u/{user.id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/apps/{user.login.removesuffix('[bot]')}"
        if bot
        else f"{urls.web}/{user.login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": user.type,
        "user_view_type": "public",
        "site_admin": False,
    }


def organization_simple(org: UserRecord, urls: Urls) -> JSON:
    """``organization-simple`` (and webhooks' ``organization``), as GitHub's examples show it."""
    api = f"{urls.api}/orgs/{org.login}"
    return {
        "login": org.login,
        "id": org.id,
        "node_id": node_id("Organization", org.id),
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"{urls.web}/avatars/u/{org.id}?v=4",
        "description": "",
    }


def private_user(user: UserRecord, urls: Urls) -> JSON:
    """``GET /user`` for a user token (the ``private-user`` schema)."""
    body = simple_user(user, urls)
    created = user.created_at
    body.update(
        {
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": user.email,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": created,
            "updated_at": created,
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": False,
            "plan": {"collaborators": 0, "name": "free", "space": 976562499, "private_repos": 10000},
            # users/get-authenticated's oneOf is discriminated by user_view_type: "private"
            # selects private-user (public-user has additionalProperties: false).
            "user_view_type": "private",
        }
    )
    return body


def public_user(user: UserRecord, urls: Urls) -> JSON:
    """``GET /users/{username}`` as anyone else sees a user (the ``public-user`` schema)."""
    private = private_user(user, urls)
    body = {key: private[key] for key in private if key not in _PRIVATE_ONLY}
    body["user_view_type"] = "public"
    if user.type == "Bot":
        body["email"] = None
    return body


_PRIVATE_ONLY = frozenset(
    {
        "private_gists",
        "total_private_repos",
        "owned_private_repos",
        "disk_usage",
        "collaborators",
        "two_factor_authentication",
        "plan",
        "business_plus",
        "ldap_dn",
    }
)


_ROLE_PERMISSIONS = {
    "admin": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    "maintain": {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
    "write": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    "triage": {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
    "read": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
}


def collaborator_permission(user: UserRecord, role: str, urls: Urls) -> JSON:
    """``GET /repos/{o}/{r}/collaborators/{u}/permission`` (``repository-collaborator-permission``).

    ``role`` is ``admin``/``maintain``/``write``/``triage``/``read``; ``permission`` is the legacy
    name (``write`` for maintain/write, ``read`` for triage/read). ``user`` is the
    ``nullable-collaborator`` schema, which requires ``role_name`` and carries ``permissions``.
    """
    legacy = {"maintain": "write", "triage": "read"}.get(role, role)
    collaborator = simple_user(user, urls)
    collaborator["permissions"] = dict(_ROLE_PERMISSIONS[role])
    collaborator["role_name"] = role
    return {"permission": legacy, "role_name": role, "user": collaborator}


def bot_user(app: AppRecord, urls: Urls) -> UserRecord:
    """The ``<slug>[bot]`` account an app acts as (sender of events it causes)."""
    return UserRecord(
        id=app.id + 100_000_000, login=f"{app.slug}[bot]", type="Bot", created_at=app.created_at
    )


def integration(app: AppRecord, owner: UserRecord, urls: Urls) -> JSON:
    """``GET /app`` (the ``integration`` schema)."""
    return {
        "id": app.id,
        "slug": app.slug,
        "node_id": node_id("Integration", app.id),
        "client_id": app.client_id,
        "owner": simple_user(owner, urls),
        "name": app.name,
        "description": "",
        "external_url": f"{urls.web}/apps/{app.slug}",
        "html_url": f"{urls.web}/apps/{app.slug}",
        "created_at": app.created_at,
        "updated_at": app.updated_at,
        "permissions": dict(app.permissions),
        "events": list(app.events),
        "installations_count": 0,
    }


def installation(inst: InstallationRecord, app: AppRecord, account: UserRecord, urls: Urls) -> JSON:
    """The ``installation`` schema (``GET /app/installations``, ``/repos/{o}/{r}/installation``)."""
    return {
        "id": inst.id,
        "account": simple_user(account, urls),
        "repository_selection": inst.repository_selection,
        "access_tokens_url": f"{urls.api}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{urls.api}/installation/repositories",
        "html_url": f"{urls.web}/settings/installations/{inst.id}",
        "app_id": app.id,
        "client_id": app.client_id,
        "target_id": account.id,
        "target_type": account.type,
        "permissions": dict(app.permissions),
        "events": list(app.events),
        "created_at": inst.created_at,
        "updated_at": inst.updated_at,
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "app_slug": app.slug,
        "suspended_by": inst.suspended_by,
        "suspended_at": inst.suspended_at,
    }


def installation_token(
    token: str,
    expires_at: float,
    permissions: dict[str, str],
    selection: str,
    repositories: list[JSON] | None,
) -> JSON:
    body: JSON = {
        "token": token,
        "expires_at": datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "permissions": dict(permissions),
        "repository_selection": selection,
    }
    if repositories is not None:
        body["repositories"] = repositories
    return body


# ---- repositories ----------------------------------------------------------------------------


def _repo_urls(repo: RepoRecord, urls: Urls) -> JSON:
    api = f"{urls.api}/repos/{repo.full_name}"
    host = urls.web.split("://", 1)[-1]
    return {
        "html_url": f"{urls.web}/{repo.full_name}",
        "url": api,
        "forks_url": f"{api}/forks",
        "keys_url": f"{api}/keys{{/key_id}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "teams_url": f"{api}/teams",
        "hooks_url": f"{api}/hooks",
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "events_url": f"{api}/events",
        "assignees_url": f"{api}/assignees{{/user}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "tags_url": f"{api}/tags",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "languages_url": f"{api}/languages",
        "stargazers_url": f"{api}/stargazers",
        "contributors_url": f"{api}/contributors",
        "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription",
        "commits_url": f"{api}/commits{{/sha}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "comments_url": f"{api}/comments{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "merges_url": f"{api}/merges",
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{api}/downloads",
        "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "labels_url": f"{api}/labels{{/name}}",
        "releases_url": f"{api}/releases{{/id}}",
        "deployments_url": f"{api}/deployments",
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host}:{repo.full_name}.git",
        "clone_url": f"{urls.web}/{repo.full_name}.git",
        "svn_url": f"{urls.web}/{repo.full_name}",
        "mirror_url": None,
    }


def _repo_core(repo: RepoRecord, owner: UserRecord, urls: Urls, size: int) -> JSON:
    body: JSON = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": simple_user(owner, urls),
        "description": repo.description,
        "fork": False,
    }
    body.update(_repo_urls(repo, urls))
    body.update(
        {
            "homepage": repo.homepage,
            "language": None,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": size,
            "default_branch": repo.default_branch,
            "open_issues_count": 0,
            "is_template": False,
            "topics": list(repo.topics),
            "has_issues": repo.has_issues,
            "has_projects": repo.has_projects,
            "has_wiki": repo.has_wiki,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": repo.has_discussions,
            "archived": repo.archived,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "pushed_at": repo.pushed_at,
            "created_at": repo.created_at,
            "updated_at": repo.updated_at,
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "license": None,
            "forks": 0,
            "open_issues": 0,
            "watchers": 0,
        }
    )
    return body


_PERMISSIONS = {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True}


def full_repository(repo: RepoRecord, owner: UserRecord, urls: Urls, size: int = 0) -> JSON:
    """``GET /repos/{owner}/{repo}`` (the ``full-repository`` schema)."""
    body = _repo_core(repo, owner, urls, size)
    body.update(
        {
            "permissions": dict(_PERMISSIONS),
            "allow_rebase_merge": repo.allow_rebase_merge,
            "allow_squash_merge": repo.allow_squash_merge,
            "allow_merge_commit": repo.allow_merge_commit,
            "allow_auto_merge": False,
            "delete_branch_on_merge": repo.delete_branch_on_merge,
            "allow_update_branch": False,
            "use_squash_pr_title_as_default": False,
            "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
            "squash_merge_commit_message": "COMMIT_MESSAGES",
            "merge_commit_title": "MERGE_MESSAGE",
            "merge_commit_message": "PR_TITLE",
            "temp_clone_token": "",
            "network_count": 0,
            "subscribers_count": 0,
        }
    )
    if owner.type == "Organization":
        body["organization"] = simple_user(owner, urls)
    return body


def repository(repo: RepoRecord, owner: UserRecord, urls: Urls, size: int = 0) -> JSON:
    """The ``repository`` schema (installation repository lists, PR heads/bases)."""
    body = _repo_core(repo, owner, urls, size)
    body["permissions"] = dict(_PERMISSIONS)
    body.update(
        {
            "allow_rebase_merge": repo.allow_rebase_merge,
            "allow_squash_merge": repo.allow_squash_merge,
            "allow_merge_commit": repo.allow_merge_commit,
            "allow_auto_merge": False,
            "delete_branch_on_merge": repo.delete_branch_on_merge,
            "allow_update_branch": False,
            "use_squash_pr_title_as_default": False,
        }
    )
    return body


def _epoch(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def webhook_repository(
    repo: RepoRecord, owner: UserRecord, urls: Urls, size: int = 0, push: bool = False
) -> JSON:
    """``repository`` in webhook payloads; push events send integer timestamps and an owner
    with ``name``/``email`` (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push).
    """
    body = repository(repo, owner, urls, size)
    body.pop("permissions", None)
    body["custom_properties"] = {}
    if push:
        body["created_at"] = _epoch(repo.created_at)
        body["pushed_at"] = _epoch(repo.pushed_at)
        body["owner"]["name"] = owner.login
        body["owner"]["email"] = owner.email
        body["stargazers"] = 0
        body["master_branch"] = repo.default_branch
        if owner.type == "Organization":
            body["organization"] = owner.login
    return _webhook_users(body)


def _strip_user_view_type(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_user_view_type(v) for k, v in value.items() if k != "user_view_type"}
    if isinstance(value, list):
        return [_strip_user_view_type(v) for v in value]
    return value


def _webhook_users(body: JSON) -> JSON:
    """Drop ``user_view_type`` from every user object of a webhook payload (a copy).

    ``@octokit/webhooks-schemas`` defines ``user`` with ``additionalProperties: false`` and no
    ``user_view_type`` (GitHub's own x-webhooks description has it optional), so webhook users
    omit it to satisfy both.
    """
    stripped: JSON = _strip_user_view_type(body)
    return stripped


def installation_ref(inst_id: int) -> JSON:
    return {"id": inst_id, "node_id": node_id("Installation", inst_id)}


# ---- git objects -----------------------------------------------------------------------------


def _tz(sig: pygit2.Signature) -> timezone:
    return timezone(timedelta(minutes=sig.offset))


def git_date(sig: pygit2.Signature) -> str:
    """Git Data API dates are UTC with ``Z`` (https://docs.github.com/en/rest/git/commits)."""
    return datetime.fromtimestamp(sig.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def webhook_date(sig: pygit2.Signature) -> str:
    """Push payload timestamps keep the author's offset, e.g. ``2024-01-01T10:00:00+02:00``."""
    return datetime.fromtimestamp(sig.time, _tz(sig)).isoformat()


def _person(sig: pygit2.Signature) -> JSON:
    return {"name": sig.name, "email": sig.email, "date": git_date(sig)}


_UNSIGNED = {
    "verified": False,
    "reason": "unsigned",
    "signature": None,
    "payload": None,
    "verified_at": None,
}


def _parents(commit: pygit2.Commit, repo: RepoRecord, urls: Urls, git: bool) -> list[JSON]:
    api = f"{urls.api}/repos/{repo.full_name}"
    kind = "git/commits" if git else "commits"
    return [
        {
            "sha": str(p),
            "url": f"{api}/{kind}/{p}",
            "html_url": f"{urls.web}/{repo.full_name}/commit/{p}",
        }
        for p in commit.parent_ids
    ]


def git_commit(commit: pygit2.Commit, repo: RepoRecord, urls: Urls) -> JSON:
    """``GET/POST /repos/{o}/{r}/git/commits`` (the ``git-commit`` schema)."""
    sha = str(commit.id)
    api = f"{urls.api}/repos/{repo.full_name}"
    return {
        "sha": sha,
        "node_id": sha_node_id("Commit", repo.id, sha),
        "url": f"{api}/git/commits/{sha}",
        "html_url": f"{urls.web}/{repo.full_name}/commit/{sha}",
        "author": _person(commit.author),
        "committer": _person(commit.committer),
        "tree": {"sha": str(commit.tree_id), "url": f"{api}/git/trees/{commit.tree_id}"},
        "message": commit.message,
        "parents": _parents(commit, repo, urls, git=True),
        "verification": dict(_UNSIGNED),
    }


def commit(
    commit: pygit2.Commit,
    repo: RepoRecord,
    urls: Urls,
    author: UserRecord | None = None,
    committer: UserRecord | None = None,
    files: list[JSON] | None = None,
    stats: JSON | None = None,
) -> JSON:
    """The ``commit`` schema (``GET /repos/{o}/{r}/commits/{ref}``, compare, PR commits)."""
    sha = str(commit.id)
    api = f"{urls.api}/repos/{repo.full_name}"
    body: JSON = {
        "url": f"{api}/commits/{sha}",
        "sha": sha,
        "node_id": sha_node_id("Commit", repo.id, sha),
        "html_url": f"{urls.web}/{repo.full_name}/commit/{sha}",
        "comments_url": f"{api}/commits/{sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{sha}",
            "author": _person(commit.author),
            "committer": _person(commit.committer),
            "message": commit.message,
            "comment_count": 0,
            "tree": {"sha": str(commit.tree_id), "url": f"{api}/git/trees/{commit.tree_id}"},
            "verification": dict(_UNSIGNED),
        },
        "author": simple_user(author, urls) if author else None,
        "committer": simple_user(committer, urls) if committer else None,
        "parents": _parents(commit, repo, urls, git=False),
    }
    if stats is not None:
        body["stats"] = stats
    if files is not None:
        body["files"] = files
    return body


def short_blob(sha: str, repo: RepoRecord, urls: Urls) -> JSON:
    return {"url": f"{urls.api}/repos/{repo.full_name}/git/blobs/{sha}", "sha": sha}


def _b64(data: bytes) -> str:
    # GitHub wraps base64 content at 60 characters with "\n" (blobs and contents).
    encoded = base64.b64encode(data).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


def blob(obj: pygit2.Blob, repo: RepoRecord, urls: Urls) -> JSON:
    sha = str(obj.id)
    return {
        "sha": sha,
        "node_id": sha_node_id("Blob", repo.id, sha),
        "size": obj.size,
        "url": f"{urls.api}/repos/{repo.full_name}/git/blobs/{sha}",
        "content": _b64(obj.data),
        "encoding": "base64",
    }


def tree_entry(
    path: str, mode: int, kind: str, sha: str, size: int | None, repo: RepoRecord, urls: Urls
) -> JSON:
    entry: JSON = {"path": path, "mode": f"{mode:06o}", "type": kind, "sha": sha}
    api = f"{urls.api}/repos/{repo.full_name}"
    if kind == "blob":
        entry["size"] = size
        entry["url"] = f"{api}/git/blobs/{sha}"
    elif kind == "tree":
        entry["url"] = f"{api}/git/trees/{sha}"
    return entry


def git_tree(sha: str, entries: list[JSON], truncated: bool, repo: RepoRecord, urls: Urls) -> JSON:
    return {
        "sha": sha,
        "url": f"{urls.api}/repos/{repo.full_name}/git/trees/{sha}",
        "tree": entries,
        "truncated": truncated,
    }


def git_ref(name: str, sha: str, kind: str, repo: RepoRecord, urls: Urls) -> JSON:
    """The ``git-ref`` schema; ``kind`` is the target's type (``commit`` or ``tag``)."""
    api = f"{urls.api}/repos/{repo.full_name}"
    return {
        "ref": name,
        "node_id": base64.b64encode(f"Ref:{repo.id}:{name}".encode()).decode(),
        "url": f"{api}/git/{name}",
        "object": {
            "sha": sha,
            "type": kind,
            "url": f"{api}/git/{'commits' if kind == 'commit' else kind + 's'}/{sha}",
        },
    }


# ---- branches and protection -----------------------------------------------------------------


def short_branch(name: str, sha: str, protected: bool, repo: RepoRecord, urls: Urls) -> JSON:
    api = f"{urls.api}/repos/{repo.full_name}"
    return {
        "name": name,
        "commit": {"sha": sha, "url": f"{api}/commits/{sha}"},
        "protected": protected,
    }


def protection(branch: str, rules: JSON, repo: RepoRecord, urls: Urls) -> JSON:
    """``GET .../branches/{branch}/protection`` (the ``branch-protection`` schema)."""
    url = f"{urls.api}/repos/{repo.full_name}/branches/{branch}/protection"
    body: JSON = {"url": url}
    checks = rules.get("required_status_checks")
    if checks is not None:
        contexts = list(checks.get("contexts") or [])
        body["required_status_checks"] = {
            "url": f"{url}/required_status_checks",
            "strict": bool(checks.get("strict", False)),
            "contexts": contexts,
            "contexts_url": f"{url}/required_status_checks/contexts",
            "checks": [{"context": c, "app_id": None} for c in contexts],
        }
    reviews = rules.get("required_pull_request_reviews")
    if reviews is not None:
        body["required_pull_request_reviews"] = {
            "url": f"{url}/required_pull_request_reviews",
            "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews", False)),
            "require_code_owner_reviews": bool(reviews.get("require_code_owner_reviews", False)),
            "required_approving_review_count": int(reviews.get("required_approving_review_count", 1)),
            "require_last_push_approval": bool(reviews.get("require_last_push_approval", False)),
        }
    body["enforce_admins"] = {
        "url": f"{url}/enforce_admins",
        "enabled": bool(rules.get("enforce_admins")),
    }
    for key in (
        "required_linear_history",
        "allow_force_pushes",
        "allow_deletions",
        "block_creations",
        "required_conversation_resolution",
        "lock_branch",
        "allow_fork_syncing",
    ):
        body[key] = {"enabled": bool(rules.get(key))}
    body["required_signatures"] = {"url": f"{url}/required_signatures", "enabled": False}
    return body


def branch_with_protection(
    name: str,
    head: JSON,
    rules: JSON | None,
    repo: RepoRecord,
    urls: Urls,
) -> JSON:
    """``GET /repos/{o}/{r}/branches/{branch}``; ``head`` is the :func:`commit` payload."""
    url = f"{urls.api}/repos/{repo.full_name}/branches/{name}"
    checks = (rules or {}).get("required_status_checks") or {}
    contexts = list(checks.get("contexts") or [])
    return {
        "name": name,
        "commit": head,
        "_links": {"self": url, "html": f"{urls.web}/{repo.full_name}/tree/{name}"},
        "protected": rules is not None,
        "protection": {
            "enabled": rules is not None,
            "required_status_checks": {
                "enforcement_level": "non_admins" if contexts else "off",
                "contexts": contexts,
                "checks": [{"context": c, "app_id": None} for c in contexts],
            },
        },
        "protection_url": f"{url}/protection",
    }


# ---- compare and contents --------------------------------------------------------------------


def diff_entry(
    filename: str,
    status: str,
    sha: str,
    additions: int,
    deletions: int,
    ref: str,
    repo: RepoRecord,
    urls: Urls,
    patch: str | None = None,
    previous_filename: str | None = None,
) -> JSON:
    api = f"{urls.api}/repos/{repo.full_name}"
    entry: JSON = {
        "sha": sha,
        "filename": filename,
        "status": status,
        "additions": additions,
        "deletions": deletions,
        "changes": additions + deletions,
        "blob_url": f"{urls.web}/{repo.full_name}/blob/{ref}/{filename}",
        "raw_url": f"{urls.web}/{repo.full_name}/raw/{ref}/{filename}",
        "contents_url": f"{api}/contents/{filename}?ref={ref}",
    }
    if patch is not None:
        entry["patch"] = patch
    if previous_filename is not None:
        entry["previous_filename"] = previous_filename
    return entry


def comparison(
    base: str,
    head: str,
    base_commit: JSON,
    merge_base_commit: JSON,
    status: str,
    ahead_by: int,
    behind_by: int,
    commits: list[JSON],
    files: list[JSON],
    repo: RepoRecord,
    urls: Urls,
) -> JSON:
    """``GET /repos/{o}/{r}/compare/{base}...{head}`` (the ``commit-comparison`` schema)."""
    api = f"{urls.api}/repos/{repo.full_name}"
    web = f"{urls.web}/{repo.full_name}"
    return {
        "url": f"{api}/compare/{base}...{head}",
        "html_url": f"{web}/compare/{base}...{head}",
        "permalink_url": f"{web}/compare/{base_commit['sha']}...{head}",
        "diff_url": f"{web}/compare/{base}...{head}.diff",
        "patch_url": f"{web}/compare/{base}...{head}.patch",
        "base_commit": base_commit,
        "merge_base_commit": merge_base_commit,
        "status": status,
        "ahead_by": ahead_by,
        "behind_by": behind_by,
        "total_commits": len(commits),
        "commits": commits,
        "files": files,
    }


def _content_links(path: str, sha: str, kind: str, ref: str, repo: RepoRecord, urls: Urls) -> JSON:
    api = f"{urls.api}/repos/{repo.full_name}"
    git_url = f"{api}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}"
    html = f"{urls.web}/{repo.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{path}"
    self_url = f"{api}/contents/{path}?ref={ref}"
    return {
        "url": self_url,
        "git_url": git_url,
        "html_url": html,
        "download_url": (f"{urls.web}/{repo.full_name}/raw/{ref}/{path}" if kind == "file" else None),
        "_links": {"self": self_url, "git": git_url, "html": html},
    }


def content_entry(path: str, sha: str, kind: str, size: int, ref: str, repo: RepoRecord, urls: Urls) -> JSON:
    """One item of a directory listing from ``GET /contents/{path}``."""
    body: JSON = {
        "type": kind,
        "size": size,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
    }
    body.update(_content_links(path, sha, kind, ref, repo, urls))
    return body


def content_file(path: str, obj: pygit2.Blob, ref: str, repo: RepoRecord, urls: Urls) -> JSON:
    """``GET /contents/{path}`` for a file (the ``content-file`` schema)."""
    sha = str(obj.id)
    body: JSON = {
        "type": "file",
        "encoding": "base64",
        "size": obj.size,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": _b64(obj.data),
        "sha": sha,
    }
    body.update(_content_links(path, sha, "file", ref, repo, urls))
    return body


# ---- pull requests ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullStats:
    commits: int
    additions: int
    deletions: int
    changed_files: int
    mergeable: bool | None


def _pull_ref(label_owner: str, ref: str, sha: str, repo_json: JSON, user: JSON) -> JSON:
    return {"label": f"{label_owner}:{ref}", "ref": ref, "sha": sha, "user": user, "repo": repo_json}


def pull_request(
    pr: PullRecord,
    repo: RepoRecord,
    owner: UserRecord,
    author: UserRecord,
    merged_by: UserRecord | None,
    stats: PullStats | None,
    urls: Urls,
) -> JSON:
    """The ``pull-request`` schema; without ``stats`` the ``pull-request-simple`` one (lists)."""
    api = f"{urls.api}/repos/{repo.full_name}"
    web = f"{urls.web}/{repo.full_name}"
    n = pr.number
    repo_json = repository(repo, owner, urls)
    owner_json = simple_user(owner, urls)
    body: JSON = {
        "url": f"{api}/pulls/{n}",
        "id": pr.id,
        "node_id": node_id("PullRequest", pr.id),
        "html_url": f"{web}/pull/{n}",
        "diff_url": f"{web}/pull/{n}.diff",
        "patch_url": f"{web}/pull/{n}.patch",
        "issue_url": f"{api}/issues/{n}",
        "commits_url": f"{api}/pulls/{n}/commits",
        "review_comments_url": f"{api}/pulls/{n}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{n}/comments",
        "statuses_url": f"{api}/statuses/{pr.head_sha}",
        "number": n,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": simple_user(author, urls),
        "body": pr.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "closed_at": pr.closed_at,
        "merged_at": pr.merged_at,
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _pull_ref(owner.login, pr.head_ref, pr.head_sha, repo_json, owner_json),
        "base": _pull_ref(owner.login, pr.base_ref, pr.base_sha, repo_json, owner_json),
        "_links": {
            "self": {"href": f"{api}/pulls/{n}"},
            "html": {"href": f"{web}/pull/{n}"},
            "issue": {"href": f"{api}/issues/{n}"},
            "comments": {"href": f"{api}/issues/{n}/comments"},
            "review_comments": {"href": f"{api}/pulls/{n}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/pulls/{n}/commits"},
            "statuses": {"href": f"{api}/statuses/{pr.head_sha}"},
        },
        "author_association": "OWNER" if author.login == owner.login else "CONTRIBUTOR",
        "auto_merge": None,
        "draft": pr.draft,
    }
    if stats is not None:
        merged = pr.merged_at is not None
        if merged or pr.state == "closed" or stats.mergeable is None:
            mergeable_state = "unknown"
        else:
            mergeable_state = "clean" if stats.mergeable else "dirty"
        body.update(
            {
                "merged": merged,
                "mergeable": None if merged else stats.mergeable,
                "rebaseable": None if merged else stats.mergeable,
                "mergeable_state": mergeable_state,
                "merged_by": simple_user(merged_by, urls) if merged_by else None,
                "comments": 0,
                "review_comments": 0,
                "maintainer_can_modify": pr.maintainer_can_modify,
                "commits": stats.commits,
                "additions": stats.additions,
                "deletions": stats.deletions,
                "changed_files": stats.changed_files,
            }
        )
    return body


def pull_merge_result(sha: str) -> JSON:
    return {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}


# ---- hooks and deliveries --------------------------------------------------------------------


def hook_config(url: str | None, secret: str | None, content_type: str = "json") -> JSON:
    """``GET /app/hook/config`` (``webhook-config``); GitHub masks the secret."""
    # webhook-config's url and secret are strings (not nullable): omit them when unset.
    body: JSON = {"content_type": content_type, "insecure_ssl": "0"}
    if url is not None:
        body["url"] = url
    if secret:
        body["secret"] = "********"
    return body


def repo_hook(hook: HookRecord, repo: RepoRecord, urls: Urls) -> JSON:
    api = f"{urls.api}/repos/{repo.full_name}/hooks/{hook.id}"
    return {
        "type": "Repository",
        "id": hook.id,
        "name": "web",
        "active": hook.active,
        "events": list(hook.events),
        "config": hook_config(hook.url, hook.secret, hook.content_type),
        "updated_at": hook.updated_at,
        "created_at": hook.created_at,
        "url": api,
        "test_url": f"{api}/test",
        "ping_url": f"{api}/pings",
        "deliveries_url": f"{api}/deliveries",
        "last_response": {"code": None, "status": "unused", "message": None},
    }


def delivery_item(d: DeliveryRecord) -> JSON:
    """``GET /app/hook/deliveries`` items (the ``hook-delivery-item`` schema)."""
    return {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": d.delivered_at,
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": None,
    }


def delivery_detail(d: DeliveryRecord) -> JSON:
    """``GET /app/hook/deliveries/{id}`` (the ``hook-delivery`` schema)."""
    import json

    body = delivery_item(d)
    body["url"] = d.url
    body["request"] = {"headers": dict(d.request_headers), "payload": json.loads(d.payload)}
    body["response"] = {"headers": dict(d.response_headers), "payload": d.response_body}
    return body


# ---- webhook payloads ------------------------------------------------------------------------


def push_commit(
    c: pygit2.Commit, repo: RepoRecord, urls: Urls, distinct: bool, files: dict[str, list[str]]
) -> JSON:
    """A ``commits[]`` / ``head_commit`` item of a push payload."""
    sha = str(c.id)
    return {
        "id": sha,
        "tree_id": str(c.tree_id),
        "distinct": distinct,
        "message": c.message,
        "timestamp": webhook_date(c.committer),
        "url": f"{urls.web}/{repo.full_name}/commit/{sha}",
        # webhooks-schemas `committer`: username is a string, present only for GitHub users
        "author": {"name": c.author.name, "email": c.author.email},
        "committer": {"name": c.committer.name, "email": c.committer.email},
        "added": files.get("added", []),
        "removed": files.get("removed", []),
        "modified": files.get("modified", []),
    }


def push_event(
    ref: str,
    before: str,
    after: str,
    forced: bool,
    commits: list[JSON],
    head_commit: JSON | None,
    repo_json: JSON,
    pusher: UserRecord,
    sender: JSON,
    base_ref: str | None,
    compare: str,
) -> JSON:
    """The ``push`` event (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push)."""
    zero = "0" * 40
    body: JSON = {
        "ref": ref,
        "before": before,
        "after": after,
        "repository": repo_json,
        "pusher": {"name": pusher.login, "email": pusher.email},
        "sender": sender,
        "created": before == zero,
        "deleted": after == zero,
        "forced": forced,
        "base_ref": base_ref,
        "compare": compare,
        "commits": commits,
        "head_commit": head_commit,
    }
    return _webhook_users(body)


def create_event(ref: str, ref_type: str, repo_json: JSON, sender: JSON, default_branch: str) -> JSON:
    """The ``create`` event (a branch or tag was created)."""
    return _webhook_users(
        {
            "ref": ref,
            "ref_type": ref_type,
            "master_branch": default_branch,
            "description": repo_json.get("description"),
            "pusher_type": "user",
            "repository": repo_json,
            "sender": sender,
        }
    )


def delete_event(ref: str, ref_type: str, repo_json: JSON, sender: JSON) -> JSON:
    """The ``delete`` event (a branch or tag was deleted)."""
    return _webhook_users(
        {
            "ref": ref,
            "ref_type": ref_type,
            "pusher_type": "user",
            "repository": repo_json,
            "sender": sender,
        }
    )


def pull_request_event(
    action: str, pr_json: JSON, repo_json: JSON, sender: JSON, extra: JSON | None = None
) -> JSON:
    """The ``pull_request`` event (opened, synchronize, closed, edited, reopened)."""
    body: JSON = {"action": action, "number": pr_json["number"]}
    if extra:
        body.update(extra)
    body.update({"pull_request": pr_json, "repository": repo_json, "sender": sender})
    body = _webhook_users(body)
    # head.repo / base.repo are webhooks-schemas `repository`, which requires custom_properties.
    for side in ("head", "base"):
        side_repo = body["pull_request"].get(side, {}).get("repo")
        if isinstance(side_repo, dict):
            side_repo.setdefault("custom_properties", {})
    return body


def repository_event(action: str, repo_json: JSON, sender: JSON, changes: JSON | None) -> JSON:
    """The ``repository`` event (renamed, edited, ...)."""
    body: JSON = {"action": action}
    if changes is not None:
        body["changes"] = changes
    body.update({"repository": repo_json, "sender": sender})
    return _webhook_users(body)


def _webhook_installation(inst_json: JSON) -> JSON:
    """webhooks-schemas `installation` has additionalProperties: false and no client_id."""
    body: JSON = _webhook_users(inst_json)
    body.pop("client_id", None)
    return body


def installation_repo_item(repo: RepoRecord) -> JSON:
    return {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
    }


def installation_event(action: str, inst_json: JSON, repos: list[RepoRecord], sender: JSON) -> JSON:
    """The ``installation`` event (created, deleted)."""
    body: JSON = {
        "action": action,
        "installation": _webhook_installation(inst_json),
        "repositories": [installation_repo_item(r) for r in repos],
        "sender": _webhook_users(sender),
    }
    # webhooks-schemas: `requester` is a user for created (omitted when unknown), null otherwise.
    if action != "created":
        body["requester"] = None
    return body


def installation_repositories_event(
    action: str,
    inst_json: JSON,
    selection: str,
    added: list[RepoRecord],
    removed: list[RepoRecord],
    sender: JSON,
) -> JSON:
    """The ``installation_repositories`` event (added, removed)."""
    return {
        "action": action,
        "installation": _webhook_installation(inst_json),
        "repository_selection": selection,
        "repositories_added": [installation_repo_item(r) for r in added],
        "repositories_removed": [installation_repo_item(r) for r in removed],
        "requester": None,
        "sender": _webhook_users(sender),
    }


def ping_event(hook_id: int, hook_json: JSON, sender: JSON | None, app_id: int | None) -> JSON:
    """The ``ping`` event sent when a hook is set up."""
    body: JSON = {"zen": "Keep it logically awesome.", "hook_id": hook_id, "hook": hook_json}
    if sender is not None:
        body["sender"] = _webhook_users(sender)
    if app_id is not None:
        body["hook"]["app_id"] = app_id
    return body


def app_hook(app: AppRecord, urls: Urls) -> JSON:
    """The ``hook`` object inside an app's ping (type ``App``)."""
    return {
        "type": "App",
        "id": app.hook_id,
        "name": "web",
        "active": app.webhook_active,
        "events": list(app.events),
        "config": hook_config(app.webhook_url, app.webhook_secret),
        "updated_at": app.updated_at,
        "created_at": app.created_at,
        "app_id": app.id,
        "deliveries_url": f"{urls.api}/app/hook/deliveries",
    }


def rate_limit_overview(
    limit: int, remaining: int, reset: int, used: int, graphql: tuple[int, int, int, int] | None = None
) -> JSON:
    core = {"limit": limit, "remaining": remaining, "reset": reset, "used": used}
    # rate-limit-overview requires resources.core and resources.search (30 a minute on GitHub).
    search = {"limit": 30, "remaining": 30, "reset": reset, "used": 0}
    resources: JSON = {"core": core, "search": search}
    if graphql is not None:
        g_limit, g_remaining, g_reset, g_used = graphql
        resources["graphql"] = {"limit": g_limit, "remaining": g_remaining, "reset": g_reset, "used": g_used}
    return {"resources": resources, "rate": core}
