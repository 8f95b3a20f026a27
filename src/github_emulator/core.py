"""The emulator's state machine: operations that change repositories and the events they fire.

Routes (REST, git smart HTTP, control) call these methods; they hold the per-repository lock
for ref changes, persist state, and hand webhook payloads to the dispatcher.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pygit2

from github_emulator import gitrepo, payloads, protection
from github_emulator.auth import Principal, generate_key_pair, new_token
from github_emulator.config import EmulatorConfig
from github_emulator.faults import Fault
from github_emulator.payloads import JSON, Urls
from github_emulator.ratelimits import TrafficState
from github_emulator.store import (
    AppRecord,
    HookRecord,
    InstallationRecord,
    PullRecord,
    RepoRecord,
    Store,
    TokenRecord,
    UserRecord,
    now_iso,
)
from github_emulator.webhooks import Dispatcher, WebhookMode, make_delivery, new_guid

PROTECTION_DOCS = "https://docs.github.com/articles/about-protected-branches"
REFS_DOCS = "https://docs.github.com/rest/git/refs"


class GitHubError(Exception):
    """An error response in GitHub's form (status, message, optional ``errors``)."""

    def __init__(
        self,
        status: int,
        message: str,
        documentation_url: str = payloads.DOCS,
        errors: list[JSON] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> JSON:
        return payloads.error_body(self.message, self.status, self.documentation_url, self.errors)


# How long a repository's reported `size` stands before it is calculated again (GitHub: hourly).
SIZE_RECALCULATED_SECONDS = 3600.0


def not_found(doc: str = payloads.DOCS) -> GitHubError:
    return GitHubError(404, "Not Found", doc)


@dataclass
class RequestLogEntry:
    """One row of ``GET /_emulator/requests`` (REST, GraphQL and git smart HTTP requests).

    ``path`` is without ``/api/v3`` and without the query string, which is ``query``; ``route``
    is the template that served it (``/repos/{owner}/{repo}/git/refs``; None when none did);
    ``fault`` says what the emulator did instead of (or to) serving it: ``status``, ``latency``,
    ``reset``, ``reset_after``, ``truncate``, ``secondary_rate_limit:<reason>`` or ``suspended``
    (a suspended installation's token). Git rows carry
    their ``service`` and, for pushes, the ``ref_updates`` the push made.
    """

    method: str
    path: str
    status: int
    installation_id: int | None
    at: str
    user: str | None = None
    query: str = ""
    duration_ms: float = 0.0
    route: str | None = None
    kind: str = "rest"  # "rest", "graphql" or "git"
    content_creating: bool = False
    service: str | None = None
    ref_updates: list[dict[str, str]] = field(default_factory=list)
    fault: str | None = None


GITHUB_COMMITTER = ("GitHub", "noreply@github.com")


class Emulator:
    """All emulator state and behaviour for one data directory."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(config.data_dir)
        self.dispatcher = Dispatcher(self.store, config.webhook_timeout_seconds, config.webhook_workers)
        self.faults: list[Fault] = []
        self.requests: list[RequestLogEntry] = []
        self.rate: dict[str, tuple[float, int]] = {}  # key -> (window reset epoch, used)
        self.traffic = TrafficState(time.monotonic)  # secondary-limit windows, requests in flight
        self.runtime_lock = threading.Lock()
        self.base_url = ""
        self._sizes: dict[int, tuple[float, int]] = {}  # repo id -> (calculated at, KB)

    def close(self) -> None:
        self.dispatcher.close()

    def reset(self) -> None:
        self.dispatcher.clear()
        with self.runtime_lock:
            self.faults.clear()
            self.requests.clear()
            self.rate.clear()
        self.traffic.clear()
        self.dispatcher.set_mode("deliver", 0)
        self.store.reset()

    # ---- accounts, apps, installations ---------------------------------------------------

    def open_git(self, repo: RepoRecord) -> pygit2.Repository:
        return pygit2.Repository(str(self.store.git_dir(repo.id)))

    def account(self, login: str) -> UserRecord:
        return self.store.ensure_account(login)

    def actor_user(self, principal: Principal) -> UserRecord:
        """The account an action is attributed to (the App's bot for installation tokens)."""
        if principal.kind == "user" and principal.user_login:
            return self.store.ensure_account(principal.user_login)
        if principal.app_id is not None:
            app = self.store.data.apps.get(principal.app_id)
            if app is not None:
                return payloads.bot_user(app, Urls.for_base(self.base_url))
        return self.store.ensure_account("ghost")

    def create_app(
        self,
        slug: str,
        webhook_url: str | None,
        webhook_secret: str | None,
        urls: Urls,
        name: str | None = None,
        owner: str | None = None,
        events: list[str] | None = None,
        permissions: dict[str, str] | None = None,
    ) -> AppRecord:
        private_pem, public_pem = generate_key_pair()
        with self.store.lock:
            if any(a.slug == slug for a in self.store.data.apps.values()):
                raise GitHubError(422, f"App slug {slug!r} already exists")
            app_id = self.store.new_id()
            created = now_iso()
            app = AppRecord(
                id=app_id,
                slug=slug,
                name=name or slug,
                owner=owner or "emulator",
                client_id=f"Iv1.{app_id:016x}",
                private_key_pem=private_pem,
                public_key_pem=public_pem,
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
                hook_id=self.store.new_id(),
                created_at=created,
                updated_at=created,
                events=events
                # installation and installation_repositories reach every App unsubscribed
                # (https://docs.github.com/en/apps/creating-github-apps/registering-a-github-app/using-webhooks-with-github-apps).
                or ["create", "delete", "pull_request", "push", "repository"],
                permissions=permissions
                or {
                    "administration": "write",
                    "contents": "write",
                    "metadata": "read",
                    "pull_requests": "write",
                },
            )
            self.store.ensure_account(app.owner)
            self.store.data.apps[app_id] = app
            self.store.save()
        if webhook_url:
            self.send_app_ping(app, urls)
        return app

    def send_app_ping(self, app: AppRecord, urls: Urls) -> None:
        if not app.webhook_url:
            return
        body = payloads.ping_event(app.hook_id, payloads.app_hook(app, urls), None, app.id)
        self._deliver_to_app(app, "ping", None, body, None, None)

    def update_app_hook(self, app: AppRecord, urls: Urls, changes: JSON) -> AppRecord:
        with self.store.lock:
            if "url" in changes:
                app.webhook_url = changes["url"]
            if "secret" in changes:
                app.webhook_secret = changes["secret"]
            app.updated_at = now_iso()
            self.store.save()
        if "url" in changes and app.webhook_url:
            self.send_app_ping(app, urls)
        return app

    def create_user(self, login: str, name: str | None = None, email: str | None = None) -> UserRecord:
        with self.store.lock:
            user = self.store.ensure_account(login)
            if name is not None:
                user.name = name
            if email is not None:
                user.email = email
            if user.email is None:
                user.email = f"{user.id}+{login}@users.noreply.github.com"
            if user.token is None:
                user.token = new_token("ghp_")
                self.store.data.tokens[user.token] = TokenRecord(
                    token=user.token, kind="user", user_login=user.login
                )
            self.store.save()
            return user

    def create_installation(
        self, app_id: int, account: str, repositories: list[str], urls: Urls, selection: str
    ) -> InstallationRecord:
        with self.store.lock:
            app = self.store.data.apps.get(app_id)
            if app is None:
                raise GitHubError(404, "Not Found")
            acct = self.store.ensure_account(account)
            repo_ids = [self.repo_by_full_name(full).id for full in repositories]
            created = now_iso()
            inst = InstallationRecord(
                id=self.store.new_id(),
                app_id=app_id,
                account=acct.login,
                repository_selection=selection,
                repository_ids=repo_ids,
                created_at=created,
                updated_at=created,
            )
            self.store.data.installations[inst.id] = inst
            self.store.save()
            repos = [self.store.data.repos[i] for i in repo_ids]
        sender = payloads.simple_user(acct, urls)
        body = payloads.installation_event(
            "created", payloads.installation(inst, app, acct, urls), repos, sender
        )
        self._deliver_to_app(app, "installation", "created", body, inst.id, None)
        return inst

    def change_installation_repos(
        self, inst: InstallationRecord, add: list[str], remove: list[str], urls: Urls
    ) -> None:
        with self.store.lock:
            app = self.store.data.apps[inst.app_id]
            added = [self.repo_by_full_name(f) for f in add]
            removed = [self.repo_by_full_name(f) for f in remove]
            added = [r for r in added if r.id not in inst.repository_ids]
            removed = [r for r in removed if r.id in inst.repository_ids]
            inst.repository_ids.extend(r.id for r in added)
            inst.repository_ids = [i for i in inst.repository_ids if i not in {r.id for r in removed}]
            inst.updated_at = now_iso()
            acct = self.store.ensure_account(inst.account)
            self.store.save()
        inst_json = payloads.installation(inst, app, acct, urls)
        sender = payloads.simple_user(acct, urls)
        for action, changed in (("added", added), ("removed", removed)):
            if changed:
                body = payloads.installation_repositories_event(
                    action,
                    inst_json,
                    inst.repository_selection,
                    changed if action == "added" else [],
                    changed if action == "removed" else [],
                    sender,
                )
                self._deliver_to_app(app, "installation_repositories", action, body, inst.id, None)

    def delete_installation(self, inst: InstallationRecord, urls: Urls) -> None:
        with self.store.lock:
            app = self.store.data.apps[inst.app_id]
            acct = self.store.ensure_account(inst.account)
            repos = [self.store.data.repos[i] for i in inst.repository_ids if i in self.store.data.repos]
            del self.store.data.installations[inst.id]
            for tok in [t for t, r in self.store.data.tokens.items() if r.installation_id == inst.id]:
                del self.store.data.tokens[tok]
            self.store.save()
        body = payloads.installation_event(
            "deleted",
            payloads.installation(inst, app, acct, urls),
            repos,
            payloads.simple_user(acct, urls),
        )
        self._deliver_to_app(app, "installation", "deleted", body, inst.id, None)

    def issue_installation_token(
        self,
        inst: InstallationRecord,
        repositories: list[str] | None,
        repository_ids: list[int] | None,
        permissions: dict[str, str] | None,
    ) -> TokenRecord:
        if inst.suspended_at is not None:
            # https://docs.github.com/en/rest/apps/apps#suspend-an-app-installation (the
            # message is a best guess: GitHub documents none).
            raise GitHubError(
                403,
                "This installation has been suspended",
                "https://docs.github.com/rest/apps/apps#suspend-an-app-installation",
            )
        with self.store.lock:
            app = self.store.data.apps[inst.app_id]
            restrict: list[int] | None = None
            if repositories is not None or repository_ids is not None:
                restrict = []
                for name in repositories or []:
                    found = self.store.find_repo(inst.account, name)
                    if found is None or found.id not in inst.repository_ids:
                        raise GitHubError(
                            422,
                            "There is at least one repository that does not exist or is not "
                            "accessible to the parent installation.",
                            "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
                        )
                    restrict.append(found.id)
                for rid in repository_ids or []:
                    if rid not in inst.repository_ids:
                        raise GitHubError(
                            422,
                            "There is at least one repository that does not exist or is not "
                            "accessible to the parent installation.",
                            "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
                        )
                    restrict.append(rid)
            record = TokenRecord(
                token=new_token("ghs_"),
                kind="installation",
                installation_id=inst.id,
                expires_at=time.time() + self.config.token_ttl_seconds,
                repository_ids=restrict,
                permissions=permissions or dict(app.permissions),
            )
            self.store.data.tokens[record.token] = record
            self.store.save()
            return record

    def expire_tokens(self, token: str | None, installation_id: int | None) -> int:
        """Expire matching installation/user tokens now (the control API's "expire on demand")."""
        count = 0
        with self.store.lock:
            for record in self.store.data.tokens.values():
                if (token is not None and record.token == token) or (
                    installation_id is not None and record.installation_id == installation_id
                ):
                    record.expires_at = time.time() - 1
                    count += 1
            self.store.save()
        return count

    # ---- repositories --------------------------------------------------------------------

    def repo_by_full_name(self, full: str) -> RepoRecord:
        owner, _, name = full.partition("/")
        repo = self.store.find_repo(owner, name)
        if repo is None:
            raise GitHubError(422, f"Repository {full} does not exist")
        return repo

    def repo_size(self, repo: RepoRecord) -> int:
        """The repository's `size` in KB, as GitHub reports it: "Size is calculated hourly" (the
        repository object's schema, https://docs.github.com/en/rest/repos/repos#get-a-repository). So
        a read does not walk every object file: the figure is recomputed at most once an hour."""
        now = time.monotonic()
        with self.runtime_lock:
            cached = self._sizes.get(repo.id)
        if cached is not None and now - cached[0] < SIZE_RECALCULATED_SECONDS:
            return cached[1]
        total = 0
        pack_dir = self.store.git_dir(repo.id) / "objects"
        for path in pack_dir.rglob("*"):
            if path.is_file():
                total += path.stat().st_size
        with self.runtime_lock:
            self._sizes[repo.id] = (now, total // 1024)
        return total // 1024

    def create_repo(
        self,
        owner: str,
        name: str,
        default_branch: str,
        private: bool,
        files: dict[str, str] | None,
        description: str | None = None,
        auto_init: bool = False,
    ) -> RepoRecord:
        with self.store.lock:
            if self.store.find_repo(owner, name) is not None:
                raise GitHubError(
                    422,
                    "Repository creation failed.",
                    "https://docs.github.com/rest/repos/repos#create-a-repository-for-the-authenticated-user",
                    errors=[
                        {
                            "resource": "Repository",
                            "code": "custom",
                            "field": "name",
                            "message": "name already exists on this account",
                        }
                    ],
                )
            acct = self.store.ensure_account(owner)
            created = now_iso()
            repo = RepoRecord(
                id=self.store.new_id(),
                owner=acct.login,
                name=name,
                private=private,
                description=description,
                default_branch=default_branch,
                created_at=created,
                updated_at=created,
                pushed_at=created,
            )
            git = gitrepo.init_bare(self.store.git_dir(repo.id), default_branch)
            if not files and auto_init:
                files = {"README.md": f"# {name}\n"}
            if files:
                sig = gitrepo.signature(acct.login, acct.email or f"{acct.login}@users.noreply.github.com")
                sha = gitrepo.commit_files(git, files, "Initial commit", [], sig)
                git.references.create(f"refs/heads/{default_branch}", pygit2.Oid(hex=sha))
            self.store.data.redirects.pop(repo.full_name.lower(), None)
            self.store.data.repos[repo.id] = repo
            self.store.save()
            return repo

    def rename_repo(self, repo: RepoRecord, new_name: str, actor: Principal, urls: Urls) -> None:
        with self.store.lock:
            if new_name.lower() != repo.name.lower() and self.store.find_repo(repo.owner, new_name):
                raise GitHubError(
                    422,
                    "Repository creation failed.",
                    errors=[
                        {
                            "resource": "Repository",
                            "code": "custom",
                            "field": "name",
                            "message": "name already exists on this account",
                        }
                    ],
                )
            old = repo.name
            # GitHub keeps redirecting the old name until a new repo takes it
            # (https://docs.github.com/en/repositories/creating-and-managing-repositories/renaming-a-repository).
            self.store.data.redirects[repo.full_name.lower()] = repo.id
            repo.name = new_name
            repo.updated_at = now_iso()
            self.store.save()
        self.fire_repo_event(repo, "renamed", {"repository": {"name": {"from": old}}}, actor, urls)

    def fire_repo_event(
        self, repo: RepoRecord, action: str, changes: JSON | None, actor: Principal, urls: Urls
    ) -> None:
        def build(_: bool) -> JSON:
            owner = self.store.ensure_account(repo.owner)
            return payloads.repository_event(
                action,
                payloads.webhook_repository(repo, owner, urls),
                payloads.simple_user(self.actor_user(actor), urls),
                changes,
            )

        self.emit(repo, "repository", action, build)

    def set_protection(self, repo: RepoRecord, branch: str, rules: JSON | None) -> None:
        with self.store.lock:
            if rules is None:
                repo.protections.pop(branch, None)
            else:
                repo.protections[branch] = rules
            self.store.save()
            self.write_hook_rules(repo)

    def write_hook_rules(self, repo: RepoRecord) -> None:
        """The pre-receive hook reads the rules as they were PUT (see :mod:`protection`)."""
        rules = {branch: dict(r) for branch, r in repo.protections.items()}
        gitrepo.write_protection_rules(self.store.git_dir(repo.id), rules)

    def pusher(self, principal: Principal | None, repo: RepoRecord) -> protection.Pusher:
        """Who a ref update is attributed to, for protection's ``restrictions``/``enforce_admins``.

        The repository's owner is its administrator (as ``collaborators/{u}/permission`` says);
        an installation acts as its App, which is never an administrator.
        """
        if principal is None:
            return protection.Pusher()
        if principal.kind == "user" and principal.user_login:
            return protection.Pusher(
                login=principal.user_login, admin=principal.user_login.lower() == repo.owner.lower()
            )
        app = self.store.data.apps.get(principal.app_id) if principal.app_id is not None else None
        return protection.Pusher(app_slug=app.slug if app else None)

    def check_protection(
        self,
        git: pygit2.Repository,
        repo: RepoRecord,
        ref: str,
        old: str | None,
        new: str | None,
        actor: Principal | None = None,
    ) -> None:
        """Refuse a REST ref update that branch protection forbids, with every reason
        (policy and sources: :mod:`github_emulator.protection`)."""
        if not ref.startswith("refs/heads/"):
            return
        rules = repo.protections.get(ref[len("refs/heads/") :])
        if rules is None:
            return
        forced = old is not None and new is not None and not gitrepo.is_ancestor(git, old, new)
        reasons = protection.refusals(
            rules, deleting=new is None, forced=forced, pusher=self.pusher(actor, repo), rest=True
        )
        if reasons:
            raise GitHubError(422, " ".join(reasons), PROTECTION_DOCS)

    def update_ref(
        self,
        repo: RepoRecord,
        ref: str,
        new: str | None,
        *,
        force: bool,
        actor: Principal,
        urls: Urls,
        create: bool = False,
        skip_protection: bool = False,
    ) -> None:
        """Create, move or delete a ref through the REST API, with GitHub's checks and events."""
        with self.store.repo_lock(repo.id):
            git = self.open_git(repo)
            old = gitrepo.ref_target(git, ref)
            if create and old is not None:
                raise GitHubError(422, "Reference already exists", REFS_DOCS + "#create-a-reference")
            if not create and old is None:
                raise GitHubError(422, "Reference does not exist", REFS_DOCS + "#update-a-reference")
            if new is not None:
                obj = gitrepo.get_object(git, new)
                if obj is None:
                    raise GitHubError(422, "Object does not exist", REFS_DOCS)
                if ref.startswith("refs/heads/") and not isinstance(obj, pygit2.Commit):
                    # A branch names a commit ("a simple pointer or reference to the head of a
                    # line of work", https://git-scm.com/book/en/v2/Git-Internals-Git-References);
                    # GitHub refuses others with 422, its exact text here is a best guess.
                    raise GitHubError(422, "Reference update failed", REFS_DOCS)
                if old is not None and not force and ref.startswith("refs/heads/"):
                    target = obj.peel(pygit2.Commit) if isinstance(obj, pygit2.Commit) else None
                    if target is None or not gitrepo.is_ancestor(git, old, new):
                        raise GitHubError(
                            422, "Update is not a fast forward", REFS_DOCS + "#update-a-reference"
                        )
            if not skip_protection:
                self.check_protection(git, repo, ref, old, new, actor)
            if new is None:
                git.references.delete(ref)
            else:
                git.references.create(ref, pygit2.Oid(hex=new), force=True)
            changes = {ref: (old or gitrepo.ZERO_SHA, new or gitrepo.ZERO_SHA)}
        self.on_refs_changed(repo, changes, actor, urls)

    def on_refs_changed(
        self,
        repo: RepoRecord,
        changes: dict[str, tuple[str, str]],
        actor: Principal,
        urls: Urls,
    ) -> None:
        """Fire push/create/delete events and keep pull requests in step after ref changes.

        ``changes`` is every ref one push (or REST call) changed: ref -> (before, after).
        """
        if not changes:
            return
        with self.store.lock:
            repo.pushed_at = now_iso()
            self.store.save()
        from github_emulator import pushes

        pushes.fire_ref_events(self, repo, changes, actor, urls)

    # ---- hooks and events ----------------------------------------------------------------

    def create_repo_hook(
        self,
        repo: RepoRecord,
        config: JSON,
        events: list[str],
        active: bool,
        urls: Urls,
        actor: Principal | None = None,
    ) -> HookRecord:
        with self.store.lock:
            created = now_iso()
            hook = HookRecord(
                id=self.store.new_id(),
                repo_id=repo.id,
                url=str(config.get("url")),
                secret=config.get("secret"),
                content_type=str(config.get("content_type", "json")),
                events=events or ["push"],
                active=active,
                created_at=created,
                updated_at=created,
            )
            self.store.data.hooks[hook.id] = hook
            repo.hook_ids.append(hook.id)
            self.store.save()
        # A repository hook's ping names who created the hook, as GitHub's recorded pings do.
        sender = payloads.simple_user(self.actor_user(actor), urls) if actor is not None else None
        body = payloads.ping_event(hook.id, payloads.repo_hook(hook, repo, urls), sender, None)
        body["repository"] = payloads.webhook_repository(repo, self.account(repo.owner), urls)
        self._deliver(
            "ping", None, body, hook.id, "repository", repo.id, hook.url, hook.secret, None, repo.id
        )
        return hook

    def emit(
        self,
        repo: RepoRecord,
        event: str,
        action: str | None,
        build: Any,
    ) -> None:
        """Deliver ``build(for_app)`` to the installed App's hook and to matching repo hooks.

        App deliveries carry ``installation``; repository hook deliveries do not
        (https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers).
        """
        inst = self.store.installation_for_repo(repo.id)
        if inst is not None:
            app = self.store.data.apps.get(inst.app_id)
            # A suspended installation's App gets no events (lifecycle.py).
            if app is not None and app.webhook_url and event in app.events and inst.suspended_at is None:
                body = self._with_organization(repo, build(True))
                body["installation"] = payloads.installation_ref(inst.id)
                self._deliver_to_app(app, event, action, body, inst.id, repo.id)
        for hook_id in list(repo.hook_ids):
            hook = self.store.data.hooks.get(hook_id)
            if hook is None or not hook.active:
                continue
            if "*" not in hook.events and event not in hook.events:
                continue
            body = self._with_organization(repo, build(False))
            self._deliver(
                event, action, body, hook.id, "repository", repo.id, hook.url, hook.secret, None, repo.id
            )

    def _with_organization(self, repo: RepoRecord, body: JSON) -> JSON:
        """Events about an organisation's repository carry ``organization``, as GitHub's do
        (https://docs.github.com/en/webhooks/webhook-events-and-payloads#organization)."""
        owner = self.store.user(repo.owner)
        repo_json = body.get("repository")
        if owner is None or owner.type != "Organization" or not isinstance(repo_json, dict):
            return body
        api = str(repo_json.get("url", "")).split("/repos/", 1)[0]
        body.setdefault("organization", payloads.organization_simple(owner, Urls.for_base(api)))
        return body

    def _deliver_to_app(
        self,
        app: AppRecord,
        event: str,
        action: str | None,
        body: JSON,
        installation_id: int | None,
        repository_id: int | None,
    ) -> None:
        if not app.webhook_url or not app.webhook_active:
            return
        self._deliver(
            event,
            action,
            body,
            app.hook_id,
            "integration",
            app.id,
            app.webhook_url,
            app.webhook_secret,
            installation_id,
            repository_id,
        )

    def _deliver(
        self,
        event: str,
        action: str | None,
        body: JSON,
        hook_id: int,
        target_type: str,
        target_id: int,
        url: str,
        secret: str | None,
        installation_id: int | None,
        repository_id: int | None,
    ) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        record = make_delivery(
            self.store,
            guid=new_guid(),
            event=event,
            action=action,
            hook_id=hook_id,
            target_type=target_type,
            target_id=target_id,
            url=url,
            secret=secret,
            body=raw,
            installation_id=installation_id,
            repository_id=repository_id,
        )
        self.dispatcher.enqueue(record.id)

    def redeliver(self, delivery_id: int) -> int:
        """Send a recorded delivery again with the same GUID, as GitHub's redelivery does."""
        with self.store.lock:
            original = self.store.data.deliveries.get(delivery_id)
            if original is None:
                raise not_found()
            copy = original.model_copy(deep=True)
            copy.id = self.store.new_id()
            copy.redelivery = True
            copy.status = "pending"
            copy.status_code = 0
            copy.delivered_at = now_iso()
            # The secret may have changed since; GitHub signs redeliveries with the current one.
            secret = self._secret_for(copy.hook_id)
            copy.request_headers.pop("X-Hub-Signature", None)
            copy.request_headers.pop("X-Hub-Signature-256", None)
            if secret:
                from github_emulator.webhooks import sign_sha1, sign_sha256

                copy.request_headers["X-Hub-Signature"] = sign_sha1(secret, copy.payload.encode())
                copy.request_headers["X-Hub-Signature-256"] = sign_sha256(secret, copy.payload.encode())
            self.store.data.deliveries[copy.id] = copy
            self.store.save()
        self.dispatcher.enqueue(copy.id, bypass_mode=True)
        return copy.id

    def _secret_for(self, hook_id: int) -> str | None:
        for app in self.store.data.apps.values():
            if app.hook_id == hook_id:
                return app.webhook_secret
        hook = self.store.data.hooks.get(hook_id)
        return hook.secret if hook else None

    def set_webhook_mode(
        self,
        mode: WebhookMode,
        delay_ms: int,
        events: list[str] | None = None,
        hook_ids: list[int] | None = None,
    ) -> None:
        self.dispatcher.set_mode(mode, delay_ms, events, hook_ids)

    # ---- pulls helpers -------------------------------------------------------------------

    def pulls_for(self, repo: RepoRecord) -> list[PullRecord]:
        with self.store.lock:
            return sorted(
                (p for p in self.store.data.pulls.values() if p.repo_id == repo.id),
                key=lambda p: p.number,
            )
