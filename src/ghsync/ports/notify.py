"""The notification ports: the outbox of notifications (part of the unit of work) and the sender that
posts one to the platform (`GHSYNC_NOTIFY_URL`).

Adapters: the outbox is `SqlNotifications` (`ghsync.adapters.db.notifications`) and the memory unit of
work's twin; the sender is `HttpxNotificationSender` or `InMemoryNotificationSender`
(`ghsync.adapters.notify`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from ghsync.domain.errors import GhsyncError
from ghsync.domain.notifications import Notification


class NotificationFailed(GhsyncError):
    """The platform did not take a notification (a transport error or a non-2xx answer); retried later."""

    code = "notification_failed"


class NotificationOutbox(Protocol):
    def add(self, notification: Notification) -> None:
        """Write the row in this unit of work (it commits with the outcome it reports)."""

    def due(self, now: datetime, *, limit: int) -> list[Notification]:
        """Pending rows whose next attempt is due, oldest first."""

    def save(self, notification: Notification) -> None:
        """Store the row's new delivery state (attempts, next attempt, status, error)."""

    def recent(self, *, limit: int, project_id: str | None = None) -> list[Notification]:
        """The newest rows, newest first (for operators and tests)."""

    def purge(self, before: datetime) -> int:
        """Delete rows created before `before` that are no longer pending; returns how many."""


class NotificationSender(Protocol):
    def post(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Deliver one notification; `NotificationFailed` when the platform did not take it."""

    def close(self) -> None:
        """Release the connection pool (at shutdown)."""
