"""SyncTriggers on the in-memory unit of work and queue: triggers, request lookups, the admin views."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.domain.errors import Conflict, InvalidInput, NotFound
from ghsync.domain.link import Link, Project, Tracking
from ghsync.domain.operations import ConflictRecord, SyncOperation
from ghsync.domain.sync import ConflictStrategy, SyncMode, SyncState
from ghsync.ports.jobs import RECONCILE_TASK
from ghsync.services.triggers import SyncTriggers

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.queue = InMemoryQueue()
        self.reconciled: list[str] = []
        self.queue.register(RECONCILE_TASK, lambda args: self.reconciled.append(str(args["project_id"])))
        self.uow = MemoryUnitOfWorkFactory(notify=self.queue.request_reconcile)
        self.triggers = SyncTriggers(self.uow, self.queue, clock=lambda: NOW)

    def project(self, *, linked: bool = True, enabled: bool = True) -> str:
        project = Project(id=str(uuid.uuid4()), name="site", created_at=NOW)
        with self.uow() as uow:
            uow.projects.add(project)
            if linked:
                link = Link(
                    project_id=project.id,
                    owner="octo",
                    repo="site",
                    repository_id=42,
                    installation_id=7,
                    default_branch="trunk",
                    protected=False,
                    mode=SyncMode.DIRECT_COMMIT,
                    strategy=ConflictStrategy.MANUAL,
                    enabled=enabled,
                )
                uow.projects.link(project.id, link, webhook_secret="sealed", tracking=Tracking())
            uow.commit()
        return project.id

    def operation(self, project_id: str, status: str = "success", **fields: object) -> str:
        with self.uow() as uow:
            operation_id = uow.operations.add(
                replace(
                    SyncOperation(project_id, "push_direct", "success", "to_github"), status=status, **fields
                )  # type: ignore[arg-type]
            )
            uow.commit()
        return operation_id

    def serve(self, project_id: str) -> str:
        """What a reconcile does with the requests it read: one operation serves them all."""
        operation_id = self.operation(project_id)
        with self.uow() as uow:
            pending = [r.id for r in uow.requests.pending(project_id)]
            uow.requests.mark_served(project_id, pending, operation_id)
            uow.commit()
        return operation_id


@pytest.fixture
def world() -> World:
    return World()


def test_a_trigger_is_an_outbox_row_the_queue_hears_of_after_the_commit(world: World) -> None:
    pid = world.project()
    request = world.triggers.trigger(pid, actor="ada")
    assert request.project_id == pid and request.reason == "api_trigger"
    with world.uow() as uow:
        assert [r.id for r in uow.requests.pending(pid)] == [request.id]
        assert [(a.actor, a.action) for a in uow.audit.for_project(pid)] == [("ada", "github.sync_trigger")]
    assert world.queue.run_until_idle() == 1
    assert world.reconciled == [pid]


def test_triggers_are_refused_for_unknown_unlinked_and_disabled_projects(world: World) -> None:
    with pytest.raises(NotFound):
        world.triggers.trigger(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        world.triggers.trigger("not-a-uuid")
    with pytest.raises(Conflict) as unlinked:
        world.triggers.trigger(world.project(linked=False))
    assert unlinked.value.code == "not_linked"
    with pytest.raises(Conflict) as disabled:
        world.triggers.trigger(world.project(enabled=False))
    assert disabled.value.code == "sync_disabled"
    with world.uow() as uow:
        assert uow.requests.pending_projects() == []  # a refused trigger wrote nothing
    assert world.queue.run_until_idle() == 0


def test_coalesced_requests_name_the_one_operation_that_served_them(world: World) -> None:
    pid = world.project()
    first, second = world.triggers.trigger(pid), world.triggers.trigger(pid)
    pending = world.triggers.request_status(pid, first.id)
    assert (pending.state, pending.operation) == ("pending", None)

    operation_id = world.serve(pid)
    later = world.triggers.trigger(pid)
    for request in (first, second):
        served = world.triggers.request_status(pid, request.id)
        assert served.state == "served"
        assert served.operation is not None and served.operation.id == operation_id
    assert world.triggers.request_status(pid, later.id).state == "pending"


def test_a_request_is_found_only_under_its_own_project(world: World) -> None:
    pid, other = world.project(), world.project()
    request = world.triggers.trigger(pid)
    for project_id, request_id in (
        (other, request.id),
        (pid, str(uuid.uuid4())),
        (pid, "nonsense"),
        (str(uuid.uuid4()), request.id),
    ):
        with pytest.raises(NotFound):
            world.triggers.request_status(project_id, request_id)


def test_operations_are_paged_newest_first_and_filtered(world: World) -> None:
    pid, other = world.project(), world.project()
    ids = [
        world.operation(
            pid if n % 2 else other,
            "failed" if n == 3 else "success",
            created_at=NOW + timedelta(seconds=n),
        )
        for n in range(5)
    ]
    seen, cursor = [], None
    while True:
        page = world.triggers.operations(limit=2, cursor=cursor)
        seen += [op.id for op in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert [op.id for op in world.triggers.operations(project_id=pid).items] == [ids[3], ids[1]]
    assert [op.id for op in world.triggers.operations(status="failed").items] == [ids[3]]
    assert world.triggers.operations(operation_type="link").items == []
    for bad in ({"status": "nope"}, {"cursor": "garbage"}, {"limit": 0}, {"limit": 201}):
        with pytest.raises(InvalidInput):
            world.triggers.operations(**bad)  # type: ignore[arg-type]


def test_the_overview_counts_projects_by_the_state_their_status_shows(world: World) -> None:
    world.project(linked=False)  # disabled
    synced = world.project()
    world.operation(synced)  # in_sync
    failed = world.project()
    world.operation(failed, "failed", created_at=NOW - timedelta(days=2))  # failed, outside the window
    conflicted = world.project()
    with world.uow() as uow:
        uow.conflicts.add(ConflictRecord(project_id=conflicted))
        uow.commit()
    queued = world.project()
    world.triggers.trigger(queued)  # pending
    held = world.project()
    world.operation(held, "held")  # a plan held for confirmation

    seen = world.triggers.overview()
    assert (seen.projects_total, seen.projects_linked) == (6, 5)
    assert set(seen.projects_by_state) == {state.value for state in SyncState}  # zeros included
    assert {state: n for state, n in seen.projects_by_state.items() if n} == {
        "in_sync": 1,
        "pending": 1,
        "conflict": 1,
        "failed": 1,
        "held": 1,
        "disabled": 1,
    }
    assert seen.operations_by_status["success"] == 1 and seen.operations_by_status["failed"] == 0
    assert seen.operations_by_status["held"] == 1
    assert seen.operations_since == NOW - timedelta(hours=24)
    assert seen.pending_requests == 1
    assert seen.jobs["queued"] == 1


def test_retry_failed_requests_exactly_the_linked_projects_whose_last_operation_failed(world: World) -> None:
    failed = world.project()
    world.operation(failed, "failed")
    recovered = world.project()
    world.operation(recovered, "failed", created_at=NOW)
    world.operation(recovered, "success", created_at=NOW + timedelta(seconds=1))
    disabled = world.project(enabled=False)
    world.operation(disabled, "failed")
    world.project()  # never synced
    held = world.project()
    world.operation(held, "held")  # a plan waits for confirmation: not a failure to retry

    requests = world.triggers.retry_failed()
    assert [r.project_id for r in requests] == [failed]
    assert requests[0].reason == "retry_failed"
    world.queue.run_until_idle()
    assert world.reconciled == [failed]
