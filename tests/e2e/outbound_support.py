"""Support for the outbound end-to-end tests: the real engine wired to an in-process GitHub emulator.

Everything here is what production wires, minus the HTTP API: `GitHubAppClient` over loopback HTTP,
`SqlUnitOfWorkFactory` on SQLite, `GitStore`, `LinkService` and `ReconcileService`. A person's side
(their pushes, branch protection) goes through the emulator's public surfaces: git smart HTTP and REST
with a user's token. `assert_github_holds` is the check every test ends with: a `git clone` of the
emulator's repository holds exactly the expected tree, and `git fsck --strict` finds nothing.
"""

from __future__ import annotations

import base64
import itertools
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import github_emulator.testing
from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig
from ghsync.adapters.github.git_transport import SmartHttpGitRemote, git_base_url
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.adapters.throttle import InMemoryThrottleState
from ghsync.domain.errors import GhsyncError, RetryLater
from ghsync.domain.models import Author, FileMode, FileWrite
from ghsync.domain.operations import SyncOperation
from ghsync.domain.outbound import TransportThresholds
from ghsync.services.linking import LinkService
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import EngineSettings, ReconcileService
from github_emulator.testing import AppInfo, EmulatorHandle, UserInfo, run_emulator

MIB = 1024 * 1024
OWNER = "octo"
ADA = Author("Ada Lovelace", "ada@example.com")
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read", "administration": "read"}
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()

# The transports an outbound change can take (the values of the operation's `metadata["transport"]`).
GIT_DATA_API = "git_data_api"
GIT = "git"
TRANSPORTS = (GIT_DATA_API, GIT)


