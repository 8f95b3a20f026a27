"""The polling safety net: its pure rules (slices, batches, budget, drift), the GraphQL query and answer
parsing, and the service on the in-memory twins (the fake GitHub is held to the real client by the
contract suite; tests/e2e/test_safety_nets_emulator.py proves the same over HTTP)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ghsync.adapters.github.graphql import graphql_url, heads_query, parse_heads
from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.bootstrap import register_delivery_sweep, register_polling
from ghsync.config import load_settings
from ghsync.domain.errors import GitHubError, GitHubServerError, RetryAt
from ghsync.domain.models import Author, FileWrite
from ghsync.domain.polling import (
    DRIFT_DEFAULT_BRANCH,
    DRIFT_HEAD_MOVED,
    PollTarget,
    RemoteHead,
    affordable,
    batches,
    drift,
    due,
    schedule_for,
    slice_of,
)
from ghsync.ports.github import counting_requests
from ghsync.services.delivery_sweep import SWEEP_TASK
from ghsync.services.linking import LinkService
from ghsync.services.polling import POLLING_REASON, POLLING_TASK, PollingService
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import EngineSettings, ReconcileService

KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()


def target(pid: str, repo: str = "r", inst: int = 1, sha: str | None = "a" * 40) -> PollTarget:
    return PollTarget(pid, inst, "octo", repo, "main", sha)


# ---- the pure rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "slices", "tick"),
    [(300, 10, 30.0), (600, 10, 60.0), (90, 3, 30.0), (29, 1, 29.0), (1, 1, 1.0)],
)
def test_the_interval_is_cut_into_slices_at_least_30_seconds_apart(
    interval: int, slices: int, tick: float
) -> None:
    schedule = schedule_for(interval)
    assert (schedule.slices, schedule.tick_seconds) == (slices, tick)


def test_every_project_is_checked_exactly_once_per_interval() -> None:
    schedule = schedule_for(300)
    targets = [target(f"p{i}", repo=f"r{i}") for i in range(1000)]
    seen: list[str] = []
    start = 1_700_000_100.0  # any epoch second: ten consecutive ticks cover all ten slices
    for tick in range(schedule.slices):
        index = schedule.slice_index(start + tick * schedule.tick_seconds)
        seen.extend(t.project_id for t in due(targets, index, schedule.slices))
    assert sorted(seen) == sorted(t.project_id for t in targets)  # each once, none twice
    sizes = [len(due(targets, i, schedule.slices)) for i in range(schedule.slices)]
    assert min(sizes) > 60 and max(sizes) < 140  # spread, not a burst in one tick


def test_a_projects_slice_is_stable_across_processes() -> None:
    # CRC-32, not Python's per-process salted hash(): every worker agrees on whose turn it is.
    assert [slice_of(f"p{i}", 10) for i in range(5)] == [1, 7, 5, 9, 8]
    assert all(0 <= slice_of(f"p{i}", 7) < 7 for i in range(50))


def test_batches_group_by_installation_and_hold_at_most_100_repositories() -> None:
    targets = [target(f"a{i}", repo=f"r{i}", inst=1) for i in range(250)]
    targets += [target("b0", repo="r0", inst=2)]
    targets += [target("shared", repo="r3", inst=1)]  # a second project on a repository already read
    out = batches(targets)
    assert [(inst, len({t.key for t in batch})) for inst, batch in out] == [
        (1, 100),
        (1, 100),
        (1, 50),
        (2, 1),
    ]
    first = out[0][1]
    assert {"a3", "shared"} <= {t.project_id for t in first}  # both projects of r3 share its read


@pytest.mark.parametrize(
    ("wanted", "remaining", "limit", "allowed"),
    [
        (5, None, None, 5),  # nothing known yet: go, the answer tells
        (5, 5000, 5000, 5),
        (5, 1003, 5000, 3),  # 1,000 (20% of 5,000) stay for the syncs
        (5, 1000, 5000, 0),
        (9, 10, None, 8),  # the limit unknown: 20% of what remains stays
        (0, 5000, 5000, 0),
    ],
)
def test_polling_never_spends_the_reserve_kept_for_syncs(
    wanted: int, remaining: int | None, limit: int | None, allowed: int
) -> None:
    assert affordable(wanted, remaining=remaining, limit=limit) == allowed


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (RemoteHead("main", "a" * 40), None),
        (RemoteHead("main", "b" * 40), DRIFT_HEAD_MOVED),
        (RemoteHead("trunk", "a" * 40), DRIFT_DEFAULT_BRANCH),
        (RemoteHead(None, None), DRIFT_HEAD_MOVED),  # emptied, or the branch vanished
    ],
)
def test_drift(head: RemoteHead, why: str | None) -> None:
    assert drift(target("p"), head) == why


def test_an_empty_repository_still_empty_is_no_drift() -> None:
    assert drift(target("p", sha=None), RemoteHead(None, None)) is None


# ---- the GraphQL query and its answers -----------------------------------------------------------


def test_the_query_reads_each_repository_under_an_alias_with_names_as_variables() -> None:
    text, variables = heads_query([("octo", "one"), ("octo", 'we"ird')])
    assert "r1: repository(owner: $o1, name: $n1) { defaultBranchRef { name target { oid } } }" in text
    assert "rateLimit { cost limit remaining resetAt }" in text
    assert variables == {"o0": "octo", "n0": "one", "o1": "octo", "n1": 'we"ird'}
    with pytest.raises(ValueError, match="at most 100"):
        heads_query([("o", f"r{i}") for i in range(101)])


def test_graphql_url_beside_the_rest_base() -> None:
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"
    assert graphql_url("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/graphql"


def test_parse_heads_leaves_out_missing_repositories_and_reads_the_cost() -> None:
    repos = [("octo", "one"), ("octo", "gone"), ("octo", "empty")]
    body = {
        "data": {
            "r0": {"defaultBranchRef": {"name": "trunk", "target": {"oid": "c" * 40}}},
            "r1": None,
            "r2": {"defaultBranchRef": None},
            "rateLimit": {"cost": 1, "limit": 5000, "remaining": 4999, "resetAt": "2026-12-01T10:00:00Z"},
        },
        "errors": [{"type": "NOT_FOUND", "path": ["r1"], "message": "Could not resolve to a Repository"}],
    }
    read = parse_heads(repos, body)
    assert read.heads == {
        ("octo", "one"): RemoteHead("trunk", "c" * 40),
        ("octo", "empty"): RemoteHead(None, None),
    }
    assert (read.points, read.remaining, read.limit) == (1, 4999, 5000)


def test_spent_points_are_retry_at_the_reset() -> None:
    body = {
        "data": {
            "r0": None,
            "rateLimit": {"cost": 1, "limit": 5000, "remaining": 0, "resetAt": "2026-12-01T10:00:00Z"},
        },
        "errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for installation ID 1."}],
    }
    with pytest.raises(RetryAt) as caught:
        parse_heads([("octo", "one")], body)
    assert caught.value.at == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_an_answer_without_data_is_an_error() -> None:
    with pytest.raises(GitHubError, match="Field 'x' doesn't exist"):
        parse_heads([("octo", "one")], {"errors": [{"message": "Field 'x' doesn't exist on type 'Query'"}]})


# ---- the service on the twins ---------------------------------------------------------------------


@dataclass
class World:
    github: InMemoryGitHub
    uow: MemoryUnitOfWorkFactory
    queue: InMemoryQueue
    projects: ProjectService
    links: LinkService
    store: GitStore
    installation: int

    def linked(self, name: str) -> str:
        self.github.add_repo("octo", name, default_branch="trunk", files={"README.md": f"{name}\n"})
        project = self.projects.create_project(name)
        self.links.link(project.id, owner="octo", repo=name, sync_mode="direct_commit")
        return project.id

    def polling(self, **kw: object) -> PollingService:
        return PollingService(self.uow, self.github, interval_seconds=300, **kw)  # type: ignore[arg-type]

    def pending_reasons(self, project_id: str) -> list[str]:
        with self.uow() as uow:
            return [r.reason for r in uow.requests.pending(project_id)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with InMemoryGitHub(tmp_path / "github") as github:
        installation = github.add_installation("octo", selection="all")
        queue = InMemoryQueue()
        queue.register("reconcile", lambda args: None)
        uow = MemoryUnitOfWorkFactory(notify=queue.request_reconcile)
        store = GitStore(tmp_path / "projects", max_file_size=1 << 20)
        projects = ProjectService(uow, store)
        links = LinkService(uow, store, projects, github, SecretBox.from_setting([KEY]), queue)
        world = World(github, uow, queue, projects, links, store, installation)
        yield world


def serve_requests(world: World, project_id: str) -> None:
    """What the worker does with the requests: one reconcile serves them all."""
    ReconcileService(world.uow, world.store, world.github, EngineSettings()).reconcile(project_id)


def test_nothing_moved_costs_one_query_and_requests_nothing(world: World) -> None:
    projects = [world.linked(f"site{i}") for i in range(3)]
    for project in projects:
        serve_requests(world, project)  # the first import; tracking now holds GitHub's head
    with counting_requests() as count:
        report = world.polling().poll_all()
    assert count.total == 1 and report.graphql_queries == 1
    assert report.checked == 3 and report.drifted == {} and report.requested == []
    assert all(POLLING_REASON not in world.pending_reasons(p) for p in projects)


def test_a_missed_push_is_drift_and_requests_a_reconcile_that_brings_it_in(world: World) -> None:
    quiet, moved = world.linked("quiet"), world.linked("moved")
    for project in (quiet, moved):
        serve_requests(world, project)
    head = world.github.push("octo", "moved", "trunk", {"new.txt": "a person's push\n"})  # no webhook heard

    report = world.polling().poll_all()

    assert report.drifted == {moved: DRIFT_HEAD_MOVED} and report.requested == [moved]
    assert world.pending_reasons(moved) == [POLLING_REASON] and world.pending_reasons(quiet) == []
    with world.uow() as uow:
        audit = uow.audit.for_project(moved, limit=5)
    assert audit[0].action == "github.drift_detected" and audit[0].details["github_head_sha"] == head
    serve_requests(world, moved)
    assert world.store.read_file(moved, world.store.head(moved), "new.txt") == b"a person's push\n"  # type: ignore[arg-type]
    assert world.pending_reasons(moved) == []
    assert world.polling().poll_all().drifted == {}  # caught up: the next cycle is quiet


def test_a_drifted_project_with_a_request_pending_gets_no_second_one(world: World) -> None:
    project = world.linked("site")
    serve_requests(world, project)
    world.github.push("octo", "site", "trunk", {"x.txt": "x\n"})
    polling = world.polling()
    assert polling.poll_all().requested == [project]
    again = polling.poll_all()
    assert again.requested == [] and again.already_pending == [project]
    assert world.pending_reasons(project) == [POLLING_REASON]


def test_a_renamed_default_branch_is_drift(world: World) -> None:
    project = world.linked("site")
    serve_requests(world, project)
    with world.github._lock:  # a person switches the default branch to a new one on GitHub
        repo = world.github._find("octo", "site")
        world.github.push("octo", "site", "main", {"x": "x\n"})
        repo.default_branch = "main"
    assert world.polling().poll_all().drifted == {project: DRIFT_DEFAULT_BRANCH}


def test_disabled_and_unlinked_projects_are_not_polled(world: World) -> None:
    enabled = world.linked("on")
    unlinked = world.projects.create_project("loose").id
    assert [t.project_id for t in world.polling().targets()] == [enabled]
    assert unlinked not in [t.project_id for t in world.polling().targets()]


def test_without_graphql_it_falls_back_to_one_conditional_rest_read_per_repository(world: World) -> None:
    projects = [world.linked(f"site{i}") for i in range(3)]
    for project in projects:
        serve_requests(world, project)
    world.github.push("octo", "site1", "trunk", {"x.txt": "x\n"})
    world.github.inject_fault(
        GitHubServerError("GraphQL unavailable", status=404), operation="default_branch_heads"
    )
    polling = world.polling()
    with counting_requests() as count:
        report = polling.poll_all()
    assert (report.graphql_queries, report.rest_reads) == (0, 3)
    assert count.total == 4  # the failed query, then get_branch for each repository
    assert report.drifted == {projects[1]: DRIFT_HEAD_MOVED}
    # GraphQL is not retried on every tick: REST serves that installation for a while.
    with counting_requests() as count:
        polling.poll_all()
    assert count.total == 3


def test_the_budget_defers_checks_instead_of_spending_the_syncs_reserve(tmp_path: Path) -> None:
    with InMemoryGitHub(tmp_path / "github", rate_limit=10) as github:
        installation = github.add_installation("octo", selection="all")
        for i in range(3):
            github.add_repo("octo", f"r{i}", files={"a": "a\n"})
        targets = [
            PollTarget(f"p{i}", installation, "octo", f"r{i}", "main", github.head("octo", f"r{i}", "main"))
            for i in range(3)
        ]
        polling = PollingService(MemoryUnitOfWorkFactory(), github, interval_seconds=300)
        for _ in range(8):  # 8 of 10 points spent: the remaining 2 are the reserve (20% of 10)
            assert polling.check(targets).checked == 3
        report = polling.check(targets)
        assert report.checked == 0 and sorted(report.deferred) == ["p0", "p1", "p2"]


def test_a_rate_limited_installation_waits_a_tick(world: World) -> None:
    project = world.linked("site")
    world.github.inject_fault(
        RetryAt(datetime.now(UTC), "GraphQL rate limit", kind="primary"), operation="default_branch_heads"
    )
    report = world.polling().poll_all()
    assert report.deferred == [project] and report.rest_reads == 0


def test_one_query_per_hundred_repositories(tmp_path: Path) -> None:
    with InMemoryGitHub(tmp_path / "github") as github:
        installation = github.add_installation("octo", selection="all")
        targets = []
        for i in range(150):
            github.add_repo("octo", f"r{i}")  # empty repositories: cheap, and no drift either
            targets.append(PollTarget(f"p{i}", installation, "octo", f"r{i}", "main", None))
        with counting_requests() as count:
            report = PollingService(MemoryUnitOfWorkFactory(), github, interval_seconds=300).check(targets)
        assert (count.total, report.graphql_queries, report.checked, report.drifted) == (2, 2, 150, {})


def test_a_tick_checks_only_its_slice(world: World) -> None:
    projects = [world.linked(f"site{i}") for i in range(12)]
    polling = world.polling()
    schedule = polling.schedule
    start = 1_800_000_000.0
    checked = 0
    for tick in range(schedule.slices):
        at = datetime.fromtimestamp(start + tick * schedule.tick_seconds, UTC)
        report = polling.tick(at)
        index = schedule.slice_index(at.timestamp())
        assert report.checked == len([p for p in projects if slice_of(p, schedule.slices) == index])
        checked += report.checked
    assert checked == len(projects)


# ---- the wiring ------------------------------------------------------------------------------------


def test_bootstrap_registers_polling_once_per_tick_and_the_tick_requests_reconciles(world: World) -> None:
    project = world.linked("site")
    serve_requests(world, project)
    world.github.push("octo", "site", "trunk", {"x.txt": "x\n"})
    settings = load_settings({}, github_sync_polling_interval=1_000, ghsync_delivery_sweep_interval=120)
    queue = InMemoryQueue()
    polling = register_polling(queue, settings, world.uow, world.github)  # type: ignore[arg-type]
    sweep = register_delivery_sweep(queue, settings, world.uow, world.github)  # type: ignore[arg-type]
    assert polling is not None and sweep is not None
    tasks = {t.name: t.every_seconds for t in queue._periodic_tasks()}
    assert tasks == {POLLING_TASK: 1.0, SWEEP_TASK: 120.0}  # a 1 s interval is one slice, one tick a second

    queue.claim_periods()
    queue.run_until_idle()  # the worker runs the period's tick
    assert world.pending_reasons(project) == [POLLING_REASON]

    off = load_settings({}, github_sync_polling_enabled=False, ghsync_delivery_sweep_interval=0)
    quiet = InMemoryQueue()
    assert register_polling(quiet, off, world.uow, world.github) is None  # type: ignore[arg-type]
    assert register_delivery_sweep(quiet, off, world.uow, world.github) is None  # type: ignore[arg-type]
    assert register_polling(quiet, settings, world.uow, None) is None  # type: ignore[arg-type]
    assert quiet._periodic_tasks() == []


def test_a_conflict_recorded_against_githubs_head_is_not_requested_again(world: World) -> None:
    project = world.linked("site")  # manual strategy: a divergence waits for a person
    serve_requests(world, project)
    VersionService(world.uow, world.store, world.projects).create_version(
        project,
        message="local",
        writes=[FileWrite("README.md", b"local\n")],
        author=Author("A", "a@example.com"),
    )
    world.github.push("octo", "site", "trunk", {"README.md": "remote\n"})
    serve_requests(world, project)
    with world.uow() as uow:
        assert uow.conflicts.open_for(project) is not None  # recorded against GitHub's head
    report = world.polling().poll_all()
    assert report.drifted == {project: DRIFT_HEAD_MOVED} and report.awaiting_resolution == [project]
    assert report.requested == []
    world.github.push("octo", "site", "trunk", {"other.txt": "moved again\n"})
    assert world.polling().poll_all().requested == [project]  # a new head gets its reconcile
