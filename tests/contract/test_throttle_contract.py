"""The ThrottleState contract, run against every adapter (in memory; the database on SQLite and PostgreSQL).

What callers (the GitHub client) rely on: a cool-down is only ever extended, never shortened, and
is over once `now` reaches it; the newest quota observation wins whatever order writes arrive in;
installations don't see each other's state; and, for shared adapters, a second process (its own
engine on the same database) sees what the first one recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.throttle import DatabaseThrottleState, InMemoryThrottleState
from ghsync.domain.github import Cooldown, RateLimitState
from ghsync.ports.throttle import ThrottleState

# Builds one instance per call; instances of one test share one backing store (like processes).
Factory = Callable[[], ThrottleState]

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(
    params=[
        "memory",
        "database-sqlite",
        pytest.param("database-postgresql", marks=pytest.mark.postgres),
    ]
)
def make_state(request: pytest.FixtureRequest) -> Iterator[Factory]:
    if request.param == "memory":
        shared = InMemoryThrottleState()

        def memory() -> ThrottleState:
            return shared

        yield memory
        return

    url = str(request.getfixturevalue("sqlite_url" if request.param == "database-sqlite" else "postgres_url"))
    setup = make_engine(url)
    migrate.upgrade(setup)
    setup.dispose()
    engines: list[Engine] = []

    def database() -> ThrottleState:
        engine = make_engine(url)  # its own engine and pool: another process, as far as the database knows
        engines.append(engine)
        return DatabaseThrottleState(engine)

    yield database
    for engine in engines:
        engine.dispose()


def quota(
    remaining: int, observed_at: datetime, *, limit: int = 5000, used: int | None = None
) -> RateLimitState:
    return RateLimitState(
        limit=limit,
        remaining=remaining,
        reset_at=observed_at + timedelta(minutes=30),
        used=used,
        observed_at=observed_at,
    )


def test_no_state_at_first(make_state: Factory) -> None:
    state = make_state()
    assert state.cooldown(1, NOW) is None
    assert state.last_quota(1) is None


def test_a_cooldown_holds_until_its_time(make_state: Factory) -> None:
    state = make_state()
    until = NOW + timedelta(seconds=60)
    state.block(1, until, "secondary")
    assert state.cooldown(1, NOW) == Cooldown(until=until, kind="secondary")
    assert state.cooldown(1, until - timedelta(microseconds=1)) == Cooldown(until=until, kind="secondary")
    assert state.cooldown(1, until) is None
    assert state.cooldown(1, until + timedelta(seconds=1)) is None


def test_a_later_block_extends_an_earlier_one_never_shortens(make_state: Factory) -> None:
    state = make_state()
    state.block(1, NOW + timedelta(seconds=60), "secondary")
    state.block(1, NOW + timedelta(seconds=10), "primary")  # earlier: ignored, kind included
    assert state.cooldown(1, NOW) == Cooldown(until=NOW + timedelta(seconds=60), kind="secondary")
    state.block(1, NOW + timedelta(seconds=120), "primary")
    assert state.cooldown(1, NOW) == Cooldown(until=NOW + timedelta(seconds=120), kind="primary")


def test_a_block_after_an_expired_one_starts_afresh(make_state: Factory) -> None:
    state = make_state()
    state.block(1, NOW + timedelta(seconds=5), "secondary")
    later = NOW + timedelta(minutes=10)
    state.block(1, later + timedelta(seconds=30), "primary")
    assert state.cooldown(1, later) == Cooldown(until=later + timedelta(seconds=30), kind="primary")


def test_times_in_other_zones_compare_as_instants(make_state: Factory) -> None:
    state = make_state()
    plus_two = datetime(2026, 1, 5, 14, 1, tzinfo=timezone(timedelta(hours=2)))  # 12:01 UTC
    state.block(1, plus_two, "secondary")
    cooldown = state.cooldown(1, NOW)
    assert cooldown is not None and cooldown.until == NOW + timedelta(minutes=1)
    assert state.cooldown(1, NOW + timedelta(minutes=1)) is None


def test_naive_times_are_refused(make_state: Factory) -> None:
    state = make_state()
    with pytest.raises(ValueError):
        state.block(1, datetime(2026, 1, 5, 12, 0), "secondary")
    with pytest.raises(ValueError):
        state.cooldown(1, datetime(2026, 1, 5, 12, 0))


def test_the_newest_quota_wins_whatever_the_order(make_state: Factory) -> None:
    state = make_state()
    newer = quota(4000, NOW, used=1000)
    older = quota(4500, NOW - timedelta(seconds=5), used=500)
    state.record_quota(1, newer)
    state.record_quota(1, older)  # arrives late: must not replace the newer observation
    assert state.last_quota(1) == newer
    newest = quota(3999, NOW + timedelta(seconds=1), limit=15000)
    state.record_quota(1, newest)
    assert state.last_quota(1) == newest


def test_installations_are_independent(make_state: Factory) -> None:
    state = make_state()
    state.block(1, NOW + timedelta(seconds=60), "secondary")
    state.record_quota(1, quota(10, NOW))
    assert state.cooldown(2, NOW) is None
    assert state.last_quota(2) is None


def test_a_second_instance_sees_the_first_ones_state(make_state: Factory) -> None:
    # For the database adapter each instance has its own engine: this is "another process".
    first, second = make_state(), make_state()
    first.block(7, NOW + timedelta(seconds=90), "secondary")
    first.record_quota(7, quota(12, NOW))
    assert second.cooldown(7, NOW) == Cooldown(until=NOW + timedelta(seconds=90), kind="secondary")
    assert second.last_quota(7) == quota(12, NOW)
    second.block(7, NOW + timedelta(seconds=30), "primary")  # shorter: ignored everywhere
    assert first.cooldown(7, NOW) == Cooldown(until=NOW + timedelta(seconds=90), kind="secondary")


def test_concurrent_writers_keep_the_latest_cooldown_and_the_newest_quota(make_state: Factory) -> None:
    writers = [make_state() for _ in range(4)]
    start = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def write(index: int, state: ThrottleState) -> None:
        try:
            start.wait(timeout=10)
            # Interleaved: each writer's offsets are spread over the whole range.
            for step in range(10):
                offset = step * len(writers) + index
                state.block(3, NOW + timedelta(seconds=offset), "secondary")
                state.record_quota(3, quota(1000 - offset, NOW + timedelta(seconds=offset)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    top = 10 * len(writers) - 1
    reader = make_state()
    assert reader.cooldown(3, NOW) == Cooldown(until=NOW + timedelta(seconds=top), kind="secondary")
    assert reader.last_quota(3) == quota(1000 - top, NOW + timedelta(seconds=top))
