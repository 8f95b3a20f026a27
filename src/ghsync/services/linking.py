"""Linking a project to a GitHub repository: link, unlink, and the sync status the platform shows."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ghsync.adapters.db.base import utcnow
from ghsync.adapters.db.models import AuditLogRow, ConflictRow, ProjectRow, SyncOperationRow
from ghsync.adapters.github import GitHubClient, GitHubError, GitHubNotFound, RetryAt
from ghsync.adapters.github import errors as github_errors
from ghsync.adapters.queue.port import JobQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.errors import Conflict, GhsyncError, NotFound
from ghsync.domain.sync import (
    REQUIRED_PERMISSIONS,
    derive_state,
    missing_permissions,
    parse_conflict_strategy,
    parse_sync_mode,
    pr_branch_name,
    validate_repository_name,
)
from ghsync.observability.logging import get_logger
from ghsync.services.projects import ProjectService

log = get_logger(__name__)


class RepositoryNotFound(NotFound):
    code = "repository_not_found"


class AppNotInstalled(GhsyncError):
    code = "app_not_installed"
    http_status = 403


class MissingPermission(GhsyncError):
    code = "missing_permission"
    http_status = 403


class AlreadyLinked(Conflict):
    code = "already_linked"


class GitHubUnavailable(GhsyncError):
    code = "github_unavailable"
    http_status = 502


class GitHubRateLimited(GhsyncError):
    code = "github_rate_limited"
    http_status = 503


class GitHubNotConfigured(GhsyncError):
    code = "github_not_configured"
    http_status = 503


@dataclass(frozen=True)
class LinkStatus:
    """The shape of GET /v1/projects/{id}/github/status (a contract with the platform's UI)."""

    linked: bool
    enabled: bool
    owner: str | None
    repo: str | None
    default_branch: str | None
    protected: bool
    sync_mode: str
    conflict_strategy: str
    state: str
    last_remote_main_sha: str | None
    last_synced_main_sha: str | None
    last_outbound_base_sha: str | None
    last_github_sync_at: datetime | None
    last_operation: dict[str, Any] | None
    open_pr: dict[str, Any] | None
    open_conflict: dict[str, Any] | None
    rate_limit: dict[str, Any] | None


def webhook_secret_context(project_id: uuid.UUID) -> str:
    return f"projects/{project_id}/github_webhook_secret"


class LinkService:
    """Link and unlink projects; reads GitHub through the App client, never assuming `main`."""

    def __init__(
        self,
        engine: Engine,
        store: GitStore,
        projects: ProjectService,
        github: GitHubClient | None,
        secret_box: SecretBox,
        queue: JobQueue,
    ) -> None:
        self._engine = engine
        self._store = store
        self._projects = projects
        self._github = github
        self._secrets = secret_box
        self._queue = queue

    def _client(self) -> GitHubClient:
        if self._github is None:
            raise GitHubNotConfigured("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY must be set to link projects")
        return self._github

    # --- link --------------------------------------------------------------------------------------

    def link(
        self,
        project_id: uuid.UUID,
        *,
        owner: str,
        repo: str,
        installation_id: int | None = None,
        sync_mode: str | None = None,
        conflict_strategy: str | None = None,
        actor: str = "api",
    ) -> LinkStatus:
        mode = parse_sync_mode(sync_mode)
        strategy = parse_conflict_strategy(conflict_strategy)
        validate_repository_name(owner, repo)
        project = self._projects.get_project(project_id)
        if project.github_sync_enabled:
            raise AlreadyLinked(
                f"project is already linked to {project.github_repo_owner}/{project.github_repo_name}; "
                "unlink it first"
            )
        if not self._secrets.configured:
            raise GitHubNotConfigured("GHSYNC_ENCRYPTION_KEYS must be set to store the link's webhook secret")
        github = self._client()
        with github.priority("user"), _translated_github_errors(owner, repo):
            installation_id = installation_id or github.find_installation(owner, repo)
            installation = github.get_installation(installation_id)
            missing = missing_permissions(installation.permissions, REQUIRED_PERMISSIONS)
            if missing:
                raise MissingPermission(
                    f"the app's installation {installation_id} lacks "
                    + ", ".join(f"{name}: {level}" for name, level in missing)
                    + "; grant it in the app's settings and accept the new permissions"
                )
            try:
                repository = github.get_repository(installation_id, owner, repo)
            except GitHubNotFound:
                raise RepositoryNotFound(
                    f"repository {owner}/{repo} does not exist or installation {installation_id} "
                    "cannot access it"
                ) from None
            branch = github.get_branch(
                installation_id, repository.owner, repository.name, repository.default_branch
            )

        local_head = self._store.head(str(project_id))
        secret = self._secrets.encrypt(secrets.token_hex(32), context=webhook_secret_context(project_id))
        now = utcnow()
        with Session(self._engine) as session, session.begin():
            # Compare-and-set: of two concurrent link requests exactly one finds the project unlinked.
            result = session.execute(
                update(ProjectRow)
                .where(ProjectRow.id == project_id, ProjectRow.github_sync_enabled.is_(False))
                .values(
                    github_repo_owner=repository.owner,
                    github_repo_name=repository.name,
                    github_repository_id=repository.id,
                    github_branch=repository.default_branch,
                    github_branch_protected=branch.protected if branch else False,
                    github_installation_id=installation_id,
                    github_sync_enabled=True,
                    github_sync_mode=mode.value,
                    github_conflict_strategy=strategy.value,
                    github_webhook_secret=secret,
                    github_pr_number=None,
                    github_pr_url=None,
                    last_remote_main_sha=branch.sha if branch else None,
                    last_synced_main_sha=None,
                    last_outbound_base_sha=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise AlreadyLinked("project was linked by another request meanwhile")
            details = {
                "owner": repository.owner,
                "repo": repository.name,
                "repository_id": repository.id,
                "installation_id": installation_id,
                "default_branch": repository.default_branch,
                "protected": bool(branch and branch.protected),
                "sync_mode": mode.value,
                "conflict_strategy": strategy.value,
                "local_head": local_head,
                "remote_head": branch.sha if branch else None,
            }
            session.add(
                SyncOperationRow(
                    project_id=project_id,
                    operation_type="link",
                    status="success",
                    direction="none",
                    github_commit_sha=branch.sha if branch else None,
                    local_commit_sha=local_head,
                    started_at=now,
                    completed_at=utcnow(),
                    metadata_=details,
                )
            )
            session.add(
                AuditLogRow(actor=actor, action="github.link", project_id=project_id, details=details)
            )
        log.info("project_linked", project_id=str(project_id), **details)
        # The first reconcile settles both heads; nothing on either side is touched here.
        self._queue.request_reconcile(str(project_id), "linked")
        return self.status(project_id, refresh=False)

    # --- unlink ------------------------------------------------------------------------------------

    def unlink(self, project_id: uuid.UUID, *, actor: str = "api") -> LinkStatus:
        """Stop syncing. Versions, sync pairs, operations and the audit log are kept."""
        project = self._projects.get_project(project_id)
        if not project.github_sync_enabled:
            raise Conflict("project is not linked to a GitHub repository", code="not_linked")
        now = utcnow()
        details = {
            "owner": project.github_repo_owner,
            "repo": project.github_repo_name,
            "repository_id": project.github_repository_id,
        }
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(ProjectRow)
                .where(ProjectRow.id == project_id)
                .values(
                    github_sync_enabled=False,
                    github_repo_owner=None,
                    github_repo_name=None,
                    github_repository_id=None,
                    github_installation_id=None,
                    github_webhook_secret=None,
                    github_branch_protected=False,
                    github_pr_number=None,
                    github_pr_url=None,
                    last_remote_main_sha=None,
                    last_synced_main_sha=None,
                    last_outbound_base_sha=None,
                    updated_at=now,
                )
            )
            session.add(
                SyncOperationRow(
                    project_id=project_id,
                    operation_type="unlink",
                    status="success",
                    direction="none",
                    started_at=now,
                    completed_at=now,
                    metadata_=details,
                )
            )
            session.add(
                AuditLogRow(actor=actor, action="github.unlink", project_id=project_id, details=details)
            )
        log.info("project_unlinked", project_id=str(project_id), **details)
        return self.status(project_id, refresh=False)

    # --- status ------------------------------------------------------------------------------------

    def status(self, project_id: uuid.UUID, *, refresh: bool = True) -> LinkStatus:
        """The link and sync state; with `refresh`, first follow a rename or default-branch change."""
        project = self._projects.get_project(project_id)
        if refresh and project.github_sync_enabled:
            project = self.refresh_link(project)
        with Session(self._engine) as session:
            last_op = session.scalar(
                select(SyncOperationRow)
                .where(SyncOperationRow.project_id == project_id)
                .order_by(SyncOperationRow.created_at.desc())
                .limit(1)
            )
            conflict = session.scalar(
                select(ConflictRow)
                .where(ConflictRow.project_id == project_id, ConflictRow.status == "open")
                .order_by(ConflictRow.created_at.desc())
                .limit(1)
            )
        jobs = self._queue.reconcile_state(str(project_id))
        state = derive_state(
            enabled=project.github_sync_enabled,
            open_conflict=conflict is not None,
            job_running=jobs.running,
            job_queued=jobs.queued,
            last_operation_failed=last_op is not None and last_op.status == "failed",
        )
        rate = None
        if self._github is not None and project.github_installation_id is not None:
            seen = self._github.rate_limit(project.github_installation_id)
            if seen is not None:
                rate = seen.as_dict()
        linked = project.github_sync_enabled
        return LinkStatus(
            linked=linked,
            enabled=linked,
            owner=project.github_repo_owner,
            repo=project.github_repo_name,
            default_branch=project.github_branch if linked else None,
            protected=project.github_branch_protected,
            sync_mode=project.github_sync_mode,
            conflict_strategy=project.github_conflict_strategy,
            state=state.value,
            last_remote_main_sha=project.last_remote_main_sha,
            last_synced_main_sha=project.last_synced_main_sha,
            last_outbound_base_sha=project.last_outbound_base_sha,
            last_github_sync_at=project.last_github_sync_at,
            last_operation=_operation_summary(last_op),
            open_pr=(
                {
                    "number": project.github_pr_number,
                    "url": project.github_pr_url,
                    "head_branch": pr_branch_name(str(project_id)),
                }
                if project.github_pr_number is not None
                else None
            ),
            open_conflict=(
                {
                    "id": str(conflict.id),
                    "paths": conflict.paths,
                    "created_at": conflict.created_at.isoformat(),
                }
                if conflict is not None
                else None
            ),
            rate_limit=rate,
        )

    def refresh_link(self, project: ProjectRow) -> ProjectRow:
        """Follow a rename, transfer or default-branch change, looking the repository up by its id.

        Conditional requests make this cheap (304s are not charged). If GitHub cannot be reached the
        stored link is returned unchanged: status must answer even when GitHub does not.
        """
        github = self._github
        if github is None or project.github_repository_id is None or project.github_installation_id is None:
            return project
        try:
            with github.priority("user"):
                repository = github.get_repository_by_id(
                    project.github_installation_id, project.github_repository_id
                )
        except GitHubError as exc:
            log.warning("link_refresh_failed", project_id=str(project.id), status=exc.status, error=str(exc))
            return project
        changed = {
            "github_repo_owner": repository.owner,
            "github_repo_name": repository.name,
            "github_branch": repository.default_branch,
        }
        before = {name: getattr(project, name) for name in changed}
        if before == changed:
            return project
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            session.execute(update(ProjectRow).where(ProjectRow.id == project.id).values(**changed))
            session.add(
                AuditLogRow(
                    actor="ghsync",
                    action="github.link_followed",
                    project_id=project.id,
                    details={"before": before, "after": changed},
                )
            )
        log.info("link_followed", project_id=str(project.id), before=before, after=changed)
        return self._projects.get_project(project.id)

    def rotate_secrets(self, *, actor: str = "cli") -> int:
        """Re-encrypt every stored secret under the primary key; returns how many changed.

        Run after putting a new key first in GHSYNC_ENCRYPTION_KEYS; once it reports 0, the old
        keys can be removed.
        """
        rotated = 0
        with Session(self._engine) as session, session.begin():
            rows = session.scalars(select(ProjectRow).where(ProjectRow.github_webhook_secret.is_not(None)))
            for project in rows:
                assert project.github_webhook_secret is not None
                if not self._secrets.needs_rotation(project.github_webhook_secret):
                    continue
                project.github_webhook_secret = self._secrets.rotate(
                    project.github_webhook_secret, context=webhook_secret_context(project.id)
                )
                rotated += 1
            session.add(AuditLogRow(actor=actor, action="secrets.rotate", details={"rotated": rotated}))
        return rotated


@contextmanager
def _translated_github_errors(owner: str, repo: str) -> Iterator[None]:
    """GitHub's failures as the API's errors, each with a code the platform can act on."""
    try:
        yield
    except github_errors.AppNotInstalled as exc:
        raise AppNotInstalled(f"{exc.message}; install the app on {owner}/{repo} first") from None
    except github_errors.RepositoryNotFound as exc:
        raise RepositoryNotFound(exc.message) from None
    except GitHubNotFound as exc:
        raise RepositoryNotFound(f"{owner}/{repo}: {exc.message}") from None
    except RetryAt as exc:
        raise GitHubRateLimited(
            f"GitHub's rate limit is reached; try again after {exc.at.isoformat()}"
        ) from None
    except GitHubError as exc:
        raise GitHubUnavailable(f"GitHub answered {exc.status}: {exc.message}") from None


def _operation_summary(operation: SyncOperationRow | None) -> dict[str, Any] | None:
    if operation is None:
        return None
    return {
        "id": str(operation.id),
        "operation_type": operation.operation_type,
        "status": operation.status,
        "direction": operation.direction,
        "created_at": operation.created_at.isoformat(),
        "completed_at": operation.completed_at.isoformat() if operation.completed_at else None,
        "error_code": operation.error_code,
        "error_message": operation.error_message,
    }
