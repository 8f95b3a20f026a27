"""Notifications to the platform: GitHub-style signatures, the backoff schedule, which outcomes are told
(transitions only), the outbox on every adapter, the delivery task with a platform that fails, the httpx
sender, and the engine's and the settings' hooks on the in-memory twins."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.notify import HttpxNotificationSender, InMemoryNotificationSender
from ghsync.domain.models import FileWrite
from ghsync.domain.notifications import (
    Backoff,
    Notification,
    NotificationEvent,
    NotificationStatus,
    OutcomeFacts,
    after_failure,
    body_of,
    events_of,
    headers_of,
    signature,
)
from ghsync.domain.sync import ConflictStrategy
from ghsync.ports.notify import NotificationFailed
from ghsync.ports.uow import UnitOfWorkFactory
from ghsync.services.link_settings import LinkSettings
from ghsync.services.notifications import NotificationService, new_notification
from ghsync.services.reconcile import EngineSettings, ReconcileService
from support.engine_world import World, make_world

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


# --- pure ---------------------------------------------------------------------------------------------


def test_the_signature_is_github_s_hmac_sha256() -> None:
    # GitHub's own test vector ("Validating webhook deliveries"):
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    assert signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_headers_carry_the_delivery_id_the_event_and_a_signature_over_the_exact_body() -> None:
    notification = new_notification(NotificationEvent.PLAN_HELD, "p1", {"why": "most files"}, T0)
    body = body_of(notification)
    headers = headers_of(notification, body, "s3cret")
    assert headers["X-Ghsync-Delivery"] == notification.id and headers["X-Ghsync-Event"] == "plan.held"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Ghsync-Signature-256"] == f"sha256={expected}"
    assert json.loads(body) == {
        "id": notification.id,
        "event": "plan.held",
        "project_id": "p1",
        "created_at": T0.isoformat(),
        "data": {"why": "most files"},
    }
    assert "X-Ghsync-Signature-256" not in headers_of(notification, body, None)  # no secret: unsigned


def test_backoff_doubles_up_to_its_cap_then_gives_up() -> None:
    backoff = Backoff(first=timedelta(seconds=10), cap=timedelta(seconds=60), max_attempts=4)
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    row = new_notification(NotificationEvent.SYNC_FAILED, None, {}, T0)
    for attempt in (1, 2, 3):
        row = after_failure(row, "down", T0, backoff)
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.next_attempt_at == T0 + backoff.delay(attempt)
    row = after_failure(row, "still down", T0, backoff)
    assert (row.status, row.attempts, row.last_error) == ("failed", 4, "still down")


HEADS = {"local": "a" * 40, "github": "b" * 40}


@pytest.mark.parametrize(
    ("facts", "events"),
    [
        (OutcomeFacts("success"), []),
        (OutcomeFacts("success", conflict_opened=True), [NotificationEvent.CONFLICT_OPENED]),
        # a conflict superseded by a new one is told as opened, not also as resolved
        (
            OutcomeFacts("success", conflict_opened=True, conflict_resolved=True),
            [NotificationEvent.CONFLICT_OPENED],
        ),
        (OutcomeFacts("success", conflict_resolved=True), [NotificationEvent.CONFLICT_RESOLVED]),
        (OutcomeFacts("failed", previous_status="success"), [NotificationEvent.SYNC_FAILED]),
        (OutcomeFacts("failed"), [NotificationEvent.SYNC_FAILED]),
        (OutcomeFacts("failed", previous_status="failed"), []),  # a retry failing again
        (OutcomeFacts("held", heads=HEADS), [NotificationEvent.PLAN_HELD]),
        (OutcomeFacts("held", previous_status="held", previous_heads=HEADS, heads=HEADS), []),
        (
            OutcomeFacts(
                "held", previous_status="held", previous_heads={**HEADS, "local": "c" * 40}, heads=HEADS
            ),
            [NotificationEvent.PLAN_HELD],
        ),
    ],
)
def test_which_outcomes_are_told(facts: OutcomeFacts, events: list[NotificationEvent]) -> None:
    assert events_of(facts) == events


# --- the outbox, on every adapter ------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def outbox_uow(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    if request.param == "memory":
        return MemoryUnitOfWorkFactory()
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    request.addfinalizer(engine.dispose)
    return SqlUnitOfWorkFactory(engine)


def test_the_outbox_keeps_rows_until_due_and_purges_only_finished_ones(outbox_uow: UnitOfWorkFactory) -> None:
    early = new_notification(NotificationEvent.CONFLICT_OPENED, None, {"paths": ["a.txt"]}, T0)
    late = Notification(
        id=str(uuid.uuid4()),
        event=NotificationEvent.SYNC_FAILED,
        project_id=None,
        payload={},
        created_at=T0 + timedelta(seconds=1),
        next_attempt_at=T0 + timedelta(minutes=5),
    )
    with outbox_uow() as uow:
        uow.notifications.add(early)
        uow.notifications.add(late)
        uow.notifications.add(new_notification(NotificationEvent.PLAN_HELD, None, {}, T0))
        uow.rollback()  # the third never happened: rows commit with their outcome or not at all
        uow.notifications.add(early)
        uow.notifications.add(late)
        uow.commit()
    with outbox_uow() as uow:
        assert [n.id for n in uow.notifications.due(T0, limit=10)] == [early.id]
        assert [n.id for n in uow.notifications.due(T0 + timedelta(minutes=5), limit=10)] == [
            early.id,
            late.id,
        ]
        assert uow.notifications.due(T0 + timedelta(minutes=5), limit=1)[0].payload == {"paths": ["a.txt"]}
        uow.notifications.save(replace_status(early, "delivered", T0))
        uow.commit()
    with outbox_uow() as uow:
        assert [n.id for n in uow.notifications.due(T0 + timedelta(hours=1), limit=10)] == [late.id]
        assert [n.id for n in uow.notifications.recent(limit=10)] == [late.id, early.id]
        assert uow.notifications.purge(T0 + timedelta(days=30)) == 1  # the pending one stays
        uow.commit()
    with outbox_uow() as uow:
        assert [n.id for n in uow.notifications.recent(limit=10)] == [late.id]


def replace_status(notification: Notification, status: NotificationStatus, at: datetime) -> Notification:
    return replace(notification, status=status, delivered_at=at, attempts=notification.attempts + 1)


# --- delivery ----------------------------------------------------------------------------------------------


def test_delivery_retries_with_backoff_and_the_platform_can_verify_every_post() -> None:
    uow, clock, sender = MemoryUnitOfWorkFactory(), Clock(), InMemoryNotificationSender(fail_next=2)
    service = NotificationService(
        uow, sender, "s3cret", backoff=Backoff(first=timedelta(seconds=10)), clock=clock
    )
    notification = new_notification(NotificationEvent.CONFLICT_OPENED, None, {"x": 1}, T0)
    with uow() as work:
        work.notifications.add(notification)
        work.commit()

    assert service.deliver_due() == 0  # first attempt fails: retried in 10 s
    assert service.deliver_due() == 0  # not due yet: no attempt at all
    clock.now = T0 + timedelta(seconds=10)
    assert service.deliver_due() == 0  # second attempt fails: retried 20 s later
    with uow() as work:
        (row,) = work.notifications.recent(limit=5)
    assert (row.attempts, row.next_attempt_at, row.status) == (
        2,
        clock.now + timedelta(seconds=20),
        "pending",
    )
    assert row.last_error and "down" in row.last_error
    clock.now += timedelta(seconds=20)
    assert service.deliver_due() == 1
    assert service.deliver_due() == 0  # delivered once, never again

    ((body, headers),) = sender.sent
    assert headers["X-Ghsync-Delivery"] == notification.id
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Ghsync-Signature-256"], expected)
    with uow() as work:
        (row,) = work.notifications.recent(limit=5)
    assert (row.status, row.attempts, row.delivered_at) == ("delivered", 3, clock.now)


def test_without_a_url_rows_are_skipped_and_later_purged() -> None:
    uow, clock = MemoryUnitOfWorkFactory(), Clock()
    service = NotificationService(uow, None, clock=clock)
    with uow() as work:
        work.notifications.add(new_notification(NotificationEvent.SYNC_DISABLED, None, {}, T0))
        work.commit()
    assert service.deliver_due() == 0
    with uow() as work:
        (row,) = work.notifications.recent(limit=5)
    assert row.status == "skipped"
    assert service.purge() == 0  # kept a week for operators
    clock.now = T0 + timedelta(days=8)
    assert service.purge() == 1


def test_the_httpx_sender_posts_the_exact_body_and_fails_on_anything_but_2xx() -> None:
    seen: list[httpx.Request] = []
    answers = iter([204, 500])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers))

    sender = HttpxNotificationSender(
        "https://platform.test/hooks", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    sender.post(b'{"a":1}', {"X-Ghsync-Delivery": "d1"})
    assert seen[0].method == "POST" and str(seen[0].url) == "https://platform.test/hooks"
    assert seen[0].content == b'{"a":1}' and seen[0].headers["X-Ghsync-Delivery"] == "d1"
    with pytest.raises(NotificationFailed, match="500"):
        sender.post(b"{}", {})
    sender.close()

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = HttpxNotificationSender(
        "https://platform.test/hooks", client=httpx.Client(transport=httpx.MockTransport(unreachable))
    )
    with pytest.raises(NotificationFailed, match="refused"):
        down.post(b"{}", {})
    down.close()


# --- the hooks: the engine's outcomes and the settings ----------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, "manual")


def told(world: World) -> list[tuple[str, dict[str, Any]]]:
    with world.uow() as uow:
        rows = uow.notifications.recent(limit=100, project_id=world.project)
    return [(n.event.value, n.payload) for n in reversed(rows)]


def heads(world: World) -> dict[str, str | None]:
    return {
        "local_head": world.store.head(world.project),
        "github_head": world.github.head("octo", "site", "trunk"),
    }


def test_a_conflict_is_told_when_it_opens_and_when_it_is_resolved_not_while_it_waits(world: World) -> None:
    assert told(world) == []  # the import is not news
    world.edit_locally({"a.txt": "local\n"})
    world.push_on_github({"a.txt": "github\n"})
    world.engine.reconcile(world.project)
    world.engine.reconcile(world.project)  # waits: not told again
    ((event, payload),) = told(world)
    assert event == "conflict.opened"
    assert payload["conflict"]["paths"] == ["a.txt"] and payload["heads"]["local"] == world.store.head(
        world.project
    )

    world.engine.resolve_conflict(world.project, strategy=ConflictStrategy.LOCAL_WINS, **heads(world))
    assert [event for event, _ in told(world)] == ["conflict.opened", "conflict.resolved"]
    assert told(world)[-1][1]["conflict"]["resolution"] == "local_wins"


def test_a_held_plan_is_told_once_per_plan(world: World) -> None:
    world.edit_locally({f"f{n:02}.txt": f"{n}\n" for n in range(20)})
    world.engine.reconcile(world.project)
    world.versions.create_version(
        world.project, message="delete most", writes=[], deletes=[f"f{n:02}.txt" for n in range(15)]
    )
    world.engine.reconcile(world.project)
    world.engine.reconcile(world.project)  # held again for the same heads
    ((event, payload),) = told(world)
    assert event == "plan.held" and payload["status"] == "held"
    assert payload["held"]["would"] == "push_direct" and "15 of the 22 files" in payload["held"]["why"]


def test_a_failed_sync_is_told_on_the_first_failure_only(world: World) -> None:
    strict = ReconcileService(
        world.uow, world.store, world.github, EngineSettings(max_file_size=64, warn_file_size=32)
    )
    world.versions.create_version(world.project, message="big", writes=[FileWrite("big.bin", b"x" * 100)])
    strict.reconcile(world.project)
    strict.reconcile(world.project)  # the retry fails the same way
    ((event, payload),) = told(world)
    assert event == "sync.failed" and payload["error"]["code"] == "file_too_large"


def test_disabling_sync_is_told_and_enabling_is_not(world: World) -> None:
    settings = LinkSettings(world.uow)
    settings.update(world.project, enabled=False, actor="ada")
    settings.update(world.project, enabled=False)  # no change, no news
    settings.update(world.project, enabled=True)
    assert told(world) == [("sync.disabled", {"actor": "ada"})]
