"""The open conflict as a person's conflict UI needs it: per file its kind, the base, local and GitHub
sides (text, or blob SHAs and sizes for binary files) and a unified diff of local against GitHub.

Everything is read from the local store: when the engine detected the conflict it fetched GitHub's tree
and the blobs the store lacked (`ReconcileService._fetch_github_tree`), so answering costs no GitHub
request. Only GitHub's *tree SHA* may be unknown locally (the conflict row names GitHub's commit, which
the Git Data API path does not import); it is then read once from GitHub, and any blob the store still
lacks is read from GitHub too, never written, so this view changes nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ghsync.domain.errors import NotFound
from ghsync.domain.link import Link
from ghsync.domain.operations import ConflictRecord
from ghsync.domain.trees import FlatTree, TreeEntry
from ghsync.ports.github import GitHubApp, GitHubRepo
from ghsync.ports.store import VersionStore
from ghsync.ports.uow import UnitOfWorkFactory
from ghsync.services.projects import parse_project_id

# Contents up to this size are inlined as text; larger files (and binary ones) answer with SHA and size.
MAX_INLINE_TEXT = 1024 * 1024
# git's own binary heuristic: a NUL byte in the first 8000 bytes (xdiff's `buffer_is_binary`).
_BINARY_SNIFF = 8000

Side = Literal["base", "local", "github"]


@dataclass(frozen=True, slots=True)
class FileSide:
    """One side of a conflicting path: absent (`sha` None), or its blob and, for text, its content."""

    sha: str | None = None
    mode: str | None = None
    size: int | None = None
    content: str | None = None  # UTF-8 text; None when absent, binary or over MAX_INLINE_TEXT


@dataclass(frozen=True, slots=True)
class ConflictFile:
    path: str
    kind: str
    binary: bool
    base: FileSide
    local: FileSide
    github: FileSide
    diff: str | None  # unified diff local -> GitHub for text files, None for binary ones


@dataclass(frozen=True, slots=True)
class ConflictView:
    """The answer of GET .../github/conflict; `local_head`/`github_head` are what a resolution quotes."""

    id: str
    created_at: datetime | None
    strategy: str | None
    local_head: str | None
    github_head: str | None
    base_local: str | None
    base_github: str | None
    files: tuple[ConflictFile, ...]


def is_binary(content: bytes) -> bool:
    """Binary the way git decides it (a NUL byte early on), or not valid UTF-8 (we answer text as str)."""
    if b"\0" in content[:_BINARY_SNIFF]:
        return True
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def unified_diff(path: str, local: str | None, github: str | None) -> str:
    """The unified diff turning the local side of `path` into GitHub's (an absent side is empty)."""
    lines = difflib.unified_diff(
        (local or "").splitlines(keepends=True),
        (github or "").splitlines(keepends=True),
        fromfile=f"local/{path}" if local is not None else "/dev/null",
        tofile=f"github/{path}" if github is not None else "/dev/null",
    )
    # difflib leaves a last line without its newline as is; say so the way git does.
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def describe_file(
    path: str, kind: str, entries: Mapping[Side, TreeEntry | None], read: Callable[[str], bytes]
) -> ConflictFile:
    """One conflicting path from its three tree entries (pure but for `read`, which returns a blob)."""
    contents: dict[Side, bytes | None] = {
        side: read(entry.sha) if entry is not None else None for side, entry in entries.items()
    }
    binary = any(c is not None and is_binary(c) for c in contents.values())
    inline = not binary and all(c is None or len(c) <= MAX_INLINE_TEXT for c in contents.values())

    def side(name: Side) -> FileSide:
        entry, content = entries.get(name), contents.get(name)
        if entry is None or content is None:
            return FileSide()
        return FileSide(
            sha=entry.sha,
            mode=entry.mode.value,
            size=len(content),
            content=content.decode("utf-8") if inline else None,
        )

    local, github = side("local"), side("github")
    return ConflictFile(
        path=path,
        kind=kind,
        binary=binary,
        base=side("base"),
        local=local,
        github=github,
        diff=unified_diff(path, local.content, github.content) if inline else None,
    )


class ConflictService:
    """Reads a project's open conflict for the API (no writes anywhere)."""

    def __init__(self, uow: UnitOfWorkFactory, store: VersionStore, github: GitHubApp | None) -> None:
        self._uow = uow
        self._store = store
        self._github = github

    def open_conflict(self, project_id: str) -> ConflictView:
        """The open conflict with both sides of every file; `NotFound(no_open_conflict)` when none."""
        key = parse_project_id(project_id)
        with self._uow() as uow:
            project = uow.projects.get(key)
            if project is None:
                raise NotFound(f"project {key} not found")
            conflict = uow.conflicts.open_for(key)
            if conflict is None:
                raise NotFound("the project has no open conflict", code="no_open_conflict")
            pairs = uow.pairs.all(key)
        base_tree = next(
            (
                p.tree_sha
                for p in pairs
                if (p.local_commit_sha, p.github_commit_sha)
                == (conflict.base_local_commit_sha, conflict.base_github_commit_sha)
            ),
            None,
        )
        if base_tree is None and conflict.base_local_commit_sha:
            base_tree = self._store.tree_sha(key, conflict.base_local_commit_sha)
        local_tree = (
            self._store.tree_sha(key, conflict.local_commit_sha) if conflict.local_commit_sha else None
        )
        listed = conflict.details.get("files") or [{"path": p, "kind": "content"} for p in conflict.paths]
        # A person is waiting: whatever GitHub reads this needs go at user priority.
        with self._github.priority("user") if self._github is not None else nullcontext():
            trees: dict[Side, FlatTree] = {
                "base": self._store.flat_tree(key, base_tree),
                "local": self._store.flat_tree(key, local_tree),
                "github": self._github_tree(key, project.link, conflict),
            }
            files = tuple(
                describe_file(
                    str(f["path"]),
                    str(f["kind"]),
                    {side: tree.get(str(f["path"])) for side, tree in trees.items()},
                    lambda sha: self._read_blob(key, project.link, sha),
                )
                for f in listed
            )
        return ConflictView(
            id=conflict.id or "",
            created_at=conflict.created_at,
            strategy=conflict.strategy,
            local_head=conflict.local_commit_sha,
            github_head=conflict.github_commit_sha,
            base_local=conflict.base_local_commit_sha,
            base_github=conflict.base_github_commit_sha,
            files=files,
        )

    def _github_tree(self, key: str, link: Link | None, conflict: ConflictRecord) -> FlatTree:
        sha = conflict.github_commit_sha
        if sha is None:
            return {}
        if self._store.has_objects(key, [sha]):  # imported (git transport, github_wins, a pull)
            tree = self._store.tree_sha(key, sha)
        else:
            tree = self._repo(link, sha).get_commit(sha).tree_sha
        if self._store.has_objects(key, [tree]):
            return self._store.flat_tree(key, tree)
        return {entry.path: entry for entry in self._repo(link, sha).get_tree(tree)}

    def _read_blob(self, key: str, link: Link | None, sha: str) -> bytes:
        if self._store.has_objects(key, [sha]):
            return self._store.read_blob(key, sha)
        return self._repo(link, sha).get_blob(sha)

    def _repo(self, link: Link | None, sha: str) -> GitHubRepo:
        if self._github is None or link is None:
            raise NotFound(f"GitHub's side ({sha}) is not in the store and GitHub is not configured")
        return self._github.repo(link.installation_id, link.owner, link.repo)
