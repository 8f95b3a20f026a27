"""The delivery sweep: its pure plan (per GUID: failed, recovered, asked once, within retention) and the
service on the in-memory twins (tests/e2e/test_safety_nets_emulator.py proves it against the emulator)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.errors import RetryAt
from ghsync.domain.operations import WebhookDelivery
from ghsync.domain.redelivery import HookDelivery, failed_guids, plan_sweep
from ghsync.ports.github import counting_requests
from ghsync.services.delivery_sweep import ACTION_RECOVERED, ACTION_REQUESTED, DeliverySweep
from ghsync.services.linking import LinkService
from ghsync.services.projects import ProjectService

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_ids = iter(range(1, 10_000))


def attempt(
    guid: str,
    code: int,
    *,
    ago: timedelta = timedelta(hours=1),
    redelivery: bool = False,
    status: str | None = None,
) -> HookDelivery:
    return HookDelivery(
        id=next(_ids),
        guid=guid,
        delivered_at=NOW - ago,
        status=status or ("OK" if code < 300 else f"Invalid HTTP Response: {code}"),
        status_code=code,
        event="push",
        redelivery=redelivery,
    )


# ---- the plan -------------------------------------------------------------------------------------


def test_a_failed_delivery_is_redelivered_and_a_delivered_one_is_not() -> None:
    failed, fine = attempt("g1", 502), attempt("g2", 200)
    plan = plan_sweep([failed, fine], now=NOW)
    assert plan.redeliver == (failed,) and plan.recovered == ()


def test_status_not_ok_is_failure_whatever_the_code() -> None:
    timed_out = attempt("g1", 0, status="timed out")
    dropped = attempt("g2", 0, status="failed to connect to host")
    assert [a.guid for a in plan_sweep([timed_out, dropped], now=NOW).redeliver] == ["g1", "g2"]
    assert failed_guids([timed_out, attempt("g3", 0, status="pending")]) == ["g1"]  # in flight: not yet


def test_a_redelivery_that_succeeded_is_a_recovery() -> None:
    first, again = attempt("g1", 500, ago=timedelta(hours=2)), attempt("g1", 200, redelivery=True)
    plan = plan_sweep([again, first], now=NOW)
    assert plan.redeliver == () and plan.recovered == (again,)


def test_each_delivery_is_asked_for_once_even_when_the_redelivery_fails_too() -> None:
    first = attempt("g1", 500, ago=timedelta(hours=2))
    again = attempt("g1", 500, redelivery=True)
    assert plan_sweep([first, again], now=NOW).asked_already == ("g1",)
    # ... and once by this process while GitHub does not list the redelivery yet.
    assert plan_sweep([first], now=NOW, asked={"g1"}).asked_already == ("g1",)


def test_only_deliveries_inside_the_retention_window_are_asked_for() -> None:
    old, recent = (
        attempt("old", 502, ago=timedelta(days=3, minutes=1)),
        attempt("new", 502, ago=timedelta(days=2)),
    )
    plan = plan_sweep([old, recent], now=NOW)
    assert plan.redeliver == (recent,) and plan.expired == ("old",)
    assert plan_sweep([old], now=NOW, retention=timedelta(days=7)).redeliver == (old,)  # Enterprise Server


def test_a_delivery_our_receiver_processed_is_not_asked_for() -> None:
    plan = plan_sweep([attempt("g1", 0, status="timed out")], now=NOW, received={"g1"})
    assert plan.redeliver == () and plan.received == ("g1",)


def test_the_newest_attempt_is_the_one_redelivered() -> None:
    a = attempt("g1", 502, ago=timedelta(hours=3))
    b = attempt("g1", 502, ago=timedelta(hours=1))
    assert plan_sweep([b, a], now=NOW).redeliver == (b,)


# ---- the service on the twins -----------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[InMemoryGitHub]:
    with InMemoryGitHub(tmp_path / "github", now=lambda: NOW) as github:
        yield github


def sweep_of(hub: InMemoryGitHub, uow: MemoryUnitOfWorkFactory, clock: list[datetime]) -> DeliverySweep:
    return DeliverySweep(uow, hub, clock=lambda: clock[0])


def test_the_sweep_redelivers_failed_deliveries_once_and_records_recoveries(hub: InMemoryGitHub) -> None:
    uow = MemoryUnitOfWorkFactory()
    got: list[str] = []
    hub.hook_receiver = lambda d: got.append(d.guid) or 202  # type: ignore[func-returns-value]
    hub.record_hook_delivery("ok", "push", status_code=200, at=NOW - timedelta(minutes=30))
    hub.record_hook_delivery("lost", "push", status_code=503, at=NOW - timedelta(minutes=20))
    hub.record_hook_delivery("dropped", "push", status_code=0, at=NOW - timedelta(minutes=10))
    clock = [NOW]
    sweep = sweep_of(hub, uow, clock)

    with counting_requests() as count:
        first = sweep.sweep()
    assert sorted(first.requested) == ["dropped", "lost"] and sorted(got) == ["dropped", "lost"]
    assert count.total == 3  # one page of deliveries, two redelivery requests
    clock[0] = NOW + timedelta(minutes=5)
    second = sweep.sweep()
    assert second.requested == [] and sorted(second.recovered) == ["dropped", "lost"]
    clock[0] = NOW + timedelta(minutes=10)
    third = sweep.sweep()
    assert third.requested == [] and third.recovered == []  # each recovery is recorded once
    assert sorted(got) == ["dropped", "lost"]  # nothing was asked twice

    rows = [e for e in uow.database.tables.audit if e.project_id is None]  # App-wide: no repository
    actions = sorted((e.action, e.details["guid"]) for e in rows)
    assert actions == [
        (ACTION_RECOVERED, "dropped"),
        (ACTION_RECOVERED, "lost"),
        (ACTION_REQUESTED, "dropped"),
        (ACTION_REQUESTED, "lost"),
    ]


def test_a_fresh_process_does_not_ask_again_for_what_github_lists_as_redelivered(hub: InMemoryGitHub) -> None:
    uow = MemoryUnitOfWorkFactory()
    hub.hook_receiver = lambda d: 500  # the receiver is still down: the redelivery fails too
    hub.record_hook_delivery("lost", "push", status_code=500, at=NOW - timedelta(minutes=20))
    assert DeliverySweep(uow, hub, clock=lambda: NOW).sweep().requested == ["lost"]
    restarted = DeliverySweep(uow, hub, clock=lambda: NOW + timedelta(minutes=5)).sweep()
    assert restarted.requested == [] and restarted.asked_already == ["lost"]


def test_a_delivery_the_receiver_processed_is_left_alone(hub: InMemoryGitHub) -> None:
    uow = MemoryUnitOfWorkFactory()
    with uow() as u:  # GitHub timed out waiting for the answer, but the receiver recorded it
        u.deliveries.record(WebhookDelivery("slow", "push", "queued", expires_at=NOW + timedelta(days=7)))
        u.commit()
    hub.record_hook_delivery("slow", "push", status_code=0, at=NOW - timedelta(minutes=1))
    report = DeliverySweep(uow, hub, clock=lambda: NOW).sweep()
    assert report.requested == [] and report.received == ["slow"]


def test_rate_limited_redeliveries_wait_for_the_next_sweep(hub: InMemoryGitHub) -> None:
    uow = MemoryUnitOfWorkFactory()
    hub.record_hook_delivery("a", "push", status_code=500, at=NOW - timedelta(minutes=2))
    hub.record_hook_delivery("b", "push", status_code=500, at=NOW - timedelta(minutes=1))
    hub.inject_fault(
        RetryAt(NOW + timedelta(minutes=1), "secondary", kind="secondary"),
        operation="redeliver_hook_delivery",
    )
    sweep = DeliverySweep(uow, hub, clock=lambda: NOW)
    assert sweep.sweep().requested == []
    assert sorted(sweep.sweep().requested) == ["a", "b"]


def test_audit_rows_name_the_linked_project_of_the_repository(hub: InMemoryGitHub, tmp_path: Path) -> None:
    uow = MemoryUnitOfWorkFactory()
    installation = hub.add_installation("octo", selection="all")
    repo = hub.add_repo("octo", "site", files={"a": "a\n"})
    store = GitStore(tmp_path / "projects", max_file_size=1 << 20)
    projects = ProjectService(uow, store)
    box = SecretBox.from_setting(["k1:" + base64.b64encode(os.urandom(32)).decode()])
    project = projects.create_project("site")
    queue = InMemoryQueue()
    queue.register("reconcile", lambda args: None)
    LinkService(uow, store, projects, hub, box, queue).link(project.id, owner="octo", repo="site")
    hub.record_hook_delivery(
        "p1", "push", status_code=502, installation_id=installation, repository_id=repo.id
    )
    DeliverySweep(uow, hub, clock=lambda: NOW).sweep()
    with uow() as u:
        rows = u.audit.for_project(project.id, limit=10)
    assert [(r.action, r.details["guid"]) for r in rows if r.actor == "delivery_sweep"] == [
        (ACTION_REQUESTED, "p1")
    ]


def test_the_log_is_read_page_by_page_back_to_the_previous_sweep(hub: InMemoryGitHub) -> None:
    uow = MemoryUnitOfWorkFactory()
    for i in range(150):  # a day of failures: two pages of 100
        hub.record_hook_delivery(
            f"g{i}", "push", status_code=500, at=NOW - timedelta(hours=24) + timedelta(minutes=i)
        )
    clock = [NOW]
    sweep = DeliverySweep(uow, hub, clock=lambda: clock[0])
    with counting_requests() as count:
        report = sweep.sweep()
    assert len(report.requested) == 150 and count.total == 2 + 150  # two pages, then one ask each
    clock[0] = NOW + timedelta(hours=1)
    with counting_requests() as count:
        later = sweep.sweep()
    # 150 redelivery attempts since the previous sweep: two pages again, the second reaching back past it.
    assert count.total == 2 and later.requested == []
    assert len(later.recovered) == 150  # also those whose failed first attempt is on no page read
