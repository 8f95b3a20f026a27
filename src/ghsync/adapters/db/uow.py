"""The unit-of-work port on SQLAlchemy (SQLite and PostgreSQL): one session, one transaction, every table.

On SQLite the transaction takes the write lock up front (`BEGIN IMMEDIATE`): a unit of work that reads
and then writes would otherwise fail when another writer committed in between (WAL snapshots cannot be
upgraded). On PostgreSQL the compare-and-set updates carry their condition in the `WHERE` clause.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self, cast

from sqlalchemy import Engine, Insert, Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ghsync.adapters.db.base import utcnow
from ghsync.adapters.db.engine import is_sqlite, write_bind
from ghsync.adapters.db.ids import uuid7
from ghsync.adapters.db.models import (
    AuditLogRow,
    ConflictRow,
    ProjectRow,
    ReconcileRequestRow,
    SyncOperationRow,
    SyncPairRow,
    VersionRow,
    WebhookDeliveryRow,
)
from ghsync.adapters.db.notifications import SqlNotifications
from ghsync.domain.link import Link, OpenPullRequest, Project, SyncPair, Tracking
from ghsync.domain.models import Author, VersionInfo
from ghsync.domain.operations import (
    AuditEntry,
    ConflictRecord,
    DeliveryStatus,
    ReconcileRequest,
    SyncOperation,
    WebhookDelivery,
)
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.ports.uow import ReconcileNotifier

log = logging.getLogger(__name__)

# The tables written with Core statements (for many rows at once, without the ORM's per-row work).
_DELIVERIES = cast(Table, WebhookDeliveryRow.__table__)
_REQUESTS = cast(Table, ReconcileRequestRow.__table__)
_VERSIONS = cast(Table, VersionRow.__table__)
# Built once: the webhook receiver runs it for every batch, and building the IN clause cost more than
# running it (an expanding parameter takes any number of ids into the one cached statement).
_BY_REPOSITORIES = (
    select(ProjectRow)
    .where(ProjectRow.github_repository_id.in_(bindparam("ids", expanding=True)))
    .order_by(ProjectRow.id)
)
# `_insert_all`'s statements, built once per dialect, table, columns and options.
_INSERTS: dict[tuple[str, str, tuple[str, ...], bool, str | None], Insert] = {}


def _insert_all(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, object]],
    *,
    skip_conflicts: bool = False,
    returning: str | None = None,
) -> list[object]:
    """Insert `rows` (each naming the same columns) in one statement; the `returning` column of the rows
    inserted (with `skip_conflicts`, those already there are skipped: ON CONFLICT DO NOTHING).

    On PostgreSQL the statement is `INSERT … SELECT unnest(:column_1), unnest(:column_2), …`, an array per
    column (set-returning functions side by side in a select list are zipped row by row:
    https://www.postgresql.org/docs/current/xfunc-sql.html#XFUNC-SQL-FUNCTIONS-RETURNING-SET). Its text
    is the same for any number of rows, so psycopg parses it once; a multi-row VALUES list is a new text
    for every batch size, and psycopg parses those each time (it caches statements of at most 4 KB and 50
    parameters), which cost the webhook receiver more than the insert itself. On SQLite the rows are
    sent as they are (SQLAlchemy's "insertmanyvalues", or sqlite3's executemany).
    """
    if not rows:
        return []
    columns = tuple(rows[0])
    connection = session.connection()
    key = (connection.dialect.name, table.name, columns, skip_conflicts, returning)
    statement = _INSERTS.get(key)
    if statement is None:
        if is_sqlite(connection.engine):
            upsert = sqlite_insert(table)
            statement = upsert.on_conflict_do_nothing() if skip_conflicts else upsert
        else:
            arrays = [
                func.unnest(
                    sql_cast(bindparam(name, type_=ARRAY(table.c[name].type)), ARRAY(table.c[name].type))
                )
                for name in columns
            ]
            pg_upsert = pg_insert(table).from_select(list(columns), select(*arrays))
            statement = pg_upsert.on_conflict_do_nothing() if skip_conflicts else pg_upsert
        if returning is not None:
            statement = statement.returning(table.c[returning])
        _INSERTS[key] = statement
    if is_sqlite(connection.engine):
        result = connection.execute(statement, list(rows))
    else:
        result = connection.execute(statement, {name: [row[name] for row in rows] for name in columns})
    return list(result.scalars()) if returning is not None else []


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


# --- row <-> domain -------------------------------------------------------------------------------------


def project_of(row: ProjectRow) -> Project:
    link = None
    if row.github_repository_id is not None:
        assert row.github_repo_owner and row.github_repo_name and row.github_installation_id
        link = Link(
            project_id=str(row.id),
            owner=row.github_repo_owner,
            repo=row.github_repo_name,
            repository_id=row.github_repository_id,
            installation_id=row.github_installation_id,
            default_branch=row.github_branch or "",
            protected=row.github_branch_protected,
            mode=SyncMode(row.github_sync_mode),
            strategy=ConflictStrategy(row.github_conflict_strategy),
            enabled=row.github_sync_enabled,
            allow_force_push=row.github_allow_force_push,
            hold_force_pushes=row.github_hold_force_pushes,
        )
    return Project(
        id=str(row.id),
        name=row.name,
        created_at=row.created_at,
        link=link,
        tracking=Tracking(
            last_remote_main_sha=row.last_remote_main_sha,
            last_synced_main_sha=row.last_synced_main_sha,
            last_outbound_base_sha=row.last_outbound_base_sha,
            last_github_sync_at=row.last_github_sync_at,
        ),
        pull_request=(
            OpenPullRequest(row.github_pr_number, row.github_pr_url or "")
            if row.github_pr_number is not None
            else None
        ),
        webhook_secret=row.github_webhook_secret,
    )


def _link_values(link: Link) -> dict[str, object]:
    return {
        "github_repo_owner": link.owner,
        "github_repo_name": link.repo,
        "github_repository_id": link.repository_id,
        "github_installation_id": link.installation_id,
        "github_branch": link.default_branch,
        "github_branch_protected": link.protected,
        "github_sync_mode": link.mode.value,
        "github_conflict_strategy": link.strategy.value,
        "github_sync_enabled": link.enabled,
        "github_allow_force_push": link.allow_force_push,
        "github_hold_force_pushes": link.hold_force_pushes,
    }


def _tracking_values(tracking: Tracking) -> dict[str, object]:
    return {
        "last_remote_main_sha": tracking.last_remote_main_sha,
        "last_synced_main_sha": tracking.last_synced_main_sha,
        "last_outbound_base_sha": tracking.last_outbound_base_sha,
        "last_github_sync_at": tracking.last_github_sync_at,
    }


def _version_of(row: VersionRow) -> VersionInfo:
    return VersionInfo(
        id=str(row.id),
        number=row.number,
        commit_sha=row.commit_sha,
        tree_sha=row.tree_sha,
        message=row.message,
        source="github" if row.source == "github" else "local",
        author=Author(row.author_name or "", row.author_email or ""),
        created_at=row.created_at,
    )


def _pair_of(row: SyncPairRow) -> SyncPair:
    return SyncPair(
        version_id=str(row.version_id),
        local_commit_sha=row.local_commit_sha,
        github_commit_sha=row.github_commit_sha,
        tree_sha=row.tree_sha,
        repository_id=row.github_repository_id,
        created_at=row.created_at,
    )


_OPERATION_FIELDS = (
    "operation_type",
    "status",
    "direction",
    "github_commit_sha",
    "github_commit_message",
    "github_author_name",
    "github_author_email",
    "local_version_id",
    "local_commit_sha",
    "files_changed",
    "insertions",
    "deletions",
    "conflicts_detected",
    "error_message",
    "error_code",
    "retry_count",
    "started_at",
    "completed_at",
)


def _operation_of(row: SyncOperationRow) -> SyncOperation:
    values = {name: getattr(row, name) for name in _OPERATION_FIELDS}
    return SyncOperation(
        id=str(row.id),
        project_id=str(row.project_id) if row.project_id else None,
        created_at=row.created_at,
        metadata=dict(row.metadata_ or {}),
        **values,
    )


def _conflict_of(row: ConflictRow) -> ConflictRecord:
    return ConflictRecord(
        id=str(row.id),
        project_id=str(row.project_id),
        status="resolved" if row.status == "resolved" else "open",
        base_local_commit_sha=row.base_local_commit_sha,
        base_github_commit_sha=row.base_github_commit_sha,
        local_commit_sha=row.local_commit_sha,
        github_commit_sha=row.github_commit_sha,
        paths=tuple(row.paths or ()),
        strategy=row.strategy,
        resolution=row.resolution,
        details=dict(row.details or {}),
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )


def _delivery_of(row: WebhookDeliveryRow) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=row.delivery_id,
        event=row.event,
        status=row.status,  # type: ignore[arg-type]  # written only from DeliveryStatus
        expires_at=row.expires_at,
        action=row.action,
        project_id=str(row.project_id) if row.project_id else None,
        installation_id=row.installation_id,
        received_at=row.received_at,
    )


def _delivery_values(delivery: WebhookDelivery) -> dict[str, object]:
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "project_id": _uuid(delivery.project_id) if delivery.project_id else None,
        "installation_id": delivery.installation_id,
        "status": delivery.status,
        "received_at": delivery.received_at or utcnow(),
        "expires_at": delivery.expires_at,
    }


def _request_of(row: ReconcileRequestRow) -> ReconcileRequest:
    return ReconcileRequest(
        id=str(row.id),
        project_id=str(row.project_id),
        reason=row.reason,
        requested_at=row.requested_at,
        operation_id=str(row.operation_id) if row.operation_id else None,
    )


# --- repositories ---------------------------------------------------------------------------------------


class _Repo:
    def __init__(self, session: Session) -> None:
        self._s = session


class SqlProjects(_Repo):
    def add(self, project: Project) -> None:
        self._s.add(ProjectRow(id=uuid.UUID(project.id), name=project.name, created_at=project.created_at))
        self._s.flush()

    def get(self, project_id: str) -> Project | None:
        key = _uuid(project_id)
        row = self._s.get(ProjectRow, key) if key else None
        return project_of(row) if row else None

    def page(self, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Project]:
        query = select(ProjectRow).order_by(ProjectRow.created_at.desc(), ProjectRow.id.desc())
        if after is not None:
            at, last = after[0], _uuid(after[1])
            if last is None:
                return []
            query = query.where(
                or_(ProjectRow.created_at < at, and_(ProjectRow.created_at == at, ProjectRow.id < last))
            )
        return [project_of(row) for row in self._s.scalars(query.limit(limit))]

    def ids(self) -> list[str]:
        return [str(key) for key in self._s.scalars(select(ProjectRow.id).order_by(ProjectRow.id))]

    def link(self, project_id: str, link: Link, *, webhook_secret: str, tracking: Tracking) -> bool:
        key = _uuid(project_id)
        result = self._s.execute(
            update(ProjectRow)
            .where(ProjectRow.id == key, ProjectRow.github_repository_id.is_(None))
            .values(
                **_link_values(link),
                **_tracking_values(tracking),
                github_webhook_secret=webhook_secret,
                github_pr_number=None,
                github_pr_url=None,
                updated_at=utcnow(),
            )
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def save_link(self, project_id: str, link: Link) -> None:
        self._update_linked(project_id, _link_values(link))

    def unlink(self, project_id: str) -> bool:
        key = _uuid(project_id)
        result = self._s.execute(
            update(ProjectRow)
            .where(ProjectRow.id == key, ProjectRow.github_repository_id.is_not(None))
            .values(
                github_sync_enabled=False,
                github_allow_force_push=False,
                github_hold_force_pushes=False,
                github_repo_owner=None,
                github_repo_name=None,
                github_repository_id=None,
                github_installation_id=None,
                github_branch=None,
                github_webhook_secret=None,
                github_branch_protected=False,
                github_pr_number=None,
                github_pr_url=None,
                **_tracking_values(Tracking()),
                updated_at=utcnow(),
            )
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def set_tracking(self, project_id: str, tracking: Tracking) -> None:
        self._update_linked(project_id, _tracking_values(tracking))

    def set_pull_request(self, project_id: str, pull_request: OpenPullRequest | None) -> None:
        self._update_linked(
            project_id,
            {
                "github_pr_number": pull_request.number if pull_request else None,
                "github_pr_url": pull_request.url if pull_request else None,
            },
        )

    def sealed_secrets(self) -> list[tuple[str, str]]:
        rows = self._s.execute(
            select(ProjectRow.id, ProjectRow.github_webhook_secret).where(
                ProjectRow.github_webhook_secret.is_not(None)
            )
        )
        return [(str(key), str(sealed)) for key, sealed in rows]

    def set_webhook_secret(self, project_id: str, sealed: str) -> None:
        self._update_linked(project_id, {"github_webhook_secret": sealed})

    def by_repository(self, repository_id: int) -> list[Project]:
        return self.by_repositories([repository_id])

    def by_repositories(self, repository_ids: Collection[int]) -> list[Project]:
        if not repository_ids:
            return []
        rows = self._s.scalars(_BY_REPOSITORIES, {"ids": sorted(set(repository_ids))})
        return [project_of(row) for row in rows]

    def by_installation(self, installation_id: int) -> list[Project]:
        query = select(ProjectRow).where(
            ProjectRow.github_installation_id == installation_id, ProjectRow.github_repository_id.is_not(None)
        )
        return [project_of(row) for row in self._s.scalars(query.order_by(ProjectRow.id))]

    def _update_linked(self, project_id: str, values: dict[str, object]) -> None:
        key = _uuid(project_id)
        result = self._s.execute(
            update(ProjectRow)
            .where(ProjectRow.id == key, ProjectRow.github_repository_id.is_not(None))
            .values(**values, updated_at=utcnow())
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LookupError(f"project {project_id} is not linked")


class SqlVersions(_Repo):
    def max_number(self, project_id: str) -> int:
        key = _uuid(project_id)
        return int(
            self._s.scalar(select(func.max(VersionRow.number)).where(VersionRow.project_id == key)) or 0
        )

    def add_all(self, project_id: str, versions: Sequence[VersionInfo]) -> int:
        if not versions:
            return 0
        key = _uuid(project_id)
        values = [
            {
                "id": uuid.UUID(v.id),
                "project_id": key,
                "number": v.number,
                "commit_sha": v.commit_sha,
                "tree_sha": v.tree_sha,
                "message": v.message,
                "source": v.source,
                "author_name": v.author.name or None,
                "author_email": v.author.email or None,
                "created_at": v.created_at,
            }
            for v in versions
        ]
        # Concurrent indexers record the same versions; the first insert wins.
        return len(_insert_all(self._s, _VERSIONS, values, skip_conflicts=True, returning="id"))

    def get(self, project_id: str, version_id: str) -> VersionInfo | None:
        key, vid = _uuid(project_id), _uuid(version_id)
        if vid is None:
            return None
        row = self._s.scalar(select(VersionRow).where(VersionRow.project_id == key, VersionRow.id == vid))
        return _version_of(row) if row else None

    def by_commit(self, project_id: str, commit_sha: str) -> VersionInfo | None:
        row = self._s.scalar(
            select(VersionRow)
            .where(VersionRow.project_id == _uuid(project_id), VersionRow.commit_sha == commit_sha)
            .limit(1)
        )
        return _version_of(row) if row else None

    def latest(self, project_id: str) -> VersionInfo | None:
        found = self.page(project_id, limit=1)
        return found[0] if found else None

    def page(self, project_id: str, *, limit: int, before_number: int | None = None) -> list[VersionInfo]:
        query = (
            select(VersionRow)
            .where(VersionRow.project_id == _uuid(project_id))
            .order_by(VersionRow.number.desc())
        )
        if before_number is not None:
            query = query.where(VersionRow.number < before_number)
        return [_version_of(row) for row in self._s.scalars(query.limit(limit))]


class SqlPairs(_Repo):
    def add(self, project_id: str, pair: SyncPair) -> None:
        self._s.add(
            SyncPairRow(
                project_id=_uuid(project_id),
                version_id=uuid.UUID(pair.version_id),
                github_repository_id=pair.repository_id,
                local_commit_sha=pair.local_commit_sha,
                github_commit_sha=pair.github_commit_sha,
                tree_sha=pair.tree_sha,
                created_at=pair.created_at or utcnow(),
            )
        )
        self._s.flush()

    def latest(self, project_id: str, repository_id: int) -> SyncPair | None:
        row = self._s.scalar(
            select(SyncPairRow)
            .where(
                SyncPairRow.project_id == _uuid(project_id),
                SyncPairRow.github_repository_id == repository_id,
            )
            .order_by(SyncPairRow.id.desc())
            .limit(1)
        )
        return _pair_of(row) if row else None

    def all(self, project_id: str) -> list[SyncPair]:
        rows = self._s.scalars(
            select(SyncPairRow).where(SyncPairRow.project_id == _uuid(project_id)).order_by(SyncPairRow.id)
        )
        return [_pair_of(row) for row in rows]

    def delete_all(self, project_id: str) -> int:
        result = self._s.execute(delete(SyncPairRow).where(SyncPairRow.project_id == _uuid(project_id)))
        return int(result.rowcount)  # type: ignore[attr-defined]


class SqlOperations(_Repo):
    def add(self, operation: SyncOperation) -> str:
        row = SyncOperationRow(
            project_id=_uuid(operation.project_id) if operation.project_id else None,
            metadata_=dict(operation.metadata),
            created_at=operation.created_at or utcnow(),
            **{name: getattr(operation, name) for name in _OPERATION_FIELDS},
        )
        self._s.add(row)
        self._s.flush()
        return str(row.id)

    def get(self, operation_id: str) -> SyncOperation | None:
        key = _uuid(operation_id)
        row = self._s.get(SyncOperationRow, key) if key else None
        return _operation_of(row) if row else None

    def latest(self, project_id: str) -> SyncOperation | None:
        found = self.recent(limit=1, project_id=project_id)
        return found[0] if found else None

    def recent(
        self,
        *,
        limit: int,
        project_id: str | None = None,
        status: str | None = None,
        operation_type: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[SyncOperation]:
        query = select(SyncOperationRow).order_by(
            SyncOperationRow.created_at.desc(), SyncOperationRow.id.desc()
        )
        if project_id is not None:
            query = query.where(SyncOperationRow.project_id == _uuid(project_id))
        if status is not None:
            query = query.where(SyncOperationRow.status == status)
        if operation_type is not None:
            query = query.where(SyncOperationRow.operation_type == operation_type)
        if before is not None:
            at, last = before[0], _uuid(before[1])
            if last is None:
                return []
            query = query.where(
                or_(
                    SyncOperationRow.created_at < at,
                    and_(SyncOperationRow.created_at == at, SyncOperationRow.id < last),
                )
            )
        return [_operation_of(row) for row in self._s.scalars(query.limit(limit))]

    def counts_by_status(self, *, since: datetime | None = None) -> dict[str, int]:
        query = select(SyncOperationRow.status, func.count()).group_by(SyncOperationRow.status)
        if since is not None:
            query = query.where(SyncOperationRow.created_at >= since)
        return {str(status): int(count) for status, count in self._s.execute(query)}


class SqlConflicts(_Repo):
    def add(self, conflict: ConflictRecord) -> str:
        row = ConflictRow(
            project_id=uuid.UUID(conflict.project_id),
            status=conflict.status,
            base_local_commit_sha=conflict.base_local_commit_sha,
            base_github_commit_sha=conflict.base_github_commit_sha,
            local_commit_sha=conflict.local_commit_sha,
            github_commit_sha=conflict.github_commit_sha,
            paths=list(conflict.paths),
            strategy=conflict.strategy,
            resolution=conflict.resolution,
            details=dict(conflict.details),
            created_at=conflict.created_at or utcnow(),
        )
        self._s.add(row)
        self._s.flush()
        return str(row.id)

    def open_for(self, project_id: str) -> ConflictRecord | None:
        row = self._s.scalar(
            select(ConflictRow)
            .where(ConflictRow.project_id == _uuid(project_id), ConflictRow.status == "open")
            .order_by(ConflictRow.created_at.desc())
            .limit(1)
        )
        return _conflict_of(row) if row else None

    def resolve(self, conflict_id: str, *, resolution: str, at: datetime) -> bool:
        result = self._s.execute(
            update(ConflictRow)
            .where(ConflictRow.id == _uuid(conflict_id), ConflictRow.status == "open")
            .values(status="resolved", resolution=resolution, resolved_at=at)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class SqlAudit(_Repo):
    def add(self, entry: AuditEntry) -> None:
        self._s.add(
            AuditLogRow(
                actor=entry.actor,
                action=entry.action,
                project_id=_uuid(entry.project_id) if entry.project_id else None,
                details=dict(entry.details),
                at=entry.at or utcnow(),
            )
        )
        self._s.flush()

    def for_project(self, project_id: str, *, limit: int = 100) -> list[AuditEntry]:
        rows = self._s.scalars(
            select(AuditLogRow)
            .where(AuditLogRow.project_id == _uuid(project_id))
            .order_by(AuditLogRow.id.desc())
            .limit(limit)
        )
        return [
            AuditEntry(
                actor=row.actor,
                action=row.action,
                project_id=str(row.project_id) if row.project_id else None,
                details=dict(row.details or {}),
                at=row.at,
            )
            for row in rows
        ]


class SqlDeliveries(_Repo):
    def record(self, delivery: WebhookDelivery) -> bool:
        return delivery.delivery_id in self.record_all([delivery])

    def record_all(self, deliveries: Sequence[WebhookDelivery]) -> set[str]:
        first: dict[str, WebhookDelivery] = {}
        for delivery in deliveries:
            first.setdefault(delivery.delivery_id, delivery)
        if not first:
            return set()
        # A concurrent duplicate waits for the first insert to commit, then inserts nothing (rather than
        # failing on the primary key): the same delivery sent twice at once is one delivery.
        rows = [_delivery_values(delivery) for delivery in first.values()]
        inserted = _insert_all(self._s, _DELIVERIES, rows, skip_conflicts=True, returning="delivery_id")
        recorded = {str(key) for key in inserted}
        seen = [key for key in first if key not in recorded]
        if not seen:
            return recorded
        failed = self._s.scalars(
            select(WebhookDeliveryRow.delivery_id).where(
                WebhookDeliveryRow.delivery_id.in_(seen), WebhookDeliveryRow.status == "failed"
            )
        ).all()
        for key in failed:
            # Seen before: only a delivery whose processing failed is recorded again (a redelivery). The
            # status is checked again in the UPDATE, so two redeliveries at once record it once.
            result = self._s.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.delivery_id == key, WebhookDeliveryRow.status == "failed")
                .values(_delivery_values(first[key]))
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                recorded.add(key)
        return recorded

    def get(self, delivery_id: str) -> WebhookDelivery | None:
        row = self._s.get(WebhookDeliveryRow, delivery_id)
        return _delivery_of(row) if row else None

    def set_status(self, delivery_id: str, status: DeliveryStatus) -> None:
        self._s.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.delivery_id == delivery_id)
            .values(status=status)
        )

    def purge_expired(self, now: datetime) -> int:
        result = self._s.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.expires_at <= now))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def recent(self, project_id: str, *, limit: int, event: str | None = None) -> list[WebhookDelivery]:
        key = _uuid(project_id)
        if key is None:
            return []
        query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.project_id == key)
        if event is not None:
            query = query.where(WebhookDeliveryRow.event == event)
        query = query.order_by(WebhookDeliveryRow.received_at.desc(), WebhookDeliveryRow.delivery_id.desc())
        return [_delivery_of(row) for row in self._s.scalars(query.limit(limit))]


class SqlReconcileRequests(_Repo):
    def add(self, project_id: str, reason: str) -> ReconcileRequest:
        return self.add_all([(project_id, reason)])[0]

    def add_all(self, requests: Sequence[tuple[str, str]]) -> list[ReconcileRequest]:
        now = utcnow()
        projects: dict[str, uuid.UUID] = {}
        made: list[ReconcileRequest] = []
        rows: list[dict[str, object]] = []
        for project_id, reason in requests:
            key = uuid7()  # time-ordered: a batch's rows append to the key's index (ids.py)
            if project_id not in projects:
                projects[project_id] = uuid.UUID(project_id)
            rows.append(
                {"id": key, "project_id": projects[project_id], "reason": reason, "requested_at": now}
            )
            made.append(ReconcileRequest(id=str(key), project_id=project_id, reason=reason, requested_at=now))
        _insert_all(self._s, _REQUESTS, rows)  # one statement for every row, not a flush per row
        return made

    def get(self, request_id: str) -> ReconcileRequest | None:
        key = _uuid(request_id)
        row = self._s.get(ReconcileRequestRow, key) if key else None
        return _request_of(row) if row else None

    def pending(self, project_id: str) -> list[ReconcileRequest]:
        rows = self._s.scalars(
            select(ReconcileRequestRow)
            .where(
                ReconcileRequestRow.project_id == _uuid(project_id),
                ReconcileRequestRow.operation_id.is_(None),
            )
            .order_by(ReconcileRequestRow.requested_at, ReconcileRequestRow.id)
        )
        return [_request_of(row) for row in rows]

    def pending_projects(self) -> list[str]:
        rows = self._s.scalars(
            select(ReconcileRequestRow.project_id)
            .where(ReconcileRequestRow.operation_id.is_(None))
            .distinct()
        )
        return sorted(str(key) for key in rows)

    def mark_served(self, project_id: str, request_ids: Sequence[str], operation_id: str) -> None:
        keys = [key for key in (_uuid(r) for r in request_ids) if key is not None]
        if not keys:
            return
        self._s.execute(
            update(ReconcileRequestRow)
            .where(
                ReconcileRequestRow.project_id == _uuid(project_id),
                ReconcileRequestRow.id.in_(keys),
                ReconcileRequestRow.operation_id.is_(None),
            )
            .values(operation_id=uuid.UUID(operation_id))
        )


# --- the unit of work -----------------------------------------------------------------------------------


class SqlUnitOfWork:
    """One transaction over every repository; `notify` hears of requested reconciles after commit."""

    def __init__(
        self, engine: Engine, notify: ReconcileNotifier | None = None, *, bind: Engine | None = None
    ) -> None:
        self._engine = engine
        self._notify = notify
        self._bind = bind or write_bind(engine)
        self._session: Session | None = None
        self._requested: list[str] = []

    def __enter__(self) -> Self:
        session = Session(self._bind, expire_on_commit=False, autoflush=True)
        session.begin()
        self._session = session
        self._requested = []
        self.projects = SqlProjects(session)
        self.versions = SqlVersions(session)
        self.pairs = SqlPairs(session)
        self.operations = SqlOperations(session)
        self.conflicts = SqlConflicts(session)
        self.audit = SqlAudit(session)
        self.deliveries = SqlDeliveries(session)
        self.requests = SqlReconcileRequests(session)
        self.notifications = SqlNotifications(session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if session.in_transaction():
                session.rollback()
        finally:
            session.close()

    def _active(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open (use `with uow:`)")
        return self._session

    def commit(self) -> None:
        session = self._active()
        session.commit()
        requested, self._requested = self._requested, []
        session.begin()  # further work in the same block is a new transaction
        _tell(self._notify, requested)

    def rollback(self) -> None:
        session = self._active()
        session.rollback()
        self._requested = []
        session.begin()

    def request_reconcile(self, project_id: str, reason: str) -> ReconcileRequest:
        return self.request_reconciles([(project_id, reason)])[0]

    def request_reconciles(self, requests: Sequence[tuple[str, str]]) -> list[ReconcileRequest]:
        self._active()
        made = self.requests.add_all(requests)
        for request in made:
            if request.project_id not in self._requested:
                self._requested.append(request.project_id)
        return made


def _tell(notify: ReconcileNotifier | None, project_ids: list[str]) -> None:
    """Tell the queue; a failure here loses nothing (the outbox relay tells it again later)."""
    if notify is None:
        return
    for project_id in project_ids:
        try:
            notify(project_id)
        except Exception:
            log.exception("could not tell the queue about a reconcile of %s; the relay will", project_id)


class SqlUnitOfWorkFactory:
    """`factory()` opens a new unit of work on the engine (the services' `uow_factory`)."""

    def __init__(self, engine: Engine, notify: ReconcileNotifier | None = None) -> None:
        self.engine = engine
        self.notify = notify
        self._bind = write_bind(engine)  # made once: the webhook receiver opens a unit of work per batch

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.notify, bind=self._bind)
