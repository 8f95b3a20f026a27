"""The polling safety net: read linked repositories' default-branch heads in batches and request a
reconcile (reason `polling`) for every project whose GitHub head is not the one we last recorded.

Webhooks get lost (a receiver that was down, a dropped delivery, a proxy's 5xx); the reconcile is
level-triggered, so asking it to look again is all polling ever does. Each tick checks one slice of the
projects (`domain/polling.py` says which), one GraphQL query per installation per 100 repositories, and
never spends the share of an installation's quota kept for the syncs. Where GraphQL is unavailable (an
older GitHub Enterprise Server, an error) it falls back to conditional REST reads of the branch
(`get_branch`, ETag-revalidated: a 304 costs no quota, but ETags are tied to the token, so expect one full
read per repository per token: https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ghsync.domain.errors import GitHubError, GitHubNotFound, RetryLater
from ghsync.domain.operations import AuditEntry
from ghsync.domain.polling import (
    DEFAULT_RESERVE_FRACTION,
    MAX_REPOSITORIES_PER_QUERY,
    HeadsRead,
    PollTarget,
    RemoteHead,
    Schedule,
    affordable,
    batches,
    drift,
    due,
    schedule_for,
)
from ghsync.observability.logging import get_logger
from ghsync.ports.github import GitHubApp
from ghsync.ports.uow import UnitOfWorkFactory

log = get_logger(__name__)

POLLING_REASON = "polling"
POLLING_TASK = "poll_github_heads"
# After GraphQL failed for an installation, REST serves it for this long before GraphQL is tried again.
GRAPHQL_RETRY_AFTER = timedelta(hours=1)
_PAGE = 500


@dataclass
class PollReport:
    """What one tick did: how many projects it checked, which drifted, and what the reads cost."""

    checked: int = 0
    drifted: dict[str, str] = field(default_factory=dict)  # project id -> why (domain.polling.DRIFT_*)
    seen: dict[str, str | None] = field(default_factory=dict)  # drifted project id -> GitHub's head now
    requested: list[str] = field(default_factory=list)  # project ids given a polling request
    already_pending: list[str] = field(default_factory=list)  # drifted, but a reconcile is requested
    awaiting_resolution: list[str] = field(default_factory=list)  # drifted onto an open conflict's head
    unreachable: list[str] = field(default_factory=list)  # repository missing or not installed
    deferred: list[str] = field(default_factory=list)  # left for a later tick (the budget, a rate limit)
    graphql_queries: int = 0
    graphql_points: int = 0
    rest_reads: int = 0


class PollingService:
    """Check linked projects' GitHub heads against `last_remote_main_sha`; request reconciles on drift."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        github: GitHubApp,
        *,
        interval_seconds: float,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
        schedule: Schedule | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._github = github
        self.schedule = schedule or schedule_for(interval_seconds)
        self._reserve = reserve_fraction
        self._now = clock
        # The GraphQL bucket as the last answer reported it, per installation: (remaining, limit).
        self._points: dict[int, tuple[int | None, int | None]] = {}
        self._graphql_off_until: dict[int, datetime] = {}

    # ---- entry points ------------------------------------------------------------------------------

    def tick(self, period: datetime) -> PollReport:
        """The periodic task: check the slice of projects whose turn the tick starting at `period` is."""
        slice_index = self.schedule.slice_index(period.timestamp())
        return self.check(due(self.targets(), slice_index, self.schedule.slices))

    def poll_all(self) -> PollReport:
        """Check every enabled linked project now (one whole interval's worth of reads)."""
        return self.check(self.targets())

    def targets(self) -> list[PollTarget]:
        """Every enabled linked project, with what we last saw on GitHub."""
        out: list[PollTarget] = []
        with self._uow() as uow:
            after: tuple[datetime, str] | None = None
            while True:
                page = uow.projects.page(limit=_PAGE, after=after)
                for project in page:
                    link = project.link
                    if link is None or not link.enabled:
                        continue
                    out.append(
                        PollTarget(
                            project_id=project.id,
                            installation_id=link.installation_id,
                            owner=link.owner,
                            repo=link.repo,
                            default_branch=link.default_branch,
                            last_remote_sha=project.tracking.last_remote_main_sha,
                        )
                    )
                if len(page) < _PAGE:
                    return out
                after = (page[-1].created_at, page[-1].id)

    def check(self, targets: Sequence[PollTarget]) -> PollReport:
        """Read the heads of `targets` in batches and request a reconcile for each one that drifted."""
        report = PollReport()
        for installation_id, batch in batches(targets):
            heads = self._read(installation_id, batch, report)
            if heads is None:
                continue
            deferred = set(report.deferred)
            for target in batch:
                if target.project_id in deferred:
                    continue
                head = heads.get(target.key)
                report.checked += 1
                if head is None:
                    report.unreachable.append(target.project_id)
                    continue
                why = drift(target, head)
                if why is not None:
                    report.drifted[target.project_id] = why
                    report.seen[target.project_id] = head.sha
        self._request(targets, report)
        log.info(
            "polling.tick",
            checked=report.checked,
            drifted=len(report.drifted),
            requested=len(report.requested),
            unreachable=len(report.unreachable),
            deferred=len(report.deferred),
            graphql_queries=report.graphql_queries,
            graphql_points=report.graphql_points,
            rest_reads=report.rest_reads,
        )
        return report

    # ---- reads ---------------------------------------------------------------------------------------

    def _read(
        self, installation_id: int, batch: Sequence[PollTarget], report: PollReport
    ) -> dict[tuple[str, str], RemoteHead] | None:
        """The heads of one batch (GraphQL, else REST), or None when the whole batch waits a tick."""
        keys = list(dict.fromkeys(t.key for t in batch))
        off_until = self._graphql_off_until.get(installation_id)
        if off_until is None or off_until <= self._now():
            remaining, limit = self._points.get(installation_id, (None, None))
            if affordable(1, remaining=remaining, limit=limit, reserve_fraction=self._reserve) < 1:
                report.deferred.extend(t.project_id for t in batch)
                return None
            try:
                read: HeadsRead = self._github.default_branch_heads(installation_id, keys)
            except RetryLater:
                report.deferred.extend(t.project_id for t in batch)
                return None
            except GitHubError as exc:
                log.warning("polling.graphql_unavailable", installation=installation_id, error=exc.message)
                self._graphql_off_until[installation_id] = self._now() + GRAPHQL_RETRY_AFTER
            else:
                report.graphql_queries += -(-len(keys) // MAX_REPOSITORIES_PER_QUERY)
                report.graphql_points += read.points
                self._points[installation_id] = (read.remaining, read.limit)
                return read.heads
        return self._read_rest(installation_id, batch, keys, report)

    def _read_rest(
        self,
        installation_id: int,
        batch: Sequence[PollTarget],
        keys: Sequence[tuple[str, str]],
        report: PollReport,
    ) -> dict[tuple[str, str], RemoteHead]:
        """One conditional `get_branch` per repository, as many as the REST budget allows."""
        quota = self._github.rate_limit(installation_id)
        allowed = affordable(
            len(keys),
            remaining=quota.remaining if quota else None,
            limit=quota.limit if quota else None,
            reserve_fraction=self._reserve,
        )
        branch_of = {t.key: t.default_branch for t in batch}
        heads: dict[tuple[str, str], RemoteHead] = {}
        for index, key in enumerate(keys):
            if index >= allowed:
                report.deferred.extend(t.project_id for t in batch if t.key == key)
                continue
            owner, name = key
            try:
                report.rest_reads += 1
                branch = self._github.repo(installation_id, owner, name).get_branch(branch_of[key])
            except RetryLater:
                report.deferred.extend(t.project_id for t in batch if t.key == key)
                continue
            except GitHubNotFound:
                continue  # the repository is gone or no longer installed: unreachable
            # A branch that vanished (renamed, deleted, or a repository emptied) reads as no head:
            # drift when we had recorded one, and the reconcile re-reads the default branch.
            heads[key] = RemoteHead(branch.name, branch.sha) if branch else RemoteHead(None, None)
        return heads

    # ---- requests ------------------------------------------------------------------------------------

    def _request(self, targets: Sequence[PollTarget], report: PollReport) -> None:
        """One unit of work: a `polling` request (and an audit row) per drifted project that has none
        pending already (a pending request brings a reconcile anyway; the queue coalesces them)."""
        if not report.drifted:
            return
        by_id = {t.project_id: t for t in targets}
        with self._uow() as uow:
            for project_id, why in report.drifted.items():
                if uow.requests.pending(project_id):
                    report.already_pending.append(project_id)
                    continue
                conflict = uow.conflicts.open_for(project_id)
                if conflict is not None and conflict.github_commit_sha == report.seen.get(project_id):
                    # A conflict recorded against this very head waits for a person; a reconcile
                    # would only confirm it (a new head, or a new strategy, gets one).
                    report.awaiting_resolution.append(project_id)
                    continue
                request = uow.request_reconcile(project_id, POLLING_REASON)
                target = by_id[project_id]
                uow.audit.add(
                    AuditEntry(
                        actor="polling",
                        action="github.drift_detected",
                        project_id=project_id,
                        details={
                            "why": why,
                            "repository": f"{target.owner}/{target.repo}",
                            "last_remote_main_sha": target.last_remote_sha,
                            "github_head_sha": report.seen.get(project_id),
                            "request_id": request.id,
                        },
                        at=self._now(),
                    )
                )
                report.requested.append(project_id)
            uow.commit()


__all__ = ["POLLING_REASON", "POLLING_TASK", "PollReport", "PollingService"]
