"""An in-memory GitHub for unit tests: the `GitHubApp` and `GitHubRepo` ports over bare pygit2 repositories.

It answers as GitHub does where the engine can tell (held to that by the contract suite
tests/contract/test_github_repo_contract.py, also run against the real client and the emulator):
content-addressed objects, refs
moved only by fast-forward (`NotFastForward`), branch protection refusing direct updates
(`BranchProtected`), 409 `RepositoryEmpty` from the Git Data API on a repository without branches,
truncated recursive trees past an entry limit, pull requests (open, update, close; merged by a test
helper, since merging is a person's action), and the same request counts (`counting_requests()`).

Test helpers stand for what people do on GitHub: `push` (a commit on top of a branch), `force_push`,
`protect`, `merge_pull` (merge, squash or rebase), and `inject_fault` (the next N calls fail).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pygit2

from ghsync.adapters.github.repo import read_tree
from ghsync.domain.errors import (
    AppNotInstalled,
    BranchProtected,
    GitHubError,
    GitHubNotFound,
    GitHubServerError,
    GitHubValidation,
    NotFastForward,
    RepositoryEmpty,
    RepositoryNotFound,
)
from ghsync.domain.github import (
    Branch,
    Commit,
    Comparison,
    Installation,
    PullRequest,
    RateLimitState,
    Repository,
)
from ghsync.domain.models import Author
from ghsync.domain.polling import MAX_REPOSITORIES_PER_QUERY, HeadsRead, RemoteHead
from ghsync.domain.redelivery import HookDelivery
from ghsync.domain.trees import TreeEntry
from ghsync.ports.github import Priority, PullState, TreeWrite, record_request

MergeMethod = Literal["merge", "squash", "rebase"]
PERSON = Author("A Person", "person@example.com")
_GITHUB = Author("GitHub", "noreply@github.com")  # web-flow merges are committed by GitHub
_TREE = pygit2.GIT_FILEMODE_TREE
_GITLINK = pygit2.GIT_FILEMODE_COMMIT
_PRIORITY: ContextVar[Priority] = ContextVar("ghsync_fake_github_priority", default="background")


@dataclass
class _Fault:
    error: Callable[[], GitHubError]
    remaining: int
    operation: str | None


@dataclass
class _Pull:
    number: int
    head_ref: str
    base_ref: str
    head_sha: str
    base_sha: str
    title: str
    body: str
    draft: bool
    state: str = "open"
    merged: bool = False
    merge_commit_sha: str | None = None
    # GitHub's background mergeability job: its result, the (base, head) it was computed for, and
    # the test merge commit it made.
    mergeable: bool | None = None
    mergeable_for: str | None = None
    test_merge: str | None = None

    @property
    def pair(self) -> str:
        return f"{self.base_sha}:{self.head_sha}"


@dataclass
class _Repo:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool
    git: pygit2.Repository
    protected: dict[str, bool] = field(default_factory=dict)  # branch -> requires a pull request
    pulls: list[_Pull] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class _Installation:
    id: int
    account: str
    selection: str
    repo_ids: set[int]
    permissions: dict[str, str]
    used: int = 0


def _signature(who: Author, when: datetime) -> pygit2.Signature:
    return pygit2.Signature(who.name, who.email, int(when.timestamp()), 0)


def _author(sig: pygit2.Signature) -> Author:
    return Author(name=sig.name, email=sig.email)


class InMemoryGitHub:
    """A GitHub holding installations and repositories in bare pygit2 repositories under `root`
    (a temporary directory by default, removed by `close()`)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        tree_entry_limit: int = 100_000,
        rate_limit: int = 5000,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tmp = None if root is not None else tempfile.mkdtemp(prefix="ghsync-fake-github-")
        self._root = Path(root) if root is not None else Path(str(self._tmp))
        self._now = now
        self.tree_entry_limit = tree_entry_limit
        self._rate_limit = rate_limit
        self._reset_at = now() + timedelta(hours=1)
        self._lock = threading.RLock()
        self._ids = itertools.count(1000)
        self._repos: dict[int, _Repo] = {}
        self._installations: dict[int, _Installation] = {}
        self._faults: list[_Fault] = []
        self.app_slug, self.app_bot_id = "ghsync-fake", 41898282
        # The App webhook's delivery log (attempts, in the order they happened) and what a redelivery
        # gets from the receiver: `hook_receiver(attempt)` -> HTTP status (default 200).
        self._hook_deliveries: list[HookDelivery] = []
        self.hook_receiver: Callable[[HookDelivery], int] | None = None

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> InMemoryGitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- setup and people's actions (test helpers: no request is counted) -------------------------

    def add_installation(
        self,
        account: str,
        repos: Sequence[str] = (),
        *,
        selection: str = "selected",
        permissions: Mapping[str, str] | None = None,
    ) -> int:
        """Install the App on `account` for the named repositories (or all of them)."""
        with self._lock:
            inst = _Installation(
                id=next(self._ids),
                account=account,
                selection=selection,
                repo_ids={self._find(*r.split("/", 1)).id for r in repos},
                permissions=dict(
                    permissions or {"contents": "write", "metadata": "read", "pull_requests": "write"}
                ),
            )
            self._installations[inst.id] = inst
            return inst.id

    def add_repo(
        self,
        owner: str,
        name: str,
        *,
        default_branch: str = "main",
        files: Mapping[str, str | bytes] | None = None,
        private: bool = False,
        installation_id: int | None = None,
    ) -> Repository:
        """A repository; with `files` its default branch has one commit, else it is empty."""
        with self._lock:
            rid = next(self._ids)
            git = pygit2.init_repository(str(self._root / f"{rid}.git"), bare=True)
            repo = _Repo(rid, owner, name, default_branch, private, git)
            self._repos[rid] = repo
            if installation_id is not None:
                self._installations[installation_id].repo_ids.add(rid)
            if files:
                self.push(owner, name, default_branch, files, message="Initial commit")
            return self._repository(repo)

    def push(
        self,
        owner: str,
        name: str,
        branch: str,
        files: Mapping[str, str | bytes | None],
        *,
        message: str = "A person's change",
        author: Author = PERSON,
        parent: str | None = None,
    ) -> str:
        """A person pushes one commit to `branch`: its head (or `parent`) with `files` written (None
        deletes a path). Creates the branch when it does not exist. Returns the commit SHA."""
        with self._lock:
            repo = self._find(owner, name)
            git = repo.git
            ref = f"refs/heads/{branch}"
            base = parent or self._ref(repo, branch)
            flat = self._flatten(git, git.get(base).tree) if base else {}  # type: ignore[union-attr]
            for path, content in files.items():
                if content is None:
                    flat.pop(path, None)
                else:
                    data = content.encode() if isinstance(content, str) else content
                    flat[path] = (pygit2.GIT_FILEMODE_BLOB, str(git.create_blob(data)))
            tree = self._build(git, flat)
            sig = _signature(author, self._now())
            parents = [pygit2.Oid(hex=base)] if base else []
            sha = str(git.create_commit(None, sig, sig, message, pygit2.Oid(hex=tree), parents))
            old = self._ref(repo, branch)
            git.references.create(ref, pygit2.Oid(hex=sha), force=True)
            self._branch_moved(repo, branch, old, sha)
            return sha

    def force_push(self, owner: str, name: str, branch: str, sha: str) -> None:
        """A person force-pushes `branch` to any commit (history rewritten)."""
        with self._lock:
            repo = self._find(owner, name)
            old = self._ref(repo, branch)
            repo.git.references.create(f"refs/heads/{branch}", pygit2.Oid(hex=sha), force=True)
            self._branch_moved(repo, branch, old, sha)

    def protect(self, owner: str, name: str, branch: str, *, require_pull_request: bool = True) -> None:
        """Protect `branch` (by default requiring changes through a pull request)."""
        with self._lock:
            self._find(owner, name).protected[branch] = require_pull_request

    def unprotect(self, owner: str, name: str, branch: str) -> None:
        """A person removes `branch`'s protection."""
        with self._lock:
            self._find(owner, name).protected.pop(branch, None)

    def merge_pull(self, owner: str, name: str, number: int, method: MergeMethod = "merge") -> str:
        """A person merges pull request `number` on GitHub; returns the new head of its base branch."""
        with self._lock:
            repo = self._find(owner, name)
            pr = self._pull(repo, number)
            if pr.state != "open":
                raise GitHubError("Pull Request is not mergeable", status=405)
            git = repo.git
            base_sha, head_sha = self._ref(repo, pr.base_ref), self._ref(repo, pr.head_ref) or pr.head_sha
            assert base_sha is not None
            base, head = git.get(base_sha), git.get(head_sha)
            assert isinstance(base, pygit2.Commit) and isinstance(head, pygit2.Commit)
            index = git.merge_commits(base.id, head.id)
            if index.conflicts:
                raise GitHubError("Pull Request is not mergeable", status=405)
            tree = index.write_tree(git)
            person, committer = _signature(PERSON, self._now()), _signature(_GITHUB, self._now())
            if method == "merge":
                text = f"Merge pull request #{pr.number} from {repo.owner}/{pr.head_ref}\n\n{pr.title}"
                new = git.create_commit(None, person, committer, text, tree, [base.id, head.id])
            elif method == "squash":
                new = git.create_commit(
                    None, person, committer, f"{pr.title} (#{pr.number})", tree, [base.id]
                )
            else:
                tip = base
                for commit in self._between(git, head_sha, base_sha):
                    ancestor = (
                        commit.parents[0].tree if commit.parents else git.get(git.TreeBuilder().write())
                    )
                    merged = git.merge_trees(ancestor, tip.tree, commit.tree)
                    if merged.conflicts:
                        raise GitHubError("Pull Request is not mergeable", status=405)
                    oid = git.create_commit(
                        None, commit.author, committer, commit.message, merged.write_tree(git), [tip.id]
                    )
                    next_tip = git.get(oid)
                    assert isinstance(next_tip, pygit2.Commit)
                    tip = next_tip
                new = tip.id
            git.references.create(f"refs/heads/{pr.base_ref}", new, force=True)
            pr.state, pr.merged, pr.merge_commit_sha, pr.head_sha = "closed", True, str(new), head_sha
            self._branch_moved(repo, pr.base_ref, base_sha, str(new))
            return str(new)

    def inject_fault(
        self,
        error: GitHubError | Callable[[], GitHubError] | None = None,
        *,
        count: int = 1,
        operation: str | None = None,
    ) -> None:
        """Make the next `count` calls (of port method `operation`, or any) fail with `error`
        (default: a 502 `GitHubServerError`, as the real client raises once its retries are spent)."""
        if error is None:

            def make() -> GitHubError:
                return GitHubServerError("Server Error", status=502)

        elif isinstance(error, GitHubError):
            fixed = error

            def make() -> GitHubError:
                return fixed

        else:
            make = error
        with self._lock:
            self._faults.append(_Fault(make, count, operation))

    def record_hook_delivery(
        self,
        guid: str,
        event: str,
        *,
        status_code: int = 200,
        at: datetime | None = None,
        redelivery: bool = False,
        action: str | None = None,
        installation_id: int | None = None,
        repository_id: int | None = None,
    ) -> HookDelivery:
        """An attempt GitHub made to deliver an event to the App's webhook (a test helper)."""
        with self._lock:
            attempt = HookDelivery(
                id=next(self._ids),
                guid=guid,
                delivered_at=at or self._now(),
                status="OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}",
                status_code=status_code,
                event=event,
                redelivery=redelivery,
                action=action,
                installation_id=installation_id,
                repository_id=repository_id,
            )
            self._hook_deliveries.append(attempt)
            return attempt

    def head(self, owner: str, name: str, branch: str) -> str | None:
        """The commit `branch` points at (for assertions; no request is counted)."""
        with self._lock:
            return self._ref(self._find(owner, name), branch)

    # ---- the GitHubApp port --------------------------------------------------------------------

    def find_installation(self, owner: str, repo: str) -> int:
        with self._lock:
            self._request("GET", None, "find_installation")
            found = self._find_or_none(owner, repo)
            account = next(
                (i for i in self._installations.values() if i.account.lower() == owner.lower()), None
            )
            if account is None:
                raise AppNotInstalled(f"the GitHub App is not installed on the account {owner!r}", status=404)
            if found is not None and (account.selection == "all" or found.id in account.repo_ids):
                return account.id
            if account.selection == "all":
                raise RepositoryNotFound(f"repository {owner}/{repo} not found", status=404)
            raise AppNotInstalled(
                f"repository {owner}/{repo} is not among the repositories selected for the GitHub App's "
                f"installation on {owner!r} (or does not exist)",
                status=404,
            )

    def get_installation(self, installation_id: int) -> Installation:
        with self._lock:
            self._request("GET", None, "get_installation")
            inst = self._installations.get(installation_id)
            if inst is None:
                raise GitHubNotFound("Not Found", status=404)
            return Installation(inst.id, inst.account, dict(inst.permissions), inst.selection)

    def get_repository_by_id(self, installation_id: int, repository_id: int) -> Repository:
        with self._lock:
            self._request("GET", installation_id, "get_repository_by_id")
            repo = self._repos.get(repository_id)
            if repo is None or not self._may_see(installation_id, repo):
                raise GitHubNotFound("Not Found", status=404)
            return self._repository(repo)

    def rate_limit(self, installation_id: int) -> RateLimitState | None:
        with self._lock:
            inst = self._installations.get(installation_id)
            if inst is None or inst.used == 0:
                return None
            return RateLimitState(
                limit=self._rate_limit,
                remaining=max(0, self._rate_limit - inst.used),
                reset_at=self._reset_at,
                used=inst.used,
                observed_at=self._now(),
            )

    @staticmethod
    @contextlib.contextmanager
    def priority(priority: Priority) -> Iterator[None]:
        token = _PRIORITY.set(priority)
        try:
            yield
        finally:
            _PRIORITY.reset(token)

    def app_identity(self) -> Author:
        """The fake App's bot account. No request is counted (the real client reads it once and keeps
        it), so only a fault aimed at it (`inject_fault(operation="app_identity")`) fails it."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.operation == "app_identity":
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    raise fault.error()
        login = f"{self.app_slug}[bot]"
        return Author(login, f"{self.app_bot_id}+{login}@users.noreply.github.com")

    def repo(self, installation_id: int, owner: str, name: str) -> InMemoryGitHubRepo:
        return InMemoryGitHubRepo(self, installation_id, owner, name)

    def default_branch_heads(self, installation_id: int, repos: Sequence[tuple[str, str]]) -> HeadsRead:
        """One "query" (request) per 100 repositories, as the GraphQL client sends; each costs 1 point."""
        unique = list(dict.fromkeys(repos))
        heads: dict[tuple[str, str], RemoteHead] = {}
        queries = 0
        with self._lock:
            for start in range(0, len(unique), MAX_REPOSITORIES_PER_QUERY):
                # A GraphQL query is a POST that creates nothing: counted as a read.
                self._request("GET", installation_id, "default_branch_heads")
                queries += 1
                for owner, name in unique[start : start + MAX_REPOSITORIES_PER_QUERY]:
                    repo = self._find_or_none(owner, name)
                    if repo is None or not self._may_see(installation_id, repo):
                        continue
                    sha = self._ref(repo, repo.default_branch)
                    heads[(owner, name)] = (
                        RemoteHead(repo.default_branch, sha) if sha is not None else RemoteHead(None, None)
                    )
            inst = self._installations.get(installation_id)
            used = inst.used if inst is not None else 0
        remaining = max(0, self._rate_limit - used)
        return HeadsRead(heads, points=queries, remaining=remaining, limit=self._rate_limit)

    # ---- the AppHookDeliveries port ----------------------------------------------------------------

    def list_hook_deliveries(self, *, since: datetime | None = None) -> list[HookDelivery]:
        """Newest first, one request per page of 100, stopping past `since` (as the REST client does)."""
        with self._lock:
            newest_first = sorted(self._hook_deliveries, key=lambda d: d.id, reverse=True)
        out: list[HookDelivery] = []
        for start in range(0, max(1, len(newest_first)), 100):
            with self._lock:
                self._request("GET", None, "list_hook_deliveries")
            page = newest_first[start : start + 100]
            out.extend(page)
            if since is not None and page and page[-1].delivered_at < since:
                break
        return out

    def redeliver_hook_delivery(self, delivery_id: int) -> None:
        with self._lock:
            self._request("POST", None, "redeliver_hook_delivery")
            original = next((d for d in self._hook_deliveries if d.id == delivery_id), None)
            if original is None:
                raise GitHubNotFound("Not Found", status=404)
            receiver = self.hook_receiver
        code = receiver(original) if receiver is not None else 200
        self.record_hook_delivery(
            original.guid,
            original.event,
            status_code=code,
            redelivery=True,
            action=original.action,
            installation_id=original.installation_id,
            repository_id=original.repository_id,
        )

    # ---- internals shared with InMemoryGitHubRepo -------------------------------------------------

    def _request(self, method: str, installation_id: int | None, operation: str) -> None:
        """One request reaches "GitHub": counted, charged to the installation, maybe failed."""
        record_request(method)
        if installation_id is not None and installation_id in self._installations:
            self._installations[installation_id].used += 1
        for fault in self._faults:
            if fault.remaining > 0 and fault.operation in (None, operation):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                raise fault.error()

    def _may_see(self, installation_id: int, repo: _Repo) -> bool:
        inst = self._installations.get(installation_id)
        if inst is None or inst.account.lower() != repo.owner.lower():
            return False
        return inst.selection == "all" or repo.id in inst.repo_ids

    def _find_or_none(self, owner: str, name: str) -> _Repo | None:
        full = f"{owner}/{name}".lower()
        return next((r for r in self._repos.values() if r.full_name.lower() == full), None)

    def _find(self, owner: str, name: str) -> _Repo:
        repo = self._find_or_none(owner, name)
        if repo is None:
            raise GitHubNotFound("Not Found", status=404)
        return repo

    def _repository(self, repo: _Repo) -> Repository:
        return Repository(
            id=repo.id,
            owner=repo.owner,
            name=repo.name,
            full_name=repo.full_name,
            default_branch=repo.default_branch,
            private=repo.private,
            html_url=f"https://github.com/{repo.full_name}",
        )

    @staticmethod
    def _ref(repo: _Repo, branch: str) -> str | None:
        ref = f"refs/heads/{branch}"
        if ref not in repo.git.references:
            return None
        return str(repo.git.references[ref].resolve().target)

    @staticmethod
    def _flatten(git: pygit2.Repository, tree: pygit2.Tree, prefix: str = "") -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for entry in tree:
            path = prefix + str(entry.name)
            if entry.filemode == _TREE:
                sub = git.get(entry.id)
                assert isinstance(sub, pygit2.Tree)
                out.update(InMemoryGitHub._flatten(git, sub, path + "/"))
            else:
                out[path] = (entry.filemode, str(entry.id))
        return out

    @staticmethod
    def _build(git: pygit2.Repository, flat: Mapping[str, tuple[int, str]]) -> str:
        root: dict[str, Any] = {}
        for path, leaf in flat.items():
            *dirs, base = path.split("/")
            node = root
            for part in dirs:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise GitHubValidation(
                        "Invalid tree info: a file is in the way of a directory", status=422
                    )
            if isinstance(node.get(base), dict):
                raise GitHubValidation("Invalid tree info: a directory is in the way of a file", status=422)
            node[base] = leaf

        def write(node: dict[str, Any]) -> pygit2.Oid:
            builder = git.TreeBuilder()
            for name, value in node.items():
                if isinstance(value, dict):
                    builder.insert(name, write(value), _TREE)
                else:
                    builder.insert(name, pygit2.Oid(hex=value[1]), value[0])
            return builder.write()

        return str(write(root))

    @staticmethod
    def _between(git: pygit2.Repository, tip: str, hide: str | None) -> list[pygit2.Commit]:
        """Commits reachable from `tip` and not from `hide`, oldest first (as GitHub lists them)."""
        walker = git.walk(pygit2.Oid(hex=tip), pygit2.enums.SortMode.TOPOLOGICAL)
        if hide:
            walker.hide(pygit2.Oid(hex=hide))
        commits = list(walker)
        commits.reverse()
        return commits

    def _branch_moved(self, repo: _Repo, branch: str, before: str | None, after: str | None) -> None:
        """Keep pull requests in step, as GitHub does: a moved head updates its PRs, a deleted head
        closes them, and a base that now contains a PR's head marks that PR merged."""
        for pr in repo.pulls:
            if pr.state != "open":
                continue
            if pr.head_ref == branch:
                if after is None:
                    pr.state = "closed"
                else:
                    pr.head_sha = after
            elif pr.base_ref == branch and after is not None:
                pr.base_sha = after
                if pr.head_sha == after or repo.git.descendant_of(
                    pygit2.Oid(hex=after), pygit2.Oid(hex=pr.head_sha)
                ):
                    pr.state, pr.merged, pr.merge_commit_sha = "closed", True, after

    def _pull(self, repo: _Repo, number: int) -> _Pull:
        for pr in repo.pulls:
            if pr.number == number:
                return pr
        raise GitHubNotFound("Not Found", status=404)


