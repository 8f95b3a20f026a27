"""The delivery sweep's pure rules: which of the App's recent webhook deliveries failed, which of those to
ask GitHub to redeliver, and which were recovered.

"GitHub does not automatically redeliver failed deliveries"; the documented way to recover is a scheduled
script that fetches the deliveries attempted since its last run, treats every one whose `status` is not
`OK` as failed, and requests their redelivery
(https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries). Only deliveries
of the past 3 days can be redelivered on GitHub.com (7 days on Enterprise Server:
https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks).

Every attempt of one event is listed as its own delivery with the same `guid` (a redelivery keeps the
`X-GitHub-Delivery` GUID and says `redelivery: true`), so the rules work per GUID: an event is recovered
once any attempt is `OK`, and it is asked for once: an attempt marked `redelivery` means someone (this
sweep, or a person in the settings page) asked already, and GitHub's own list is the durable memory.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# GitHub.com keeps deliveries redeliverable for 3 days (the setting raises it for Enterprise Server).
GITHUB_RETENTION = timedelta(days=3)
# The status of an attempt GitHub received a 2xx for; anything else failed
# (https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries).
STATUS_OK = "OK"
# An attempt still on its way (the emulator lists these; GitHub lists a delivery once it was attempted).
STATUS_PENDING = "pending"


@dataclass(frozen=True, slots=True)
class HookDelivery:
    """One attempt of a webhook delivery, as `GET /app/hook/deliveries` lists it
    (https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook)."""

    id: int
    guid: str
    delivered_at: datetime
    status: str
    status_code: int
    event: str
    redelivery: bool = False
    action: str | None = None
    installation_id: int | None = None
    repository_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """What one sweep does: the attempt to redeliver per failed GUID, and what it found otherwise."""

    redeliver: tuple[HookDelivery, ...] = ()
    recovered: tuple[HookDelivery, ...] = ()  # a redelivery attempt that succeeded (one per GUID)
    asked_already: tuple[str, ...] = ()  # failed, but a redelivery was requested before
    received: tuple[str, ...] = ()  # GitHub says failed, but our receiver has it (a slow answer)
    expired: tuple[str, ...] = ()  # failed, but past the retention window: GitHub would refuse
    in_flight: tuple[str, ...] = field(default=())  # an attempt is still pending


def by_guid(deliveries: Iterable[HookDelivery]) -> dict[str, list[HookDelivery]]:
    """Attempts grouped by GUID, oldest first within each."""
    groups: dict[str, list[HookDelivery]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery.guid, []).append(delivery)
    for attempts in groups.values():
        attempts.sort(key=lambda d: (d.delivered_at, d.id))
    return groups


def failed_guids(deliveries: Iterable[HookDelivery]) -> list[str]:
    """GUIDs none of whose attempts is `OK` (nor still pending): the candidates for a redelivery."""
    return [
        guid
        for guid, attempts in by_guid(deliveries).items()
        if not any(a.ok or a.status == STATUS_PENDING for a in attempts)
    ]


def plan_sweep(
    deliveries: Iterable[HookDelivery],
    *,
    now: datetime,
    retention: timedelta = GITHUB_RETENTION,
    received: Container[str] = frozenset(),
    asked: Container[str] = frozenset(),
) -> SweepPlan:
    """Decide the sweep: redeliver each failed GUID once, within the retention window.

    `received`: GUIDs our receiver recorded and processed (GitHub may call a delivery failed that we got,
    for example when the answer took too long): asking again would change nothing. `asked`: GUIDs this
    process asked for whose redelivery GitHub does not list yet.
    """
    redeliver: list[HookDelivery] = []
    recovered: list[HookDelivery] = []
    asked_already: list[str] = []
    seen: list[str] = []
    expired: list[str] = []
    in_flight: list[str] = []
    oldest_allowed = now - retention
    for guid, attempts in by_guid(deliveries).items():
        ok = [a for a in attempts if a.ok]
        if ok:
            # A redelivery that succeeded recovers a failure: one seen here, or one we asked for (whose
            # failed attempt may be older than what this sweep reads).
            if ok[-1].redelivery and (guid in asked or any(not a.ok for a in attempts)):
                recovered.append(ok[-1])
            continue
        if any(a.status == STATUS_PENDING for a in attempts):
            in_flight.append(guid)
        elif guid in received:
            seen.append(guid)
        elif guid in asked or any(a.redelivery for a in attempts):
            asked_already.append(guid)
        elif attempts[-1].delivered_at < oldest_allowed:
            expired.append(guid)
        else:
            redeliver.append(attempts[-1])
    return SweepPlan(
        redeliver=tuple(redeliver),
        recovered=tuple(recovered),
        asked_already=tuple(asked_already),
        received=tuple(seen),
        expired=tuple(expired),
        in_flight=tuple(in_flight),
    )


__all__ = [
    "GITHUB_RETENTION",
    "STATUS_OK",
    "STATUS_PENDING",
    "HookDelivery",
    "SweepPlan",
    "by_guid",
    "failed_guids",
    "plan_sweep",
]
