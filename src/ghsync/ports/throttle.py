"""The throttle-state port: per-installation rate-limit facts shared by every process of a deployment.

When one process hits GitHub's secondary rate limit, every other process must honour the same
cool-down, or the installation keeps getting refused (and GitHub may ban the integration). Adapters:
the database (default), in memory (one process, tests), Redis (production mode, later).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ghsync.domain.github import Cooldown, RateLimitState


class ThrottleState(Protocol):
    def block(self, installation_id: int, until: datetime, kind: str) -> None:
        """Record a cool-down; a later `until` extends it, an earlier one never shortens it."""

    def cooldown(self, installation_id: int, now: datetime) -> Cooldown | None:
        """The cool-down in force at `now`, or None when there is none (or it has passed)."""

    def record_quota(self, installation_id: int, state: RateLimitState) -> None:
        """Keep the newest quota seen (by `observed_at`; an older observation never replaces a newer)."""

    def last_quota(self, installation_id: int) -> RateLimitState | None:
        """The newest quota recorded for the installation, or None."""
