"""Benchmark (not a test): inbound syncs (GitHub -> a local version) against the emulator, with the raw git
operations of the same work measured in the same run.

1. **Per change**: for 1, 10, 100 and 1,000 changed files (text, about 200 bytes each) a person's commit
   lands on GitHub and `ReconcileService.reconcile` brings it in, once with REST forced (tree + one
   request per blob the store lacks) and once with git allowed (a fetch over smart HTTP; the rule still
   takes REST below 2 missing blobs, and the row says which transport ran). Each row: requests GitHub saw
   (the emulator's log: REST and git), what the engine counted, and wall time.
2. **Initial import** of a 10,000-file repository (git: one fetch), beside `git clone --no-checkout`
   of the same repository over HTTP, timed in the same run (goal: within 2x): the medians of 5
   alternating rounds, each timed run after an `os.sync()` (why: `initial_import`). The import's time is
   also split into its phases (`initial_import_phases`), since it does work the clone does not.
3. **Push -> local version latency**: ghsync served over HTTP with its worker running and the emulator's
   App hook pointing at it; a person pushes one file over git 20 times, and the time from `git push`
   returning to the local store's head holding the file is taken, beside a raw `git fetch` of each change
   into a clone made beforehand (goal: p50 within 5x of the fetch, p99 under 2 s).

Writes bench/results/inbound.json. Run: .venv/bin/python bench/inbound.py (about two minutes on 2 cores).
For the import's figures, leave a few minutes between runs: a run removes some 100,000 files when it ends,
and on this machine's file system that slows file creation for minutes after (see `initial_import`).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pygit2
import uvicorn
from _results import write_results
from _rig import Services, git, services

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.bootstrap import build_container
from ghsync.config import load_settings
from ghsync.domain.outbound import TransportThresholds
from ghsync.entrypoints.api.app import create_app
from ghsync.ports.github import counting_requests
from ghsync.services.reconcile import ReconcileService
from github_emulator.testing import run_emulator

RESULTS = Path(__file__).parent / "results" / "inbound.json"
SIZES = (1, 10, 100, 1000)
IMPORT_FILES = 10_000
IMPORT_ROUNDS = 5
PUSHES = 20
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
SECRET = "bench inbound secret"
FORCE = {"rest": TransportThresholds(enabled=False), "git": TransportThresholds(min_missing_blobs=0)}


def files_of(n: int, tag: str) -> dict[str, str]:
    return {f"src/{i // 100}/f{i}.txt": f"{tag} file {i} " * 12 + "\n" for i in range(n)}


class Rig(Services):
    def engine(self, transport: str) -> ReconcileService:
        return self.engine_with(FORCE[transport])

    def linked(self, name: str, files: dict[str, str], transport: str = "rest") -> str:
        self.add_repo(name, files)
        project = self.projects.create_project(name).id
        self.links.link(project, owner="octo", repo=name, sync_mode="direct_commit")
        self.engine(transport).reconcile(project)
        return project

    def person_commit(self, name: str, files: dict[str, str]) -> str:
        """A person's commit on trunk, written straight into the emulator's repository (not timed)."""
        core = self.emu.emulator
        record = core.store.find_repo("octo", name)
        assert record is not None
        repo = core.open_git(record)
        parent = repo.references["refs/heads/trunk"].target
        index = pygit2.Index()
        index.read_tree(repo.get(parent).tree)  # type: ignore[union-attr]
        for path, text in files.items():
            index.add(pygit2.IndexEntry(path, repo.create_blob(text.encode()), pygit2.GIT_FILEMODE_BLOB))
        tree = index.write_tree(repo)
        sig = pygit2.Signature("A Person", "person@example.com")
        sha = repo.create_commit(None, sig, sig, "A person's change", tree, [parent])
        repo.references["refs/heads/trunk"].set_target(sha)
        return str(sha)

    def measure(self, label: str, run: Callable[[], object], project: str | None = None) -> dict[str, Any]:
        self.emu.clear_requests()
        with counting_requests() as count:
            started = time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
        log = self.emu.requests()
        transport = None
        if project is not None:
            with self.uow() as uow:
                operation = uow.operations.latest(project)
            assert operation is not None and operation.status == "success", operation
            transport = operation.metadata.get("transport")
        return {
            "case": label,
            "transport_used": transport,
            "requests": len(log),
            "rest_requests": sum(1 for r in log if r.get("kind") == "rest"),
            "git_requests": sum(1 for r in log if r.get("kind") == "git"),
            "engine_counted": count.total,
            "wall_s": round(elapsed, 3),
        }


def per_change(rig: Rig) -> list[dict[str, Any]]:
    rows = []
    for n in SIZES:
        for transport in ("rest", "git"):
            name = f"in-{transport}-{n}"
            project = rig.linked(name, {"README.md": "seed\n"})
            rig.person_commit(name, files_of(n, name))
            engine = rig.engine(transport)
            sync = functools.partial(engine.reconcile, project)
            row = rig.measure(f"inbound, {transport} allowed", sync, project)
            rows.append({"files": n, **row})
    return rows


@contextmanager
def timing(target: object, method: str, into: dict[str, float], key: Callable[..., str]) -> Iterator[None]:
    """Add the wall time of every call of `target.method` to `into[key(*args)]` while inside."""
    real = getattr(target, method)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            name = key(*args)
            into[name] = into.get(name, 0.0) + time.perf_counter() - started

    setattr(target, method, timed)
    try:
        yield
    finally:
        delattr(target, method)  # the class's method again


def initial_import(rig: Rig, tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The import beside `git clone --no-checkout`, and where the import's time went: medians of rounds.

    Each round imports a repository of its own (same files) into a new project, and clones the same
    repository twice (`--no-checkout`, the goal's reference, and with a checkout, the same work as the
    import); the order alternates round to round. Before every timed run, ghsync's and git's alike,
    `os.sync()` writes back what earlier runs left dirty. Why: writing 10,000 files costs this machine
    0.4 s or 7 s depending on the file system's recent past. Its ext4 runs without a journal, and then
    the kernel will not reuse an inode freed in the last 60 s (5 minutes more while its inode table block
    is dirty), scanning past every one of them on each file it creates (`perf` shows `recently_deleted`
    and `find_inode_bit` taking three quarters of such a run). The previous bench run's cleanup, or
    another process's, frees tens of thousands. The sync shortens that window for everyone and the
    medians of alternating rounds keep one unlucky run from being the result; git's clone with checkout
    is hit exactly like the import, so its ratio is the check that the treatment is even.

    The phases (medians over the rounds): the git fetch; the GitHub REST reads, the repository's apart
    (the emulator recalculates a repository's size at most hourly, as GitHub does); the working-directory
    checkout (10,000 files written, which the clone does not do: nearly all of it is the kernel creating
    files); the diff's totals counted for the operation record; and the rest (tree checks, commit, the plan
    logged, records).
    """
    files = files_of(IMPORT_FILES, "big")
    engine = rig.engine("git")
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "raw": [], "full": []}
    phase_runs: list[dict[str, float]] = []

    def route(method: str, path: str, *args: Any) -> str:
        return "rest_repository_read_s" if path == "/repos/{owner}/{repo}" else "rest_other_reads_s"

    def ours(project: str) -> None:
        split: dict[str, float] = {}
        with (
            timing(rig.remote, "fetch", split, lambda *args: "git_fetch_s"),
            timing(rig.client, "request", split, route),
            timing(rig.store, "checkout", split, lambda *args: "checkout_s"),
            timing(rig.store, "diff_stats", split, lambda *args: "diff_for_counts_s"),
        ):
            os.sync()
            row = rig.measure("import, ghsync", functools.partial(engine.reconcile, project), project)
        runs["ours"].append(row)
        phase_runs.append({**split, "other_s": row["wall_s"] - sum(split.values())})

    def clone(side: str, label: str, *args: str) -> None:
        os.sync()
        runs[side].append(rig.measure(label, functools.partial(git, tmp, "clone", "-q", *args)))

    for round_ in range(IMPORT_ROUNDS):
        name = f"big-{round_}"
        rig.add_repo(name, files)
        project = rig.projects.create_project(name).id
        rig.links.link(project, owner="octo", repo=name, sync_mode="direct_commit")
        url = rig.emu.git_url("octo", name, rig.client.installation_token(rig.installation))
        steps = [
            functools.partial(ours, project),
            functools.partial(clone, "raw", "git clone --no-checkout", "--no-checkout", url, f"raw-{round_}"),
            # Not the goal's reference, but the same work as the import (the files written too).
            functools.partial(clone, "full", "git clone (with checkout)", url, f"full-{round_}"),
        ]
        for step in steps if round_ % 2 == 0 else steps[1:] + steps[:1]:
            step()
    rows = [{"files": IMPORT_FILES, **_median_row(runs[side])} for side in ("ours", "raw", "full")]
    phases: dict[str, Any] = {
        phase: round(statistics.median(run.get(phase, 0.0) for run in phase_runs), 3)
        for phase in sorted({phase for run in phase_runs for phase in run})
    }
    phases["checkout_runs_s"] = [round(run["checkout_s"], 3) for run in phase_runs]
    return rows, phases


