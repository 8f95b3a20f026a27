"""Benchmark (not a test): one outbound sync of N changed files on each transport, against the emulator,
beside a raw `git push` of the same change measured in the same run.

For 1, 10, 100 and 1,000 changed files, text only and a mix (every other file binary, so each is a blob
GitHub lacks), it runs `ReconcileService.reconcile` with the transport forced by the rule's thresholds:

- `git_data_api`: blobs GitHub lacks, tree(s), one commit, PATCH of the ref;
- `git`, steady: the store holds GitHub's head (our own last push), so one push;
- `git`, fetch first: GitHub's head came over REST (just after the import), so it is fetched first;
- `raw git push`: a clone made beforehand (not timed), the same files written and committed (not timed),
  then `git push` alone, timed.

Each row: requests GitHub saw (the emulator's log: REST, and git smart HTTP), content-creating requests
(as the emulator counts them: REST POST/PATCH/PUT/DELETE), what the engine's `counting_requests()` said,
and wall time. The client runs unpaced (GITHUB_WRITE_INTERVAL=0) so the figures are the transports' own;
`paced_floor_s` adds what production's one second between content-creating requests costs at least
(https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api).

Writes bench/results/outbound.json. Run: .venv/bin/python bench/outbound.py (about three minutes on
2 cores, most of it the Git Data API uploading 500 blobs one request each).
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _results import write_results
from _rig import Services, git, services

from ghsync.domain.models import Author, FileWrite
from ghsync.domain.outbound import TransportThresholds
from ghsync.ports.github import counting_requests
from ghsync.services.projects import VersionService
from ghsync.services.reconcile import ReconcileService

RESULTS = Path(__file__).parent / "results" / "outbound.json"
SIZES = (1, 10, 100, 1000)
KINDS = ("text", "mixed")
ADA = Author("Ada Lovelace", "ada@example.com")
WRITE_INTERVAL = 1.0  # production's GITHUB_WRITE_INTERVAL default, for paced_floor_s
FORCE = {"git_data_api": TransportThresholds(enabled=False), "git": TransportThresholds(min_files=1)}


def change(n: int, kind: str, round_: int) -> dict[str, bytes]:
    """N new files (each round its own, so no sync is held for overwriting most of the repository):
    text of about 200 bytes, or (mixed) every other one 4 KiB of random bytes."""
    rng = random.Random(f"{n}-{kind}-{round_}")
    files: dict[str, bytes] = {}
    for i in range(n):
        if kind == "mixed" and i % 2 == 1:
            files[f"assets/r{round_}/{i // 100}/f{i}.bin"] = b"\x00" + rng.randbytes(4095)
        else:
            files[f"src/r{round_}/{i // 100}/f{i}.txt"] = (f"round {round_} file {i} " * 10 + "\n").encode()
    return files


class Rig(Services):
    @property
    def token(self) -> str:
        return self.client.installation_token(self.installation)

    @functools.cached_property
    def versions(self) -> VersionService:
        return VersionService(self.uow, self.store, self.projects)

    def engine(self, transport: str) -> ReconcileService:
        return self.engine_with(FORCE[transport])

    def project(self, name: str) -> str:
        """A repository with a seed file, linked to a new project and imported (over REST)."""
        self.add_repo(name, {"README.md": "seed\n"})
        project = self.projects.create_project(name).id
        self.links.link(project, owner="octo", repo=name, sync_mode="direct_commit")
        self.engine("git_data_api").reconcile(project)
        return project

    def sync(self, project: str, transport: str, files: dict[str, bytes], label: str) -> dict[str, Any]:
        writes = [FileWrite(path, data) for path, data in files.items()]
        self.versions.create_version(project, message="bench", writes=writes, author=ADA)
        engine = self.engine(transport)
        return self.measure(label, lambda: engine.reconcile(project), check=lambda: self.check(project))

    def check(self, project: str) -> str:
        with self.uow() as uow:
            operation = uow.operations.latest(project)
        assert operation is not None and operation.status == "success", operation
        # Read after the request log: GitHub's commit holds exactly the version's tree.
        assert operation.github_commit_sha and operation.local_commit_sha
        project_row = self.projects.get_project(project)
        link = project_row.link
        assert link is not None
        repo = self.client.repo(self.installation, link.owner, link.repo)
        github_tree = repo.get_commit(operation.github_commit_sha).tree_sha
        assert github_tree == self.store.tree_sha(project, operation.local_commit_sha), operation
        return str(operation.metadata.get("transport"))

    def raw_push(self, name: str, files: dict[str, bytes]) -> dict[str, Any]:
        work = self.tmp / f"raw-{name}"
        git(
            self.tmp,
            "clone",
            "-q",
            "--branch",
            "trunk",
            self.emu.git_url("octo", name, self.token),
            str(work),
        )
        for path, data in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_bytes(data)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "raw")
        return self.measure("raw git push", lambda: git(work, "push", "-q", "origin", "trunk"), lambda: "git")

    def measure(self, label: str, run: Callable[[], object], check: Callable[[], str]) -> dict[str, Any]:
        self.emu.clear_requests()
        with counting_requests() as count:
            started = time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
        log = self.emu.requests()
        creating = sum(1 for r in log if r.get("content_creating"))
        return {
            "case": label,
            "transport_used": check(),
            "requests": len(log),
            "git_requests": sum(1 for r in log if r.get("kind") == "git"),
            # Time the emulator spent serving git (http-backend, its pre-receive hook, push events).
            "git_server_s": round(
                sum(r.get("duration_ms", 0.0) for r in log if r.get("kind") == "git") / 1000, 3
            ),
            "rest_requests": sum(1 for r in log if r.get("kind") == "rest"),
            "content_creating": creating,
            "engine_counted": count.total,
            "engine_content_creating": count.content_creating,
            "wall_s": round(elapsed, 3),
            "paced_floor_s": round(elapsed + max(0, creating - 1) * WRITE_INTERVAL, 3),
        }


def main() -> None:
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_dir, services(Path(tmp_dir), "bench-outbound", Rig) as rig:
        for kind in KINDS:
            for n in SIZES:
                base = {"files": n, "kind": kind}
                api = rig.project(f"api-{kind}-{n}")
                rows.append({**base, **rig.sync(api, "git_data_api", change(n, kind, 1), "git_data_api")})
                by_git = rig.project(f"git-{kind}-{n}")
                rows.append({**base, **rig.sync(by_git, "git", change(n, kind, 1), "git, fetch first")})
                rows.append({**base, **rig.sync(by_git, "git", change(n, kind, 2), "git, steady")})
                raw = f"raw-{kind}-{n}"
                rig.add_repo(raw, {"README.md": "seed\n"})
                rows.append({**base, **rig.raw_push(raw, change(n, kind, 1))})
    total = time.perf_counter() - started
    # The goal: a 1,000-file change within 2x of the raw git push of the same change, in this run.
    raw_1000 = {r["kind"]: r["wall_s"] for r in rows if r["files"] == 1000 and r["case"] == "raw git push"}
    ratios = {
        f"{r['kind']}, {r['case']}": round(r["wall_s"] / raw_1000[r["kind"]], 2)
        for r in rows
        if r["files"] == 1000 and r["case"] != "raw git push"
    }
    header = (
        f"{'kind':6} {'files':>5} {'case':18} {'reqs':>5} {'git':>4} {'rest':>4} {'writes':>6} "
        f"{'git srv':>7} {'wall s':>7} {'paced s':>8}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['kind']:6} {r['files']:>5} {r['case']:18} {r['requests']:>5} {r['git_requests']:>4} "
            f"{r['rest_requests']:>4} {r['content_creating']:>6} {r['git_server_s']:>7} {r['wall_s']:>7} "
            f"{r['paced_floor_s']:>8}"
        )
    write_results(
        RESULTS,
        total,
        wall_vs_raw_git_push_1000_files=ratios,
        rows=rows,
    )
    print("1,000 files, wall time / raw git push:", json.dumps(ratios))


if __name__ == "__main__":
    main()
