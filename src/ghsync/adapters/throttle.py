"""Adapters of the throttle-state port: in memory (one process, tests) and the ghsync database.

Both keep the port's two rules (see `ghsync.ports.throttle`): a cool-down is only ever extended,
and the newest quota observation (by `observed_at`) wins, whatever order the writes arrive in.
"""

from __future__ import annotations

import threading
from datetime import datetime

from ghsync.domain.github import Cooldown, RateLimitState


def _require_aware(value: datetime, what: str) -> None:
    # Naive times can't be compared with aware ones, and would mean different instants per host.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")


class InMemoryThrottleState:
    """The throttle state of one process, thread-safe; a second process sees none of it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cooldowns: dict[int, Cooldown] = {}
        self._quotas: dict[int, RateLimitState] = {}

    def block(self, installation_id: int, until: datetime, kind: str) -> None:
        _require_aware(until, "until")
        with self._lock:
            current = self._cooldowns.get(installation_id)
            if current is None or until > current.until:
                self._cooldowns[installation_id] = Cooldown(until=until, kind=kind)

    def cooldown(self, installation_id: int, now: datetime) -> Cooldown | None:
        _require_aware(now, "now")
        with self._lock:
            current = self._cooldowns.get(installation_id)
        if current is None or current.until <= now:
            return None
        return current

    def record_quota(self, installation_id: int, state: RateLimitState) -> None:
        _require_aware(state.observed_at, "observed_at")
        with self._lock:
            current = self._quotas.get(installation_id)
            if current is None or state.observed_at >= current.observed_at:
                self._quotas[installation_id] = state

    def last_quota(self, installation_id: int) -> RateLimitState | None:
        with self._lock:
            return self._quotas.get(installation_id)
