"""Outgoing notifications to the platform (pure): the events, the outbox row, when an outcome is worth
telling, the signature, and the retry schedule.

A notification is an outbox row written in the same unit of work as the outcome it reports, and posted
later by a periodic task, so a slow or failing platform never blocks a sync. The body is signed like
GitHub signs its webhooks: HMAC-SHA256 of the raw body with the shared secret, hex, in
`X-Ghsync-Signature-256: sha256=<hex>`, plus a unique `X-Ghsync-Delivery` id
(https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

SIGNATURE_HEADER = "X-Ghsync-Signature-256"
DELIVERY_HEADER = "X-Ghsync-Delivery"
EVENT_HEADER = "X-Ghsync-Event"


class NotificationEvent(StrEnum):
    CONFLICT_OPENED = "conflict.opened"
    CONFLICT_RESOLVED = "conflict.resolved"
    SYNC_FAILED = "sync.failed"
    SYNC_DISABLED = "sync.disabled"
    PLAN_HELD = "plan.held"


NotificationStatus = Literal["pending", "delivered", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One outbox row: what to tell (`event`, `payload`), and how delivering it went so far."""

    id: str  # also the delivery id the platform deduplicates on
    event: NotificationEvent
    project_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime
    status: NotificationStatus = "pending"
    attempts: int = 0
    delivered_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: `first` after the first failure, doubling up to `cap`; given up after
    `max_attempts` (the row stays, `failed`, for an operator to see)."""

    first: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 12

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1-based)."""
        grown: timedelta = self.first * 2 ** max(0, attempts - 1)
        return min(self.cap, grown)


@dataclass(frozen=True, slots=True)
class OutcomeFacts:
    """What one recorded sync outcome says, as far as notifications care."""

    status: str  # the operation's status
    conflict_opened: bool = False
    conflict_resolved: bool = False
    error_code: str | None = None
    error_message: str | None = None
    previous_status: str | None = None  # the project's latest operation before this one
    previous_heads: Mapping[str, str | None] | None = None
    heads: Mapping[str, str | None] = field(default_factory=dict)


def events_of(facts: OutcomeFacts) -> list[NotificationEvent]:
    """The events an outcome is worth telling. Failures and held plans are told on the transition only:
    a retried failure or a plan held again for the same heads must not page anyone twice."""
    events: list[NotificationEvent] = []
    if facts.conflict_opened:
        events.append(NotificationEvent.CONFLICT_OPENED)
    elif facts.conflict_resolved:
        events.append(NotificationEvent.CONFLICT_RESOLVED)
    if facts.status == "failed" and facts.previous_status != "failed":
        events.append(NotificationEvent.SYNC_FAILED)
    if facts.status == "held" and (facts.previous_status != "held" or facts.previous_heads != facts.heads):
        events.append(NotificationEvent.PLAN_HELD)
    return events


def body_of(notification: Notification) -> bytes:
    """The exact bytes posted (and signed): a JSON object with the event, the project and the payload."""
    document = {
        "id": notification.id,
        "event": notification.event.value,
        "project_id": notification.project_id,
        "created_at": notification.created_at.isoformat(),
        "data": notification.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of body>`, the value of `X-Ghsync-Signature-256`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_of(notification: Notification, body: bytes, secret: str | None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: notification.id,
        EVENT_HEADER: notification.event.value,
    }
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    return headers


def after_failure(notification: Notification, error: str, now: datetime, backoff: Backoff) -> Notification:
    """The row after one more failed attempt: rescheduled with backoff, or given up (`failed`)."""
    attempts = notification.attempts + 1
    if attempts >= backoff.max_attempts:
        return replace(notification, status="failed", attempts=attempts, last_error=error[:2000])
    return replace(
        notification,
        attempts=attempts,
        next_attempt_at=now + backoff.delay(attempts),
        last_error=error[:2000],
    )