class Clock:
    """The client's clock: real time plus an offset a test moves forward (a rate-limit cool-down passing)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Outbound:
    """The engine and both sides of one module's end-to-end tests."""

    emu: EmulatorHandle
    app: AppInfo
    installation: int
    person: UserInfo
    client: GitHubAppClient
    uow: SqlUnitOfWorkFactory
    store: GitStore
    projects: ProjectService
    versions: VersionService
    links: LinkService
    tmp: Path
    clock: Clock
    git: SmartHttpGitRemote
    _names: Iterator[int] = field(default_factory=itertools.count)

    # --- setup ---------------------------------------------------------------------------------------

    def new_repo(
        self, files: dict[str, str] | None = None, *, default_branch: str = "main", stem: str = "site"
    ) -> str:
        """A repository of its own for one test, installed for the App; returns its name."""
        name = f"{stem}-{next(self._names)}"
        self.emu.create_repo(OWNER, name, default_branch=default_branch, files=files)
        self.emu.change_installation(self.installation, add=[f"{OWNER}/{name}"])
        return name

    def linked(
        self,
        files: dict[str, str] | None = None,
        *,
        mode: str = "direct_commit",
        default_branch: str = "main",
        strategy: str = "manual",
    ) -> tuple[str, str]:
        """A project linked to a new repository holding `files` (conflict strategy `strategy`), imported
        by a first reconcile; returns (project id, repository name)."""
        repo = self.new_repo(files or {"README.md": "hello\n"}, default_branch=default_branch)
        project = self.projects.create_project(repo).id
        self.links.link(project, owner=OWNER, repo=repo, sync_mode=mode, conflict_strategy=strategy)
        self.engine(GIT_DATA_API).reconcile(project)
        assert self.last_operation(project).operation_type == "import"
        return project, repo

    def engine(self, transport: str, **settings: Any) -> ReconcileService:
        """The engine as the worker builds it, every change going by `transport` (see TRANSPORTS):
        git takes any change (no threshold), the Git Data API all but an empty repository's first
        commit, which only git can make."""
        thresholds = (
            TransportThresholds(min_files=0) if transport == GIT else TransportThresholds(enabled=False)
        )
        return ReconcileService(
            self.uow, self.store, self.client, EngineSettings(git_transport=thresholds, **settings), self.git
        )

    def write(
        self,
        project: str,
        files: dict[str, bytes],
        *,
        deletes: tuple[str, ...] = (),
        modes: dict[str, FileMode] | None = None,
        message: str = "A change",
    ) -> str:
        """A new local version; returns its id."""
        modes = modes or {}
        writes = [FileWrite(path, data, modes.get(path, FileMode.REGULAR)) for path, data in files.items()]
        return self.versions.create_version(
            project, message=message, writes=writes, deletes=deletes, author=ADA
        ).id

    # --- a person on GitHub --------------------------------------------------------------------------

    def rest(self) -> httpx.Client:
        """REST as the repository's owner (a person, not the App)."""
        return httpx.Client(
            base_url=self.emu.url,
            headers={"Authorization": f"token {self.person.token}", "Accept": "application/vnd.github+json"},
            trust_env=False,
            timeout=30,
        )

    def protect(self, repo: str, branch: str) -> None:
        """Require a pull request before merging, as a person sets it in the repository's settings
        (https://docs.github.com/rest/branches/branch-protection#update-branch-protection)."""
        with self.rest() as rest:
            response = rest.put(
                f"/repos/{OWNER}/{repo}/branches/{branch}/protection",
                json={
                    "required_status_checks": None,
                    "enforce_admins": True,
                    "required_pull_request_reviews": {"required_approving_review_count": 1},
                    "restrictions": None,
                },
            )
        assert response.status_code == 200, response.text

    def person_push(
        self,
        repo: str,
        branch: str,
        files: dict[str, str] | None = None,
        *,
        message: str = "A person's change",
    ) -> str:
        """Clone, commit `files` (none: an empty commit), push without force; returns the new head."""
        work = self._fresh_dir("push")
        git(self.tmp, "clone", "-q", "--branch", branch, self.git_url(repo), str(work))
        for path, text in (files or {}).items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            git(work, "add", path)
        git(work, "commit", "-q", "--allow-empty", "-m", message)
        git(work, "push", "-q", "origin", branch)
        return git(work, "rev-parse", "HEAD").stdout.strip()

    def git_url(self, repo: str) -> str:
        return self.emu.git_url(OWNER, repo, self.person.token, user=self.person.login)

    def before_publish(
        self, monkeypatch: pytest.MonkeyPatch, transport: str, act: Callable[[], None]
    ) -> list[int]:
        """Run `act` once, just before the engine publishes (the Git Data API's ref update, or the git
        push): a person or GitHub acting between the engine's read and its write. The engine's calls
        stay real HTTP. Returns a list that holds one item once `act` ran."""
        done: list[int] = []

        def hook(real: Callable[..., Any]) -> Callable[..., Any]:
            def hooked(*args: Any, **kwargs: Any) -> Any:
                if not done:
                    done.append(1)
                    act()
                return real(*args, **kwargs)

            return hooked

        if transport == GIT:
            monkeypatch.setattr(self.git, "push", hook(self.git.push))
            return done
        real_repo = self.client.repo

        def repo(installation_id: int, owner: str, name: str) -> Any:
            port = real_repo(installation_id, owner, name)
            port.update_ref = hook(port.update_ref)  # type: ignore[method-assign]
            return port

        monkeypatch.setattr(self.client, "repo", repo)
        return done

    def fault(self, path_regex: str, *, method: str, count: int = 1, **spec: Any) -> None:
        """Make the emulator fail the next `count` matching requests (`kind`: status, reset,
        reset_after, truncate; see github_emulator.faults)."""
        body = {"path_regex": path_regex, "method": method, "count": count, **spec}
        response = self.emu.http.post("/_emulator/faults", json=body)
        assert response.status_code == 201, response.text

    def faults_fired(self) -> list[int]:
        """How often each fault added since the last clear fired."""
        response = self.emu.http.get("/_emulator/faults")
        assert response.status_code == 200, response.text
        return [int(f["fired"]) for f in response.json()]

    # --- reading the outcome -------------------------------------------------------------------------

    def head(self, repo: str, branch: str) -> str | None:
        with self.rest() as rest:
            response = rest.get(f"/repos/{OWNER}/{repo}/git/ref/heads/{branch}")
        if response.status_code in (404, 409):  # no such branch; 409: the repository is empty
            return None
        assert response.status_code == 200, response.text
        sha: str = response.json()["object"]["sha"]
        return sha

    def commit(self, repo: str, sha: str) -> dict[str, Any]:
        with self.rest() as rest:
            response = rest.get(f"/repos/{OWNER}/{repo}/git/commits/{sha}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def open_pulls(self, repo: str) -> list[dict[str, Any]]:
        with self.rest() as rest:
            response = rest.get(f"/repos/{OWNER}/{repo}/pulls", params={"state": "all"})
        assert response.status_code == 200, response.text
        pulls: list[dict[str, Any]] = response.json()
        return pulls

    def logged(self, repo: str, method: str, route_suffix: str) -> list[Any]:
        """The statuses the emulator answered to `method` on `/repos/octo/<repo><route_suffix>...`
        since the log was last cleared (the emulator's own request log: what GitHub saw)."""
        prefix = f"/repos/{OWNER}/{repo}{route_suffix}"
        return [
            r["status"] for r in self.emu.requests() if r["method"] == method and r["path"].startswith(prefix)
        ]

    def local_tree(self, project: str) -> str:
        head = self.store.head(project)
        assert head is not None
        return self.store.get_version(project, head).tree_sha

    def last_operation(self, project: str) -> SyncOperation:
        with self.uow() as uow:
            operation = uow.operations.latest(project)
        assert operation is not None
        return operation

    def operations(self, project: str) -> list[SyncOperation]:
        with self.uow() as uow:
            return uow.operations.recent(limit=100, project_id=project)

    def checked_clone(self, repo: str, branch: str) -> tuple[Path, str]:
        """A person's `git clone` of `branch` over smart HTTP, checked with `git fsck --strict`;
        returns the clone and its head's tree SHA."""
        clone = self._fresh_dir("clone")
        git(self.tmp, "clone", "-q", "--branch", branch, self.git_url(repo), str(clone))
        fsck = git(clone, "fsck", "--strict", "--no-dangling", check=False)
        assert fsck.returncode == 0 and not fsck.stdout.strip() and "error" not in fsck.stderr, (
            f"git fsck --strict: {fsck.stdout}{fsck.stderr}"
        )
        return clone, git(clone, "rev-parse", "HEAD^{tree}").stdout.strip()

    def assert_github_holds(self, project: str, repo: str, branch: str, *, tree: str | None = None) -> Path:
        """Clone `repo` over git smart HTTP: `branch` holds exactly `tree` (default: the project's
        local head's tree), entry by entry and byte for byte, and `git fsck --strict` is clean.
        Returns the clone."""
        expected_tree = tree or self.local_tree(project)
        clone, cloned_tree = self.checked_clone(repo, branch)
        if not self.store.has_objects(project, [expected_tree]):
            # A tree only GitHub has (a person's commit): its SHA says everything about it.
            assert cloned_tree == expected_tree
            return clone
        expected = {
            entry.path: (entry.mode.value, entry.sha)
            for entry in self.store.flat_tree(project, expected_tree).values()
        }
        listed = git(clone, "ls-tree", "-r", "-z", "HEAD").stdout
        actual = {}
        for row in filter(None, listed.split("\0")):
            meta, path = row.split("\t", 1)
            mode, _kind, sha = meta.split()
            actual[path] = (mode, sha)
        assert actual == expected  # path -> (mode, blob SHA): a readable difference first
        assert cloned_tree == expected_tree
        # Byte for byte on disk too, as a person's checkout sees it (symlinks as links).
        for path, (mode, sha) in expected.items():
            on_disk = clone / path
            if mode == FileMode.SYMLINK.value:
                assert on_disk.is_symlink() and os.readlink(on_disk).encode() == self.store.read_blob(
                    project, sha
                )
            else:
                assert on_disk.read_bytes() == self.store.read_blob(project, sha), path
                assert bool(on_disk.stat().st_mode & 0o100) == (mode == FileMode.EXECUTABLE.value), path
        return clone

    def commits_between(self, repo: str, since: str, until: str) -> list[str]:
        """The commits reachable from `until` and not from `since`, newest first (a clone's rev-list)."""
        clone = self._fresh_dir("log")
        git(self.tmp, "clone", "-q", "--bare", self.git_url(repo), str(clone))
        out = git(clone, "rev-list", f"{since}..{until}").stdout
        return out.split()

    def _fresh_dir(self, what: str) -> Path:
        path = self.tmp / f"{what}-{next(self._names)}"
        assert not path.exists()
        return path


def run_like_the_job_runner(
    engine: ReconcileService,
    project: str,
    *,
    attempts: int = 5,
    on_retry_later: Callable[[], None] | None = None,
) -> list[Exception]:
    """Reconcile until it succeeds, as the job runner does: a failure is retried (the engine is
    idempotent), `RetryLater` after its time (`on_retry_later` moves the clock there). Returns the
    errors it met on the way."""
    errors: list[Exception] = []
    for _ in range(attempts):
        try:
            engine.reconcile(project)
            return errors
        except RetryLater as exc:
            errors.append(exc)
            if on_retry_later is not None:
                on_retry_later()
        except GhsyncError as exc:
            errors.append(exc)
    raise AssertionError(f"no convergence after {attempts} attempts: {errors}")


@contextmanager
def fast_emulator(data_dir: Path, **config: Any) -> Iterator[EmulatorHandle]:
    """`run_emulator` with TCP_NODELAY on its listening socket (Linux hands it to every accepted one).

    Without it the emulator sends a response's headers and body in two writes and Nagle holds the
    body until the client's delayed ACK, about 40 ms per request (measured: 44 ms for
    `/_emulator/health`, 4 ms with it); the fix belongs in `github_emulator.testing._free_socket`.
    """
    real_free_socket = github_emulator.testing._free_socket

    def free_socket(host: str) -> socket.socket:
        sock = real_free_socket(host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(github_emulator.testing, "_free_socket", free_socket)
        with run_emulator(data_dir, **config) as emu:
            yield emu


@contextmanager
def outbound_world(tmp: Path, emu: EmulatorHandle) -> Iterator[Outbound]:
    """Wire the engine to `emu` (one App installed on `octo`, a person who owns the repositories)."""
    app = emu.create_app("ghsync-e2e", permissions=PERMISSIONS)
    person = emu.create_user(OWNER, name="Octo Cat", email="octo@example.com")
    emu.create_repo(OWNER, "seed")
    installation = emu.create_installation(app.id, OWNER, [f"{OWNER}/seed"])
    database_url = f"sqlite:///{tmp / 'ghsync.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    clock = Clock()
    client = GitHubAppClient(
        GitHubAppConfig(
            app_id=app.id,
            private_key=app.private_key,
            api_url=emu.url,
            min_write_interval=0,
            retry_base_delay=0.01,
            retry_max_delay=0.05,
            secondary_rate_limit_min_wait=0.2,
        ),
        throttle=InMemoryThrottleState(),
        now=clock,
    )
    queue = InMemoryQueue()
    queue.register("reconcile", lambda args: None)  # the tests run the engine themselves
    uow = SqlUnitOfWorkFactory(engine, notify=queue.request_reconcile)
    # The store's own limit is GitHub's; the engine's (EngineSettings.max_file_size) is what tests shrink.
    store = GitStore(tmp / "projects", max_file_size=100 * MIB)
    projects = ProjectService(uow, store)
    links = LinkService(uow, store, projects, client, SecretBox.from_setting([KEY]), queue)
    try:
        yield Outbound(
            emu,
            app,
            installation,
            person,
            client,
            uow,
            store,
            projects,
            VersionService(uow, store, projects),
            links,
            tmp,
            clock,
            SmartHttpGitRemote(
                git_base_url(emu.url),
                lambda project_id: store.project_dir(project_id) / ".git",
                client.installation_token,
                client.invalidate_installation_token,
            ),
        )
    finally:
        client.close()
        engine.dispose()


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The git command line as a person runs it, isolated from this machine's configuration."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_AUTHOR_NAME": "Octo Cat",
        "GIT_AUTHOR_EMAIL": "octo@example.com",
        "GIT_COMMITTER_NAME": "Octo Cat",
        "GIT_COMMITTER_EMAIL": "octo@example.com",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd),
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}")
    return result
