"""The notifications outbox on SQL (`uow.notifications`): rows written with the outcome they report."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ghsync.adapters.db.models import NotificationRow
from ghsync.domain.notifications import Notification, NotificationEvent


def _notification_of(row: NotificationRow) -> Notification:
    return Notification(
        id=str(row.id),
        event=NotificationEvent(row.event),
        project_id=str(row.project_id) if row.project_id else None,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


class SqlNotifications:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, notification: Notification) -> None:
        self._s.add(
            NotificationRow(
                id=uuid.UUID(notification.id),
                project_id=uuid.UUID(notification.project_id) if notification.project_id else None,
                event=notification.event.value,
                payload=notification.payload,
                status=notification.status,
                attempts=notification.attempts,
                created_at=notification.created_at,
                next_attempt_at=notification.next_attempt_at,
            )
        )
        self._s.flush()

    def due(self, now: datetime, *, limit: int) -> list[Notification]:
        rows = self._s.scalars(
            select(NotificationRow)
            .where(NotificationRow.status == "pending", NotificationRow.next_attempt_at <= now)
            .order_by(NotificationRow.created_at, NotificationRow.id)
            .limit(limit)
        )
        return [_notification_of(row) for row in rows]

    def save(self, notification: Notification) -> None:
        row = self._s.get(NotificationRow, uuid.UUID(notification.id))
        if row is None:
            return
        row.status = notification.status
        row.attempts = notification.attempts
        row.next_attempt_at = notification.next_attempt_at
        row.delivered_at = notification.delivered_at
        row.last_error = notification.last_error
        self._s.flush()

    def recent(self, *, limit: int, project_id: str | None = None) -> list[Notification]:
        query = select(NotificationRow)
        if project_id is not None:
            query = query.where(NotificationRow.project_id == uuid.UUID(project_id))
        query = query.order_by(NotificationRow.created_at.desc(), NotificationRow.id.desc()).limit(limit)
        return [_notification_of(row) for row in self._s.scalars(query)]

    def purge(self, before: datetime) -> int:
        done = self._s.execute(
            delete(NotificationRow).where(
                NotificationRow.status != "pending", NotificationRow.created_at < before
            )
        )
        return int(done.rowcount or 0)  # type: ignore[attr-defined]