class InMemoryGitHubRepo:
    """The `GitHubRepo` port of one repository of an `InMemoryGitHub`."""

    def __init__(self, hub: InMemoryGitHub, installation_id: int, owner: str, name: str) -> None:
        self._hub = hub
        self.installation_id = installation_id
        self._owner = owner
        self._name = name

    def __repr__(self) -> str:
        return f"InMemoryGitHubRepo({self._owner}/{self._name}, installation={self.installation_id})"

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def name(self) -> str:
        return self._name

    @contextlib.contextmanager
    def _call(self, method: str, operation: str) -> Iterator[_Repo]:
        """One request: counted, maybe failed by an injected fault, then the repository (404 if hidden)."""
        with self._hub._lock:
            self._hub._request(method, self.installation_id, operation)
            repo = self._hub._find_or_none(self._owner, self._name)
            if repo is None or not self._hub._may_see(self.installation_id, repo):
                raise GitHubNotFound("Not Found", status=404)
            yield repo

    @staticmethod
    def _not_empty(repo: _Repo) -> pygit2.Repository:
        # "Git Database API functions will return a 409 Conflict if the Git repository is empty"
        # (https://docs.github.com/en/rest/guides/using-the-rest-api-to-interact-with-your-git-database).
        if not any(name.startswith(("refs/heads/", "refs/tags/")) for name in repo.git.references):
            raise RepositoryEmpty("Git Repository is empty.", status=409)
        return repo.git

    @staticmethod
    def _object(git: pygit2.Repository, sha: str) -> pygit2.Object | None:
        try:
            return git.get(sha)
        except (ValueError, KeyError):
            return None

    def _resolve(self, repo: _Repo, name: str) -> pygit2.Commit | None:
        sha = self._hub._ref(repo, name)
        obj = self._object(repo.git, sha or name)
        return obj if isinstance(obj, pygit2.Commit) else None

    # ---- reads -----------------------------------------------------------------------------------

    def get_repository(self) -> Repository:
        with self._call("GET", "get_repository") as repo:
            return self._hub._repository(repo)

    def get_branch(self, name: str) -> Branch | None:
        with self._call("GET", "get_branch") as repo:
            sha = self._hub._ref(repo, name)
            if sha is None:
                return None
            return Branch(name=name, sha=sha, protected=name in repo.protected)

    def get_commit(self, sha: str) -> Commit:
        with self._call("GET", "get_commit") as repo:
            obj = self._object(self._not_empty(repo), sha)
            if not isinstance(obj, pygit2.Commit):
                raise GitHubNotFound("Not Found", status=404)
            return _commit(obj)

    def get_tree(self, sha: str) -> list[TreeEntry]:
        return read_tree(self._tree_body, sha)

    def _tree_body(self, sha: str, recursive: bool) -> Mapping[str, Any]:
        """GET .../git/trees/{sha}[?recursive=1] as GitHub answers it, `truncated` past the limit."""
        with self._call("GET", "get_tree") as repo:
            git = self._not_empty(repo)
            obj = self._object(git, sha)
            if isinstance(obj, pygit2.Commit):
                obj = obj.tree
            if not isinstance(obj, pygit2.Tree):
                raise GitHubNotFound("Not Found", status=404)
            limit = self._hub.tree_entry_limit
            entries: list[dict[str, str]] = []
            truncated = False

            def visit(tree: pygit2.Tree, prefix: str) -> None:
                nonlocal truncated
                for entry in tree:
                    if len(entries) >= limit:
                        truncated = True
                        return
                    path = prefix + str(entry.name)
                    kind = (
                        "tree"
                        if entry.filemode == _TREE
                        else "commit"
                        if entry.filemode == _GITLINK
                        else "blob"
                    )
                    entries.append(
                        {"path": path, "mode": f"{entry.filemode:06o}", "type": kind, "sha": str(entry.id)}
                    )
                    if recursive and kind == "tree":
                        sub = git.get(entry.id)
                        assert isinstance(sub, pygit2.Tree)
                        visit(sub, path + "/")
                        if truncated:
                            return

            visit(obj, "")
            return {"sha": str(obj.id), "tree": entries, "truncated": truncated}

    def get_blob(self, sha: str) -> bytes:
        with self._call("GET", "get_blob") as repo:
            obj = self._object(self._not_empty(repo), sha)
            if not isinstance(obj, pygit2.Blob):
                raise GitHubNotFound("Not Found", status=404)
            return bytes(obj.data)

    def compare(self, base: str, head: str) -> Comparison:
        with self._call("GET", "compare") as repo:
            git = repo.git
            b, h = self._resolve(repo, base), self._resolve(repo, head)
            if b is None or h is None:
                raise GitHubNotFound("Not Found", status=404)
            merge_base = git.merge_base(b.id, h.id)
            if merge_base is None:
                raise GitHubNotFound(f"No common ancestor between {base} and {head}.", status=404)
            ahead, behind = git.ahead_behind(h.id, b.id)
            status = (
                "identical"
                if ahead == behind == 0
                else "ahead"
                if behind == 0
                else "behind"
                if ahead == 0
                else "diverged"
            )
            commits = tuple(str(c.id) for c in self._hub._between(git, str(h.id), str(merge_base)))
            # GitHub pages the commits (100 a page as the real client asks): one more request per page.
            for _ in range(max(1, math.ceil(len(commits) / 100)) - 1):
                self._hub._request("GET", self.installation_id, "compare")
            return Comparison(status, ahead, behind, str(merge_base), commits)

    # ---- writes ----------------------------------------------------------------------------------

    def create_blob(self, content: bytes) -> str:
        with self._call("POST", "create_blob") as repo:
            return str(self._not_empty(repo).create_blob(content))

    def create_tree(self, base_tree: str | None, entries: Sequence[TreeWrite]) -> str:
        # `sha: null` deletes a path of base_tree; inline `content` makes the blob
        # (https://docs.github.com/en/rest/git/trees#create-a-tree).
        with self._call("POST", "create_tree") as repo:
            git = self._not_empty(repo)
            flat: dict[str, tuple[int, str]] = {}
            if base_tree is not None:
                base = self._object(git, base_tree)
                if not isinstance(base, pygit2.Tree):
                    raise GitHubValidation("Invalid tree info", status=422)
                flat = self._hub._flatten(git, base)
            for entry in entries:
                if entry.is_delete:
                    if entry.path not in flat and not any(p.startswith(entry.path + "/") for p in flat):
                        raise GitHubValidation("GitRPC::BadObjectState", status=422)
                    flat = {
                        p: v
                        for p, v in flat.items()
                        if p != entry.path and not p.startswith(entry.path + "/")
                    }
                else:
                    if entry.content is not None:
                        blob = str(git.create_blob(entry.content.encode()))
                    else:
                        assert entry.sha is not None
                        if not isinstance(self._object(git, entry.sha), pygit2.Blob):
                            raise GitHubValidation("Invalid tree info", status=422)
                        blob = entry.sha
                    # Entries apply in order to nested trees, as GitHub's do: a file replaces a directory
                    # of that name (and a directory a file), so a later deletion inside it finds nothing.
                    parents = {
                        "/".join(entry.path.split("/")[:n]) for n in range(1, entry.path.count("/") + 1)
                    }
                    flat = {
                        p: v
                        for p, v in flat.items()
                        if not p.startswith(entry.path + "/") and p not in parents
                    }
                    flat[entry.path] = (entry.mode.git_mode, blob)
            return self._hub._build(git, flat)

    def create_commit(
        self,
        tree: str,
        parents: Sequence[str],
        message: str,
        author: Author,
        committer: Author | None = None,
    ) -> Commit:
        with self._call("POST", "create_commit") as repo:
            git = self._not_empty(repo)
            tree_obj = self._object(git, tree)
            if not isinstance(tree_obj, pygit2.Tree):
                raise GitHubValidation("Tree SHA does not exist", status=422)
            for parent in parents:
                if not isinstance(self._object(git, parent), pygit2.Commit):
                    raise GitHubValidation("Parent SHA does not exist or is not a commit object", status=422)
            when = self._hub._now()
            oid = git.create_commit(
                None,
                _signature(author, when),
                _signature(committer or author, when),
                message,
                tree_obj.id,
                [pygit2.Oid(hex=p) for p in parents],
            )
            commit = git.get(oid)
            assert isinstance(commit, pygit2.Commit)
            return _commit(commit)

    def update_ref(self, branch: str, sha: str) -> None:
        # force=false: only a fast-forward moves the ref (https://docs.github.com/en/rest/git/refs#update-a-reference);
        # then protection may still refuse it (https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches).
        with self._call("PATCH", "update_ref") as repo:
            old = self._hub._ref(repo, branch)
            if old is None:
                raise GitHubValidation("Reference does not exist", status=422)
            new = self._object(repo.git, sha)
            if new is None:
                raise GitHubValidation("Object does not exist", status=422)
            if not isinstance(new, pygit2.Commit) or (
                old != sha and not repo.git.descendant_of(new.id, pygit2.Oid(hex=old))
            ):
                raise NotFastForward("Update is not a fast forward", status=422)
            if repo.protected.get(branch):
                raise BranchProtected("Changes must be made through a pull request.", status=422)
            repo.git.references.create(f"refs/heads/{branch}", new.id, force=True)
            self._hub._branch_moved(repo, branch, old, sha)

    def force_update_ref(self, branch: str, sha: str) -> None:
        # force=true rewrites the branch to any commit; protection refuses it ("Cannot force-push to this
        # protected branch": https://docs.github.com/en/rest/git/refs#update-a-reference).
        with self._call("PATCH", "update_ref") as repo:
            old = self._hub._ref(repo, branch)
            if old is None:
                raise GitHubValidation("Reference does not exist", status=422)
            new = self._object(repo.git, sha)
            if not isinstance(new, pygit2.Commit):
                raise GitHubValidation("Object does not exist", status=422)
            if repo.protected.get(branch):
                raise BranchProtected("Cannot force-push to this protected branch", status=422)
            repo.git.references.create(f"refs/heads/{branch}", new.id, force=True)
            self._hub._branch_moved(repo, branch, old, sha)

    def create_ref(self, branch: str, sha: str) -> None:
        with self._call("POST", "create_ref") as repo:
            if self._hub._ref(repo, branch) is not None:
                raise GitHubValidation("Reference already exists", status=422)
            if not pygit2.reference_is_valid_name(f"refs/heads/{branch}"):
                raise GitHubValidation(f"refs/heads/{branch} is not a valid ref name.", status=422)
            obj = self._object(repo.git, sha)
            if obj is None:
                raise GitHubValidation("Object does not exist", status=422)
            repo.git.references.create(f"refs/heads/{branch}", obj.id)
            self._hub._branch_moved(repo, branch, None, sha)

    def delete_ref(self, branch: str) -> None:
        with self._call("DELETE", "delete_ref") as repo:
            old = self._hub._ref(repo, branch)
            # A missing ref, the default branch and a protected branch are all refused with 422
            # (https://docs.github.com/en/rest/git/refs#delete-a-reference).
            if old is None or branch == repo.default_branch or branch in repo.protected:
                raise GitHubValidation("HTTP 422", status=422)
            repo.git.references.delete(f"refs/heads/{branch}")
            self._hub._branch_moved(repo, branch, old, None)

    # ---- pull requests ---------------------------------------------------------------------------

    @staticmethod
    def _check_mergeability(repo: _Repo, pr: _Pull) -> bool:
        """Run GitHub's mergeability job for the PR's current base and head, unless it has run.

        GitHub: "If the value is null, then GitHub has started a background job to compute the
        mergeability. After giving the job time to complete, resubmit the request", and the job
        starts when a client asks for the pull request
        (https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request). So the GET that starts it
        still answers null and later answers carry the result, as the emulator models it too.
        Returns True when it ran now.
        """
        if pr.state != "open" or pr.mergeable_for == pr.pair:
            return False
        git = repo.git
        base, head = pygit2.Oid(hex=pr.base_sha), pygit2.Oid(hex=pr.head_sha)
        index = git.merge_commits(base, head)
        pr.test_merge = None
        if not index.conflicts:
            sig = _signature(_GITHUB, datetime.now(UTC))
            message = f"Merge {pr.head_sha} into {pr.base_sha}"
            pr.test_merge = str(
                git.create_commit(None, sig, sig, message, index.write_tree(git), [base, head])
            )
        pr.mergeable, pr.mergeable_for = pr.test_merge is not None, pr.pair
        return True

    def _pull_request(self, repo: _Repo, pr: _Pull, *, just_started: bool = False) -> PullRequest:
        mergeable: bool | None = None
        merge_commit_sha = pr.merge_commit_sha
        if pr.state == "open":
            known = pr.mergeable_for == pr.pair and not just_started
            mergeable = pr.mergeable if known else None
            merge_commit_sha = pr.test_merge if known else None
        return PullRequest(
            number=pr.number,
            url=f"https://github.com/{repo.full_name}/pull/{pr.number}",
            state=pr.state,
            head_ref=pr.head_ref,
            head_sha=pr.head_sha,
            base_ref=pr.base_ref,
            base_sha=pr.base_sha,
            title=pr.title,
            draft=pr.draft,
            merged=pr.merged,
            merge_commit_sha=merge_commit_sha,
            mergeable=mergeable,
            body=pr.body,
        )

    def find_open_pull(self, head_branch: str, base: str) -> PullRequest | None:
        with self._call("GET", "find_open_pull") as repo:
            for pr in repo.pulls:
                if pr.state == "open" and pr.head_ref == head_branch and pr.base_ref == base:
                    # GitHub's list answers (`pull-request-simple`) carry no `mergeable`.
                    return replace(self._pull_request(repo, pr), mergeable=None)
            return None

    def create_pull(
        self, head_branch: str, base: str, title: str, body: str = "", *, draft: bool = False
    ) -> PullRequest:
        # One open PR per head and base, and only with commits to merge
        # (https://docs.github.com/en/rest/pulls/pulls#create-a-pull-request).
        with self._call("POST", "create_pull") as repo:
            head_sha, base_sha = self._hub._ref(repo, head_branch), self._hub._ref(repo, base)
            if head_sha is None or base_sha is None or not title:
                raise GitHubValidation("Validation Failed", status=422)
            if any(
                p.state == "open" and p.head_ref == head_branch and p.base_ref == base for p in repo.pulls
            ):
                raise GitHubValidation(
                    "Validation Failed",
                    status=422,
                    errors=[
                        {
                            "code": "custom",
                            "message": f"A pull request already exists for {repo.owner}:{head_branch}.",
                        }
                    ],
                )
            if head_sha == base_sha or repo.git.descendant_of(
                pygit2.Oid(hex=base_sha), pygit2.Oid(hex=head_sha)
            ):
                raise GitHubValidation(
                    "Validation Failed",
                    status=422,
                    errors=[{"code": "custom", "message": f"No commits between {base} and {head_branch}"}],
                )
            number = 1 + max((p.number for p in repo.pulls), default=0)
            pr = _Pull(number, head_branch, base, head_sha, base_sha, title, body, draft)
            repo.pulls.append(pr)
            return self._pull_request(repo, pr)

    def update_pull(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: PullState | None = None,
    ) -> PullRequest:
        with self._call("PATCH", "update_pull") as repo:
            pr = self._hub._pull(repo, number)
            if title is not None:
                pr.title = title
            if body is not None:
                pr.body = body
            if state == "closed":
                pr.state = "closed"
            elif state == "open" and pr.state == "closed" and not pr.merged:
                pr.state = "open"
            return self._pull_request(repo, pr)

    def get_pull(self, number: int) -> PullRequest:
        with self._call("GET", "get_pull") as repo:
            pr = self._hub._pull(repo, number)
            return self._pull_request(repo, pr, just_started=self._check_mergeability(repo, pr))


def _commit(commit: pygit2.Commit) -> Commit:
    return Commit(
        sha=str(commit.id),
        tree_sha=str(commit.tree_id),
        parents=tuple(str(p) for p in commit.parent_ids),
        message=commit.message,
        author=_author(commit.author),
        committer=_author(commit.committer),
        authored_at=datetime.fromtimestamp(commit.author.time, UTC),
    )


__all__ = ["PERSON", "InMemoryGitHub", "InMemoryGitHubRepo", "MergeMethod"]
