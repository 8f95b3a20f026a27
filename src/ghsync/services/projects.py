"""Use cases for projects and their versions: create, list, read files, diff, snapshot."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from ghsync.domain.errors import InvalidInput, NotFound
from ghsync.domain.link import Project
from ghsync.domain.models import Author, FileDiff, FileEntry, FileWrite, VersionInfo
from ghsync.observability.metrics import VERSIONS_CREATED
from ghsync.ports.store import VersionStore
from ghsync.ports.uow import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")

MAX_PAGE_SIZE = 200
LATEST = "latest"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def parse_project_id(raw: str | uuid.UUID) -> str:
    """A project id in its one canonical spelling; anything that is not a UUID names no project."""
    try:
        return str(raw if isinstance(raw, uuid.UUID) else uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"project {raw!r} not found") from None


def _encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, expected_parts: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = []
    if len(parts) != expected_parts:
        raise InvalidInput(f"cursor {cursor!r} is not one this API returned", code="invalid_cursor")
    return parts


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", code="invalid_limit")
    return limit


class ProjectService:
    """Projects: rows in the database, each with a local version store."""

    def __init__(self, uow: UnitOfWorkFactory, store: VersionStore) -> None:
        self._uow = uow
        self._store = store

    def create_project(self, name: str) -> Project:
        name = name.strip()
        if not name or len(name) > 255 or any(ord(ch) < 32 for ch in name):
            raise InvalidInput("name must be 1 to 255 printable characters", code="invalid_name")
        project = Project(id=str(uuid.uuid4()), name=name, created_at=datetime.now(UTC))
        # The store first: a directory without a row is harmless, a row without a store is not.
        self._store.init_project(project.id)
        with self._uow() as uow:
            uow.projects.add(project)
            uow.commit()
        return project

    def get_project(self, project_id: str | uuid.UUID) -> Project:
        key = parse_project_id(project_id)
        with self._uow() as uow:
            project = uow.projects.get(key)
        if project is None:
            raise NotFound(f"project {key} not found")
        return project

    def list_projects(self, *, limit: int = 50, cursor: str | None = None) -> Page[Project]:
        limit = _check_limit(limit)
        after = None
        if cursor:
            at_raw, id_raw = _decode_cursor(cursor, 2)
            try:
                after = (datetime.fromisoformat(at_raw), str(uuid.UUID(id_raw)))
            except ValueError:
                raise InvalidInput("malformed cursor", code="invalid_cursor") from None
        with self._uow() as uow:
            rows = uow.projects.page(limit=limit + 1, after=after)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = _encode_cursor(last.created_at.isoformat(), last.id)
        return Page(rows, next_cursor)


class VersionService:
    """Versions of a project: the store's commits are the truth, the database indexes them."""

    def __init__(self, uow: UnitOfWorkFactory, store: VersionStore, projects: ProjectService) -> None:
        self._uow = uow
        self._store = store
        self._projects = projects

    def create_version(
        self,
        project_id: str | uuid.UUID,
        *,
        message: str,
        writes: Sequence[FileWrite],
        deletes: Sequence[str] = (),
        replace_all: bool = False,
        author: Author | None = None,
    ) -> VersionInfo:
        project = self._projects.get_project(project_id)
        message = _check_message(message)
        info = self._store.create_version(
            project.id,
            version_id=str(uuid.uuid4()),
            message=message,
            writes=writes,
            deletes=deletes,
            replace_all=replace_all,
            author=author,
        )
        VERSIONS_CREATED.labels(source="local").inc()
        self._after_store_change(project, reason="local_version")
        return info

    def snapshot(
        self, project_id: str | uuid.UUID, *, message: str | None, author: Author | None = None
    ) -> VersionInfo | None:
        project = self._projects.get_project(project_id)
        info = self._store.snapshot(
            project.id,
            version_id=str(uuid.uuid4()),
            message=_check_message(message or "Snapshot of the working directory"),
            author=author,
        )
        if info is None:
            return None
        VERSIONS_CREATED.labels(source="local").inc()
        self._after_store_change(project, reason="snapshot")
        return info

    def _after_store_change(self, project: Project, reason: str) -> None:
        """Index the new version and, on a linked and enabled project, request a reconcile: one commit."""
        with self._uow() as uow:
            self._index(uow, project.id)
            current = uow.projects.get(project.id)
            if current is not None and current.link is not None and current.link.enabled:
                uow.request_reconcile(project.id, reason)
            uow.commit()

    def _index(self, uow: UnitOfWork, project_id: str) -> int:
        missing = self._store.versions_after(project_id, uow.versions.max_number(project_id))
        return uow.versions.add_all(project_id, missing) if missing else 0

    def index_versions(self, project_id: str | uuid.UUID) -> int:
        """Record in the database every store version it does not know yet; returns how many.

        Run after each store change, so a crash between the store's commit and the index heals on the
        next change, and at start-up through `reindex_all`.
        """
        key = parse_project_id(project_id)
        with self._uow() as uow:
            added = self._index(uow, key)
            uow.commit()
        return added

    def reindex_all(self) -> int:
        """Index every project's unrecorded versions (run when the service starts); returns how many."""
        with self._uow() as uow:
            project_ids = uow.projects.ids()
        return sum(self.index_versions(project_id) for project_id in project_ids)

    def list_versions(
        self, project_id: str | uuid.UUID, *, limit: int = 50, cursor: str | None = None
    ) -> Page[VersionInfo]:
        project = self._projects.get_project(project_id)
        limit = _check_limit(limit)
        before = None
        if cursor:
            (number,) = _decode_cursor(cursor, 1)
            if not number.isdigit():
                raise InvalidInput("malformed cursor", code="invalid_cursor")
            before = int(number)
        with self._uow() as uow:
            rows = uow.versions.page(project.id, limit=limit + 1, before_number=before)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(str(rows[-1].number))
        return Page(rows, next_cursor)

    def resolve(self, project_id: str | uuid.UUID, ref: str) -> VersionInfo:
        """A version by id, or `latest`."""
        project = self._projects.get_project(project_id)
        with self._uow() as uow:
            version = uow.versions.latest(project.id) if ref == LATEST else uow.versions.get(project.id, ref)
        if version is None:
            raise NotFound("project has no versions yet" if ref == LATEST else f"version {ref!r} not found")
        return version

    def list_files(self, project_id: str | uuid.UUID, ref: str) -> tuple[VersionInfo, list[FileEntry]]:
        """The version `ref` names and its files."""
        version = self.resolve(project_id, ref)
        return version, self._store.list_files(parse_project_id(project_id), version.commit_sha)

    def read_file(self, project_id: str | uuid.UUID, ref: str, path: str) -> bytes:
        version = self.resolve(project_id, ref)
        return self._store.read_file(parse_project_id(project_id), version.commit_sha, path)

    def diff(
        self, project_id: str | uuid.UUID, from_ref: str | None, to_ref: str
    ) -> tuple[VersionInfo | None, VersionInfo, list[FileDiff]]:
        to_version = self.resolve(project_id, to_ref)
        from_version = self.resolve(project_id, from_ref) if from_ref else None
        files = self._store.diff(
            parse_project_id(project_id),
            from_version.commit_sha if from_version else None,
            to_version.commit_sha,
        )
        return from_version, to_version, files


def _check_message(message: str) -> str:
    message = message.strip()
    if not message:
        raise InvalidInput("message must not be empty", code="invalid_message")
    if len(message) > 65_536:
        raise InvalidInput("message is longer than 65536 characters", code="invalid_message")
    if "\x00" in message:
        raise InvalidInput("message must not contain NUL", code="invalid_message")
    return message