def _median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time, with every run's wall time beside it."""
    walls = [run["wall_s"] for run in runs]
    middle = sorted(runs, key=lambda run: run["wall_s"])[len(runs) // 2]
    return {**middle, "wall_s": round(statistics.median(walls), 3), "runs_wall_s": walls}


@contextmanager
def served(settings_kw: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    container = build_container(load_settings({}, **settings_kw))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    stop = threading.Event()
    worker = threading.Thread(
        target=container.queue.run_worker, args=(stop,), kwargs={"threads": 2}, daemon=True
    )
    worker.start()
    try:
        yield container, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        worker.join(timeout=20)
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        container.close()


def push_latency(tmp: Path) -> dict[str, Any]:
    with run_emulator(tmp / "emu-latency") as emu:
        app = emu.create_app("bench-latency", permissions=PERMISSIONS)
        owner = emu.create_user("octo")
        emu.create_repo("octo", "site", default_branch="trunk", files={"README.md": "seed\n"})
        emu.create_installation(app.id, "octo", ["octo/site"])
        database_url = f"sqlite:///{tmp / 'latency.db'}"
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
        settings = {
            "ghsync_data_dir": tmp / "latency-data",
            "database_url": database_url,
            "ghsync_api_tokens": ["bench"],
            "ghsync_encryption_keys": [KEY],
            "github_app_id": str(app.id),
            "github_app_private_key": app.private_key,
            "github_api_url": emu.url,
            "github_webhook_secret": SECRET,
            "github_write_interval": 0,
            "github_sync_polling_enabled": False,
            "ghsync_delivery_sweep_interval": 0,
        }
        with served(settings) as (container, url):
            emu.update_app(app.id, webhook_url=f"{url}/v1/webhooks/github", webhook_secret=SECRET)
            project = container.projects.create_project("site").id
            container.links.link(project, owner="octo", repo="site", sync_mode="direct_commit")
            store = container.store

            def holds(path: str) -> bool:
                head = store.head(project)
                return head is not None and path in {e.path for e in store.list_files(project, head)}

            deadline = time.monotonic() + 30
            while not holds("README.md") and time.monotonic() < deadline:
                time.sleep(0.01)
            remote = emu.git_url("octo", "site", owner.token, user="octo")
            person, mirror = tmp / "person", tmp / "mirror"
            git(tmp, "clone", "-q", remote, str(person))
            git(tmp, "clone", "-q", remote, str(mirror))
            latencies, fetches = [], []
            for i in range(PUSHES):
                path = f"pushed/{i}.txt"
                (person / "pushed").mkdir(exist_ok=True)
                (person / path).write_text(f"push {i}\n")
                git(person, "add", path)
                git(person, "commit", "-q", "-m", f"push {i}")
                git(person, "push", "-q", "origin", "HEAD:trunk")
                pushed = time.perf_counter()
                while not holds(path):
                    if time.perf_counter() - pushed > 30:
                        raise RuntimeError(f"push {i} did not arrive")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - pushed)
                started = time.perf_counter()
                git(mirror, "fetch", "-q", "origin")
                fetches.append(time.perf_counter() - started)
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    fetch_p50 = statistics.median(fetches)
    return {
        "pushes": PUSHES,
        "p50_s": round(p50, 3),
        "p99_s": round(p99, 3),
        "raw_git_fetch_p50_s": round(fetch_p50, 3),
        "p50_vs_raw_fetch": round(p50 / fetch_p50, 2),
        "goal_p50_within_5x": p50 <= 5 * fetch_p50,
        "goal_p99_under_2s": p99 < 2.0,
    }


def main() -> None:
    started = time.perf_counter()
    os.sync()  # see initial_import: what earlier runs left dirty is written back before anything is timed
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        with services(tmp, "bench-inbound", Rig, permissions=PERMISSIONS) as rig:
            rows = per_change(rig)
            imports, import_phases = initial_import(rig, tmp)
        latency = push_latency(tmp)
    os.sync()  # the 100,000-odd files just removed: a shorter window for the next run (see initial_import)
    total = time.perf_counter() - started
    import_ratio = round(imports[0]["wall_s"] / imports[1]["wall_s"], 2)
    print(f"{'files':>6} {'case':28} {'used':5} {'reqs':>5} {'rest':>5} {'git':>4} {'wall s':>7}")
    for r in rows + imports:
        print(
            f"{r['files']:>6} {r['case']:28} {r['transport_used'] or '-':5} {r['requests']:>5} "
            f"{r['rest_requests']:>5} {r['git_requests']:>4} {r['wall_s']:>7}"
        )
    summary = {
        "import_vs_git_clone": import_ratio,
        "import_within_2x": import_ratio <= 2.0,
        "import_vs_git_clone_with_checkout": round(imports[0]["wall_s"] / imports[2]["wall_s"], 2),
        **latency,
    }
    for r in imports:
        print(f"{r['case']} runs (s): {r['runs_wall_s']}")
    print("import phases (s, medians):", json.dumps(import_phases))
    print(json.dumps(summary))
    write_results(
        RESULTS,
        total,
        summary=summary,
        per_change=rows,
        initial_import=imports,
        initial_import_phases=import_phases,
        push_to_version=latency,
    )


if __name__ == "__main__":
    main()
