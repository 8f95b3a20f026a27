"""Adapters of the throttle-state port: in memory (one process, tests) and the ghsync database.

Both keep the port's two rules (see `ghsync.ports.throttle`): a cool-down is only ever extended,
and the newest quota observation (by `observed_at`) wins, whatever order the writes arrive in.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from ghsync.adapters.db.engine import is_sqlite, session_factory
from ghsync.adapters.db.models import ThrottleStateRow
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


class DatabaseThrottleState:
    """The throttle state in the ghsync database (table `throttle_state`), shared by every process on it.

    Each write is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE` statement: the rule (extend only,
    newest observation wins) is checked by the database against the row as it is at that moment, so
    two processes writing at once can't undo each other, on SQLite and on PostgreSQL alike.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._insert: Any = sqlite.insert if is_sqlite(engine) else postgresql.insert

    def block(self, installation_id: int, until: datetime, kind: str) -> None:
        _require_aware(until, "until")
        table = ThrottleStateRow.__table__
        stmt = self._insert(table).values(
            installation_id=installation_id, cooldown_until=until, cooldown_kind=kind
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.installation_id],
            set_={
                "cooldown_until": stmt.excluded.cooldown_until,
                "cooldown_kind": stmt.excluded.cooldown_kind,
            },
            where=or_(
                table.c.cooldown_until.is_(None), stmt.excluded.cooldown_until > table.c.cooldown_until
            ),
        )
        with self._engine.begin() as connection:
            connection.execute(stmt)

    def cooldown(self, installation_id: int, now: datetime) -> Cooldown | None:
        _require_aware(now, "now")
        with self._sessions() as session:
            row = session.execute(
                select(ThrottleStateRow.cooldown_until, ThrottleStateRow.cooldown_kind).where(
                    ThrottleStateRow.installation_id == installation_id
                )
            ).first()
        if row is None or row.cooldown_until is None or row.cooldown_until <= now:
            return None
        return Cooldown(until=row.cooldown_until, kind=row.cooldown_kind or "secondary")

    def record_quota(self, installation_id: int, state: RateLimitState) -> None:
        _require_aware(state.observed_at, "observed_at")
        _require_aware(state.reset_at, "reset_at")
        table = ThrottleStateRow.__table__
        values = {
            "quota_limit": state.limit,
            "quota_remaining": state.remaining,
            "quota_used": state.used,
            "quota_resource": state.resource,
            "quota_reset_at": state.reset_at,
            "quota_observed_at": state.observed_at,
        }
        stmt = self._insert(table).values(installation_id=installation_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.installation_id],
            set_={name: stmt.excluded[name] for name in values},
            where=or_(
                table.c.quota_observed_at.is_(None),
                stmt.excluded.quota_observed_at >= table.c.quota_observed_at,
            ),
        )
        with self._engine.begin() as connection:
            connection.execute(stmt)

    def last_quota(self, installation_id: int) -> RateLimitState | None:
        with self._sessions() as session:
            row = session.get(ThrottleStateRow, installation_id)
        if (
            row is None
            or row.quota_observed_at is None
            or row.quota_limit is None
            or row.quota_remaining is None
            or row.quota_reset_at is None
        ):
            return None
        return RateLimitState(
            limit=row.quota_limit,
            remaining=row.quota_remaining,
            reset_at=row.quota_reset_at,
            used=row.quota_used,
            resource=row.quota_resource or "core",
            observed_at=row.quota_observed_at,
        )
