"""Benchmark (not a test): what one polling cycle costs for 1,000 and 10,000 linked repositories, against
the emulator.

For each size, N repositories (one file each) are created in the emulator and installed for the App
, and N projects are linked to them in an in-memory unit of work with
`last_remote_main_sha` at each head; 1% of them are given a stale SHA, so a cycle finds drift to request.
Then, with the production `PollingService` and `GitHubAppClient` over loopback HTTP:

- `graphql, whole interval`: `poll_all()`, every project once (what one GITHUB_SYNC_POLLING_INTERVAL
  costs, spread over its ticks in production);
- `graphql, one tick`: `tick()` for one slice of a 5-minute interval (10 slices, 30 s apart);
- `rest fallback, first` / `rest fallback, revalidated` (1,000 only): GraphQL answering 404 (a GitHub
  without it), so one `GET .../branches/{branch}` per repository; the second cycle revalidates with
  ETags, and GitHub does not count a 304 against the quota
  (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api).

Each row: requests the emulator saw (its request log), GraphQL points spent (GitHub's `rateLimit.cost`,
summed), 304 answers, drift found and requests made, wall time, and the share of the installation's hourly
budget one 5-minute cycle spends (the goal: under 5% for 10,000 projects). The installation's hourly
budget is GitHub's formula (5,000 + 50 per repository above 20, at most 12,500, for REST and for
GraphQL points alike: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).

Setup (creating 11,000 repositories) dominates the run; the emulator's data lives on /dev/shm when it
exists, and its state file is written once after the setup instead of after every repository.
Writes bench/results/polling.json. Run: .venv/bin/python bench/polling.py (about three minutes on 2 cores;
the emulator answers a 100-repository query in about half a second, GitHub much faster).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _results import write_results

from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.domain.link import Link, Project, Tracking
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.services.polling import PollingService, PollReport
from github_emulator.testing import EmulatorHandle, run_emulator

RESULTS = Path(__file__).parent / "results" / "polling.json"
SIZES = (1000, 10_000)
REST_SIZES = (1000,)  # 10,000 REST reads per cycle would not fit an hour's budget anyway (shown below)
DRIFT_EVERY = 100  # 1% of the projects drifted
CYCLE_SECONDS = 300.0  # the default GITHUB_SYNC_POLLING_INTERVAL
CYCLES_PER_HOUR = 3600 / CYCLE_SECONDS
GOAL_SHARE = 0.05


def scratch_dir() -> str | None:
    return "/dev/shm" if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None


def make_repos(emu: EmulatorHandle, owner: str, n: int) -> list[tuple[str, int, str]]:
    """N repositories with one commit each: (name, id, head SHA). In-process, saving the state once and
    skipping the duplicate-name check (the names are unique by construction)."""
    core = emu.emulator
    store = core.store
    real_save, real_find = store.save, store.find_repo
    store.save = lambda: None  # type: ignore[method-assign]
    store.find_repo = lambda owner, name: None  # type: ignore[method-assign,assignment]
    made: list[tuple[str, int, str]] = []
    try:
        for i in range(n):
            name = f"r{i:05d}"
            record = core.create_repo(owner, name, "main", False, {"README.md": f"{name}\n"})
            git = core.open_git(record)
            made.append((name, record.id, str(git.references["refs/heads/main"].target)))
    finally:
        store.save, store.find_repo = real_save, real_find  # type: ignore[method-assign]
        real_save()
    index_repositories(emu)
    return made


def index_repositories(emu: EmulatorHandle) -> None:
    """The emulator finds a repository by scanning all of them (fine for tests, not for 11,000): look
    them up in an index instead, so wall times measure ghsync and the protocol, not that scan. Its
    answers are the same (no repository is renamed or deleted in this bench)."""
    store = emu.emulator.store
    with store.lock:
        index = {r.full_name.lower(): r for r in store.data.repos.values()}

    def find(owner: str, name: str) -> Any:
        return index.get(f"{owner}/{name}".lower())

    store.find_repo = find  # type: ignore[method-assign]


def link_projects(
    uow: MemoryUnitOfWorkFactory, owner: str, installation: int, repos: list[tuple[str, int, str]]
) -> None:
    with uow() as tx:
        for i, (name, repo_id, head) in enumerate(repos):
            pid = str(uuid.uuid4())
            tx.projects.add(Project(id=pid, name=name, created_at=datetime.now(UTC)))
            link = Link(
                project_id=pid,
                owner=owner,
                repo=name,
                repository_id=repo_id,
                installation_id=installation,
                default_branch="main",
                protected=False,
                mode=SyncMode.DIRECT_COMMIT,
                strategy=ConflictStrategy.MANUAL,
                enabled=True,
            )
            seen = "0" * 40 if i % DRIFT_EVERY == 0 else head  # a push we did not hear of
            tx.projects.link(pid, link, webhook_secret="sealed", tracking=Tracking(last_remote_main_sha=seen))
        tx.commit()


def measure(
    emu: EmulatorHandle, label: str, n: int, hourly_budget: int, run: Callable[[], PollReport]
) -> dict[str, Any]:
    emu.clear_requests()
    started = time.perf_counter()
    report = run()
    elapsed = time.perf_counter() - started
    log = emu.requests()
    graphql = sum(1 for r in log if r.get("kind") == "graphql")
    not_modified = sum(1 for r in log if r.get("status") == 304)
    # What one cycle charges: GraphQL points, plus REST requests other than 304s.
    rest = sum(1 for r in log if r.get("kind") == "rest")
    charged = report.graphql_points + rest - not_modified
    return {
        "repositories": n,
        "case": label,
        "checked": report.checked,
        "requests": len(log),
        "graphql_requests": graphql,
        "rest_requests": rest,
        "not_modified": not_modified,
        "graphql_points": report.graphql_points,
        "charged": charged,
        "unreachable": len(report.unreachable),
        "drifted": len(report.drifted),
        "reconciles_requested": len(report.requested) + len(report.already_pending),
        "deferred": len(report.deferred),
        "wall_s": round(elapsed, 3),
        "hourly_budget": hourly_budget,
        "share_of_hourly_budget_per_cycle": round(charged / hourly_budget, 5),
    }


def main() -> None:
    rows: list[dict[str, Any]] = []
    setup_s: dict[str, float] = {}
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp_dir,
        run_emulator(Path(tmp_dir) / "emu") as emu,
    ):
        app = emu.create_app("bench-polling", permissions={"contents": "read", "metadata": "read"})
        for n in SIZES:
            owner = f"org{n}"
            t0 = time.perf_counter()
            repos = make_repos(emu, owner, n)
            installation = emu.create_installation(app.id, owner, [f"{owner}/{name}" for name, _, _ in repos])
            uow = MemoryUnitOfWorkFactory()
            link_projects(uow, owner, installation, repos)
            setup_s[str(n)] = round(time.perf_counter() - t0, 1)
            # Within the quota's formula, the hourly budget of an installation with n repositories.
            budget = min(12_500, 5000 + max(0, n - 20) * 50)
            config = GitHubAppConfig(
                app_id=app.id, private_key=app.private_key, api_url=emu.url, min_write_interval=0.0
            )
            with GitHubAppClient(config) as client:
                client.installation_token(installation)  # the token exchange is not the cycle's cost
                polling = PollingService(uow, client, interval_seconds=CYCLE_SECONDS)
                rows.append(measure(emu, "graphql, whole interval", n, budget, polling.poll_all))
                tick_at = datetime.fromtimestamp(0, UTC)  # slice 0 of the interval's ten
                rows.append(
                    measure(emu, "graphql, one tick", n, budget, functools.partial(polling.tick, tick_at))
                )
            if n in REST_SIZES:
                emu.add_fault(r"^/graphql$", status=404, count=1_000_000)
                with GitHubAppClient(config) as client:
                    client.installation_token(installation)
                    rest = PollingService(
                        MemoryUnitOfWorkFactory(uow.database), client, interval_seconds=CYCLE_SECONDS
                    )
                    rows.append(measure(emu, "rest fallback, first", n, budget, rest.poll_all))
                    rows.append(measure(emu, "rest fallback, revalidated", n, budget, rest.poll_all))
                emu.clear_faults()
    total = time.perf_counter() - started
    header = (
        f"{'repos':>6} {'case':28} {'reqs':>6} {'gql':>4} {'rest':>6} {'304':>6} {'points':>6} "
        f"{'drift':>5} {'wall s':>7} {'budget/cycle':>12}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['repositories']:>6} {r['case']:28} {r['requests']:>6} {r['graphql_requests']:>4} "
            f"{r['rest_requests']:>6} {r['not_modified']:>6} {r['graphql_points']:>6} {r['drifted']:>5} "
            f"{r['wall_s']:>7} {r['share_of_hourly_budget_per_cycle']:>12.2%}"
        )
    goal = next(r for r in rows if r["repositories"] == 10_000 and r["case"] == "graphql, whole interval")
    summary = {
        "goal": "10,000 projects per 5-minute cycle with under 5% of one installation's hourly budget",
        "share_10000_per_cycle": goal["share_of_hourly_budget_per_cycle"],
        "share_10000_per_hour": round(goal["share_of_hourly_budget_per_cycle"] * CYCLES_PER_HOUR, 4),
        "met": goal["share_of_hourly_budget_per_cycle"] < GOAL_SHARE,
        # REST for comparison: one request per repository per cycle, 12 cycles an hour.
        "rest_10000_requests_per_hour": 10_000 * int(CYCLES_PER_HOUR),
    }
    write_results(
        RESULTS,
        total,
        setup_s=setup_s,
        summary=summary,
        rows=rows,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
