"""Benchmark (not a test): GitHub API requests and latency per port operation, against the emulator.

Prints a table and writes bench/results/github_client.json. For each operation: the requests GitHub
saw (the emulator's log), how many it charged (304s are free), and what `counting_requests()` said
(total and content-creating, the quantity of GitHub's secondary limit: 80 a minute, 500 an hour per
installation). Cold = first call (an installation-token request where one is needed, which the
counter leaves out); warm = the same call again (ETag reads become 304s).
The outbound rows show the Git Data path's cost staying flat in the number of text files.
Run: .venv/bin/python bench/bench_github_client.py
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig, RestGitHubRepo
from ghsync.domain.models import Author
from ghsync.ports.github import TreeWrite, counting_requests
from github_emulator.testing import EmulatorHandle, run_emulator

RESULTS = Path(__file__).parent / "results" / "github_client.json"
BOT = Author("ghsync", "ghsync@example.com")


def outbound(repo: RestGitHubRepo, files: int) -> Callable[[], object]:
    """One local version of `files` text files pushed the Git Data way: read, tree, commit, ref."""

    def run() -> object:
        head = repo.get_branch("trunk")
        assert head is not None
        base_tree = repo.get_commit(head.sha).tree_sha
        stamp = time.time_ns()
        entries = [TreeWrite.text(f"src/f{i}.txt", f"{stamp} {i}\n") for i in range(files)]
        tree = repo.create_tree(base_tree, entries)
        commit = repo.create_commit(tree, [head.sha], f"ghsync: {files} files", BOT)
        repo.update_ref("trunk", commit.sha)
        return commit

    return run


def measure(
    emu: EmulatorHandle, name: str, op: Callable[[], object], phases: tuple[str, ...]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for phase in phases:
        emu.clear_requests()
        with counting_requests() as count:
            started = time.perf_counter()
            op()
            elapsed = time.perf_counter() - started
        log = emu.requests()
        rows.append(
            {
                "operation": name,
                "phase": phase,
                "requests": len(log),
                "charged": sum(1 for r in log if r["status"] != 304),
                "not_modified": sum(1 for r in log if r["status"] == 304),
                "counted": count.total,
                "content_creating": count.content_creating,
                "ms": round(elapsed * 1000, 2),
            }
        )
    return rows


def main() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, run_emulator(Path(tmp), tree_entry_limit=1000) as emu:
        app = emu.create_app("bench")
        big = {f"d{d}/f{i}.txt": f"{d}.{i}\n" for d in range(8) for i in range(200)}
        emu.create_repo("octo", "demo", default_branch="trunk", files={"README.md": "hi\n"})
        emu.create_repo("octo", "big", default_branch="trunk", files=big)
        inst = emu.create_installation(app.id, "octo", ["octo/demo", "octo/big"])
        config = GitHubAppConfig(app_id=app.id, private_key=app.private_key, api_url=emu.url)
        with GitHubAppClient(config) as client:
            repo = client.repo(inst, "octo", "demo")
            big_repo = client.repo(inst, "octo", "big")
            repo_id = repo.get_repository().id
            big_head = big_repo.get_branch("trunk")
            assert big_head is not None
            big_tree = big_repo.get_commit(big_head.sha).tree_sha
            both = ("cold", "warm")
            reads: list[tuple[str, Callable[[], object]]] = [
                ("get_repository", repo.get_repository),
                ("find_installation", lambda: client.find_installation("octo", "demo")),
                ("get_installation", lambda: client.get_installation(inst)),
                ("get_repository_by_id", lambda: client.get_repository_by_id(inst, repo_id)),
                ("get_branch", lambda: repo.get_branch("trunk")),
                ("get_tree (1,609 entries, truncated at 1,000)", lambda: big_repo.get_tree(big_tree)),
            ]
            for name, op in reads:
                rows += measure(emu, name, op, both)
            for files in (1, 10, 100, 1000):
                rows += measure(emu, f"outbound, {files} text files", outbound(repo, files), ("run",))
    print(
        f"{'operation':46} {'phase':5} {'reqs':>5} {'charged':>7} {'304s':>5} {'counted':>7} "
        f"{'writes':>6} {'ms':>8}"
    )
    for r in rows:
        print(
            f"{r['operation']:46} {r['phase']:5} {r['requests']:>5} {r['charged']:>7} {r['not_modified']:>5} "
            f"{r['counted']:>7} {r['content_creating']:>6} {r['ms']:>8}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
