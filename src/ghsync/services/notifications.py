"""Notifications to the platform: outbox rows written with the outcomes they report, and the periodic
delivery that posts them (signed, with a delivery id) and retries with exponential backoff.

Writing is part of the caller's unit of work (`notify_outcome`, `notify_disabled`), so a notification
commits exactly when its outcome does; posting happens later in `NotificationService.deliver_due`, so a
platform that is slow or down never blocks a sync.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ghsync.domain.notifications import (
    Backoff,
    Notification,
    NotificationEvent,
    OutcomeFacts,
    after_failure,
    body_of,
    events_of,
    headers_of,
)
from ghsync.domain.operations import ConflictRecord, SyncOperation
from ghsync.observability.logging import get_logger
from ghsync.ports.notify import NotificationFailed, NotificationSender
from ghsync.ports.uow import UnitOfWork, UnitOfWorkFactory

log = get_logger(__name__)

# Delivered (or given up) rows are kept this long for operators, then purged.
KEEP_DELIVERED = timedelta(days=7)


def new_notification(
    event: NotificationEvent, project_id: str | None, payload: dict[str, Any], now: datetime
) -> Notification:
    return Notification(
        id=str(uuid.uuid4()),
        event=event,
        project_id=project_id,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )


def notify_outcome(
    uow: UnitOfWork,
    project_id: str,
    operation_id: str,
    previous: SyncOperation | None,
    *,
    status: str,
    heads: Mapping[str, str | None],
    now: datetime,
    conflict: ConflictRecord | None = None,
    conflict_resolved: bool = False,
    error_code: str | None = None,
    error_message: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> list[Notification]:
    """Add the notifications a recorded sync outcome is worth to `uow` (the one recording it)."""
    facts = OutcomeFacts(
        status=status,
        conflict_opened=conflict is not None and conflict.status == "open",
        conflict_resolved=conflict_resolved,
        error_code=error_code,
        error_message=error_message,
        previous_status=previous.status if previous else None,
        previous_heads=(previous.metadata.get("heads_before") if previous else None),
        heads=dict(heads),
    )
    made = []
    for event in events_of(facts):
        payload: dict[str, Any] = {"operation_id": operation_id, "status": status, "heads": dict(heads)}
        if event in (NotificationEvent.CONFLICT_OPENED, NotificationEvent.CONFLICT_RESOLVED) and conflict:
            payload["conflict"] = {
                "paths": list(conflict.paths),
                "files": conflict.details.get("files", []),
                "strategy": conflict.strategy,
                "resolution": conflict.resolution,
            }
        if event is NotificationEvent.SYNC_FAILED:
            payload["error"] = {"code": error_code, "message": error_message}
        if event is NotificationEvent.PLAN_HELD and details:
            payload["held"] = dict(details)
        notification = new_notification(event, project_id, payload, now)
        uow.notifications.add(notification)
        made.append(notification)
    return made


def notify_disabled(uow: UnitOfWork, project_id: str, actor: str, now: datetime) -> Notification:
    notification = new_notification(NotificationEvent.SYNC_DISABLED, project_id, {"actor": actor}, now)
    uow.notifications.add(notification)
    return notification


class NotificationService:
    """`deliver_due()`: the periodic task posting due notifications (no URL: they are marked skipped)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        sender: NotificationSender | None,
        secret: str | None = None,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._secret = secret
        self._backoff = backoff or Backoff()
        self._now = clock

    def deliver_due(self, *, limit: int = 100) -> int:
        """Post every due notification once; returns how many the platform took."""
        now = self._now()
        with self._uow() as uow:
            due = uow.notifications.due(now, limit=limit)
        delivered = 0
        for notification in due:
            updated = self._attempt(notification, now)
            delivered += updated.status == "delivered"
            with self._uow() as uow:
                uow.notifications.save(updated)
                uow.commit()
        return delivered

    def _attempt(self, notification: Notification, now: datetime) -> Notification:
        if self._sender is None:
            return replace(notification, status="skipped", last_error="GHSYNC_NOTIFY_URL is not set")
        body = body_of(notification)
        try:
            self._sender.post(body, headers_of(notification, body, self._secret))
        except NotificationFailed as exc:
            updated = after_failure(notification, exc.message, now, self._backoff)
            log.warning(
                "notification_failed",
                delivery=notification.id,
                notification_event=notification.event.value,
                attempts=updated.attempts,
                next_attempt_at=updated.next_attempt_at.isoformat(),
                gave_up=updated.status == "failed",
                error=exc.message,
            )
            return updated
        return replace(notification, status="delivered", attempts=notification.attempts + 1, delivered_at=now)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()

    def purge(self) -> int:
        """Forget delivered, skipped and given-up rows older than KEEP_DELIVERED."""
        with self._uow() as uow:
            gone = uow.notifications.purge(self._now() - KEEP_DELIVERED)
            uow.commit()
        return gone
