"""The delivery sweep: list the App webhook's recent deliveries, ask GitHub to redeliver the failed ones
(once each, within the retention window) and record what was asked and what was recovered.

GitHub's documented recovery for missed webhooks
(https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries): fetch the
deliveries attempted since the last run, and redeliver those whose status is not `OK`. The redelivery
reaches the receiver with the same `X-GitHub-Delivery` GUID, and the receiver's dedup processes a
delivery again when its earlier processing failed, so a recovered push becomes the reconcile it should
have been. The decisions are pure (`domain/redelivery.py`); this service reads, asks and records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ghsync.domain.errors import GitHubError, GitHubNotFound, RetryLater
from ghsync.domain.operations import AuditEntry
from ghsync.domain.redelivery import GITHUB_RETENTION, HookDelivery, failed_guids, plan_sweep
from ghsync.observability.logging import get_logger
from ghsync.ports.github import AppHookDeliveries
from ghsync.ports.uow import UnitOfWork, UnitOfWorkFactory

log = get_logger(__name__)

SWEEP_TASK = "webhook_delivery_sweep"
# How often the sweep runs by default: often enough that a missed push is recovered within minutes,
# rarely enough that listing deliveries costs little (one App-level request per 100 attempts).
DEFAULT_SWEEP_SECONDS = 300.0
# Each sweep also re-reads this much before the previous one began (attempts still being recorded).
OVERLAP = timedelta(minutes=10)
AUDIT_ACTOR = "delivery_sweep"
ACTION_REQUESTED = "github.webhook_redelivery_requested"
ACTION_RECOVERED = "github.webhook_redelivery_recovered"


@dataclass
class SweepReport:
    """What one sweep saw and did (GUIDs)."""

    listed: int = 0
    requested: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    asked_already: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    failed_to_ask: list[str] = field(default_factory=list)


class DeliverySweep:
    """Redeliver the App webhook's failed deliveries, once each; see the module docstring."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        deliveries: AppHookDeliveries,
        *,
        retention: timedelta = GITHUB_RETENTION,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._deliveries = deliveries
        self._retention = retention
        self._now = clock
        self._last_run: datetime | None = None
        # GUIDs asked for by this process, until GitHub's list shows their redelivery attempt.
        self._asked: dict[str, datetime] = {}
        self._recovered: dict[str, datetime] = {}  # GUIDs whose recovery this process recorded

    def sweep(self) -> SweepReport:
        now = self._now()
        since = now - self._retention
        if self._last_run is not None:
            since = max(since, self._last_run - OVERLAP)
        attempts = self._deliveries.list_hook_deliveries(since=since)
        report = SweepReport(listed=len(attempts))
        self._asked = {g: at for g, at in self._asked.items() if at > now - self._retention}
        self._recovered = {g: at for g, at in self._recovered.items() if at > now - self._retention}
        with self._uow() as uow:
            received = {g for g in failed_guids(attempts) if _processed(uow, g)}
        plan = plan_sweep(attempts, now=now, retention=self._retention, received=received, asked=self._asked)
        report.asked_already = list(plan.asked_already)
        report.received = list(plan.received)
        report.expired = list(plan.expired)
        asked: list[HookDelivery] = []
        for attempt in plan.redeliver:
            try:
                self._deliveries.redeliver_hook_delivery(attempt.id)
            except RetryLater:
                break  # rate limited: the next sweep asks for the rest
            except GitHubNotFound:
                report.expired.append(attempt.guid)  # gone from GitHub's log meanwhile
                continue
            except GitHubError as exc:
                log.warning("delivery_sweep.redelivery_failed", guid=attempt.guid, error=exc.message)
                report.failed_to_ask.append(attempt.guid)
                continue
            self._asked[attempt.guid] = now
            asked.append(attempt)
            report.requested.append(attempt.guid)
        # A recovery is recorded by the first sweep of this process that sees it (later ones overlap;
        # a restarted process may record one again, which is harmless in an audit log).
        recovered = [a for a in plan.recovered if a.guid not in self._recovered]
        self._record(asked, recovered, now)
        self._recovered.update((a.guid, now) for a in recovered)
        report.recovered = [a.guid for a in recovered]
        self._last_run = now
        log.info(
            "delivery_sweep.done",
            listed=report.listed,
            requested=len(report.requested),
            recovered=len(report.recovered),
            asked_already=len(report.asked_already),
            expired=len(report.expired),
        )
        return report

    def _record(self, asked: list[HookDelivery], recovered: list[HookDelivery], now: datetime) -> None:
        if not asked and not recovered:
            return
        with self._uow() as uow:
            for action, attempts in ((ACTION_REQUESTED, asked), (ACTION_RECOVERED, recovered)):
                for attempt in attempts:
                    details = {
                        "guid": attempt.guid,
                        "delivery_id": attempt.id,
                        "event": attempt.event,
                        "action": attempt.action,
                        "status": attempt.status,
                        "delivered_at": attempt.delivered_at.isoformat(),
                        "repository_id": attempt.repository_id,
                    }
                    for project_id in _projects_of(uow, attempt):
                        uow.audit.add(AuditEntry(AUDIT_ACTOR, action, project_id, details, at=now))
            uow.commit()


def _processed(uow: UnitOfWork, guid: str) -> bool:
    """Whether our receiver recorded this delivery and did not fail processing it."""
    seen = uow.deliveries.get(guid)
    return seen is not None and seen.status != "failed"


def _projects_of(uow: UnitOfWork, attempt: HookDelivery) -> list[str | None]:
    """The projects a delivery was about (by repository id), or one App-wide row (None)."""
    if attempt.repository_id is None:
        return [None]
    ids: list[str | None] = [p.id for p in uow.projects.by_repository(attempt.repository_id)]
    return ids or [None]


__all__ = ["DEFAULT_SWEEP_SECONDS", "SWEEP_TASK", "DeliverySweep", "SweepReport"]
