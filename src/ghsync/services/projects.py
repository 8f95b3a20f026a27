"""Use cases for projects and their versions: create, list, read files, diff, snapshot."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ghsync.adapters.db.engine import is_sqlite
from ghsync.adapters.db.models import ProjectRow, VersionRow
from ghsync.adapters.queue.port import JobQueue
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.errors import InvalidInput, NotFound
from ghsync.domain.models import Author, FileDiff, FileEntry, FileWrite, VersionInfo
from ghsync.observability.metrics import VERSIONS_CREATED

T = TypeVar("T")

MAX_PAGE_SIZE = 200
LATEST = "latest"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def parse_project_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
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
    """Projects: rows in the database, each with a local git store."""

    def __init__(self, engine: Engine, store: GitStore) -> None:
        self._engine = engine
        self._store = store

    def create_project(self, name: str) -> ProjectRow:
        name = name.strip()
        if not name or len(name) > 255 or any(ord(ch) < 32 for ch in name):
            raise InvalidInput("name must be 1 to 255 printable characters", code="invalid_name")
        project = ProjectRow(id=uuid.uuid4(), name=name)
        # The store first: a directory without a row is harmless, a row without a store is not.
        self._store.init_project(str(project.id))
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            session.add(project)
        return project

    def get_project(self, project_id: uuid.UUID) -> ProjectRow:
        with Session(self._engine, expire_on_commit=False) as session:
            project = session.get(ProjectRow, project_id)
        if project is None:
            raise NotFound(f"project {project_id} not found")
        return project

    def list_projects(self, *, limit: int = 50, cursor: str | None = None) -> Page[ProjectRow]:
        limit = _check_limit(limit)
        query = select(ProjectRow).order_by(ProjectRow.created_at.desc(), ProjectRow.id.desc())
        if cursor:
            at_raw, id_raw = _decode_cursor(cursor, 2)
            try:
                at, last_id = datetime.fromisoformat(at_raw), uuid.UUID(id_raw)
            except ValueError:
                raise InvalidInput("malformed cursor", code="invalid_cursor") from None
            query = query.where(
                or_(
                    ProjectRow.created_at < at,
                    and_(ProjectRow.created_at == at, ProjectRow.id < last_id),
                )
            )
        with Session(self._engine, expire_on_commit=False) as session:
            rows = list(session.scalars(query.limit(limit + 1)))
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = _encode_cursor(last.created_at.isoformat(), str(last.id))
        return Page(rows, next_cursor)


class VersionService:
    """Versions of a project: the store's commits are the truth, the `versions` table indexes them."""

    def __init__(self, engine: Engine, store: GitStore, projects: ProjectService, queue: JobQueue) -> None:
        self._engine = engine
        self._store = store
        self._projects = projects
        self._queue = queue

    def create_version(
        self,
        project_id: uuid.UUID,
        *,
        message: str,
        writes: Sequence[FileWrite],
        deletes: Sequence[str] = (),
        replace_all: bool = False,
        author: Author | None = None,
    ) -> VersionRow:
        self._projects.get_project(project_id)
        message = _check_message(message)
        info = self._store.create_version(
            str(project_id),
            version_id=str(uuid.uuid4()),
            message=message,
            writes=writes,
            deletes=deletes,
            replace_all=replace_all,
            author=author,
        )
        VERSIONS_CREATED.labels(source="local").inc()
        return self._after_store_change(project_id, info, reason="local_version")

    def snapshot(
        self, project_id: uuid.UUID, *, message: str | None, author: Author | None = None
    ) -> VersionRow | None:
        self._projects.get_project(project_id)
        info = self._store.snapshot(
            str(project_id),
            version_id=str(uuid.uuid4()),
            message=_check_message(message or "Snapshot of the working directory"),
            author=author,
        )
        if info is None:
            return None
        VERSIONS_CREATED.labels(source="local").inc()
        return self._after_store_change(project_id, info, reason="snapshot")

    def _after_store_change(self, project_id: uuid.UUID, info: VersionInfo, reason: str) -> VersionRow:
        self.index_versions(project_id)
        self._queue.request_reconcile(str(project_id), reason)
        return self._row(project_id, info.id)

    def index_versions(self, project_id: uuid.UUID) -> int:
        """Record in the database every store version it does not know yet; returns how many.

        Run after each store change, so a crash between the store's commit and the row insert
        heals on the next change, and at start-up through `reindex_all`.
        """
        with Session(self._engine) as session:
            known = session.scalar(
                select(func.max(VersionRow.number)).where(VersionRow.project_id == project_id)
            )
        missing = self._store.versions_after(str(project_id), known or 0)
        if not missing:
            return 0
        insert = sqlite_insert if is_sqlite(self._engine) else pg_insert
        values = [
            {
                "id": uuid.UUID(v.id),
                "project_id": project_id,
                "number": v.number,
                "commit_sha": v.commit_sha,
                "tree_sha": v.tree_sha,
                "message": v.message,
                "source": v.source,
                "author_name": v.author.name if v.author else None,
                "author_email": v.author.email if v.author else None,
                "created_at": v.created_at,
            }
            for v in missing
        ]
        with Session(self._engine) as session, session.begin():
            # Concurrent writers index the same versions; the first insert wins.
            session.execute(insert(VersionRow).values(values).on_conflict_do_nothing())
        return len(missing)

    def reindex_all(self) -> int:
        """Index every project's unrecorded versions (run when the service starts); returns how many."""
        with Session(self._engine) as session:
            project_ids = list(session.scalars(select(ProjectRow.id)))
        return sum(self.index_versions(project_id) for project_id in project_ids)

    def _row(self, project_id: uuid.UUID, version_id: str) -> VersionRow:
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.scalar(
                select(VersionRow).where(
                    VersionRow.project_id == project_id, VersionRow.id == uuid.UUID(version_id)
                )
            )
        if row is None:
            raise NotFound(f"version {version_id} not found")
        return row

    def list_versions(
        self, project_id: uuid.UUID, *, limit: int = 50, cursor: str | None = None
    ) -> Page[VersionRow]:
        self._projects.get_project(project_id)
        limit = _check_limit(limit)
        query = (
            select(VersionRow).where(VersionRow.project_id == project_id).order_by(VersionRow.number.desc())
        )
        if cursor:
            (number,) = _decode_cursor(cursor, 1)
            if not number.isdigit():
                raise InvalidInput("malformed cursor", code="invalid_cursor")
            query = query.where(VersionRow.number < int(number))
        with Session(self._engine, expire_on_commit=False) as session:
            rows = list(session.scalars(query.limit(limit + 1)))
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(str(rows[-1].number))
        return Page(rows, next_cursor)

    def resolve(self, project_id: uuid.UUID, ref: str) -> VersionRow:
        """A version by id, or `latest`."""
        self._projects.get_project(project_id)
        query = select(VersionRow).where(VersionRow.project_id == project_id)
        if ref == LATEST:
            query = query.order_by(VersionRow.number.desc()).limit(1)
        else:
            try:
                query = query.where(VersionRow.id == uuid.UUID(ref))
            except ValueError:
                raise NotFound(f"version {ref!r} not found") from None
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.scalar(query)
        if row is None:
            raise NotFound("project has no versions yet" if ref == LATEST else f"version {ref!r} not found")
        return row

    def list_files(self, project_id: uuid.UUID, ref: str) -> tuple[VersionRow, list[FileEntry]]:
        """The version `ref` names and its files."""
        version = self.resolve(project_id, ref)
        return version, self._store.list_files(str(project_id), version.commit_sha)

    def read_file(self, project_id: uuid.UUID, ref: str, path: str) -> bytes:
        version = self.resolve(project_id, ref)
        return self._store.read_file(str(project_id), version.commit_sha, path)

    def diff(
        self, project_id: uuid.UUID, from_ref: str | None, to_ref: str
    ) -> tuple[VersionRow | None, VersionRow, list[FileDiff]]:
        to_version = self.resolve(project_id, to_ref)
        from_version = self.resolve(project_id, from_ref) if from_ref else None
        files = self._store.diff(
            str(project_id), from_version.commit_sha if from_version else None, to_version.commit_sha
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
