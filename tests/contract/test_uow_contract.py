"""The unit-of-work contract: every adapter (SQLAlchemy on SQLite and PostgreSQL, in memory) behaves alike.

The services' unit tests run on the in-memory adapter; this suite is what makes that honest.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.domain.link import Link, OpenPullRequest, Project, SyncPair, Tracking
from ghsync.domain.models import Author, VersionInfo
from ghsync.domain.operations import AuditEntry, ConflictRecord, SyncOperation, WebhookDelivery
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.ports.uow import UnitOfWork

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Harness:
    """A unit-of-work factory on one adapter, and what it told the queue."""

    def __init__(self, make: Callable[[Callable[[str], None]], Callable[[], UnitOfWork]]) -> None:
        self.told: list[str] = []
        self.factory = make(self.told.append)

    def __call__(self) -> UnitOfWork:
        return self.factory()


@pytest.fixture(params=["sql-sqlite", pytest.param("sql-postgresql", marks=pytest.mark.postgres), "memory"])
def uow(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        yield Harness(lambda notify: MemoryUnitOfWorkFactory(notify=notify))
        return
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sql-sqlite" else "postgres_url"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    try:
        yield Harness(lambda notify: SqlUnitOfWorkFactory(engine, notify))
    finally:
        engine.dispose()


def _project(name: str = "site", at: datetime = NOW) -> Project:
    return Project(id=str(uuid.uuid4()), name=name, created_at=at)


def _link(project_id: str, **changes: object) -> Link:
    link = Link(
        project_id=project_id,
        owner="octo",
        repo="site",
        repository_id=42,
        installation_id=7,
        default_branch="trunk",
        protected=False,
        mode=SyncMode.DIRECT_COMMIT,
        strategy=ConflictStrategy.MANUAL,
        enabled=True,
    )
    return replace(link, **changes)  # type: ignore[arg-type]


def _version(number: int, sha: str = "a") -> VersionInfo:
    return VersionInfo(
        id=str(uuid.uuid4()),
        number=number,
        commit_sha=(sha * 40)[:40],
        tree_sha=("t" + sha * 39)[:40].replace("t", "f"),
        message=f"v{number}",
        source="local",
        author=Author("Ada", "ada@example.com"),
        created_at=NOW + timedelta(seconds=number),
    )


def _added(uow: Harness, *projects: Project) -> None:
    with uow() as work:
        for project in projects:
            work.projects.add(project)
        work.commit()


# --- projects and links -----------------------------------------------------------------------------


def test_projects_are_added_read_and_paged_newest_first(uow: Harness) -> None:
    older, newer = _project("old", NOW), _project("new", NOW + timedelta(seconds=1))
    _added(uow, older, newer)
    with uow() as work:
        assert work.projects.get(older.id) == older
        assert work.projects.get(str(uuid.uuid4())) is None
        assert work.projects.get("not-a-uuid") is None
        assert [p.id for p in work.projects.page(limit=10)] == [newer.id, older.id]
        first = work.projects.page(limit=1)
        assert [p.id for p in first] == [newer.id]
        rest = work.projects.page(limit=10, after=(first[0].created_at, first[0].id))
        assert [p.id for p in rest] == [older.id]
        assert sorted(work.projects.ids()) == sorted([older.id, newer.id])


def test_link_is_a_compare_and_set_and_unlink_clears_everything(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    tracking = Tracking(last_remote_main_sha="c" * 40)
    with uow() as work:
        assert work.projects.link(project.id, _link(project.id), webhook_secret="sealed", tracking=tracking)
        assert not work.projects.link(
            project.id, _link(project.id), webhook_secret="other", tracking=Tracking()
        )
        work.commit()
    with uow() as work:
        stored = work.projects.get(project.id)
        assert stored is not None and stored.link == _link(project.id)
        assert stored.tracking == tracking and stored.webhook_secret == "sealed"
        assert work.projects.sealed_secrets() == [(project.id, "sealed")]

        work.projects.save_link(
            project.id,
            _link(
                project.id,
                repo="renamed",
                mode=SyncMode.HYBRID,
                allow_force_push=True,
                hold_force_pushes=True,
            ),
        )
        later = Tracking("d" * 40, "e" * 40, "f" * 40, NOW)
        work.projects.set_tracking(project.id, later)
        work.projects.set_pull_request(project.id, OpenPullRequest(3, "https://example/pull/3"))
        work.projects.set_webhook_secret(project.id, "rotated")
        work.commit()
    with uow() as work:
        stored = work.projects.get(project.id)
        assert stored is not None and stored.link is not None
        assert (stored.link.repo, stored.link.mode) == ("renamed", SyncMode.HYBRID)
        assert (stored.link.allow_force_push, stored.link.hold_force_pushes) == (True, True)
        assert stored.tracking == later
        assert stored.pull_request == OpenPullRequest(3, "https://example/pull/3")
        assert stored.webhook_secret == "rotated"

        assert work.projects.unlink(project.id)
        assert not work.projects.unlink(project.id)
        work.commit()
    with uow() as work:
        stored = work.projects.get(project.id)
        assert stored is not None
        assert (stored.link, stored.tracking, stored.pull_request, stored.webhook_secret) == (
            None,
            Tracking(),
            None,
            None,
        )
        with pytest.raises(LookupError):
            work.projects.set_tracking(project.id, later)


def test_linked_projects_are_found_by_repository_and_by_installation(uow: Harness) -> None:
    first, second, other, unlinked = _project("a"), _project("b"), _project("c"), _project("d")
    _added(uow, first, second, other, unlinked)
    with uow() as work:
        for project, repository_id, installation_id in ((first, 42, 7), (second, 42, 7), (other, 43, 8)):
            link = _link(project.id, repository_id=repository_id, installation_id=installation_id)
            assert work.projects.link(project.id, link, webhook_secret="s", tracking=Tracking())
        work.commit()
    with uow() as work:
        assert [p.id for p in work.projects.by_repository(42)] == sorted([first.id, second.id])
        assert [p.id for p in work.projects.by_repository(43)] == [other.id]
        assert work.projects.by_repository(44) == []
        both = work.projects.by_repositories([43, 42, 44, 42])
        assert [p.id for p in both] == sorted([first.id, second.id, other.id])
        assert work.projects.by_repositories([]) == [] and work.projects.by_repositories([44]) == []
        assert [p.id for p in work.projects.by_installation(7)] == sorted([first.id, second.id])
        found = work.projects.by_installation(8)
        assert [p.id for p in found] == [other.id] and found[0].link is not None
        assert work.projects.unlink(other.id)
        assert work.projects.by_repository(43) == [] and work.projects.by_installation(8) == []


def test_of_two_concurrent_links_exactly_one_wins(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def attempt(repository_id: int) -> None:
        barrier.wait()
        with uow() as work:
            won = work.projects.link(
                project.id,
                _link(project.id, repository_id=repository_id),
                webhook_secret="s",
                tracking=Tracking(),
            )
            work.commit()
        results.append(won)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False, True]


# --- versions, pairs ------------------------------------------------------------------------------------


def test_versions_are_indexed_once_and_paged(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    v1, v2, v3 = _version(1, "a"), _version(2, "b"), _version(3, "c")
    with uow() as work:
        assert work.versions.max_number(project.id) == 0
        assert work.versions.latest(project.id) is None
        assert work.versions.add_all(project.id, [v1, v2]) == 2
        assert work.versions.add_all(project.id, [v2, v3]) == 1  # a concurrent indexer's duplicate
        assert work.versions.add_all(project.id, []) == 0
        work.commit()
    with uow() as work:
        assert work.versions.max_number(project.id) == 3
        assert work.versions.latest(project.id) == v3
        assert work.versions.get(project.id, v2.id) == v2
        assert work.versions.get(project.id, "nope") is None
        assert work.versions.by_commit(project.id, v1.commit_sha) == v1
        assert work.versions.page(project.id, limit=2) == [v3, v2]
        assert work.versions.page(project.id, limit=2, before_number=2) == [v1]


def test_a_long_history_is_indexed_in_one_call(uow: Harness) -> None:
    # A lost index is rebuilt from the store in one call (`PairRebuilder`, `reindex_all`): 30,000 versions
    # are 300,000 values, past what SQLite takes in one statement (250,000 in this build, 32,766 upstream).
    project = _project()
    _added(uow, project)
    history = [replace(_version(n), commit_sha=f"{n:040x}", tree_sha=f"{n:040x}") for n in range(1, 30_001)]
    with uow() as work:
        assert work.versions.add_all(project.id, history) == len(history)
        work.commit()
    with uow() as work:
        assert work.versions.max_number(project.id) == 30_000
        assert work.versions.by_commit(project.id, history[12_345].commit_sha) == history[12_345]


def test_the_base_pair_is_the_newest_of_the_linked_repository(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    v1, v2 = _version(1, "a"), _version(2, "b")
    pairs = [
        SyncPair(v1.id, v1.commit_sha, "1" * 40, v1.tree_sha, repository_id=42),
        SyncPair(v2.id, v2.commit_sha, "2" * 40, v2.tree_sha, repository_id=42),
        SyncPair(v2.id, v2.commit_sha, "3" * 40, v2.tree_sha, repository_id=99),  # an earlier link
    ]
    with uow() as work:
        work.versions.add_all(project.id, [v1, v2])
        assert work.pairs.latest(project.id, 42) is None
        for pair in pairs:
            work.pairs.add(project.id, pair)
        work.commit()
    with uow() as work:
        latest = work.pairs.latest(project.id, 42)
        assert latest is not None and latest.github_commit_sha == "2" * 40
        assert [p.github_commit_sha for p in work.pairs.all(project.id)] == ["1" * 40, "2" * 40, "3" * 40]
        assert work.pairs.delete_all(project.id) == 3
        assert work.pairs.all(project.id) == []


# --- operations, conflicts, audit -----------------------------------------------------------------------


def test_operations_keep_every_field(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    operation = SyncOperation(
        project_id=project.id,
        operation_type="push",
        status="success",
        direction="to_github",
        github_commit_sha="1" * 40,
        github_commit_message="Add page",
        github_author_name="Ada",
        github_author_email="ada@example.com",
        local_version_id="v-1",
        local_commit_sha="2" * 40,
        files_changed=3,
        insertions=10,
        deletions=2,
        conflicts_detected=0,
        retry_count=1,
        started_at=NOW,
        completed_at=NOW + timedelta(seconds=1),
        metadata={"transport": "git_data_api", "requests": {"total": 4, "content_creating": 3}},
    )
    with uow() as work:
        first = work.operations.add(replace(operation, status="failed", error_code="x", error_message="y"))
        second = work.operations.add(operation)
        work.commit()
    with uow() as work:
        stored = work.operations.get(second)
        assert stored is not None
        assert replace(stored, id=None, created_at=None) == operation
        assert stored.id == second and stored.created_at is not None
        latest = work.operations.latest(project.id)
        assert latest is not None and latest.id == second
        assert [op.id for op in work.operations.recent(limit=10, status="failed")] == [first]
        assert [op.id for op in work.operations.recent(limit=10, project_id=project.id)] == [second, first]
        assert work.operations.get(str(uuid.uuid4())) is None


def test_operations_are_filtered_by_type_and_paged_newest_first(uow: Harness) -> None:
    project, other = _project("a"), _project("b")
    _added(uow, project, other)
    with uow() as work:
        # Two share a created_at: the id breaks the tie, so a page boundary between them loses nothing.
        ids = [
            work.operations.add(
                SyncOperation(
                    project_id=project.id if n % 2 == 0 else other.id,
                    operation_type="push_direct" if n < 4 else "link",
                    status="failed" if n in (1, 2) else "success",
                    direction="none",
                    created_at=NOW + timedelta(seconds=min(n, 3)),
                )
            )
            for n in range(5)
        ]
        work.commit()
    with uow() as work:
        everything = work.operations.recent(limit=10)
        assert {op.id for op in everything} == set(ids)
        keys = [(op.created_at, op.id) for op in everything]
        assert keys == sorted(keys, reverse=True)  # newest first, ties by id
        pages: list[str] = []
        before = None
        while True:
            page = work.operations.recent(limit=2, before=before)
            pages += [op.id or "" for op in page]
            if len(page) < 2:
                break
            assert page[-1].created_at is not None and page[-1].id is not None
            before = (page[-1].created_at, page[-1].id)
        assert pages == [op.id for op in everything]
        assert [op.id for op in work.operations.recent(limit=10, operation_type="link")] == [ids[4]]
        typed = work.operations.recent(limit=10, operation_type="push_direct", status="failed")
        assert {op.id for op in typed} == {ids[1], ids[2]}
        mine = work.operations.recent(limit=10, project_id=project.id, operation_type="push_direct")
        assert {op.id for op in mine} == {ids[0], ids[2]}
        assert work.operations.counts_by_status() == {"success": 3, "failed": 2}
        assert work.operations.counts_by_status(since=NOW + timedelta(seconds=2)) == {
            "success": 2,
            "failed": 1,
        }


def test_a_conflict_is_open_until_resolved_once(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    with uow() as work:
        assert work.conflicts.open_for(project.id) is None
        conflict_id = work.conflicts.add(
            ConflictRecord(project_id=project.id, paths=("a.txt", "b.txt"), local_commit_sha="1" * 40)
        )
        work.commit()
    with uow() as work:
        conflict = work.conflicts.open_for(project.id)
        assert conflict is not None and conflict.id == conflict_id and conflict.paths == ("a.txt", "b.txt")
        assert work.conflicts.resolve(conflict_id, resolution="github_wins", at=NOW)
        assert not work.conflicts.resolve(conflict_id, resolution="local_wins", at=NOW)
        work.commit()
    with uow() as work:
        assert work.conflicts.open_for(project.id) is None


def test_audit_entries_are_listed_newest_first(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    with uow() as work:
        work.audit.add(AuditEntry("api", "github.link", project.id, {"repo": "site"}))
        work.audit.add(AuditEntry("api", "github.unlink", project.id))
        work.audit.add(AuditEntry("cli", "secrets.rotate", None, {"rotated": 1}))
        work.commit()
    with uow() as work:
        entries = work.audit.for_project(project.id)
        assert [e.action for e in entries] == ["github.unlink", "github.link"]
        assert entries[1].details == {"repo": "site"} and entries[1].at is not None


# --- deliveries and the outbox --------------------------------------------------------------------------


def _delivery(delivery_id: str, status: str = "queued") -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=delivery_id,
        event="push",
        status=status,  # type: ignore[arg-type]
        expires_at=NOW + timedelta(days=7),
        installation_id=7,
    )


def test_deliveries_are_deduplicated_unless_their_processing_failed(uow: Harness) -> None:
    with uow() as work:
        assert work.deliveries.record(_delivery("d1"))
        assert not work.deliveries.record(_delivery("d1"))  # a duplicate delivery
        assert work.deliveries.record(_delivery("d2"))
        work.deliveries.set_status("d2", "failed")
        work.commit()
    with uow() as work:
        assert work.deliveries.record(_delivery("d2", "received"))  # a redelivery after a failure
        stored = work.deliveries.get("d2")
        assert stored is not None and stored.status == "received"
        assert work.deliveries.get("missing") is None
        assert work.deliveries.purge_expired(NOW + timedelta(days=8)) == 2
        work.commit()
    with uow() as work:
        assert work.deliveries.get("d1") is None


def test_a_batch_of_deliveries_is_recorded_at_once_each_deduplicated(uow: Harness) -> None:
    with uow() as work:
        assert work.deliveries.record(_delivery("d1", "ignored"))
        assert work.deliveries.record(_delivery("d2", "failed"))
        work.commit()
    batch = [
        _delivery("d1", "queued"),  # a duplicate of one that succeeded: not recorded
        _delivery("d2", "queued"),  # a redelivery of one that failed: recorded again
        _delivery("d3", "queued"),
        _delivery("d3", "ignored"),  # the same id twice in one batch: its first occurrence counts
        _delivery("d4", "ignored"),
    ]
    with uow() as work:
        assert work.deliveries.record_all(batch) == {"d2", "d3", "d4"}
        assert work.deliveries.record_all([]) == set()
        work.commit()
    with uow() as work:
        statuses = {key: work.deliveries.get(key) for key in ("d1", "d2", "d3", "d4")}
        assert {key: d.status for key, d in statuses.items() if d} == {
            "d1": "ignored",
            "d2": "queued",
            "d3": "queued",
            "d4": "ignored",
        }
        assert work.deliveries.record_all([_delivery("d2"), _delivery("d3")]) == set()  # now all seen


def test_a_batch_of_deliveries_reads_back_field_for_field(uow: Harness) -> None:
    # Every column, set and unset, in one batch: on PostgreSQL the batch goes as one array per column.
    project = _project("a")
    _added(uow, project)
    full = WebhookDelivery(
        delivery_id="f1",
        event="pull_request",
        status="queued",
        expires_at=NOW + timedelta(days=7),
        action="synchronize",
        project_id=project.id,
        installation_id=2**40,
        received_at=NOW + timedelta(microseconds=1),
    )
    bare = WebhookDelivery(delivery_id="f2", event="ping", status="processed", expires_at=NOW)
    with uow() as work:
        assert work.deliveries.record_all([full, bare]) == {"f1", "f2"}
        work.commit()
    with uow() as work:
        assert work.deliveries.get("f1") == full
        got = work.deliveries.get("f2")
        assert got is not None and replace(got, received_at=None) == bare and got.received_at is not None


def test_a_projects_recent_deliveries_are_listed_newest_first(uow: Harness) -> None:
    project, other = _project("a"), _project("b")
    _added(uow, project, other)
    with uow() as work:
        for n, (event, owner) in enumerate([("ping", project), ("push", project), ("push", other)]):
            delivery = replace(
                _delivery(f"d{n}"),
                event=event,
                project_id=owner.id,
                received_at=NOW + timedelta(seconds=n),
            )
            assert work.deliveries.record(delivery)
        work.commit()
    with uow() as work:
        assert [d.delivery_id for d in work.deliveries.recent(project.id, limit=10)] == ["d1", "d0"]
        assert [d.delivery_id for d in work.deliveries.recent(project.id, limit=1)] == ["d1"]
        pings = work.deliveries.recent(project.id, limit=10, event="ping")
        assert [(d.delivery_id, d.event, d.received_at) for d in pings] == [("d0", "ping", NOW)]
        assert work.deliveries.recent("not-a-uuid", limit=10) == []


def test_the_same_delivery_recorded_twice_at_once_is_one_delivery(uow: Harness) -> None:
    # GitHub may send a delivery again while the first is still being processed: the second must see a
    # duplicate (not fail on the primary key) once the first commits.
    first_recorded, results, errors = threading.Event(), [], []

    def first() -> None:
        with uow() as work:
            results.append(("first", work.deliveries.record(_delivery("d1"))))
            first_recorded.set()
            time.sleep(0.3)  # the second arrives meanwhile
            work.commit()

    def second() -> None:
        first_recorded.wait(10)
        try:
            with uow() as work:
                results.append(("second", work.deliveries.record(_delivery("d1"))))
                work.commit()
        except Exception as exc:  # what the old insert did on PostgreSQL: an IntegrityError
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(results) == [("first", True), ("second", False)]


def test_a_delivery_and_its_reconcile_request_commit_together_or_not_at_all(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    with pytest.raises(RuntimeError, match="crash"), uow() as work:
        work.deliveries.record(_delivery("d1"))
        work.request_reconcile(project.id, "webhook")
        raise RuntimeError("crash before commit")
    with uow() as work:
        assert work.deliveries.get("d1") is None
        assert work.requests.pending(project.id) == []
    assert uow.told == []  # nothing uncommitted reaches the queue

    with uow() as work:
        work.deliveries.record(_delivery("d1"))
        first = work.request_reconcile(project.id, "webhook")
        second = work.request_reconcile(project.id, "polling")
        assert uow.told == []  # only after the commit
        work.commit()
    assert uow.told == [project.id]  # one notification per project, however many requests
    with uow() as work:
        assert work.deliveries.get("d1") is not None
        assert [(r.id, r.reason) for r in work.requests.pending(project.id)] == [
            (first.id, "webhook"),
            (second.id, "polling"),
        ]
        assert work.requests.pending_projects() == [project.id]


def test_many_reconcile_requests_are_written_at_once_and_told_once_per_project(uow: Harness) -> None:
    project, other = _project("a"), _project("b")
    _added(uow, project, other)
    with uow() as work:
        made = work.request_reconciles(
            [(project.id, "webhook:push"), (other.id, "webhook:push"), (project.id, "webhook:pull_request")]
        )
        assert [(r.project_id, r.reason) for r in made] == [
            (project.id, "webhook:push"),
            (other.id, "webhook:push"),
            (project.id, "webhook:pull_request"),
        ]
        assert work.request_reconciles([]) == []
        work.commit()
    assert sorted(uow.told) == sorted([project.id, other.id])  # each project once
    with uow() as work:
        assert sorted(r.id for r in work.requests.pending(project.id)) == sorted([made[0].id, made[2].id])
        assert [r.id for r in work.requests.pending(other.id)] == [made[1].id]
        stored = work.requests.get(made[1].id)
        assert stored is not None
        assert (stored.project_id, stored.reason, stored.operation_id) == (other.id, "webhook:push", None)


def test_served_requests_name_their_operation(uow: Harness) -> None:
    project = _project()
    _added(uow, project)
    with uow() as work:
        request = work.request_reconcile(project.id, "api")
        work.commit()
    with uow() as work:
        operation_id = work.operations.add(
            SyncOperation(
                project_id=project.id, operation_type="reconcile", status="success", direction="none"
            )
        )
        work.requests.mark_served(project.id, [request.id], operation_id)
        work.commit()
    with uow() as work:
        served = work.requests.get(request.id)
        assert served is not None and served.operation_id == operation_id
        assert work.requests.pending(project.id) == []
        assert work.requests.pending_projects() == []
        assert work.requests.get(str(uuid.uuid4())) is None


def test_rollback_discards_and_the_unit_of_work_goes_on(uow: Harness) -> None:
    first, second = _project("a"), _project("b")
    with uow() as work:
        work.projects.add(first)
        work.rollback()
        work.projects.add(second)
        work.commit()
    with uow() as work:
        assert work.projects.get(first.id) is None
        assert work.projects.get(second.id) == second


def test_a_closed_unit_of_work_refuses_work(uow: Harness) -> None:
    work = uow()
    with work:
        pass
    with pytest.raises(RuntimeError, match="not open"):
        work.commit()


def test_a_queue_that_cannot_be_told_loses_no_request() -> None:
    """The commit stands when the notifier fails; the request stays pending for the outbox relay."""

    def down(_project_id: str) -> None:
        raise ConnectionError("queue down")

    for factory in (MemoryUnitOfWorkFactory(notify=down),):
        project = _project()
        with factory() as work:
            work.projects.add(project)
            work.request_reconcile(project.id, "api")
            work.commit()
        with factory() as work:
            assert [r.reason for r in work.requests.pending(project.id)] == ["api"]


def test_a_sql_queue_that_cannot_be_told_loses_no_request(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)

    def down(_project_id: str) -> None:
        raise ConnectionError("queue down")

    factory = SqlUnitOfWorkFactory(engine, down)
    project = _project()
    with factory() as work:
        work.projects.add(project)
        work.request_reconcile(project.id, "api")
        work.commit()
    with factory() as work:
        assert [r.reason for r in work.requests.pending(project.id)] == ["api"]
    engine.dispose()


def test_a_pair_names_an_indexed_version(uow: Harness) -> None:
    """As the SQL foreign key requires: the engine must index a version before pairing it."""
    project = _project()
    _added(uow, project)
    orphan = _version(1, "a")
    with pytest.raises(Exception), uow() as work:  # noqa: B017 - IntegrityError (SQL) or LookupError (memory)
        work.pairs.add(project.id, SyncPair(orphan.id, orphan.commit_sha, "1" * 40, orphan.tree_sha, 42))
        work.commit()
    with uow() as work:
        assert work.pairs.all(project.id) == []


@pytest.mark.parametrize("direction", ["to_github", "from_github", "none"])
def test_every_direction_fits(uow: Harness, direction: str) -> None:
    """PostgreSQL enforces column widths: every value the engine writes must fit (SQLite would not say)."""
    project = _project()
    _added(uow, project)
    with uow() as work:
        operation_id = work.operations.add(
            SyncOperation(
                project_id=project.id, operation_type="pull_inbound", status="held", direction=direction
            )  # type: ignore[arg-type]
        )
        work.commit()
    with uow() as work:
        stored = work.operations.get(operation_id)
        assert stored is not None and stored.direction == direction
