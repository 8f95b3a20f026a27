"""Linking a project to a GitHub repository: link, unlink, and the sync status the platform shows."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ghsync.domain.errors import (
    AppNotInstalled,
    Conflict,
    GhsyncError,
    GitHubError,
    GitHubNotFound,
    RepositoryNotFound,
    RetryAt,
)
from ghsync.domain.link import Link, Project, Tracking
from ghsync.domain.operations import AuditEntry, SyncOperation
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
from ghsync.ports.github import GitHubApp
from ghsync.ports.jobs import JobQueue
from ghsync.ports.secrets import SecretSealer
from ghsync.ports.store import VersionStore
from ghsync.ports.uow import UnitOfWorkFactory
from ghsync.services.projects import ProjectService

log = get_logger(__name__)


class MissingPermission(GhsyncError):
    code = "missing_permission"


class AlreadyLinked(Conflict):
    code = "already_linked"


class GitHubUnavailable(GhsyncError):
    code = "github_unavailable"


class GitHubRateLimited(GhsyncError):
    code = "github_rate_limited"


class GitHubNotConfigured(GhsyncError):
    code = "github_not_configured"


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
    allow_force_push: bool
    hold_force_pushes: bool
    state: str
    last_remote_main_sha: str | None
    last_synced_main_sha: str | None
    last_outbound_base_sha: str | None
    last_github_sync_at: datetime | None
    last_operation: dict[str, Any] | None
    open_pr: dict[str, Any] | None
    open_conflict: dict[str, Any] | None
    rate_limit: dict[str, Any] | None
    held_plan: dict[str, Any] | None = None  # a plan the blast-radius guard holds for confirmation


def webhook_secret_context(project_id: str | uuid.UUID) -> str:
    return f"projects/{project_id}/github_webhook_secret"


def _now() -> datetime:
    return datetime.now(UTC)


class LinkService:
    """Link and unlink projects; reads GitHub through the App port, never assuming `main`."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: VersionStore,
        projects: ProjectService,
        github: GitHubApp | None,
        secret_box: SecretSealer,
        queue: JobQueue,
    ) -> None:
        self._uow = uow
        self._store = store
        self._projects = projects
        self._github = github
        self._secrets = secret_box
        self._queue = queue

    def _client(self) -> GitHubApp:
        if self._github is None:
            raise GitHubNotConfigured("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY must be set to link projects")
        return self._github

    # --- link --------------------------------------------------------------------------------------

    def link(
        self,
        project_id: str | uuid.UUID,
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
        if project.link is not None:
            raise AlreadyLinked(f"project is already linked to {project.link.full_name}; unlink it first")
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
                repository = github.repo(installation_id, owner, repo).get_repository()
            except GitHubNotFound:
                raise RepositoryNotFound(
                    f"repository {owner}/{repo} does not exist or installation {installation_id} "
                    "cannot access it"
                ) from None
            branch = github.repo(installation_id, repository.owner, repository.name).get_branch(
                repository.default_branch
            )

        local_head = self._store.head(project.id)
        secret = self._secrets.encrypt(secrets.token_hex(32), context=webhook_secret_context(project.id))
        link = Link(
            project_id=project.id,
            owner=repository.owner,
            repo=repository.name,
            repository_id=repository.id,
            installation_id=installation_id,
            default_branch=repository.default_branch,
            protected=bool(branch and branch.protected),
            mode=mode,
            strategy=strategy,
            enabled=True,
        )
        details = {
            "owner": link.owner,
            "repo": link.repo,
            "repository_id": link.repository_id,
            "installation_id": installation_id,
            "default_branch": link.default_branch,
            "protected": link.protected,
            "sync_mode": mode.value,
            "conflict_strategy": strategy.value,
            "local_head": local_head,
            "remote_head": branch.sha if branch else None,
        }
        started = _now()
        with self._uow() as uow:
            # Compare-and-set: of two concurrent link requests exactly one finds the project unlinked.
            if not uow.projects.link(
                project.id,
                link,
                webhook_secret=secret,
                tracking=Tracking(last_remote_main_sha=branch.sha if branch else None),
            ):
                raise AlreadyLinked("project was linked by another request meanwhile")
            uow.operations.add(
                SyncOperation(
                    project_id=project.id,
                    operation_type="link",
                    status="success",
                    direction="none",
                    github_commit_sha=branch.sha if branch else None,
                    local_commit_sha=local_head,
                    started_at=started,
                    completed_at=_now(),
                    metadata=details,
                )
            )
            uow.audit.add(AuditEntry(actor, "github.link", project.id, details))
            # The first reconcile settles both heads; nothing on either side is touched here.
            uow.request_reconcile(project.id, "linked")
            uow.commit()
        log.info("project_linked", project_id=project.id, **details)
        return self.status(project.id, refresh=False)

    # --- unlink ------------------------------------------------------------------------------------

    def unlink(self, project_id: str | uuid.UUID, *, actor: str = "api") -> LinkStatus:
        """Stop syncing. Versions, sync pairs, operations and the audit log are kept."""
        project = self._projects.get_project(project_id)
        if project.link is None:
            raise Conflict("project is not linked to a GitHub repository", code="not_linked")
        now = _now()
        details = {
            "owner": project.link.owner,
            "repo": project.link.repo,
            "repository_id": project.link.repository_id,
        }
        with self._uow() as uow:
            if not uow.projects.unlink(project.id):
                raise Conflict("project was unlinked by another request meanwhile", code="not_linked")
            uow.operations.add(
                SyncOperation(
                    project_id=project.id,
                    operation_type="unlink",
                    status="success",
                    direction="none",
                    started_at=now,
                    completed_at=now,
                    metadata=details,
                )
            )
            uow.audit.add(AuditEntry(actor, "github.unlink", project.id, details))
            uow.commit()
        log.info("project_unlinked", project_id=project.id, **details)
        return self.status(project.id, refresh=False)

    # --- status ------------------------------------------------------------------------------------

    def status(self, project_id: str | uuid.UUID, *, refresh: bool = True) -> LinkStatus:
        """The link and sync state; with `refresh`, first follow a rename or default-branch change."""
        project = self._projects.get_project(project_id)
        if refresh and project.link is not None:
            project = self.refresh_link(project)
        with self._uow() as uow:
            last_op = uow.operations.latest(project.id)
            conflict = uow.conflicts.open_for(project.id)
        jobs = self._queue.reconcile_state(project.id)
        link = project.link
        state = derive_state(
            enabled=link is not None and link.enabled,
            open_conflict=conflict is not None,
            job_running=jobs.running,
            job_queued=jobs.queued,
            last_operation_failed=last_op is not None and last_op.status == "failed",
            plan_held=last_op is not None and last_op.status == "held",
        )
        rate = None
        if self._github is not None and link is not None:
            seen = self._github.rate_limit(link.installation_id)
            if seen is not None:
                rate = seen.as_dict()
        return LinkStatus(
            linked=link is not None,
            enabled=link is not None and link.enabled,
            owner=link.owner if link else None,
            repo=link.repo if link else None,
            default_branch=link.default_branch if link else None,
            protected=link.protected if link else False,
            sync_mode=(link.mode if link else parse_sync_mode(None)).value,
            conflict_strategy=(link.strategy if link else parse_conflict_strategy(None)).value,
            allow_force_push=bool(link and link.allow_force_push),
            hold_force_pushes=bool(link and link.hold_force_pushes),
            state=state.value,
            last_remote_main_sha=project.tracking.last_remote_main_sha,
            last_synced_main_sha=project.tracking.last_synced_main_sha,
            last_outbound_base_sha=project.tracking.last_outbound_base_sha,
            last_github_sync_at=project.tracking.last_github_sync_at,
            last_operation=_operation_summary(last_op),
            open_pr=(
                {
                    "number": project.pull_request.number,
                    "url": project.pull_request.url,
                    "head_branch": pr_branch_name(project.id),
                }
                if project.pull_request is not None
                else None
            ),
            open_conflict=(
                {
                    "id": conflict.id,
                    "paths": list(conflict.paths),
                    "created_at": conflict.created_at.isoformat() if conflict.created_at else None,
                }
                if conflict is not None
                else None
            ),
            rate_limit=rate,
            held_plan=_held_plan(last_op),
        )

    def refresh_link(self, project: Project) -> Project:
        """Follow a rename, transfer or default-branch change, looking the repository up by its id.

        Conditional requests make this cheap (304s are not charged). If GitHub cannot be reached the
        stored link is returned unchanged: status must answer even when GitHub does not.
        """
        github, link = self._github, project.link
        if github is None or link is None:
            return project
        try:
            with github.priority("user"):
                repository = github.get_repository_by_id(link.installation_id, link.repository_id)
        except GitHubError as exc:
            log.warning("link_refresh_failed", project_id=project.id, status=exc.status, error=str(exc))
            return project
        followed = replace(
            link, owner=repository.owner, repo=repository.name, default_branch=repository.default_branch
        )
        if followed == link:
            return project
        before = {"owner": link.owner, "repo": link.repo, "default_branch": link.default_branch}
        after = {"owner": followed.owner, "repo": followed.repo, "default_branch": followed.default_branch}
        with self._uow() as uow:
            current = uow.projects.get(project.id)
            if current is None or current.link is None or current.link.repository_id != link.repository_id:
                return current or project  # unlinked or relinked meanwhile: nothing to follow
            uow.projects.save_link(project.id, replace(current.link, **after))  # type: ignore[arg-type]
            uow.audit.add(
                AuditEntry("ghsync", "github.link_followed", project.id, {"before": before, "after": after})
            )
            uow.commit()
        log.info("link_followed", project_id=project.id, before=before, after=after)
        return self._projects.get_project(project.id)

    def rotate_secrets(self, *, actor: str = "cli") -> int:
        """Re-encrypt every stored secret under the primary key; returns how many changed.

        Run after putting a new key first in GHSYNC_ENCRYPTION_KEYS; once it reports 0, the old
        keys can be removed.
        """
        rotated = 0
        with self._uow() as uow:
            for project_id, sealed in uow.projects.sealed_secrets():
                if not self._secrets.needs_rotation(sealed):
                    continue
                uow.projects.set_webhook_secret(
                    project_id, self._secrets.rotate(sealed, context=webhook_secret_context(project_id))
                )
                rotated += 1
            uow.audit.add(AuditEntry(actor, "secrets.rotate", None, {"rotated": rotated}))
            uow.commit()
        return rotated


@contextmanager
def _translated_github_errors(owner: str, repo: str) -> Iterator[None]:
    """GitHub's failures as the API's errors, each with a code the platform can act on."""
    try:
        yield
    except AppNotInstalled as exc:
        raise AppNotInstalled(f"{exc.message}; install the app on {owner}/{repo} first") from None
    except RepositoryNotFound as exc:
        raise RepositoryNotFound(exc.message) from None
    except GitHubNotFound as exc:
        raise RepositoryNotFound(f"{owner}/{repo}: {exc.message}") from None
    except RetryAt as exc:
        raise GitHubRateLimited(
            f"GitHub's rate limit is reached; try again after {exc.at.isoformat()}"
        ) from None
    except GitHubError as exc:
        raise GitHubUnavailable(f"GitHub answered {exc.status}: {exc.message}") from None


def _held_plan(operation: SyncOperation | None) -> dict[str, Any] | None:
    """The latest operation when the guard held it: the heads to confirm (POST .../sync/confirm) and why."""
    if operation is None or operation.status != "held":
        return None
    heads = operation.metadata.get("heads_before") or {}
    held = operation.metadata.get("held") or {}
    return {
        "operation_id": operation.id,
        "local_head": heads.get("local"),
        "github_head": heads.get("github"),
        "would": held.get("would"),
        "summary": held.get("why"),
        "held_at": operation.completed_at.isoformat() if operation.completed_at else None,
    }


def _operation_summary(operation: SyncOperation | None) -> dict[str, Any] | None:
    if operation is None:
        return None
    return {
        "id": operation.id,
        "operation_type": operation.operation_type,
        "status": operation.status,
        "direction": operation.direction,
        "created_at": operation.created_at.isoformat() if operation.created_at else None,
        "completed_at": operation.completed_at.isoformat() if operation.completed_at else None,
        "error_code": operation.error_code,
        "error_message": operation.error_message,
    }
