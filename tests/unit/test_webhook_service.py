"""The webhook receiver as a use case, on the in-memory unit of work: dedup, record and request in one
commit, link updates with their audit rows, failures that a redelivery processes again, and the health view.
tests/integration/test_webhooks_api.py proves the same through the API with the emulator's deliveries."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.memory_uow import MemoryUnitOfWork, MemoryUnitOfWorkFactory
from ghsync.adapters.secrets import SecretBox
from ghsync.domain.errors import GitHubError, NotFound
from ghsync.domain.link import Link, Project, Tracking
from ghsync.domain.operations import ReconcileRequest
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.domain.webhooks import DeliveryHeaders
from ghsync.services.linking import webhook_secret_context
from ghsync.services.webhooks import (
    HOOK_SECRET_SECONDS,
    AppLogins,
    Delivery,
    HeldTells,
    Receipt,
    WebhookService,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(days=7)


class FlakyUnitOfWorkFactory(MemoryUnitOfWorkFactory):
    """The in-memory twin whose reconcile requests fail while `failures` > 0 (a database error); it
    counts the units of work opened."""

    failures = 0
    opened = 0

    def __call__(self) -> MemoryUnitOfWork:
        uow = super().__call__()
        factory = self
        factory.opened += 1
        original = uow.request_reconciles

        def request_reconciles(requests: Sequence[tuple[str, str]]) -> list[ReconcileRequest]:
            if factory.failures > 0 and requests:
                factory.failures -= 1
                raise RuntimeError("the database went away")
            return original(requests)

        uow.request_reconciles = request_reconciles  # type: ignore[method-assign]
        return uow


@dataclass
class World:
    uow: FlakyUnitOfWorkFactory
    told: list[str]
    service: WebhookService
    clock: list[datetime]

    def project(self, *, repository_id: int = 42, installation_id: int = 7, enabled: bool = True) -> str:
        project = Project(id=str(uuid.uuid4()), name="site", created_at=NOW)
        link = Link(
            project_id=project.id,
            owner="octo",
            repo="site",
            repository_id=repository_id,
            installation_id=installation_id,
            default_branch="trunk",
            protected=False,
            mode=SyncMode.DIRECT_COMMIT,
            strategy=ConflictStrategy.MANUAL,
            enabled=enabled,
        )
        with self.uow() as uow:
            uow.projects.add(project)
            uow.projects.link(project.id, link, webhook_secret="sealed", tracking=Tracking())
            uow.commit()
        return project.id

    def link(self, project_id: str) -> Link:
        with self.uow() as uow:
            project = uow.projects.get(project_id)
        assert project is not None and project.link is not None
        return project.link

    def pending(self, project_id: str) -> list[str]:
        with self.uow() as uow:
            return [r.reason for r in uow.requests.pending(project_id)]

    def status(self, delivery_id: str) -> str | None:
        with self.uow() as uow:
            delivery = uow.deliveries.get(delivery_id)
        return delivery.status if delivery else None

    def audit(self, project_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        with self.uow() as uow:
            return [(e.actor, e.action, e.details) for e in uow.audit.for_project(project_id)]


@pytest.fixture
def world() -> Iterator[World]:
    told: list[str] = []
    uow = FlakyUnitOfWorkFactory(notify=told.append)
    clock = [NOW]

    def now() -> datetime:
        clock[0] += timedelta(seconds=1)  # every delivery a second later: a strict order
        return clock[0]

    service = WebhookService(uow, delivery_ttl=TTL, own_logins=frozenset({"ghsync[bot]"}), clock=now)
    yield World(uow, told, service, clock)


def _headers(event: str, delivery_id: str | None = None) -> DeliveryHeaders:
    return DeliveryHeaders(event=event, delivery_id=delivery_id or str(uuid.uuid4()))


def _push(ref: str = "refs/heads/trunk", repository_id: int = 42) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "a" * 40,
        "after": "b" * 40,
        "repository": {
            "id": repository_id,
            "name": "site",
            "default_branch": "trunk",
            "owner": {"login": "octo"},
        },
        "installation": {"id": 7},
        "sender": {"login": "octo", "type": "User"},
    }


def _repository(action: str, **repository: Any) -> dict[str, Any]:
    base = {"id": 42, "name": "site", "owner": {"login": "octo"}, "default_branch": "trunk"}
    return {"action": action, "repository": base | repository, "installation": {"id": 7}}


# --- push, dedup, durability ---------------------------------------------------------------------------


def _receipt(result: Receipt | Exception) -> Receipt:
    assert isinstance(result, Receipt), result
    return result


def test_a_push_to_the_default_branch_records_the_delivery_and_requests_a_reconcile(world: World) -> None:
    pid = world.project()

    receipt = world.service.receive(_headers("push", "d1"), _push())

    assert receipt.outcome == "queued" and len(receipt.request_ids) == 1
    assert world.pending(pid) == ["webhook:push"]
    assert world.told == [pid]  # the queue heard of it after the commit
    with world.uow() as uow:
        delivery = uow.deliveries.get("d1")
    assert delivery is not None
    assert (delivery.status, delivery.event, delivery.project_id, delivery.installation_id) == (
        "queued",
        "push",
        pid,
        7,
    )
    assert delivery.received_at is not None and delivery.expires_at == delivery.received_at + TTL


def test_a_duplicate_delivery_is_acknowledged_and_changes_nothing(world: World) -> None:
    pid = world.project()
    world.service.receive(_headers("push", "d1"), _push())

    again = world.service.receive(_headers("push", "d1"), _push())

    assert again.outcome == "duplicate" and again.request_ids == ()
    assert world.pending(pid) == ["webhook:push"]  # still one request
    assert world.told == [pid]
    assert world.status("d1") == "queued"


def test_a_failed_processing_records_nothing_but_the_failure_and_a_redelivery_is_processed(
    world: World,
) -> None:
    pid = world.project()
    world.uow.failures = 1

    with pytest.raises(RuntimeError, match="database went away"):
        world.service.receive(_headers("push", "d1"), _push())

    # The delivery and its request are one commit: neither was kept, only the failure.
    assert world.pending(pid) == [] and world.told == []
    assert world.status("d1") == "failed"
    failed = world.service.health(pid)  # the App's delivery is filed under the project it concerned
    assert not failed.healthy and [d.delivery_id for d in failed.recent_failures] == ["d1"]

    redelivered = world.service.receive(_headers("push", "d1"), _push())  # GitHub reuses the id

    assert redelivered.outcome == "queued"
    assert world.pending(pid) == ["webhook:push"] and world.told == [pid]
    assert world.status("d1") == "queued"
    assert world.service.health(pid).healthy


@pytest.mark.parametrize(
    "ref",
    ["refs/heads/feature", "refs/tags/v1.0", "refs/heads/ghsync/whatever"],
)
def test_pushes_to_other_branches_and_tags_are_recorded_and_ignored(world: World, ref: str) -> None:
    pid = world.project()

    receipt = world.service.receive(_headers("push", "d1"), _push(ref))

    assert receipt.outcome == "ignored" and receipt.request_ids == ()
    assert world.status("d1") == "ignored"
    assert world.pending(pid) == [] and world.told == []


def test_every_project_linked_to_the_repository_is_reconciled(world: World) -> None:
    first, second = world.project(), world.project()
    other = world.project(repository_id=43)

    receipt = world.service.receive(_headers("push"), _push())

    assert sorted(p.project_id for p in receipt.projects) == sorted([first, second])
    assert len(receipt.request_ids) == 2
    assert world.pending(first) == world.pending(second) == ["webhook:push"]
    assert world.pending(other) == []


def test_a_delivery_about_no_linked_repository_is_recorded_and_ignored(world: World) -> None:
    world.project()
    receipt = world.service.receive(_headers("push", "d1"), _push(repository_id=99))
    assert receipt.outcome == "ignored" and receipt.projects == ()
    assert world.status("d1") == "ignored"


def test_unknown_events_are_recorded_and_ignored(world: World) -> None:
    pid = world.project()
    payload = {"action": "created", "repository": {"id": 42}, "starred_at": "2026-12-01T09:00:00Z"}
    receipt = world.service.receive(_headers("star", "d1"), payload)
    assert receipt.outcome == "ignored"
    assert world.status("d1") == "ignored" and world.pending(pid) == []


def test_a_merge_of_our_pull_request_requests_a_reconcile(world: World) -> None:
    pid = world.project()
    payload = {
        "action": "closed",
        "repository": {"id": 42},
        "pull_request": {"merged": True, "head": {"ref": f"ghsync/{pid}", "repo": {"id": 42}}},
    }
    assert world.service.receive(_headers("pull_request"), payload).outcome == "queued"
    assert world.pending(pid) == ["webhook:pull_request"]


def _synchronize(pid: str, sender: str) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "repository": {"id": 42},
        "pull_request": {"head": {"ref": f"ghsync/{pid}", "repo": {"id": 42}}},
        "sender": {"login": sender, "type": "Bot" if sender.endswith("[bot]") else "User"},
    }


def _fault_used_up(github: InMemoryGitHub) -> bool:
    """Whether the fault injected for `app_identity` was used up by an earlier read: then this probe's
    read succeeds (a fault still pending fails it, and this probe uses it up)."""
    try:
        github.app_identity()
    except GitHubError:
        return False
    return True


def test_our_own_push_to_our_pull_request_wakes_nothing_once_the_apps_login_is_known(world: World) -> None:
    pid = world.project()
    github = InMemoryGitHub()
    logins = AppLogins(github)
    service = WebhookService(world.uow, delivery_ttl=TTL, own_logins=logins)
    logins.read()  # what the background thread does
    github.inject_fault(operation="app_identity")  # a second read would fail (and use up the fault)

    ours = service.receive(_headers("pull_request"), _synchronize(pid, "ghsync-fake[bot]"))
    theirs = service.receive(_headers("pull_request"), _synchronize(pid, "grace"))

    assert (ours.outcome, theirs.outcome) == ("ignored", "queued")
    assert world.pending(pid) == ["webhook:pull_request"]
    assert not _fault_used_up(github)  # the fault is still there: the login was read once


def _join_login_reads() -> None:
    for thread in threading.enumerate():
        if thread.name == "ghsync-app-login":
            thread.join(10)


def test_the_apps_login_is_read_off_the_request_path_and_tried_again_after_a_failure() -> None:
    now = [0.0]
    github = InMemoryGitHub()
    github.inject_fault(operation="app_identity")  # GitHub is unreachable for the first read
    logins = AppLogins(github, clock=lambda: now[0])

    assert logins() == frozenset()  # unknown yet: the read runs in a background thread
    _join_login_reads()
    assert logins() == frozenset()  # it failed...
    assert _fault_used_up(github)  # ...having used up the fault: it was read once
    github.inject_fault(operation="app_identity")
    assert logins() == frozenset()
    _join_login_reads()
    assert not _fault_used_up(github)  # no new try within a minute: the fault was still there
    now[0] = AppLogins.RETRY_SECONDS + 1
    logins()
    _join_login_reads()
    assert logins() == {"ghsync-fake[bot]"}


# --- the repository hook of one project ---------------------------------------------------------------


def test_a_repository_hook_delivery_concerns_its_project_only(world: World) -> None:
    pid, other = world.project(), world.project()
    receipt = world.service.receive(_headers("push"), _push(), project_id=pid.upper())  # any UUID spelling
    assert [p.project_id for p in receipt.projects] == [pid]
    assert world.pending(pid) == ["webhook:push"] and world.pending(other) == []


@pytest.mark.parametrize("project_id", [str(uuid.UUID(int=1)), "not-a-uuid"])
def test_an_unknown_project_is_refused_and_nothing_is_recorded(world: World, project_id: str) -> None:
    with pytest.raises(NotFound):
        world.service.receive(_headers("push", "d1"), _push(), project_id=project_id)
    assert world.status("d1") is None


def test_a_ping_is_processed_and_marks_the_hook_healthy(world: World) -> None:
    pid = world.project()
    before = world.service.health(pid)
    assert not before.healthy and before.last_ping is None and before.last_delivery is None

    receipt = world.service.receive(
        _headers("ping", "p1"), {"zen": "Avoid administrative distraction.", "hook_id": 9}, project_id=pid
    )

    assert receipt.outcome == "processed" and receipt.request_ids == ()
    health = world.service.health(pid)
    assert health.healthy and health.sync_enabled
    assert health.last_ping is not None and health.last_ping.delivery_id == "p1"
    assert health.last_delivery == health.last_ping and health.recent_failures == ()


def test_health_shows_the_last_delivery_and_recent_failures(world: World) -> None:
    pid = world.project()
    world.service.receive(_headers("ping", "p1"), {"zen": "z", "hook_id": 9}, project_id=pid)
    world.uow.failures = 1
    with pytest.raises(RuntimeError):
        world.service.receive(_headers("push", "d1"), _push(), project_id=pid)

    failed = world.service.health(pid)
    assert not failed.healthy
    assert [d.delivery_id for d in failed.recent_failures] == ["d1"]
    assert failed.last_delivery is not None and failed.last_delivery.delivery_id == "d1"

    world.service.receive(_headers("push", "d2"), _push(), project_id=pid)
    recovered = world.service.health(pid)
    assert recovered.healthy and recovered.last_delivery is not None
    assert recovered.last_delivery.delivery_id == "d2"
    assert [d.delivery_id for d in recovered.recent_failures] == ["d1"]  # still listed: it was recent
    assert recovered.last_ping is not None and recovered.last_ping.delivery_id == "p1"

    with pytest.raises(NotFound):
        world.service.health(str(uuid.UUID(int=1)))


# --- link updates --------------------------------------------------------------------------------------


def test_a_renamed_or_transferred_repository_is_followed_with_an_audit_row(world: World) -> None:
    pid = world.project()

    receipt = world.service.receive(_headers("repository", "r1"), _repository("renamed", name="web"))
    assert receipt.outcome == "queued"
    assert (world.link(pid).owner, world.link(pid).repo) == ("octo", "web")

    world.service.receive(
        _headers("repository", "r2"), _repository("transferred", name="web", owner={"login": "acme"})
    )
    assert (world.link(pid).owner, world.link(pid).repo) == ("acme", "web")

    audit = world.audit(pid)
    assert [(actor, action) for actor, action, _ in audit] == [("github", "github.link_followed")] * 2
    assert audit[0][2]["before"] == {"owner": "octo", "repo": "web"}
    assert audit[0][2]["after"] == {"owner": "acme", "repo": "web"} and audit[0][2]["delivery_id"] == "r2"
    assert world.pending(pid) == ["webhook:repository", "webhook:repository"]


def test_a_default_branch_change_is_stored_and_reconciled(world: World) -> None:
    pid = world.project()
    payload = _repository("edited", default_branch="main") | {
        "changes": {"default_branch": {"from": "trunk"}}
    }

    world.service.receive(_headers("repository"), payload)

    assert world.link(pid).default_branch == "main"
    assert world.audit(pid)[0][1:] == ("github.default_branch_changed", world.audit(pid)[0][2])
    assert world.audit(pid)[0][2]["before"] == "trunk" and world.audit(pid)[0][2]["after"] == "main"
    assert world.pending(pid) == ["webhook:repository"]
    # ... and a push to the new default branch is now a push to the default branch.
    assert (
        world.service.receive(_headers("push"), _push("refs/heads/main") | {"repository": {"id": 42}}).outcome
        == "queued"
    )


def test_an_archived_repository_pauses_sync_until_it_is_unarchived(world: World) -> None:
    pid = world.project()

    archived = world.service.receive(_headers("repository", "a1"), _repository("archived"))

    assert archived.outcome == "processed" and archived.request_ids == ()
    assert not world.link(pid).enabled
    health = world.service.health(pid)
    assert not health.sync_enabled and health.sync_disabled_by == "repository_archived"
    assert world.audit(pid)[0][:2] == ("github", "github.sync_disabled")
    assert world.audit(pid)[0][2]["cause"] == "repository_archived"
    assert world.service.receive(_headers("push"), _push()).outcome == "ignored"  # paused
    assert world.pending(pid) == []

    unarchived = world.service.receive(_headers("repository", "a2"), _repository("unarchived"))

    assert unarchived.outcome == "queued" and world.link(pid).enabled
    assert world.audit(pid)[0][1] == "github.sync_enabled"
    assert world.service.health(pid).sync_disabled_by is None
    assert world.pending(pid) == ["webhook:repository"]


def test_an_installation_deleted_or_suspended_disables_every_project_of_it(world: World) -> None:
    first, second = world.project(), world.project(repository_id=43)
    elsewhere = world.project(repository_id=44, installation_id=8)

    world.service.receive(_headers("installation"), {"action": "suspend", "installation": {"id": 7}})

    assert not world.link(first).enabled and not world.link(second).enabled
    assert world.link(elsewhere).enabled
    assert world.service.health(first).sync_disabled_by == "installation_suspended"

    world.service.receive(_headers("installation"), {"action": "unsuspend", "installation": {"id": 7}})

    assert world.link(first).enabled and world.link(second).enabled
    assert world.pending(first) == world.pending(second) == ["webhook:installation"]

    world.service.receive(_headers("installation"), {"action": "deleted", "installation": {"id": 7}})
    assert not world.link(first).enabled
    assert world.service.health(first).sync_disabled_by == "installation_deleted"


def test_a_repository_removed_from_the_installation_disables_sync_until_it_is_added_back(
    world: World,
) -> None:
    pid, other = world.project(), world.project(repository_id=43)

    def change(action: str) -> None:
        payload = {
            "action": action,
            "installation": {"id": 7},
            f"repositories_{action}": [{"id": 42, "full_name": "octo/site"}],
        }
        world.service.receive(_headers("installation_repositories"), payload)

    change("removed")
    assert not world.link(pid).enabled and world.link(other).enabled
    assert world.service.health(pid).sync_disabled_by == "repository_removed"

    change("added")
    assert world.link(pid).enabled and world.pending(pid) == ["webhook:installation_repositories"]


def test_access_coming_back_does_not_undo_a_persons_choice(world: World) -> None:
    pid = world.project(enabled=False)  # turned off by a person, not by a delivery

    receipt = world.service.receive(
        _headers("installation"), {"action": "unsuspend", "installation": {"id": 7}}
    )

    assert receipt.outcome == "ignored"
    assert not world.link(pid).enabled and world.audit(pid) == [] and world.pending(pid) == []


def test_access_coming_back_for_another_cause_does_not_re_enable(world: World) -> None:
    pid = world.project()
    world.service.receive(_headers("repository"), _repository("archived"))

    world.service.receive(_headers("installation"), {"action": "unsuspend", "installation": {"id": 7}})

    assert not world.link(pid).enabled  # still archived
    assert world.service.health(pid).sync_disabled_by == "repository_archived"


def test_a_link_change_and_its_delivery_commit_together(world: World) -> None:
    pid = world.project()
    world.uow.failures = 1  # the rename's reconcile request fails after the link was saved

    with pytest.raises(RuntimeError):
        world.service.receive(_headers("repository", "r1"), _repository("renamed", name="web"))

    assert world.link(pid).repo == "site" and world.audit(pid) == []  # rolled back with it
    assert world.status("r1") == "failed"
    world.service.receive(_headers("repository", "r1"), _repository("renamed", name="web"))
    assert world.link(pid).repo == "web"


def test_a_project_unlinked_meanwhile_is_not_touched(world: World) -> None:
    pid = world.project()
    with world.uow() as uow:
        assert uow.projects.unlink(pid)
        uow.commit()
    receipt = world.service.receive(_headers("push", "d1"), _push(), project_id=pid)
    assert receipt.outcome == "ignored" and world.pending(pid) == []


# --- concurrent deliveries received together (group commit) --------------------------------------------


def test_concurrent_deliveries_are_received_in_one_unit_of_work(world: World) -> None:
    first, second = world.project(), world.project()
    other = world.project(repository_id=43)
    batch = [
        Delivery(_headers("push", "d1"), _push()),
        Delivery(_headers("push", "d2"), _push(repository_id=43)),
        Delivery(_headers("push", "d1"), _push()),  # GitHub sent d1 again meanwhile
        Delivery(_headers("push", "d3"), _push("refs/heads/feature")),
        Delivery(_headers("ping", "d4"), {"zen": "Keep it logically awesome.", "hook_id": 1}),
        Delivery(_headers("push", "d5"), _push(), project_id=other),  # other's repository hook
    ]
    opened = world.uow.opened

    results = [_receipt(r) for r in world.service.receive_many(batch)]

    assert world.uow.opened == opened + 1  # one unit of work, one commit for all six
    assert [(r.delivery_id, r.outcome) for r in results] == [
        ("d1", "queued"),
        ("d2", "queued"),
        ("d1", "duplicate"),
        ("d3", "ignored"),
        ("d4", "processed"),  # a ping is handled, whichever projects it names
        ("d5", "ignored"),  # other's hook, but the push names repository 42
    ]
    assert [p.project_id for p in results[0].projects] == sorted([first, second])
    assert len(set(results[0].request_ids + results[1].request_ids)) == 3
    assert world.pending(first) == world.pending(second) == world.pending(other) == ["webhook:push"]
    assert sorted(world.told) == sorted([first, second, other])  # once per project, after the commit
    assert [world.status(d) for d in ("d1", "d2", "d3", "d4", "d5")] == [
        "queued",
        "queued",
        "ignored",
        "processed",
        "ignored",
    ]
    again = world.service.receive_many([Delivery(_headers("push", "d2"), _push(repository_id=43))])
    assert _receipt(again[0]).outcome == "duplicate" and world.pending(other) == ["webhook:push"]


def test_a_batch_that_fails_is_received_again_one_delivery_at_a_time(world: World) -> None:
    pid = world.project()
    world.uow.failures = 1  # the shared unit of work fails; each delivery alone succeeds
    batch = [Delivery(_headers("push", f"d{n}"), _push()) for n in range(3)]

    results = [_receipt(r) for r in world.service.receive_many(batch)]

    assert [r.outcome for r in results] == ["queued"] * 3
    assert world.pending(pid) == ["webhook:push"] * 3
    assert [world.status(f"d{n}") for n in range(3)] == ["queued"] * 3


def test_the_error_of_one_delivery_reaches_only_that_delivery(world: World) -> None:
    pid = world.project()
    world.uow.failures = 2  # the shared unit of work fails, then the first delivery alone fails too
    batch = [Delivery(_headers("push", f"d{n}"), _push()) for n in range(3)]

    results = world.service.receive_many(batch)

    assert isinstance(results[0], RuntimeError)
    assert [_receipt(r).outcome for r in results[1:]] == ["queued", "queued"]
    assert [world.status(f"d{n}") for n in range(3)] == ["failed", "queued", "queued"]
    assert world.pending(pid) == ["webhook:push"] * 2
    # The failed one is processed when GitHub redelivers it.
    redelivered = world.service.receive_many([Delivery(_headers("push", "d0"), _push())])
    assert _receipt(redelivered[0]).outcome == "queued" and world.pending(pid) == ["webhook:push"] * 3


def test_link_changes_in_a_batch_are_applied_one_by_one_beside_the_rest(world: World) -> None:
    pid = world.project()
    opened = world.uow.opened
    batch = [
        Delivery(_headers("push", "d1"), _push()),
        Delivery(_headers("repository", "d2"), _repository("renamed", name="website")),
        Delivery(_headers("push", "d3"), _push()),
    ]

    results = [_receipt(r) for r in world.service.receive_many(batch)]

    assert [r.outcome for r in results] == ["queued", "queued", "queued"]
    assert world.uow.opened == opened + 2  # the pushes together, the rename alone
    assert world.link(pid).repo == "website"
    assert [action for _, action, _ in world.audit(pid)] == ["github.link_followed"]
    assert world.pending(pid) == ["webhook:push"] * 2 + ["webhook:repository"]


def test_a_repository_hook_of_a_project_gone_meanwhile_is_refused_alone(world: World) -> None:
    pid = world.project()
    gone = str(uuid.uuid4())
    batch = [
        Delivery(_headers("push", "d1"), _push(), project_id=gone),
        Delivery(_headers("push", "d2"), _push(), project_id="not-a-uuid"),
        Delivery(_headers("push", "d3"), _push(), project_id=pid),
    ]

    results = world.service.receive_many(batch)

    assert isinstance(results[0], NotFound) and isinstance(results[1], NotFound)
    assert _receipt(results[2]).outcome == "queued"
    assert world.status("d1") is None and world.status("d2") is None  # nothing recorded for them
    assert world.status("d3") == "queued"


def test_a_repository_hooks_secret_is_opened_once_a_minute_and_forgotten_with_its_link() -> None:
    box = SecretBox([("k1", bytes(32))])
    uow = FlakyUnitOfWorkFactory()
    seconds = [0.0]
    service = WebhookService(uow, delivery_ttl=TTL, secrets=box, monotonic=lambda: seconds[0])
    world = World(uow, [], service, [NOW])
    pid = world.project()
    with uow() as work:
        work.projects.set_webhook_secret(
            pid, box.encrypt("hook-secret-5e1f0c93d2", context=webhook_secret_context(pid))
        )
        work.commit()

    assert service.remembered_hook_secret(pid) is None  # never opened: the route reads it
    opened = uow.opened
    assert service.hook_secret(pid) == "hook-secret-5e1f0c93d2"
    assert uow.opened == opened + 1
    seconds[0] = HOOK_SECRET_SECONDS - 1
    assert service.remembered_hook_secret(pid) == "hook-secret-5e1f0c93d2"
    assert uow.opened == opened + 1  # no read
    seconds[0] = HOOK_SECRET_SECONDS
    assert service.remembered_hook_secret(pid) is None  # a minute old: read again

    service.hook_secret(pid)
    with uow() as work:
        work.projects.unlink(pid)
        work.commit()
    with pytest.raises(NotFound):
        service.hook_secret(pid)  # what the route asks when a remembered secret fails a signature
    assert service.remembered_hook_secret(pid) is None


def test_held_tells_wait_for_release_on_their_thread_only_and_a_failure_loses_none_of_the_others() -> None:
    told: list[str] = []

    def notify(project_id: str) -> None:
        if project_id == "broken":
            raise RuntimeError("the queue is away")
        told.append(project_id)

    tells = HeldTells(notify)
    tells("a")
    assert told == ["a"]  # not held: straight through
    with tells.holding():
        tells("b")
        tells("broken")
        tells("b")  # once is enough
        other = threading.Thread(target=tells, args=("c",))
        other.start()
        other.join()
        assert told == ["a", "c"]  # another thread's tell is not held
    tells("d")  # after the block: straight through again
    assert told == ["a", "c", "d"]
    tells.release()
    assert told == ["a", "c", "d", "b"]  # "broken" was logged; the outbox relay tells it later
    tells.release()
    assert told == ["a", "c", "d", "b"]  # released once


def test_a_batch_tells_the_queue_after_its_deliveries_are_recorded(world: World) -> None:
    tells = HeldTells(world.told.append)
    service = WebhookService(
        MemoryUnitOfWorkFactory(world.uow.database, notify=tells), delivery_ttl=TTL, clock=lambda: NOW
    )
    pid = world.project()
    with tells.holding():
        [receipt] = service.receive_many([Delivery(_headers("push"), _push())])
        assert _receipt(receipt).outcome == "queued" and world.told == []
    tells.release()
    assert world.told == [pid]
