"""The emulator's durable state: records for apps, users, repositories and the rest, saved as JSON.

Git objects live in real bare repositories under ``<data>/git/<repo id>.git`` (named by id so
a rename never moves them); everything else is one ``state.json`` written atomically after each
change. Runtime-only things (faults, webhook mode, the request log) are not persisted.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


def now_iso() -> str:
    """GitHub's timestamp form: ISO 8601 UTC with a ``Z`` and no fraction."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_from_epoch(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AppRecord(BaseModel):
    id: int
    slug: str
    name: str
    owner: str
    client_id: str
    private_key_pem: str
    public_key_pem: str
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_active: bool = True
    hook_id: int
    created_at: str
    updated_at: str
    events: list[str] = Field(default_factory=list)
    permissions: dict[str, str] = Field(default_factory=dict)


class UserRecord(BaseModel):
    id: int
    login: str
    type: str = "User"  # "User" or "Organization"
    token: str | None = None
    name: str | None = None
    email: str | None = None
    created_at: str


class InstallationRecord(BaseModel):
    id: int
    app_id: int
    account: str
    repository_selection: str = "selected"  # "all" or "selected"
    repository_ids: list[int] = Field(default_factory=list)
    created_at: str
    updated_at: str
    suspended_at: str | None = None
    suspended_by: dict[str, Any] | None = None  # the simple-user who suspended it


class TokenRecord(BaseModel):
    token: str
    kind: str  # "installation" or "user"
    installation_id: int | None = None
    user_login: str | None = None
    expires_at: float | None = None
    repository_ids: list[int] | None = None
    permissions: dict[str, str] = Field(default_factory=dict)


class HookRecord(BaseModel):
    id: int
    repo_id: int
    url: str
    secret: str | None = None
    content_type: str = "json"
    insecure_ssl: str = "0"
    events: list[str] = Field(default_factory=lambda: ["push"])
    active: bool = True
    created_at: str
    updated_at: str


class RepoRecord(BaseModel):
    id: int
    owner: str
    name: str
    private: bool = False
    description: str | None = None
    homepage: str | None = None
    default_branch: str = "main"
    created_at: str
    updated_at: str
    pushed_at: str
    has_issues: bool = True
    has_projects: bool = True
    has_wiki: bool = True
    has_discussions: bool = False
    archived: bool = False
    allow_merge_commit: bool = True
    allow_squash_merge: bool = True
    allow_rebase_merge: bool = True
    delete_branch_on_merge: bool = False
    topics: list[str] = Field(default_factory=list)
    # branch name -> protection settings as GitHub stores them after a PUT
    protections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    hook_ids: list[int] = Field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class PullRecord(BaseModel):
    id: int
    number: int
    repo_id: int
    state: str = "open"
    title: str
    body: str | None = None
    user: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    draft: bool = False
    maintainer_can_modify: bool = False
    created_at: str
    updated_at: str
    closed_at: str | None = None
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    # Mergeability as GitHub's background job left it: computed for "<base sha>:<head sha>"
    # (None: not yet, so the API answers ``mergeable: null``).
    mergeable_for: str | None = None
    mergeable: bool | None = None


class DeliveryRecord(BaseModel):
    id: int
    guid: str
    hook_id: int
    target_type: str  # "integration" or "repository"
    target_id: int
    url: str
    event: str
    action: str | None = None
    installation_id: int | None = None
    repository_id: int | None = None
    delivered_at: str
    redelivery: bool = False
    duration: float = 0.0
    status: str = "pending"
    status_code: int = 0
    request_headers: dict[str, str] = Field(default_factory=dict)
    payload: str = ""
    response_headers: dict[str, str] = Field(default_factory=dict)
    response_body: str | None = None


class StateData(BaseModel):
    next_id: int = 1000
    apps: dict[int, AppRecord] = Field(default_factory=dict)
    users: dict[str, UserRecord] = Field(default_factory=dict)  # key: lower-case login
    installations: dict[int, InstallationRecord] = Field(default_factory=dict)
    tokens: dict[str, TokenRecord] = Field(default_factory=dict)
    repos: dict[int, RepoRecord] = Field(default_factory=dict)
    # lower-case "owner/name" of a renamed repository -> its id (GitHub redirects old names)
    redirects: dict[str, int] = Field(default_factory=dict)
    hooks: dict[int, HookRecord] = Field(default_factory=dict)
    pulls: dict[int, PullRecord] = Field(default_factory=dict)
    deliveries: dict[int, DeliveryRecord] = Field(default_factory=dict)


class Store:
    """Holds :class:`StateData` in memory behind one re-entrant lock and persists it to disk."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.git_root = data_dir / "git"
        self.lock = threading.RLock()
        self._state_file = data_dir / "state.json"
        self.git_root.mkdir(parents=True, exist_ok=True)
        if self._state_file.exists():
            self.data = StateData.model_validate_json(self._state_file.read_text())
        else:
            self.data = StateData()
        self._repo_locks: dict[int, threading.Lock] = {}

    def save(self) -> None:
        with self.lock:
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(self.data.model_dump_json())
            os.replace(tmp, self._state_file)

    def new_id(self) -> int:
        with self.lock:
            self.data.next_id += 1
            return self.data.next_id

    def repo_lock(self, repo_id: int) -> threading.Lock:
        """A per-repository lock so ref updates (REST and git pushes) are serialised."""
        with self.lock:
            return self._repo_locks.setdefault(repo_id, threading.Lock())

    def git_dir(self, repo_id: int) -> Path:
        return self.git_root / f"{repo_id}.git"

    # ---- lookups -------------------------------------------------------------------------

    def find_repo(self, owner: str, name: str) -> RepoRecord | None:
        key = f"{owner}/{name}".lower()
        with self.lock:
            for repo in self.data.repos.values():
                if repo.full_name.lower() == key:
                    return repo
        return None

    def redirected_repo(self, owner: str, name: str) -> RepoRecord | None:
        with self.lock:
            repo_id = self.data.redirects.get(f"{owner}/{name}".lower())
            return self.data.repos.get(repo_id) if repo_id is not None else None

    def user(self, login: str) -> UserRecord | None:
        with self.lock:
            return self.data.users.get(login.lower())

    def ensure_account(self, login: str, kind: str = "User") -> UserRecord:
        """Owners of repositories and installation accounts exist implicitly, as on GitHub."""
        with self.lock:
            found = self.data.users.get(login.lower())
            if found is None:
                found = UserRecord(id=self.new_id(), login=login, type=kind, created_at=now_iso())
                self.data.users[login.lower()] = found
            return found

    def installation_for_repo(self, repo_id: int) -> InstallationRecord | None:
        with self.lock:
            for inst in self.data.installations.values():
                if repo_id in inst.repository_ids:
                    return inst
        return None

    def reset(self) -> None:
        with self.lock:
            self.data = StateData()
            shutil.rmtree(self.git_root, ignore_errors=True)
            self.git_root.mkdir(parents=True, exist_ok=True)
            self._repo_locks.clear()
            self.save()


def epoch() -> float:
    return time.time()
